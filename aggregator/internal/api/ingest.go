package api

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/procscope/procscope/aggregator/internal/inflate"
	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// How ingest orders its answers (docs/api.md: 401 -> 403 -> 413 -> 415 -> 400).
//
// The 403 check needs the hostname, which is inside the body, while 413,
// 415 and 400 are about the body. So ingest reads the body within the size
// limits (the wire limit, then the decompression limit, whichever is hit
// first stops reading), decodes whatever it got, and the decoder hands over
// the hostname the moment it reads it (exporters send it first), which is
// when the key is checked: a wrong key stops the request at once with 403.
// Only then do the size error, the Content-Type error and content errors
// answer, in that order. When the hostname cannot be found at all (an
// unsupported Content-Encoding, or a body cut by a limit before the
// hostname), there is no host to check the key against and the other
// error answers. Nothing is stored in any of these cases: CheckKey only
// reads.

// ingestBuf pools body buffers; big ones are not kept (see putBuf).
var ingestBuf = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBuf = 4 << 20

// maxPreGrow caps the buffer reserved from a claimed Content-Length before
// any byte arrived (and before the key was checked).
const maxPreGrow = 4 << 20

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuf {
		b.Reset()
		ingestBuf.Put(b)
	}
}

// procBufs pools the decoded process slices (*[]snapshot.Process): at 300
// processes each is ~40 KB, half of all the memory an ingest allocated.
// A slice goes back only once nothing holds it: the store copies what it
// keeps, and OnIngest hooks must not keep req.Processes either.
var procBufs = sync.Pool{New: func() any { return new([]snapshot.Process) }}

// maxPooledProcs: bigger slices (a rare huge host) are left to the GC.
const maxPooledProcs = 10_000

// putProcs clears the slice Decode used (the one passed in, or a bigger
// one it grew instead) and pools it: Decode needs zeroed elements.
func putProcs(pb *[]snapshot.Process, used []snapshot.Process) {
	s := *pb
	if cap(used) > cap(s) {
		s = used
	}
	if cap(s) > maxPooledProcs {
		return
	}
	clear(s[:cap(s)])
	*pb = s[:0]
	procBufs.Put(pb)
}

// gzipReaders pools gzip readers: each holds ~40 KiB of inflate state that
// would otherwise be allocated per request.
var gzipReaders sync.Pool

var (
	errWireLimit    = errors.New("wire limit")
	errDecodedLimit = errors.New("decoded limit")
)

// limitReader returns errLimit once more than n bytes were asked for,
// after handing over exactly n. It counts what it read for metrics.
type limitReader struct {
	r     io.Reader
	n     int64
	read  int64
	limit error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// Probe one byte: a body of exactly the limit is fine.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, l.limit
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	l.read += int64(n)
	return n, err
}

type ingestResponse struct {
	SnapshotID int64 `json:"snapshot_id"`
}

// ingest is POST /api/v1/ingest.
func (a *API) ingest(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code, wire := a.ingestInner(w, r)
	a.metrics.ingestRequests.WithLabelValues(strconv.Itoa(code)).Inc()
	a.metrics.ingestDuration.Observe(time.Since(start).Seconds())
	a.metrics.ingestBytes.Add(float64(wire))
}

func (a *API) ingestInner(w http.ResponseWriter, r *http.Request) (code int, wireBytes int64) {
	fail := func(c int, msg string) (int, int64) {
		writeError(w, c, msg)
		return c, wireBytes
	}
	st := a.currentStore()
	if st == nil {
		notReady(w)
		return http.StatusServiceUnavailable, 0
	}
	key := r.Header.Get("X-API-KEY")
	if strings.TrimSpace(key) == "" {
		return fail(http.StatusUnauthorized, "missing X-API-KEY header: every host needs its API key")
	}
	keyHash := sha256.Sum256([]byte(key))

	// Bound the bodies decoded at once (each may hold MaxDecodedBytes).
	if !a.acquire(r) {
		w.Header().Set("Retry-After", "1")
		return fail(http.StatusTooManyRequests, "too many ingests in progress, retry later")
	}
	defer func() { <-a.ingestQ }()

	gz, encOK := parseEncoding(r.Header.Values("Content-Encoding"))
	if !encOK {
		// Without decoding the body the hostname is unknown, so there is
		// no key to check: 415 is the first answer that can be given.
		return fail(http.StatusUnsupportedMediaType, "unsupported Content-Encoding: only gzip (or none) is accepted")
	}
	ctErr := checkContentType(r.Header.Get("Content-Type"))

	lim := a.opts.Limits
	wire := &limitReader{r: r.Body, n: lim.MaxWireBytes, limit: errWireLimit}
	buf := ingestBuf.Get().(*bytes.Buffer)
	defer putBuf(buf)

	var readErr error
	var gzipBad bool
	var body []byte
	if gz {
		src := io.Reader(wire)
		if a.fastGunzip {
			// The whole compressed body first, then one libdeflate call
			// (package inflate). When that fails for any reason (a limit,
			// bad data), the streaming path below reads the same bytes
			// and answers exactly as it always did.
			wbuf := ingestBuf.Get().(*bytes.Buffer)
			defer putBuf(wbuf)
			if r.ContentLength > 0 {
				wbuf.Grow(int(min(r.ContentLength, lim.MaxWireBytes, maxPreGrow)))
			}
			_, werr := wbuf.ReadFrom(wire)
			if werr == nil {
				out, release, err := a.gunzipWhole(wbuf.Bytes(), lim.MaxDecodedBytes)
				defer release()
				if err == nil {
					body = out
				}
				src = bytes.NewReader(wbuf.Bytes())
			} else {
				src = io.MultiReader(bytes.NewReader(wbuf.Bytes()), errReader{werr})
			}
		}
		if body == nil {
			var release func()
			readErr, gzipBad, release = a.gunzipStream(r, src, buf)
			defer release()
			body = buf.Bytes()
		}
	} else {
		if r.ContentLength > 0 {
			buf.Grow(int(min(r.ContentLength, lim.MaxWireBytes, maxPreGrow)))
		}
		dec := &budgetReader{r: &limitReader{r: wire, n: lim.MaxDecodedBytes, limit: errDecodedLimit}, b: a.inflight}
		defer dec.release()
		_, readErr = buf.ReadFrom(dec)
		body = buf.Bytes()
	}
	wireBytes = wire.read

	var keyErr error
	procs := procBufs.Get().(*[]snapshot.Process)
	var decoded *snapshot.Decoded
	recycle := true
	defer func() {
		if recycle {
			var used []snapshot.Process
			if decoded != nil {
				used = decoded.Snapshot.Processes
			}
			putProcs(procs, used)
		}
	}()
	decoded, decErr := snapshot.Decode(body, snapshot.DecodeOptions{
		MaxProcesses: lim.MaxProcesses,
		Processes:    *procs,
		OnHostname: func(h string) error {
			keyErr = a.enroll.admit(r, st, h, key, keyHash) // enroll.go
			return keyErr
		},
	})
	if keyErr != nil {
		var rf *refusal
		if errors.As(keyErr, &rf) {
			rf.write(w)
			return rf.code, wireBytes
		}
		if errors.Is(keyErr, store.ErrKeyMismatch) {
			return fail(http.StatusForbidden, "the API key does not match this host")
		}
		a.log.Error("checking api key", "err", keyErr)
		return fail(http.StatusInternalServerError, "internal error: could not check the API key")
	}
	switch {
	case errors.Is(readErr, errInflight):
		w.Header().Set("Retry-After", "1")
		return fail(http.StatusTooManyRequests, "too much ingest data in flight, retry later")
	case errors.Is(readErr, errWireLimit):
		return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", lim.MaxWireBytes))
	case errors.Is(readErr, errDecodedLimit):
		return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes after decompression", lim.MaxDecodedBytes))
	}
	var de *snapshot.DecodeError
	if errors.As(decErr, &de) && de.Kind == snapshot.KindTooLarge {
		return fail(http.StatusRequestEntityTooLarge, de.Msg)
	}
	if ctErr != "" {
		return fail(http.StatusUnsupportedMediaType, ctErr)
	}
	if readErr != nil {
		if gzipBad {
			return fail(http.StatusBadRequest, "invalid gzip body")
		}
		return fail(http.StatusBadRequest, "could not read the request body")
	}
	if decErr != nil {
		if de != nil {
			return fail(http.StatusBadRequest, de.Msg)
		}
		a.log.Error("decoding ingest body", "err", decErr)
		return fail(http.StatusInternalServerError, "internal error")
	}

	snap := &decoded.Snapshot
	req := &store.IngestRequest{
		Hostname:   snap.Hostname,
		KeyHash:    keyHash,
		CapturedAt: decoded.CapturedAt,
		SystemInfo: snap.SystemInfo,
		Processes:  snap.Processes,
		ReceivedAt: a.opts.Now().UTC(),
		// Decode accepted system_info only as a JSON object.
		SystemInfoIsObject: true,
		NoCreate:           !a.enroll.mayCreate(r),
		MaxHosts:           a.enroll.cfg.MaxHosts,
	}
	res, err := st.Ingest(r.Context(), req)
	// An ingest that gave up waiting (the client went away, the store
	// closed) may still be queued in the store's writer, which reads
	// req.Processes later: that slice is left to the GC.
	recycle = err == nil || errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrKeyMismatch) ||
		errors.Is(err, store.ErrUnknownHost) || errors.Is(err, store.ErrTooManyHosts)
	if err != nil {
		if rf := a.enroll.storeRefusal(err, snap.Hostname); rf != nil {
			rf.write(w)
			return rf.code, wireBytes
		}
		if errors.Is(err, store.ErrKeyMismatch) {
			// Lost a race for a new hostname to another key.
			return fail(http.StatusForbidden, "the API key does not match this host")
		}
		if errors.Is(err, store.ErrInvalid) {
			// The store re-checks its own invariants; its message names
			// the fault and carries no internals.
			return fail(http.StatusBadRequest, err.Error())
		}
		if r.Context().Err() != nil {
			// The client went away; it will retry (ingest is idempotent).
			return fail(http.StatusServiceUnavailable, "request cancelled")
		}
		a.log.Error("storing snapshot", "hostname", snap.Hostname, "err", err)
		return fail(http.StatusInternalServerError, "internal error: could not store the snapshot")
	}
	code = http.StatusOK
	if res.Created {
		code = http.StatusCreated
		a.metrics.snapshotsStored.Inc()
		a.seen.observe(req.Hostname, req.CapturedAt)
		a.stream.publish(streamEvent{SnapshotID: res.SnapshotID, CapturedAt: snap.CapturedAt, Hostname: req.Hostname}, req.CapturedAt)
	}
	if a.opts.OnIngest != nil {
		a.opts.OnIngest(r.Context(), req, res)
	}
	writeJSON(w, code, ingestResponse{SnapshotID: res.SnapshotID})
	return code, wireBytes
}

// gunzipStream decompresses src into buf with klauspost/compress's
// streaming reader, within the decompression limit and the in-flight
// budget. A limit stops it with what came before (the hostname in it is
// still checked); gzipBad tells a malformed body from a read error.
// release gives the budget back: only once buf is no longer used, since
// the budget bounds the bodies held, not just the ones being read.
func (a *API) gunzipStream(r *http.Request, src io.Reader, buf *bytes.Buffer) (readErr error, gzipBad bool, release func()) {
	lim := a.opts.Limits
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(src)
	} else {
		err = zr.Reset(src)
	}
	if err != nil {
		return err, !errors.Is(err, errWireLimit), func() {}
	}
	defer gzipReaders.Put(zr)
	if r.ContentLength > 0 {
		// Compressed JSON is typically 8-15x smaller. Capped: the
		// length is only a claim until the bytes arrive.
		buf.Grow(int(min(r.ContentLength*8, lim.MaxDecodedBytes, maxPreGrow)))
	}
	dec := &budgetReader{r: &limitReader{r: zr, n: lim.MaxDecodedBytes, limit: errDecodedLimit}, b: a.inflight}
	_, readErr = buf.ReadFrom(dec)
	if readErr != nil && !errors.Is(readErr, errWireLimit) && !errors.Is(readErr, errDecodedLimit) {
		gzipBad = isGzipError(readErr)
	}
	return readErr, gzipBad, dec.release
}

// decodedBufs pools the buffers gunzipWhole decompresses into.
var decodedBufs = sync.Pool{New: func() any { return new([]byte) }}

// gunzipWhole decompresses a whole gzip body with libdeflate into a pooled
// buffer, the memory it holds taken from the in-flight budget. release
// gives back the buffer and the budget once the body is no longer used.
// Bodies over maxPooledBuf decompressed are left to the streaming path
// (err), so that this path allocates at most that much per body, and
// only once per pooled buffer.
func (a *API) gunzipWhole(src []byte, limit int64) (out []byte, release func(), err error) {
	var taken int64
	grow := func(c int) bool {
		if d := int64(c) - taken; d > 0 {
			if !a.inflight.take(d) {
				return false
			}
			taken += d
		}
		return true
	}
	bp := decodedBufs.Get().(*[]byte)
	out, err = inflate.Gunzip((*bp)[:0], src, int(min(limit, maxPooledBuf)), grow)
	release = func() {
		a.inflight.release(taken)
		taken = 0
		if cap(out) <= maxPooledBuf {
			*bp = out[:0]
		}
		out = nil
		decodedBufs.Put(bp)
	}
	if err != nil {
		release()
		return nil, func() {}, err
	}
	return out, release, nil
}

// errReader replays a read error after the bytes read before it.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// acquire takes an ingest slot, waiting up to QueueTimeout.
func (a *API) acquire(r *http.Request) bool {
	select {
	case a.ingestQ <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(a.opts.Limits.QueueTimeout)
	defer t.Stop()
	select {
	case a.ingestQ <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-r.Context().Done():
		return false
	}
}

// parseEncoding reads Content-Encoding: none, identity or gzip (x-gzip is
// gzip's old name). Stacked encodings are not supported.
func parseEncoding(values []string) (gz, ok bool) {
	n := 0
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			switch strings.ToLower(strings.TrimSpace(e)) {
			case "", "identity":
			case "gzip", "x-gzip":
				gz = true
				n++
			default:
				return false, false
			}
		}
	}
	return gz, n <= 1
}

// checkContentType accepts JSON with an optional UTF-8 charset, or no
// Content-Type at all (old agents send none); it returns why not otherwise.
func checkContentType(ct string) string {
	if strings.TrimSpace(ct) == "" {
		return ""
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return "unsupported Content-Type: send application/json"
	}
	for k, v := range params {
		if k != "charset" {
			return "unsupported Content-Type parameter " + strconv.Quote(truncatePath(k))
		}
		switch strings.ToLower(v) {
		case "utf-8", "utf8":
		default:
			return "unsupported charset " + strconv.Quote(truncatePath(v)) + ": the body must be UTF-8"
		}
	}
	return ""
}

func isGzipError(err error) bool {
	return errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) ||
		errors.Is(err, io.ErrUnexpectedEOF) || strings.HasPrefix(err.Error(), "flate:")
}
