// Package httpapi is the one HTTP convention of the aggregator's API
// (docs/api.md, "Conventions" and "Errors"), in the style of Prometheus'
// web/api/v1: a handler is a Func that returns a value or an error, and one
// adapter (Adapter.Handle) writes the value as JSON or the error as
// {"error": "..."} with the status its Kind maps to. The few handlers that
// write their own answers (ingest counts by status, the live stream, auth
// middleware) send their refusals through the same Error and WriteError.
//
// Both the api package and the routes it mounts (history) import this
// package, which imports neither.
package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// Kind is what went wrong, from the client's point of view; it decides the
// status code (Status).
type Kind uint8

// The kinds of docs/api.md's error table. The zero Kind is Internal, so
// that an Error built without one never blames the client.
const (
	KindInternal         Kind = iota // 500: the message is generic, the cause only logged
	KindBadRequest                   // 400: the message names the parameter or field
	KindUnauthorized                 // 401
	KindForbidden                    // 403
	KindNotFound                     // 404
	KindMethodNotAllowed             // 405
	KindTimeout                      // 408: the body did not arrive in time
	KindTooLarge                     // 413
	KindUnsupportedMedia             // 415
	KindTooMany                      // 429: always with a Retry-After
	KindUnavailable                  // 503: not ready yet, overloaded, or cancelled
)

var statuses = [...]int{
	KindInternal:         http.StatusInternalServerError,
	KindBadRequest:       http.StatusBadRequest,
	KindUnauthorized:     http.StatusUnauthorized,
	KindForbidden:        http.StatusForbidden,
	KindNotFound:         http.StatusNotFound,
	KindMethodNotAllowed: http.StatusMethodNotAllowed,
	KindTimeout:          http.StatusRequestTimeout,
	KindTooLarge:         http.StatusRequestEntityTooLarge,
	KindUnsupportedMedia: http.StatusUnsupportedMediaType,
	KindTooMany:          http.StatusTooManyRequests,
	KindUnavailable:      http.StatusServiceUnavailable,
}

// Status is the HTTP status code of k (500 for an unknown Kind).
func (k Kind) Status() int {
	if int(k) < len(statuses) {
		return statuses[k]
	}
	return http.StatusInternalServerError
}

// Error is a refusal the client reads as {"error": Msg}.
type Error struct {
	Kind Kind
	// Msg is sent to the client: what is wrong and what to do about it,
	// never internals (paths, SQL, stack traces). Client text in it is
	// JSON-escaped when written.
	Msg string
	// RetryAfter, when positive, is sent as Retry-After in whole seconds,
	// rounded up.
	RetryAfter time.Duration
	// Cause is what went wrong inside: logged by the adapter for
	// KindInternal, never sent.
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Msg + ": " + e.Cause.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Cause }

// Status is e's HTTP status code.
func (e *Error) Status() int { return e.Kind.Status() }

// New returns an Error of kind with msg.
func New(kind Kind, msg string) *Error { return &Error{Kind: kind, Msg: msg} }

// Errorf returns an Error of kind with a formatted message.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// BadRequest is Errorf(KindBadRequest, ...).
func BadRequest(format string, args ...any) *Error {
	return Errorf(KindBadRequest, format, args...)
}

// NotFound is Errorf(KindNotFound, ...).
func NotFound(format string, args ...any) *Error {
	return Errorf(KindNotFound, format, args...)
}

// Internal is a 500 that sends msg and logs cause.
func Internal(msg string, cause error) *Error {
	return &Error{Kind: KindInternal, Msg: msg, Cause: cause}
}

// errorBody is the one error shape of the whole API.
type errorBody struct {
	Error string `json:"error"`
}

// WriteError answers e: {"error": e.Msg} with e's status, never cached, and
// Retry-After when e has one. Headers the handler set before (Allow,
// WWW-Authenticate) are kept, except a body encoding or length meant for
// another answer.
func WriteError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	jsonHeaders(h)
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Encoding")
	h.Del("Content-Length")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
	w.WriteHeader(e.Status())
	b, _ := json.Marshal(errorBody{Error: e.Msg})
	_, _ = w.Write(append(b, '\n'))
}

// Clip keeps request text echoed in messages and logs (a path, a Host, a
// header value) short and valid UTF-8.
func Clip(s string) string {
	const max = 200
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	if !utf8.ValidString(s) {
		s = string([]rune(s)) // invalid bytes become U+FFFD
	}
	return s
}
