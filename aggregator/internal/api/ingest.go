package api

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/common/model"

	"github.com/procscope/procscope/aggregator/internal/httpapi"
	"github.com/procscope/procscope/aggregator/internal/inflate"
	"github.com/procscope/procscope/aggregator/internal/ingest"
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
//
// Two answers come before the body is decoded, because they mean it is
// not there to decode: 408 when it did not arrive within the body
// deadline, and 429 when the bodies being read already hold the in-flight
// budget. The body is read before an ingest slot is taken, so slow
// clients hold no slot (429 for a full queue also comes after the read).

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
	fail := func(e *httpapi.Error) (int, int64) {
		httpapi.WriteError(w, e)
		return e.Status(), wireBytes
	}
	st := a.currentStore()
	if st == nil {
		notReady(w)
		return http.StatusServiceUnavailable, 0
	}
	key := r.Header.Get("X-API-KEY")
	if strings.TrimSpace(key) == "" {
		return fail(httpapi.New(httpapi.KindUnauthorized, "missing X-API-KEY header: every host needs its API key"))
	}
	keyHash := sha256.Sum256([]byte(key))

	gz, encOK := parseEncoding(r.Header.Values("Content-Encoding"))
	if !encOK {
		// Without decoding the body the hostname is unknown, so there is
		// no key to check: 415 is the first answer that can be given.
		return fail(httpapi.New(httpapi.KindUnsupportedMedia, "unsupported Content-Encoding: only gzip (or none) is accepted"))
	}
	ctErr := checkContentType(r.Header.Get("Content-Type"))
	lim := a.opts.Limits

	// The body as sent is read first, within the wire limit, the in-flight
	// budget and the body deadline, and only then is an ingest slot taken:
	// slow clients hold a few KiB each, never a slot that others wait for.
	if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(lim.BodyTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		a.log.Debug("setting the body deadline", "err", err)
	}
	wire := newHeldBuf(a.inflight)
	defer wire.release()
	size := -1
	if r.ContentLength >= 0 && r.ContentLength <= lim.MaxWireBytes {
		size = int(r.ContentLength)
	}
	// A plain body is its own decoded body: the smaller limit reads it.
	wireLimit, wireLimitErr := lim.MaxWireBytes, errWireLimit
	if !gz && lim.MaxDecodedBytes < lim.MaxWireBytes {
		wireLimit, wireLimitErr = lim.MaxDecodedBytes, errDecodedLimit
	}
	wireErr := wire.fill(r.Body, int(wireLimit), size, wireLimitErr)
	wireBytes = int64(len(wire.buf))
	var ne net.Error
	switch {
	case wireErr == nil, errors.Is(wireErr, errWireLimit), errors.Is(wireErr, errDecodedLimit):
		// Decoded below: the hostname in what came is checked first.
	case errors.Is(wireErr, os.ErrDeadlineExceeded) || errors.As(wireErr, &ne) && ne.Timeout():
		return fail(httpapi.Errorf(httpapi.KindTimeout, "the request body did not arrive within %s (--web.body-timeout): check the network between exporter and aggregator, or raise the flag", lim.BodyTimeout))
	case errors.Is(wireErr, errInflight):
		return fail(&httpapi.Error{Kind: httpapi.KindTooMany, Msg: "too much ingest data in flight, retry later", RetryAfter: time.Second})
	default:
		return fail(httpapi.New(httpapi.KindBadRequest, "could not read the request body"))
	}

	// Bound the bodies decoded at once (each may hold MaxDecodedBytes).
	if !a.acquire(r) {
		return fail(&httpapi.Error{Kind: httpapi.KindTooMany, Msg: "too many ingests in progress, retry later", RetryAfter: time.Second})
	}
	defer func() { <-a.ingestQ }()

	readErr := wireErr
	var gzipBad bool
	body := wire.buf
	if gz {
		dec := newHeldBuf(a.inflight)
		defer dec.release()
		readErr, gzipBad = a.gunzip(dec, wire.buf, wireErr)
		body = dec.buf
		wire.release() // for the bodies read meanwhile
	}

	var keyErr error
	procs := procBufs.Get().(*[]snapshot.Process)
	var decoded *ingest.Decoded
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
	decoded, decErr := ingest.Decode(body, ingest.DecodeOptions{
		MaxProcesses: lim.MaxProcesses,
		Processes:    *procs,
		OnHostname: func(h string) error {
			keyErr = a.enroll.admit(r, st, h, key, keyHash) // enroll.go
			return keyErr
		},
	})
	if keyErr != nil {
		var rf *httpapi.Error
		if errors.As(keyErr, &rf) {
			return fail(rf) // refused by enrolment
		}
		if errors.Is(keyErr, store.ErrKeyMismatch) {
			return fail(httpapi.New(httpapi.KindForbidden, "the API key does not match this host"))
		}
		a.log.Error("checking api key", "err", keyErr)
		return fail(httpapi.New(httpapi.KindInternal, "internal error: could not check the API key"))
	}
	switch {
	case errors.Is(readErr, errInflight):
		return fail(&httpapi.Error{Kind: httpapi.KindTooMany, Msg: "too much ingest data in flight, retry later", RetryAfter: time.Second})
	case errors.Is(readErr, errWireLimit):
		return fail(httpapi.Errorf(httpapi.KindTooLarge, "body larger than %d bytes", lim.MaxWireBytes))
	case errors.Is(readErr, errDecodedLimit):
		return fail(httpapi.Errorf(httpapi.KindTooLarge, "body larger than %d bytes after decompression", lim.MaxDecodedBytes))
	}
	var de *ingest.DecodeError
	if errors.As(decErr, &de) && de.Kind == ingest.KindTooLarge {
		return fail(httpapi.New(httpapi.KindTooLarge, de.Msg))
	}
	if ctErr != "" {
		return fail(httpapi.New(httpapi.KindUnsupportedMedia, ctErr))
	}
	if readErr != nil {
		if gzipBad {
			return fail(httpapi.New(httpapi.KindBadRequest, "invalid gzip body"))
		}
		return fail(httpapi.New(httpapi.KindBadRequest, "could not read the request body"))
	}
	if decErr != nil {
		if de != nil {
			return fail(httpapi.New(httpapi.KindBadRequest, de.Msg))
		}
		a.log.Error("decoding ingest body", "err", decErr)
		return fail(httpapi.New(httpapi.KindInternal, "internal error"))
	}
	if msg := checkClock(decoded.CapturedAt, a.opts.Now(), lim.MaxClockSkew); msg != "" {
		return fail(httpapi.New(httpapi.KindBadRequest, msg))
	}

	snap := &decoded.Snapshot
	req := &store.IngestRequest{
		Hostname:   snap.Hostname,
		KeyHash:    keyHash,
		CapturedAt: decoded.CapturedAt,
		SystemInfo: snap.SystemInfo,
		System:     &decoded.System,
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
			return fail(rf)
		}
		if errors.Is(err, store.ErrKeyMismatch) {
			// Lost a race for a new hostname to another key.
			return fail(httpapi.New(httpapi.KindForbidden, "the API key does not match this host"))
		}
		if errors.Is(err, store.ErrInvalid) {
			// The store re-checks its own invariants; its message names
			// the fault and carries no internals.
			return fail(httpapi.New(httpapi.KindBadRequest, err.Error()))
		}
		if errors.Is(err, store.ErrStorageFull) {
			// Logged once by the store; the exporter keeps the snapshot
			// queued and sends it again.
			return fail(&httpapi.Error{Kind: httpapi.KindUnavailable, RetryAfter: storageFullRetry,
				Msg: "the aggregator's storage is full: the snapshot was not stored; send it again later"})
		}
		if r.Context().Err() != nil {
			// The client went away; it will retry (ingest is idempotent).
			return fail(httpapi.New(httpapi.KindUnavailable, "request cancelled"))
		}
		a.log.Error("storing snapshot", "hostname", snap.Hostname, "err", err)
		return fail(httpapi.New(httpapi.KindInternal, "internal error: could not store the snapshot"))
	}
	code = http.StatusOK
	if res.Created {
		code = http.StatusCreated
		a.metrics.snapshotsStored.Inc()
		a.seen.observe(req.Hostname, req.CapturedAt)
		a.stream.publish(streamEvent{SnapshotID: res.SnapshotID, CapturedAt: snap.CapturedAt, Hostname: req.Hostname}, req.CapturedAt)
	}
	a.fleet.observe(req, res)
	if a.opts.OnIngest != nil {
		a.opts.OnIngest(r.Context(), req, res)
	}
	httpapi.WriteJSON(w, code, ingestResponse{SnapshotID: res.SnapshotID})
	return code, wireBytes
}

// gunzip decompresses wire (cut by wireErr, when reading it stopped at
// the wire limit) into dec, never past the decompression limit, into a
// buffer that never grows past it either: bodies up to maxPooledBuf
// decompressed in one pass (libdeflate, or the streaming reader growing
// a buffer up to that much), bigger ones in two, the first counting the
// bytes and the second filling a buffer of exactly that size. A limit
// stops it with what came before (the hostname in it is still checked);
// gzipBad tells a malformed body from a read error.
func (a *API) gunzip(dec *heldBuf, wire []byte, wireErr error) (readErr error, gzipBad bool) {
	limit := int(a.opts.Limits.MaxDecodedBytes)
	small := min(limit, maxPooledBuf)
	if a.fastGunzip && wireErr == nil {
		out, err := inflate.Gunzip(dec.buf[:0], wire, small, dec.charge)
		dec.buf = out
		if err == nil {
			return nil, false
		}
		// Too large or bad: the streaming reader below finds the precise
		// error, and what came before it, exactly as it always did.
	}
	src := func() io.Reader {
		if wireErr != nil {
			return io.MultiReader(bytes.NewReader(wire), errReader{wireErr})
		}
		return bytes.NewReader(wire)
	}
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(src())
	} else {
		err = zr.Reset(src())
	}
	if err != nil {
		return err, !errors.Is(err, errWireLimit)
	}
	defer gzipReaders.Put(zr)
	classify := func(err error) (error, bool) {
		if err != nil && !errors.Is(err, errWireLimit) && !errors.Is(err, errDecodedLimit) && !errors.Is(err, errInflight) {
			return err, isGzipError(err)
		}
		return err, false
	}
	if !a.fastGunzip || wireErr != nil {
		dec.buf = dec.buf[:0]
		err := dec.fill(zr, small, -1, errDecodedLimit)
		if small == limit || !errors.Is(err, errDecodedLimit) {
			return classify(err)
		}
		if err := zr.Reset(src()); err != nil {
			return classify(err)
		}
	}
	// Over maxPooledBuf decompressed: count, then fill exactly.
	n, err := io.Copy(io.Discard, &limitReader{r: zr, n: int64(limit), limit: errDecodedLimit})
	readErr, gzipBad = classify(err)
	dec.buf = dec.buf[:0]
	if !dec.reserve(int(n)) {
		return errInflight, false
	}
	if readErr == nil && a.fastGunzip {
		if out, err := inflate.Gunzip(dec.buf[:0], wire, int(n), dec.charge); err == nil && len(out) == int(n) {
			dec.buf = out
			return nil, false
		}
	}
	if err := zr.Reset(src()); err != nil {
		return classify(err)
	}
	dec.buf = dec.buf[:n]
	if _, err := io.ReadFull(zr, dec.buf); err != nil {
		// The same bytes decompress the same way: only a broken reader
		// could end here.
		dec.buf = dec.buf[:0]
		return classify(err)
	}
	return readErr, gzipBad
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
			return "unsupported Content-Type parameter " + strconv.Quote(httpapi.Clip(k))
		}
		switch strings.ToLower(v) {
		case "utf-8", "utf8":
		default:
			return "unsupported charset " + strconv.Quote(httpapi.Clip(v)) + ": the body must be UTF-8"
		}
	}
	return ""
}

func isGzipError(err error) bool {
	return errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) ||
		errors.Is(err, io.ErrUnexpectedEOF) || strings.HasPrefix(err.Error(), "flate:")
}

// checkClock refuses a captured_at more than maxSkew ahead of now, which
// would otherwise stay the host's latest snapshot until that time comes;
// it returns why, naming the skew (exporters look for "ahead of the
// aggregator's clock").
func checkClock(captured, now time.Time, maxSkew time.Duration) string {
	if !captured.After(now.Add(maxSkew)) {
		return ""
	}
	// In calendar years past one: time.Duration ends at 292 years,
	// captured_at at 9999.
	var skew string
	if captured.AddDate(-1, 0, 0).Before(now) {
		skew = model.Duration(captured.Sub(now).Round(time.Second)).String()
	} else {
		y := captured.Year() - now.Year()
		if captured.AddDate(-y, 0, 0).Before(now) {
			y--
		}
		skew = strconv.Itoa(y) + "y"
	}
	return fmt.Sprintf("captured_at %s is %s ahead of the aggregator's clock (more than --ingest.max-clock-skew=%s): fix the exporter host's clock (NTP)",
		captured.UTC().Format(time.RFC3339), skew, maxSkew)
}
