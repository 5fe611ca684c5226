package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/procscope/procscope/aggregator/internal/httpapi"
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

// storeError is the answer to a store error: ErrNotFound is a 404 with
// notFound; a request that was cancelled (the client is gone) is not the
// store's fault; anything else is the server's (a 500 that logs the cause).
func storeError(ctx context.Context, err error, notFound string) error {
	if errors.Is(err, store.ErrNotFound) {
		return httpapi.New(httpapi.KindNotFound, notFound)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return httpapi.Internal("internal error: storage failed", err)
}

func (a *API) hosts(r *http.Request) (any, error) {
	hosts, err := a.currentStore().Hosts(r.Context())
	if err != nil {
		return nil, storeError(r.Context(), err, "")
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
	return out, nil
}

// queryHostname reads ?hostname=: a 400 when it is missing or cannot be a
// hostname.
func queryHostname(r *http.Request) (string, error) {
	q := r.URL.Query()
	if !q.Has("hostname") || q.Get("hostname") == "" {
		return "", httpapi.New(httpapi.KindBadRequest, "missing query parameter hostname")
	}
	h := q.Get("hostname")
	if msg := snapshot.CheckHostname(h); msg != "" {
		return "", httpapi.New(httpapi.KindBadRequest, msg)
	}
	return h, nil
}

func (a *API) latest(r *http.Request) (any, error) {
	h, err := queryHostname(r)
	if err != nil {
		return nil, err
	}
	m, err := a.currentStore().Latest(r.Context(), h)
	if err != nil {
		return nil, storeError(r.Context(), err, "no snapshot for this host")
	}
	return metaJSON(m), nil
}

// snapshotAt is GET /api/v1/snapshots/at?hostname=&time=: the host's
// snapshot at or just before time (time travel).
func (a *API) snapshotAt(r *http.Request) (any, error) {
	h, err := queryHostname(r)
	if err != nil {
		return nil, err
	}
	t, err := queryTime(r, "time", a.opts.Now())
	if err != nil {
		return nil, err
	}
	m, err := a.currentStore().SnapshotAt(r.Context(), h, t)
	if err != nil {
		return nil, storeError(r.Context(), err, "no snapshot for this host at or before that time")
	}
	return metaJSON(m), nil
}

// queryTime reads an RFC 3339 time or unix seconds from the query; def when
// absent.
func queryTime(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 && secs < 253402300800 {
		return time.UnixMilli(int64(secs * 1000)).UTC(), nil
	}
	t, msg := snapshot.ParseTime(v)
	if msg != "" {
		return time.Time{}, httpapi.New(httpapi.KindBadRequest, name+": "+msg)
	}
	return t, nil
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

func pathID(r *http.Request) (int64, error) {
	id, ok, outOfRange := parseID(chi.URLParam(r, "id"))
	if outOfRange {
		return 0, httpapi.New(httpapi.KindNotFound, "no such snapshot")
	}
	if !ok {
		return 0, httpapi.New(httpapi.KindBadRequest, "the snapshot id must be a positive integer")
	}
	return id, nil
}

func (a *API) snapshot(r *http.Request) (any, error) {
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	m, err := a.currentStore().Snapshot(r.Context(), id)
	if err != nil {
		return nil, storeError(r.Context(), err, "no such snapshot")
	}
	return metaJSON(m), nil
}

func (a *API) processes(r *http.Request) (any, error) {
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	if q := r.URL.Query(); q.Has("since") {
		return a.processDelta(r, id, q.Get("since")) // procdelta.go
	}
	procs, err := a.currentStore().Processes(r.Context(), id)
	if err != nil {
		return nil, storeError(r.Context(), err, "no such snapshot")
	}
	return processList(procs), nil
}

// processList is the answer of GET /api/v1/snapshots/{id}/processes, the
// largest the UI asks for: encoded by hand (encode.go) and sent in pieces.
type processList []snapshot.Process

func (pl processList) AppendJSON(s *httpapi.Stream, b []byte) []byte {
	b = append(b, '[')
	for i := range pl {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendProcess(b, &pl[i])
		var ok bool
		if b, ok = s.Flush(b); !ok {
			break // the client is gone
		}
	}
	return append(b, ']')
}

// hostSnapshots is GET /api/v1/hosts/{hostname}/snapshots?from=&to=&limit=:
// the host's snapshots in a time range, oldest first (the time-travel
// slider). from defaults to an hour before to, to to now.
func (a *API) hostSnapshots(r *http.Request) (any, error) {
	h, err := httpapi.PathHostname(r)
	if err != nil {
		return nil, err
	}
	to, err := queryTime(r, "to", a.opts.Now())
	if err != nil {
		return nil, err
	}
	from, err := queryTime(r, "from", to.Add(-time.Hour))
	if err != nil {
		return nil, err
	}
	if from.After(to) {
		return nil, httpapi.New(httpapi.KindBadRequest, "from must not be after to")
	}
	limit := 1000
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return nil, httpapi.New(httpapi.KindBadRequest, "limit must be an integer from 1 to 10000")
		}
		limit = n
	}
	metas, err := a.currentStore().SnapshotsBetween(r.Context(), h, from, to, limit)
	if err != nil {
		return nil, storeError(r.Context(), err, "unknown host")
	}
	out := make([]snapshotRefJSON, 0, len(metas))
	for _, m := range metas {
		out = append(out, snapshotRefJSON{SnapshotID: m.ID, CapturedAt: formatTime(m.CapturedAt), ProcessCount: m.ProcessCount})
	}
	return out, nil
}
