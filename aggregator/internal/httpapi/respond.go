package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
)

// Func is an API handler: it returns the answer's value (sent as JSON with
// 200) or an error. An *Error (anywhere in the chain) is sent as it is; a
// context error as 503 (the request was cancelled or timed out); anything
// else is a 500 whose cause is logged, never sent.
type Func func(r *http.Request) (any, error)

// Adapter turns Funcs into http.Handlers.
type Adapter struct {
	// Log receives the causes of 500s, with the request's path.
	Log *slog.Logger
	// NoStore sends Cache-Control: no-store with successful answers too
	// (errors always carry it).
	NoStore bool
}

// Handle returns the http.Handler of f.
func (ad Adapter) Handle(f Func) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			ad.Refuse(w, r, err)
			return
		}
		ad.respond(w, r, v)
	}
}

// Refuse answers err as Handle answers a Func's error, for handlers that
// are not Funcs (the live stream).
func (ad Adapter) Refuse(w http.ResponseWriter, r *http.Request, err error) {
	WriteError(w, ad.refusal(r, err))
}

// refusal turns a Func's error into the Error sent, logging internal ones.
func (ad Adapter) refusal(r *http.Request, err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// Mostly a client that went away: nobody to blame, nothing to log.
		return New(KindUnavailable, "request cancelled or timed out")
	default:
		e = Internal("internal error", err)
	}
	if e.Kind == KindInternal && ad.Log != nil {
		ad.Log.Error("request failed", "path", Clip(r.URL.Path), "err", err)
	}
	return e
}

func (ad Adapter) respond(w http.ResponseWriter, r *http.Request, v any) {
	if ad.NoStore {
		w.Header().Set("Cache-Control", "no-store")
	}
	if s, ok := v.(Streamer); ok {
		stream(w, s)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		WriteError(w, ad.refusal(r, Internal("internal error: cannot encode the response", err)))
		return
	}
	WriteJSONBytes(w, http.StatusOK, b)
}

// WriteJSON answers status with v encoded by encoding/json, for handlers
// that are not Funcs (ingest's 200 and 201).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		WriteError(w, Internal("internal error: cannot encode the response", err))
		return
	}
	WriteJSONBytes(w, status, b)
}

// WriteJSONBytes answers status with b, a JSON document, and a newline.
// The Content-Length is always sent, so a HEAD learns the GET's length.
func WriteJSONBytes(w http.ResponseWriter, status int, b []byte) {
	jsonHeaders(w.Header())
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(b)
	_, _ = w.Write([]byte{'\n'})
}

// jsonHeaders are the headers of every JSON answer (docs/api.md,
// "Conventions").
func jsonHeaders(h http.Header) {
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
}

// Streamer is an answer that encodes itself in pieces, for answers too big
// to encode whole before sending (a snapshot's process list).
type Streamer interface {
	// AppendJSON appends the value's JSON encoding to b, passing b to
	// s.Flush after each element or so, and returns what is left to send.
	AppendJSON(s *Stream, b []byte) []byte
}

// Stream sends a Streamer's answer. An answer that fits one piece
// (streamChunk) goes out whole with its Content-Length; a bigger one goes
// out chunked, piece by piece, so that it needs one pooled buffer whatever
// its size: encoding a 100,000-process list whole first cost ~100 MB of
// allocation (issue 11).
type Stream struct {
	w         http.ResponseWriter
	streaming bool
}

// streamChunk is how much of an answer is encoded before it is written.
const streamChunk = 32 << 10

// Flush sends b once it holds a piece or more, and returns what is left to
// append to; ok is false once the client is gone (stop encoding).
func (s *Stream) Flush(b []byte) (rest []byte, ok bool) {
	if len(b) < streamChunk {
		return b, true
	}
	if !s.streaming {
		s.streaming = true
		jsonHeaders(s.w.Header())
		s.w.WriteHeader(http.StatusOK)
	}
	if _, err := s.w.Write(b); err != nil {
		return b, false
	}
	return b[:0], true
}

// streamBufs pools Streams' buffers; bigger than maxPooledBuf are left to
// the GC.
var streamBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

const maxPooledBuf = 4 << 20

func stream(w http.ResponseWriter, v Streamer) {
	bp := streamBufs.Get().(*[]byte)
	s := &Stream{w: w}
	b := v.AppendJSON(s, (*bp)[:0])
	if s.streaming {
		_, _ = w.Write(append(b, '\n'))
	} else {
		WriteJSONBytes(w, http.StatusOK, b)
	}
	if cap(b) <= maxPooledBuf {
		*bp = b[:0]
		streamBufs.Put(bp)
	}
}
