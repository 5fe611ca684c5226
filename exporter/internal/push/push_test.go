package push

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/internal/testutil"
)

const testKey = "k3y"

// receiver is an aggregator stand-in on 127.0.0.1 that can be taken down
// (its listener closed: connection refused) and brought back on the same
// port.
type receiver struct {
	*testutil.Server
	t       *testing.T
	mu      sync.Mutex
	got     []string // captured_at of every stored snapshot, in arrival order
	seen    map[string]bool
	bodies  map[string]string // captured_at -> first gzip body
	resent  int               // resends answered 200, as the aggregator's idempotency does
	reqs    int
	tokens  []string                                // X-Enrollment-Token of every request
	respond func(n int, w http.ResponseWriter) bool // n = request number from 1; true = handled
	// order, if set, records every stored snapshot across several
	// receivers in the order they were stored.
	order *arrivals
}

// arrivals is the order of stored snapshots across receivers.
type arrivals struct {
	mu  sync.Mutex
	got []string
}

func (a *arrivals) add(s string) { a.mu.Lock(); a.got = append(a.got, s); a.mu.Unlock() }
func (a *arrivals) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.got...)
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	r.Server = testutil.NewServer(t, http.HandlerFunc(r.serve))
	return r
}

func (r *receiver) url() string { return "http://" + r.Addr() + "/api/v1/ingest" }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.reqs++
	n := r.reqs
	respond := r.respond
	r.tokens = append(r.tokens, req.Header.Get("X-Enrollment-Token"))
	r.mu.Unlock()
	if req.Header.Get("X-API-KEY") != testKey || req.Header.Get("Content-Encoding") != "gzip" ||
		req.Header.Get("Content-Type") != "application/json" || req.Method != http.MethodPost {
		w.WriteHeader(http.StatusTeapot)
		r.t.Errorf("bad request: %s %v", req.Method, req.Header)
		return
	}
	if respond != nil && respond(n, w) {
		return
	}
	raw, _ := io.ReadAll(req.Body)
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		http.Error(w, `{"error":"bad gzip"}`, http.StatusBadRequest)
		return
	}
	var s snapshot.Snapshot
	if err := json.NewDecoder(zr).Decode(&s); err != nil {
		http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	dup := r.seen[s.CapturedAt]
	if dup {
		r.resent++
		// A resend must be the very same snapshot, not a new capture.
		if r.bodies[s.CapturedAt] != string(raw) {
			r.t.Errorf("resend of %s differs from the first send", s.CapturedAt)
		}
	} else {
		if r.bodies == nil {
			r.bodies = map[string]string{}
		}
		r.bodies[s.CapturedAt] = string(raw)
		if r.seen == nil {
			r.seen = map[string]bool{}
		}
		r.seen[s.CapturedAt] = true
		r.got = append(r.got, s.CapturedAt)
		if r.order != nil {
			r.order.add(s.CapturedAt)
		}
	}
	r.mu.Unlock()
	if dup {
		w.WriteHeader(http.StatusOK)
		_, _ = fmt.Fprint(w, `{"snapshot_id":1}`)
		return
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = fmt.Fprint(w, `{"snapshot_id":1}`)
}

func (r *receiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func (r *receiver) setRespond(f func(n int, w http.ResponseWriter) bool) {
	r.mu.Lock()
	r.respond = f
	r.mu.Unlock()
}

var t0 = time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)

func snap(t *testing.T, i int) (time.Time, []byte) {
	t.Helper()
	at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
	b, err := Encode(&snapshot.Snapshot{Hostname: "h", CapturedAt: at.Format(CapturedAtLayout),
		SystemInfo: json.RawMessage(`{}`), Processes: []snapshot.Process{}})
	if err != nil {
		t.Fatal(err)
	}
	return at, b
}

func capturedAt(i int) string {
	return t0.Add(time.Duration(i) * 100 * time.Millisecond).Format(CapturedAtLayout)
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func newPusher(t *testing.T, dir, url string, size int, logs *logBuf, timeout time.Duration) *Pusher {
	t.Helper()
	q, _, err := OpenQueue(dir, size)
	if err != nil {
		t.Fatal(err)
	}
	var w interface{ Write([]byte) (int, error) } = &logBuf{}
	if logs != nil {
		w = logs
	}
	p, err := New(Options{URL: url, APIKey: testKey, Queue: q, Client: NewClient(timeout),
		Logger:     slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// run starts p.Run and returns a stop function that waits for it.
func run(p *Pusher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantSequence(t *testing.T, got []string, from, to int) {
	t.Helper()
	var want []string
	for i := from; i < to; i++ {
		want = append(want, capturedAt(i))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("received %d snapshots\n got %v\nwant %v", len(got), got, want)
	}
}

func TestOutageThenRecoveryInOrderNoDuplicates(t *testing.T) {
	r := newReceiver(t)
	p := newPusher(t, t.TempDir(), r.url(), 100, nil, 2*time.Second)
	stop := run(p)
	defer stop()

	for i := 0; i < 3; i++ {
		if err := p.Enqueue(snap(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "first 3", func() bool { return len(r.received()) == 3 })
	r.Down()
	for i := 3; i < 20; i++ {
		if err := p.Enqueue(snap(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "failed attempts while down", func() bool { return p.Stats().Failed >= 2 })
	if n := len(r.received()); n != 3 {
		t.Fatalf("received %d while down", n)
	}
	r.Up()
	waitFor(t, "backlog", func() bool { return p.Stats().Waiting == 0 })
	wantSequence(t, r.received(), 0, 20)
	st := p.Stats()
	if st.Sent != 20 || st.Dropped != 0 || st.Queued != 20 {
		t.Errorf("stats %+v", st)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	r := newReceiver(t)
	var first atomic.Int64
	var second atomic.Int64
	r.setRespond(func(n int, w http.ResponseWriter) bool {
		switch n {
		case 1:
			first.Store(time.Now().UnixNano())
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = fmt.Fprint(w, `{"error":"slow down"}`)
			return true
		case 2:
			second.Store(time.Now().UnixNano())
		}
		return false
	})
	p := newPusher(t, t.TempDir(), r.url(), 10, nil, 2*time.Second)
	stop := run(p)
	defer stop()
	if err := p.Enqueue(snap(t, 0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery after 429", func() bool { return p.Stats().Sent == 1 })
	// Our own backoff here is 10-50 ms; only Retry-After explains a wait
	// of a second.
	if gap := time.Duration(second.Load() - first.Load()); gap < 900*time.Millisecond {
		t.Errorf("retried %v after a 429 with Retry-After: 1", gap)
	}
	if st := p.Stats(); st.Failed != 1 || st.Sent != 1 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestRejectedSnapshotsDroppedAndLoggedOnce(t *testing.T) {
	for _, code := range []int{400, 413, 422} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			r := newReceiver(t)
			r.setRespond(func(n int, w http.ResponseWriter) bool {
				if n <= 3 {
					w.WriteHeader(code)
					_, _ = fmt.Fprintf(w, `{"error":"nope %d"}`, code)
					return true
				}
				return false
			})
			logs := &logBuf{}
			p := newPusher(t, t.TempDir(), r.url(), 10, logs, 2*time.Second)
			for i := 0; i < 4; i++ {
				if err := p.Enqueue(snap(t, i)); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if left := p.Flush(ctx); left != 0 {
				t.Fatalf("%d left", left)
			}
			// The three rejected are gone for good; the fourth got through.
			wantSequence(t, r.received(), 3, 4)
			if st := p.Stats(); st.Dropped != 3 || st.Sent != 1 || st.Failed != 0 {
				t.Errorf("stats %+v", st)
			}
			msg := fmt.Sprintf("nope %d", code)
			if c := strings.Count(logs.String(), msg); c != 1 {
				t.Errorf("server message logged %d times, want once:\n%s", c, logs)
			}
			if strings.Contains(logs.String(), testKey) {
				t.Error("the API key appears in the log")
			}
		})
	}
}

func TestSlowAggregatorNeverBlocksEnqueue(t *testing.T) {
	r := newReceiver(t)
	release := make(chan struct{})
	var slow atomic.Bool
	slow.Store(true)
	r.setRespond(func(n int, w http.ResponseWriter) bool {
		if slow.Load() {
			<-release
		}
		return false
	})
	p := newPusher(t, t.TempDir(), r.url(), 100, nil, 200*time.Millisecond)
	stop := run(p)
	defer stop()
	if err := p.Enqueue(snap(t, 0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first request to hang", func() bool { return p.Stats().Failed >= 1 })
	// The sender is stuck behind a hanging server; collection goes on.
	for i := 1; i < 10; i++ {
		if err := p.Enqueue(snap(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	if w := p.Stats().Waiting; w != 10 {
		t.Errorf("%d waiting, want 10", w)
	}
	slow.Store(false)
	close(release)
	waitFor(t, "backlog", func() bool { return p.Stats().Waiting == 0 })
	// The timed-out first request may have been stored late by the server
	// and then resent: the resend carries the same captured_at, so the
	// aggregator's idempotency stores it once.
	wantSequence(t, r.received(), 0, 10)
	if st := p.Stats(); st.Sent != 10 {
		t.Errorf("stats %+v", st)
	}
}

func TestDropOldestOverBound(t *testing.T) {
	dir := t.TempDir()
	p := newPusher(t, dir, "http://127.0.0.1:1/api/v1/ingest", 5, nil, time.Second)
	for i := 0; i < 8; i++ {
		if err := p.Enqueue(snap(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	if st := p.Stats(); st.Waiting != 5 || st.Dropped != 3 {
		t.Fatalf("stats %+v", st)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"+fileSuffix))
	if len(files) != 5 {
		t.Fatalf("%d files on disk, want 5", len(files))
	}
	r := newReceiver(t)
	p2 := newPusher(t, dir, r.url(), 5, nil, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p2.Flush(ctx)
	wantSequence(t, r.received(), 3, 8)
}

func TestQueueSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	r := newReceiver(t)
	r.Down()
	p := newPusher(t, dir, r.url(), 100, nil, time.Second)
	stop := run(p)
	for i := 0; i < 6; i++ {
		if err := p.Enqueue(snap(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "an attempt", func() bool { return p.Stats().Failed >= 1 })
	stop()
	// A crash mid-write leaves a temp file: it must not be sent.
	if err := os.WriteFile(filepath.Join(dir, tmpPrefix+"junk"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}

	r.Up()
	p2 := newPusher(t, dir, r.url(), 100, nil, time.Second)
	if w := p2.Stats().Waiting; w != 6 {
		t.Fatalf("%d waiting after restart, want 6", w)
	}
	if _, err := os.Stat(filepath.Join(dir, tmpPrefix+"junk")); !errors.Is(err, os.ErrNotExist) {
		t.Error("temp file not cleaned up")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if left := p2.Flush(ctx); left != 0 {
		t.Fatalf("%d left", left)
	}
	wantSequence(t, r.received(), 0, 6)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("%d files left in the queue dir", len(entries))
	}
}

func TestFlushGivesUpAtDeadlineAndKeepsData(t *testing.T) {
	dir := t.TempDir()
	r := newReceiver(t)
	r.Down()
	p := newPusher(t, dir, r.url(), 100, nil, time.Second)
	for i := 0; i < 3; i++ {
		if err := p.Enqueue(snap(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if left := p.Flush(ctx); left != 3 {
		t.Errorf("%d left, want 3", left)
	}
	q, _, err := OpenQueue(dir, 100)
	if err != nil || q.Len() != 3 {
		t.Errorf("reopened queue has %d (%v), want 3", q.Len(), err)
	}
}

func TestServerErrorRetriedNotDropped(t *testing.T) {
	r := newReceiver(t)
	r.setRespond(func(n int, w http.ResponseWriter) bool {
		if n <= 3 {
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}
		return false
	})
	p := newPusher(t, t.TempDir(), r.url(), 10, nil, time.Second)
	if err := p.Enqueue(snap(t, 0)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.Flush(ctx)
	wantSequence(t, r.received(), 0, 1)
	if st := p.Stats(); st.Failed != 3 || st.Sent != 1 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	f := func(v string, want time.Duration, wantOK bool) {
		t.Helper()
		got, ok := parseRetryAfter(v, now)
		if got != want || ok != wantOK {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", v, got, ok, want, wantOK)
		}
	}
	f("", 0, false)
	f("3", 3*time.Second, true)
	f(" 0 ", 0, true)
	f("-1", 0, false)
	f("soon", 0, false)
	f("99999999999999", maxRetryAfter, true)
	f("Wed, 25 Nov 2026 17:00:10 GMT", 10*time.Second, true)
	f("Wed, 25 Nov 2026 16:00:00 GMT", 0, true)
	f("Thu, 26 Nov 2026 17:00:00 GMT", maxRetryAfter, true)
}

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	for attempt := 0; attempt < 40; attempt++ {
		step := min(100*time.Millisecond<<min(attempt, 29), 3*time.Second)
		for i := 0; i < 20; i++ {
			d := backoff(100*time.Millisecond, 3*time.Second, attempt)
			if d < step/2 || d > step {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, step/2, step)
			}
		}
	}
}

func TestErrorMessage(t *testing.T) {
	f := func(body, want string) {
		t.Helper()
		if got := errorMessage([]byte(body)); got != want {
			t.Errorf("errorMessage(%q) = %q, want %q", body, got, want)
		}
	}
	f(`{"error":"hostname: empty"}`, "hostname: empty")
	f(`<html>bad gateway</html>`, `"<html>bad gateway</html>"`)
	f("", `""`)
	f(`{"error":"a\nb"}`, "a\nb") // slog quotes it on output
}

func TestQueueNeverDropsTheSnapshotInFlight(t *testing.T) {
	q, _, err := OpenQueue(t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	put := func(i int) int {
		at, b := snap(t, i)
		d, err := q.Put(at, b)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	put(0)
	put(1)
	name, _, err := q.Next() // snapshot 0 is being sent
	if err != nil {
		t.Fatal(err)
	}
	if d := put(2); d != 1 {
		t.Fatalf("dropped %d, want 1", d)
	}
	// 1 was dropped instead of 0; 0's send decides its fate.
	q.Ack(name)
	_, data, err := q.Next()
	if err != nil {
		t.Fatal(err)
	}
	_, want := snap(t, 2)
	if !bytes.Equal(data, want) || q.Len() != 1 {
		t.Errorf("after ack, next is not snapshot 2 (len %d)", q.Len())
	}
}
