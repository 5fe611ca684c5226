package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/procscope/procscope/aggregator/internal/httpapi"
)

// streamEvent is the data of one server-sent event: a new snapshot.
type streamEvent struct {
	SnapshotID int64  `json:"snapshot_id"`
	CapturedAt string `json:"captured_at"`
	Hostname   string `json:"hostname"`
}

// broker fans new-snapshot events out to stream clients. Publishing never
// blocks ingest: a client whose buffer is full is disconnected (it
// reconnects, EventSource does so by itself, and re-reads the latest
// snapshot), instead of slowing every exporter down.
type broker struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	max    int
	closed bool
	done   chan struct{}
	// newest is the newest captured_at published per host, so that a late
	// replay (older than what clients already saw) is not announced as new.
	newest map[string]time.Time
}

type subscriber struct {
	host string // "" for every host
	ch   chan streamEvent
}

func newBroker(max int) *broker {
	return &broker{subs: map[*subscriber]struct{}{}, max: max, done: make(chan struct{}), newest: map[string]time.Time{}}
}

// subscribe returns nil when the broker is full or closed.
func (b *broker) subscribe(host string) *subscriber {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || len(b.subs) >= b.max {
		return nil
	}
	s := &subscriber{host: host, ch: make(chan streamEvent, 16)}
	b.subs[s] = struct{}{}
	return s
}

func (b *broker) unsubscribe(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.ch)
	}
}

func (b *broker) publish(ev streamEvent, capturedAt time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if last, ok := b.newest[ev.Hostname]; ok && capturedAt.Before(last) {
		return
	}
	b.newest[ev.Hostname] = capturedAt
	for s := range b.subs {
		if s.host != "" && s.host != ev.Hostname {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			delete(b.subs, s)
			close(s.ch)
		}
	}
}

func (b *broker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		close(b.done)
	}
}

// streamHandler is GET /api/v1/stream[?hostname=]: server-sent events, one
// per new snapshot (of that host, or of every host without hostname), each
// `id: <snapshot_id>` and `data: {"snapshot_id":..,"captured_at":..,"hostname":..}`.
// With a hostname the host's current latest snapshot is sent first, so a
// client needs no separate request to start. Comments keep idle
// connections open through proxies.
func (a *API) streamHandler(w http.ResponseWriter, r *http.Request) {
	host := ""
	if r.URL.Query().Has("hostname") {
		h, err := queryHostname(r)
		if err != nil {
			a.json.Refuse(w, r, err)
			return
		}
		host = h
	}
	client := clientKey(r)
	if !a.streamClients.acquire(client) {
		httpapi.WriteError(w, &httpapi.Error{Kind: httpapi.KindTooMany, RetryAfter: 10 * time.Second, Msg: fmt.Sprintf(
			"too many live streams from your address (at most %d, --web.max-streams-per-client): close other tabs or raise the flag",
			a.streamClients.max)})
		return
	}
	defer a.streamClients.release(client)
	rc := http.NewResponseController(w)
	sub := a.stream.subscribe(host)
	if sub == nil {
		httpapi.WriteError(w, &httpapi.Error{Kind: httpapi.KindTooMany, RetryAfter: 10 * time.Second,
			Msg: "too many stream clients, retry later"})
		return
	}
	defer a.stream.unsubscribe(sub)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	hb := a.opts.HeartbeatInterval
	// The server's WriteTimeout would cut the stream; each write gets its
	// own deadline instead, so a stuck client is still dropped.
	write := func(s string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(hb + 10*time.Second))
		if _, err := w.Write([]byte(s)); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write("retry: 2000\n\n") {
		return
	}
	if host != "" {
		if m, err := a.currentStore().Latest(r.Context(), host); err == nil {
			ev := streamEvent{SnapshotID: m.ID, CapturedAt: formatTime(m.CapturedAt), Hostname: m.Hostname}
			if !write(formatEvent(ev)) {
				return
			}
		}
	}
	tick := time.NewTicker(hb)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-a.stream.done:
			return
		case ev, ok := <-sub.ch:
			if !ok {
				return // too slow: dropped by the broker
			}
			if !write(formatEvent(ev)) {
				return
			}
		case <-tick.C:
			if !write(": heartbeat\n\n") {
				return
			}
		}
	}
}

func formatEvent(ev streamEvent) string {
	data, _ := json.Marshal(ev) // escapes newlines: one data line
	return "id: " + strconv.FormatInt(ev.SnapshotID, 10) + "\ndata: " + string(data) + "\n\n"
}

// intervals learns each host's push interval from the captured_at of its
// successive newest snapshots, to judge "online" as "seen within three
// intervals". Late replays are older than the newest and do not count.
type intervals struct {
	mu    sync.Mutex
	hosts map[string]*hostInterval
}

type hostInterval struct {
	newest     time.Time
	last, prev time.Duration
}

func newIntervals() *intervals { return &intervals{hosts: map[string]*hostInterval{}} }

func (iv *intervals) observe(host string, capturedAt time.Time) {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	h := iv.hosts[host]
	if h == nil {
		iv.hosts[host] = &hostInterval{newest: capturedAt}
		return
	}
	if !capturedAt.After(h.newest) {
		return
	}
	h.prev, h.last = h.last, capturedAt.Sub(h.newest)
	h.newest = capturedAt
}

// window is three push intervals, or def while the interval is unknown. The
// smaller of the last two intervals is used so that one outage gap does not
// make a host look online for three times that gap afterwards.
func (iv *intervals) window(host string, def time.Duration) time.Duration {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	h := iv.hosts[host]
	if h == nil || h.last <= 0 {
		return def
	}
	d := h.last
	if h.prev > 0 && h.prev < d {
		d = h.prev
	}
	return max(3*d, time.Second)
}
