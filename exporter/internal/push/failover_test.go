package push

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
)

// pair is two receivers sharing one arrival order, and a pusher with
// both URLs, the first preferred.
type pair struct {
	a, b  *receiver
	order *arrivals
	p     *Pusher
	reg   *prometheus.Registry
	logs  *logBuf
}

func newPair(t *testing.T, timeout, preferredRetry time.Duration) *pair {
	t.Helper()
	x := &pair{a: newReceiver(t), b: newReceiver(t), order: &arrivals{}, reg: prometheus.NewRegistry(), logs: &logBuf{}}
	x.a.order, x.b.order = x.order, x.order
	q, _, err := OpenQueue(t.TempDir(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	x.p, err = New(Options{URLs: []string{x.a.url(), x.b.url()}, APIKey: testKey, Queue: q, Client: NewClient(timeout),
		Logger:     slog.New(slog.NewTextHandler(x.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: x.reg, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, PreferredRetry: preferredRetry})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func (x *pair) enqueue(t *testing.T, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := x.p.Enqueue(snap(t, i)); err != nil {
			t.Fatal(err)
		}
	}
}

func (x *pair) active(url string) float64 {
	return promtest.ToFloat64(x.p.targetActive.WithLabelValues(url))
}

// failureModes are the ways the preferred aggregator can fail that must
// move the sender to the next URL; each returns a function that heals it.
var failureModes = map[string]func(r *receiver) (heal func()){
	"down": func(r *receiver) func() {
		r.Down()
		return r.Up
	},
	"503": func(r *receiver) func() {
		r.setRespond(func(_ int, w http.ResponseWriter) bool {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprint(w, `{"error":"database is locked"}`)
			return true
		})
		return func() { r.setRespond(nil) }
	},
	"500": func(r *receiver) func() {
		r.setRespond(func(_ int, w http.ResponseWriter) bool {
			w.WriteHeader(http.StatusInternalServerError)
			return true
		})
		return func() { r.setRespond(nil) }
	},
	// A hung aggregator that never stores: the request times out.
	"hang": func(r *receiver) func() {
		release := make(chan struct{})
		r.setRespond(func(_ int, w http.ResponseWriter) bool {
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		})
		var once sync.Once
		return func() { r.setRespond(nil); once.Do(func() { close(release) }) }
	},
}

// TestFailoverEverySnapshotOnceInOrder: the preferred aggregator fails
// (each way in failureModes) while snapshots keep coming; they go to the
// second, and once the first heals the sender comes back to it. Across
// both receivers every snapshot is stored exactly once, in capture order.
func TestFailoverEverySnapshotOnceInOrder(t *testing.T) {
	for name, fail := range failureModes {
		t.Run(name, func(t *testing.T) {
			// The request timeout is what a hung aggregator costs; it is
			// generous so that a slow but healthy answer on a loaded
			// machine never counts as a failure.
			timeout := 5 * time.Second
			if name == "hang" {
				timeout = 2 * time.Second
			}
			x := newPair(t, timeout, 100*time.Millisecond)
			stop := run(x.p)
			defer stop()

			x.enqueue(t, 0, 5)
			waitFor(t, "first 5 at the preferred", func() bool { return len(x.a.received()) == 5 })
			var once sync.Once
			healOnce := fail(x.a)
			heal := func() { once.Do(healOnce) }
			defer heal()
			x.enqueue(t, 5, 15)
			waitForLong(t, "the backlog at the second", func() bool { return x.p.Stats().Waiting == 0 })
			if got := len(x.b.received()); got != 10 {
				t.Fatalf("second receiver has %d, want 10", got)
			}
			if x.active(x.b.url()) != 1 || x.active(x.a.url()) != 0 || x.p.Stats().Target != x.b.url() {
				t.Errorf("active target: a=%v b=%v %q", x.active(x.a.url()), x.active(x.b.url()), x.p.Stats().Target)
			}
			heal()
			// The sender offers a snapshot to the preferred one every
			// 100 ms; keep capturing until one lands there.
			i := 15
			for ; i < 1000 && len(x.a.received()) == 5; i++ {
				x.enqueue(t, i, i+1)
				time.Sleep(20 * time.Millisecond)
			}
			waitFor(t, "the queue to drain", func() bool { return x.p.Stats().Waiting == 0 })
			x.enqueue(t, i, i+3)
			i += 3
			waitFor(t, "the last 3", func() bool { return x.p.Stats().Waiting == 0 && len(x.order.list()) == i })
			wantSequence(t, x.order.list(), 0, i)
			if x.p.Stats().Target != x.a.url() || x.active(x.a.url()) != 1 {
				t.Errorf("not back on the preferred target: %q", x.p.Stats().Target)
			}
			st := x.p.Stats()
			if st.Sent != float64(i) || st.Dropped != 0 || st.Failovers != 1 {
				t.Errorf("stats %+v, want %d sent, 1 failover", st, i)
			}
			logs := x.logs.String()
			if n := strings.Count(logs, "failing over"); n != 1 {
				t.Errorf("%d failover lines, want 1:\n%s", n, logs)
			}
			if !strings.Contains(logs, "back on it") {
				t.Errorf("no line for the return to the preferred target:\n%s", logs)
			}
			if strings.Contains(logs, testKey) {
				t.Error("the API key appears in the log")
			}
		})
	}
}

// TestNoFailoverOn4xx: a refused key and a rejected snapshot are the
// host's problem, the same at every aggregator: the sender stays.
func TestNoFailoverOn4xx(t *testing.T) {
	for _, code := range []int{401, 403, 400, 429} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			x := newPair(t, time.Second, time.Hour)
			x.a.setRespond(func(n int, w http.ResponseWriter) bool {
				if n == 1 {
					w.Header().Set("Retry-After", "0")
					w.WriteHeader(code)
					_, _ = fmt.Fprint(w, `{"error":"no"}`)
					return true
				}
				return false
			})
			x.p.o.RefusedRetry = 10 * time.Millisecond
			x.enqueue(t, 0, 2)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if left := x.p.Flush(ctx); left != 0 {
				t.Fatalf("%d left", left)
			}
			if n := len(x.b.received()); n != 0 {
				t.Errorf("second receiver got %d after a %d", n, code)
			}
			if st := x.p.Stats(); st.Failovers != 0 || st.Target != x.a.url() {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestAllTargetsDownBacksOff: with every URL down the sender backs off as
// with one (one failover line, not one per attempt) and delivers all in
// order once one comes back.
func TestAllTargetsDownBacksOff(t *testing.T) {
	x := newPair(t, time.Second, time.Hour)
	x.a.Down()
	x.b.Down()
	stop := run(x.p)
	defer stop()
	x.enqueue(t, 0, 10)
	waitFor(t, "several rounds", func() bool { return x.p.Stats().Failovers >= 6 })
	x.b.Up()
	waitFor(t, "the backlog", func() bool { return x.p.Stats().Waiting == 0 })
	wantSequence(t, x.order.list(), 0, 10)
	if n := strings.Count(x.logs.String(), "failing over"); n != 1 {
		t.Errorf("%d failover lines, want 1:\n%s", n, x.logs)
	}
	if !strings.Contains(x.logs.String(), "push failed, will retry") {
		t.Errorf("no outage line:\n%s", x.logs)
	}
}

func TestNewTargets(t *testing.T) {
	if _, err := newTargets([]string{"http://a/api/v1/ingest", "http://a/api/v1/ingest"}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate URL: %v", err)
	}
	ts, err := newTargets([]string{"http://127.0.0.1:1/api/v1/ingest", "http://agg.example:8000"})
	if err != nil {
		t.Fatal(err)
	}
	if ts[0].plainRemote || !ts[1].plainRemote || ts[0].hint != "" || ts[1].hint != "http://agg.example:8000/api/v1/ingest" {
		t.Errorf("%+v", ts)
	}
}

// waitForLong polls cond for up to 60 s: a hung preferred target costs a
// request timeout at each probe.
func waitForLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
