package events

import (
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/procscope/procscope/aggregator/internal/httpapi"
	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// Bounds of one events query.
const (
	DefaultRange = 24 * time.Hour
	MaxRange     = 7 * 24 * time.Hour
	DefaultLimit = 1000
	MaxLimit     = 5000
	maxQ         = 256
)

// Handler serves the events route from an EventStore that may be set
// after the router is built (storage opens after the port answers).
type Handler struct {
	ev  func() store.EventStore
	now func() time.Time
	ad  httpapi.Adapter
}

// NewHandler serves what ev returns (nil: 503 until storage is open).
func NewHandler(ev func() store.EventStore, ad httpapi.Adapter) *Handler {
	return &Handler{ev: ev, ad: ad, now: time.Now}
}

// Mount registers GET /hosts/{hostname}/events on the API's /api/v1
// router.
func (h *Handler) Mount(r chi.Router) {
	r.With(httpapi.Route("host_events")).Get("/hosts/{hostname}/events", h.ad.Handle(h.events))
}

// EventJSON is one element of the answer (docs/api.md).
type EventJSON struct {
	At          string   `json:"at"`
	Kind        string   `json:"kind"`
	PID         int64    `json:"pid"`
	PPID        int64    `json:"ppid"`
	Name        string   `json:"name"`
	Unit        string   `json:"unit,omitempty"`
	ContainerID string   `json:"container_id,omitempty"`
	PrevPID     *int64   `json:"prev_pid,omitempty"`
	StartedAt   string   `json:"started_at,omitempty"`
	LifetimeSec *float64 `json:"lifetime_seconds,omitempty"`
	CPUPercent  *float64 `json:"cpu_percent,omitempty"`
	MemoryMB    *float64 `json:"memory_mb,omitempty"`
}

// Answer is the route's JSON body.
type Answer struct {
	Hostname string      `json:"hostname"`
	From     string      `json:"from"`
	To       string      `json:"to"`
	Events   []EventJSON `json:"events"`
	// Truncated: there were more than limit events in the range; the
	// newest limit are listed.
	Truncated bool `json:"truncated"`
}

func (h *Handler) events(r *http.Request) (any, error) {
	ev := h.ev()
	if ev == nil {
		return nil, httpapi.New(httpapi.KindUnavailable, "storage is not open yet; retry in a few seconds")
	}
	hostname, err := httpapi.PathHostname(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	to := h.now().UTC()
	if s := q.Get("to"); s != "" {
		if to, err = parseTime("to", s); err != nil {
			return nil, err
		}
	}
	from := to.Add(-DefaultRange)
	if s := q.Get("from"); s != "" {
		if from, err = parseTime("from", s); err != nil {
			return nil, err
		}
	}
	if to.Before(from) {
		return nil, httpapi.BadRequest("from is after to")
	}
	if to.Sub(from) > MaxRange {
		return nil, httpapi.BadRequest("from..to spans more than %s; ask for a shorter range", MaxRange)
	}
	limit := DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return nil, httpapi.BadRequest("limit must be an integer from 1 to %d", MaxLimit)
		}
		limit = n
	}
	text := q.Get("q")
	if len(text) > maxQ {
		return nil, httpapi.BadRequest("q is longer than %d bytes", maxQ)
	}
	kinds, err := parseKinds(q.Get("kind"))
	if err != nil {
		return nil, err
	}
	evs, err := ev.Events(r.Context(), hostname, store.EventQuery{From: from, To: to, Q: text, Kinds: kinds, Limit: limit + 1})
	if errors.Is(err, store.ErrNotFound) {
		return nil, httpapi.NotFound("unknown host %q", hostname)
	}
	if err != nil {
		return nil, httpapi.Internal("reading events failed", err)
	}
	a := Answer{Hostname: hostname, From: from.Format(snapshot.CapturedAtFormat), To: to.Format(snapshot.CapturedAtFormat),
		Events: make([]EventJSON, 0, min(len(evs), limit))}
	if len(evs) > limit {
		evs, a.Truncated = evs[:limit], true
	}
	for _, e := range evs {
		a.Events = append(a.Events, toJSON(e))
	}
	return a, nil
}

func toJSON(e store.Event) EventJSON {
	j := EventJSON{At: e.At.UTC().Format(snapshot.CapturedAtFormat), Kind: e.Kind.String(), PID: e.PID, PPID: e.PPID,
		Name: e.Name, Unit: e.Unit, ContainerID: e.ContainerID}
	switch e.Kind {
	case store.EventRestarted:
		prev := e.PrevPID
		j.PrevPID = &prev
	case store.EventExited:
		cpu, mem := e.CPUPercent, e.MemoryMB
		j.CPUPercent, j.MemoryMB = &cpu, &mem
		if !e.Started.IsZero() {
			life := math.Max(0, e.At.Sub(e.Started).Seconds())
			j.LifetimeSec = &life
		}
	}
	if !e.Started.IsZero() {
		j.StartedAt = e.Started.UTC().Format(snapshot.CapturedAtFormat)
	}
	return j
}

// parseKinds reads kind=: a comma-separated list of started, exited and
// restarted (none: every kind). Filtering in the store, not here, keeps
// limit about the kinds asked for (a busy host's restarts are not cut off
// by its starts).
func parseKinds(s string) ([]store.EventKind, error) {
	if s == "" {
		return nil, nil
	}
	var out []store.EventKind
	for _, name := range strings.Split(s, ",") {
		var k store.EventKind
		switch name {
		case "started":
			k = store.EventStarted
		case "exited":
			k = store.EventExited
		case "restarted":
			k = store.EventRestarted
		default:
			return nil, httpapi.BadRequest("invalid kind: want started, exited or restarted (comma-separated)")
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// parseTime accepts RFC 3339 or Unix seconds (fractions allowed), as the
// series routes do.
func parseTime(name, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
		return time.Time{}, httpapi.BadRequest("invalid %s: want RFC 3339 or Unix seconds", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
}
