package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// hostJSON is one entry of GET /api/v1/hosts: the original two fields plus
// additions.
type hostJSON struct {
	Hostname string `json:"hostname"`
	LastSeen string `json:"last_seen"`
	// Online: a snapshot was accepted within three push intervals.
	Online           bool    `json:"online"`
	OS               string  `json:"os"`
	LatestSnapshotID *int64  `json:"latest_snapshot_id"`
	LatestCapturedAt *string `json:"latest_captured_at"`
}

// snapshotJSON is GET /api/v1/snapshots/latest (the original four fields)
// and GET /api/v1/snapshots/{id}, plus the hostname.
type snapshotJSON struct {
	SnapshotID   int64           `json:"snapshot_id"`
	Hostname     string          `json:"hostname"`
	CapturedAt   string          `json:"captured_at"`
	ProcessCount int             `json:"process_count"`
	System       json.RawMessage `json:"system"`
}

// snapshotRefJSON lists snapshots without their system details.
type snapshotRefJSON struct {
	SnapshotID   int64  `json:"snapshot_id"`
	CapturedAt   string `json:"captured_at"`
	ProcessCount int    `json:"process_count"`
}

func formatTime(t time.Time) string { return t.UTC().Format(snapshot.CapturedAtFormat) }

func metaJSON(m store.SnapshotMeta) snapshotJSON {
	sys := m.SystemInfo
	if len(sys) == 0 {
		sys = json.RawMessage("{}")
	}
	return snapshotJSON{
		SnapshotID:   m.ID,
		Hostname:     m.Hostname,
		CapturedAt:   formatTime(m.CapturedAt),
		ProcessCount: m.ProcessCount,
		System:       sys,
	}
}

// storeError answers a store error: ErrNotFound is 404, anything else is
// the server's fault (500), logged without client data beyond the path.
func (a *API) storeError(w http.ResponseWriter, r *http.Request, err error, notFound string) {
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, notFound)
		return
	}
	if r.Context().Err() != nil {
		return // the client is gone
	}
	a.log.Error("reading from store", "path", truncatePath(r.URL.Path), "err", err)
	writeError(w, http.StatusInternalServerError, "internal error: storage failed")
}

func (a *API) hosts(w http.ResponseWriter, r *http.Request) {
	hosts, err := a.currentStore().Hosts(r.Context())
	if err != nil {
		a.storeError(w, r, err, "")
		return
	}
	now := a.opts.Now()
	out := make([]hostJSON, 0, len(hosts))
	for _, h := range hosts {
		j := hostJSON{
			Hostname: h.Hostname,
			LastSeen: formatTime(h.LastSeen),
			Online:   now.Sub(h.LastSeen) <= a.seen.window(h.Hostname, a.opts.OnlineWindow),
			OS:       h.OS,
		}
		if h.LatestSnapshotID > 0 {
			id, t := h.LatestSnapshotID, formatTime(h.LatestCapturedAt)
			j.LatestSnapshotID, j.LatestCapturedAt = &id, &t
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, out)
}

// queryHostname reads ?hostname=, answering 400 itself when it is missing
// or cannot be a hostname.
func queryHostname(w http.ResponseWriter, r *http.Request) (string, bool) {
	q := r.URL.Query()
	if !q.Has("hostname") || q.Get("hostname") == "" {
		writeError(w, http.StatusBadRequest, "missing query parameter hostname")
		return "", false
	}
	h := q.Get("hostname")
	if msg := snapshot.CheckHostname(h); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return "", false
	}
	return h, true
}

func (a *API) latest(w http.ResponseWriter, r *http.Request) {
	h, ok := queryHostname(w, r)
	if !ok {
		return
	}
	m, err := a.currentStore().Latest(r.Context(), h)
	if err != nil {
		a.storeError(w, r, err, "no snapshot for this host")
		return
	}
	writeJSON(w, http.StatusOK, metaJSON(m))
}

// snapshotAt is GET /api/v1/snapshots/at?hostname=&time=: the host's
// snapshot at or just before time (time travel).
func (a *API) snapshotAt(w http.ResponseWriter, r *http.Request) {
	h, ok := queryHostname(w, r)
	if !ok {
		return
	}
	t, ok := queryTime(w, r, "time", a.opts.Now())
	if !ok {
		return
	}
	m, err := a.currentStore().SnapshotAt(r.Context(), h, t)
	if err != nil {
		a.storeError(w, r, err, "no snapshot for this host at or before that time")
		return
	}
	writeJSON(w, http.StatusOK, metaJSON(m))
}

// queryTime reads an RFC 3339 time or unix seconds from the query; def when
// absent.
func queryTime(w http.ResponseWriter, r *http.Request, name string, def time.Time) (time.Time, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, true
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 && secs < 253402300800 {
		return time.UnixMilli(int64(secs * 1000)).UTC(), true
	}
	t, msg := snapshot.ParseTime(v)
	if msg != "" {
		writeError(w, http.StatusBadRequest, name+": "+msg)
		return time.Time{}, false
	}
	return t, true
}

// parseID reads a snapshot id path parameter: 400 unless a positive
// integer; ok=false with found=true means it is an integer too large to be
// any id (404, as docs/api.md says for ids out of range).
func parseID(s string) (id int64, ok, outOfRange bool) {
	if s == "" || len(s) > 40 {
		if len(s) > 40 && allDigits(s) {
			return 0, false, true
		}
		return 0, false, false
	}
	if !allDigits(s) {
		return 0, false, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, true // all digits: too large
	}
	if v <= 0 {
		return 0, false, false
	}
	return v, true, false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func (a *API) pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	raw := chi.URLParam(r, "id")
	id, ok, outOfRange := parseID(raw)
	if outOfRange {
		writeError(w, http.StatusNotFound, "no such snapshot")
		return 0, false
	}
	if !ok {
		writeError(w, http.StatusBadRequest, "the snapshot id must be a positive integer")
		return 0, false
	}
	return id, true
}

func (a *API) snapshot(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathID(w, r)
	if !ok {
		return
	}
	m, err := a.currentStore().Snapshot(r.Context(), id)
	if err != nil {
		a.storeError(w, r, err, "no such snapshot")
		return
	}
	writeJSON(w, http.StatusOK, metaJSON(m))
}

// encBuf pools response buffers for process lists (the largest responses).
var encBuf = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// procChunk is how much of a process list is encoded before it is written
// out. Encoding a whole list first cost ~100 MB of allocation for a
// 100,000-process snapshot (21 MB of JSON, the buffer doubling up to it);
// in chunks the answer needs one pooled buffer whatever its size (issue 11).
// A list that fits one chunk still goes out with its Content-Length.
const procChunk = 32 << 10

func (a *API) processes(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathID(w, r)
	if !ok {
		return
	}
	procs, err := a.currentStore().Processes(r.Context(), id)
	if err != nil {
		a.storeError(w, r, err, "no such snapshot")
		return
	}
	bp := encBuf.Get().(*[]byte)
	b := append((*bp)[:0], '[')
	streaming := false
	for i := range procs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendProcess(b, &procs[i])
		if len(b) < procChunk {
			continue
		}
		if !streaming {
			streaming = true
			h := w.Header()
			h.Set("Content-Type", "application/json; charset=utf-8")
			h.Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusOK)
		}
		if _, err := w.Write(b); err != nil {
			break // the client is gone
		}
		b = b[:0]
	}
	b = append(b, ']')
	if streaming {
		_, _ = w.Write(append(b, '\n'))
	} else {
		writeJSONBytes(w, http.StatusOK, b)
	}
	if cap(b) <= maxPooledBuf {
		*bp = b
		encBuf.Put(bp)
	}
}

// hostSnapshots is GET /api/v1/hosts/{hostname}/snapshots?from=&to=&limit=:
// the host's snapshots in a time range, oldest first (the time-travel
// slider). from defaults to an hour before to, to to now.
func (a *API) hostSnapshots(w http.ResponseWriter, r *http.Request) {
	h, ok := pathHostname(w, r)
	if !ok {
		return
	}
	to, ok := queryTime(w, r, "to", a.opts.Now())
	if !ok {
		return
	}
	from, ok := queryTime(w, r, "from", to.Add(-time.Hour))
	if !ok {
		return
	}
	if from.After(to) {
		writeError(w, http.StatusBadRequest, "from must not be after to")
		return
	}
	limit := 1000
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, "limit must be an integer from 1 to 10000")
			return
		}
		limit = n
	}
	metas, err := a.currentStore().SnapshotsBetween(r.Context(), h, from, to, limit)
	if err != nil {
		a.storeError(w, r, err, "unknown host")
		return
	}
	out := make([]snapshotRefJSON, 0, len(metas))
	for _, m := range metas {
		out = append(out, snapshotRefJSON{SnapshotID: m.ID, CapturedAt: formatTime(m.CapturedAt), ProcessCount: m.ProcessCount})
	}
	writeJSON(w, http.StatusOK, out)
}

// pathHostname reads the {hostname} path parameter. chi matches on the
// escaped path when the request has one, so a hostname with "/" or "%"
// arrives escaped and is unescaped here.
func pathHostname(w http.ResponseWriter, r *http.Request) (string, bool) {
	h := chi.URLParam(r, "hostname")
	if r.URL.RawPath != "" {
		u, err := url.PathUnescape(h)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid escape in the hostname")
			return "", false
		}
		h = u
	}
	if msg := snapshot.CheckHostname(h); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return "", false
	}
	return h, true
}

// PathHostname reads a {hostname} path parameter for routes added through
// Options.Mount; it answers 400 itself and returns false when invalid.
func PathHostname(w http.ResponseWriter, r *http.Request) (string, bool) {
	return pathHostname(w, r)
}

// WriteError answers {"error": msg} with code, for routes added through
// Options.Mount, so the whole API keeps one error shape.
func WriteError(w http.ResponseWriter, code int, msg string) { writeError(w, code, msg) }

// WriteJSON answers code with v as JSON, for routes added through Mount.
func WriteJSON(w http.ResponseWriter, code int, v any) { writeJSON(w, code, v) }
