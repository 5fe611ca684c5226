package api

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/procscope/procscope/aggregator/internal/events"
	"github.com/procscope/procscope/aggregator/internal/history"
	"github.com/procscope/procscope/aggregator/internal/httpapi"
	"github.com/procscope/procscope/aggregator/internal/store"
)

// blockingReads mounts /api/v1/hosts/{hostname}/series (history's route)
// as a read that holds its slot until release is closed (or 20 s pass),
// reporting each arrival on entered.
type blockingReads struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

// free lets every read held, and every later one, finish.
func (b *blockingReads) free() { b.once.Do(func() { close(b.release) }) }

func newBlockingReads() *blockingReads {
	return &blockingReads{entered: make(chan struct{}, 1000), release: make(chan struct{})}
}

func (b *blockingReads) mount(r chi.Router) {
	r.Get("/hosts/{hostname}/series", func(w http.ResponseWriter, r *http.Request) {
		b.entered <- struct{}{}
		select {
		case <-b.release:
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
		_, _ = w.Write([]byte("{}"))
	})
}

// getHdr is a goroutine-safe GET with headers; err for a failed request.
func getHdr(client *http.Client, url string, hdr map[string]string) (resp, error) {
	return request(client, http.MethodGet, url, hdr)
}

// request is one goroutine-safe request with headers, within 30 s.
func request(client *http.Client, method, url string, hdr map[string]string) (resp, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return resp{}, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, string(body)}, err
}

// recvN receives n times from ch, failing after 20 s.
func recvN[T any](t *testing.T, ch <-chan T, n int, what string) []T {
	t.Helper()
	out := make([]T, 0, n)
	deadline := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case v := <-ch:
			out = append(out, v)
		case <-deadline:
			t.Fatalf("%d of %d %s after 20 s", len(out), n, what)
		}
	}
	return out
}

// TestReadsPerClient: one client (behind a trusted proxy, as its
// X-Forwarded-For says) opening 100 expensive reads at once runs
// --web.max-reads-per-client of them, has 3 times as many wait for its
// slots, and gets a JSON 429 with Retry-After at once for the rest, while
// another client is still served; the waiting ones are answered once its
// first ones end.
func TestReadsPerClient(t *testing.T) {
	b := newBlockingReads()
	e := newEnv(t, func(o *Options) {
		o.TrustedProxies = mustProxies(t, "127.0.0.0/8", "::1")
		o.Mount = b.mount
		o.Limits.QueueTimeout = time.Minute // the waiting ones wait for the release
	})
	const flood, perClient = 100, 8 // the default
	const inFlight = readQueueFactor * perClient
	a := map[string]string{"X-Forwarded-For": "203.0.113.1"}
	results := make(chan resp, flood)
	var wg sync.WaitGroup
	for range flood {
		wg.Go(func() {
			r, err := getHdr(e.srv.Client(), e.srv.URL+"/api/v1/hosts/h/series", a)
			if err != nil {
				r.body = err.Error()
			}
			results <- r
		})
	}
	t.Cleanup(func() { b.free(); wg.Wait() })
	recvN(t, b.entered, perClient, "reads of client A admitted")
	for _, r := range recvN(t, results, flood-inFlight, "refusals of client A") {
		if r.code != http.StatusTooManyRequests || r.hdr.Get("Retry-After") != "1" {
			t.Fatalf("client A's read beyond its %d in flight: %d (Retry-After %q) %s, want 429", inFlight, r.code, r.hdr.Get("Retry-After"), r.body)
		}
		if msg := mustJSONError(t, r); !strings.Contains(msg, "--web.max-reads-per-client") {
			t.Fatalf("429 message %q does not name the flag", msg)
		}
	}
	select {
	case <-b.entered:
		t.Fatal("client A runs more reads than its limit")
	default:
	}
	if n := e.a.readClients.inFlight("203.0.113.1"); n != inFlight {
		t.Fatalf("client A has %d reads in flight, want %d", n, inFlight)
	}
	// Client B, by either header, is served while A holds its reads.
	for _, hdr := range []map[string]string{{"X-Forwarded-For": "203.0.113.2"}, {"Forwarded": `for="[2001:db8::2]:443"`}} {
		if r, err := getHdr(e.srv.Client(), e.srv.URL+"/api/v1/hosts", hdr); err != nil || r.code != http.StatusOK {
			t.Fatalf("client B (%v) while A floods: %d %s %v", hdr, r.code, r.body, err)
		}
	}
	// A's own cheap reads are refused too: the bound is per client, not per route.
	if r, _ := getHdr(e.srv.Client(), e.srv.URL+"/api/v1/hosts", a); r.code != http.StatusTooManyRequests {
		t.Fatalf("client A's 101st read: %d, want 429", r.code)
	}
	b.free()
	for _, r := range recvN(t, results, inFlight, "admitted and waiting reads of client A") {
		mustStatus(t, r, http.StatusOK)
	}
	if r, err := getHdr(e.srv.Client(), e.srv.URL+"/api/v1/hosts", a); err != nil || r.code != http.StatusOK {
		t.Fatalf("client A after its reads ended: %d %s %v", r.code, r.body, err)
	}
	if got := testutil.ToFloat64(e.a.metrics.readsRefused.WithLabelValues("client")); got != flood-inFlight+1 {
		t.Fatalf("procscope_aggregator_http_reads_refused_total{reason=\"client\"} = %v, want %d", got, flood-inFlight+1)
	}
}

// TestReadsPerClientWait: a client's reads past its running bound wait
// for its own slots (a browser's burst over HTTP/2), up to the queue
// timeout, then get the per-client 429.
func TestReadsPerClientWait(t *testing.T) {
	b := newBlockingReads()
	e := newEnv(t, func(o *Options) {
		o.Mount = b.mount
		o.MaxReadsPerClient = 1
		o.Limits.QueueTimeout = 50 * time.Millisecond
	})
	first := make(chan resp, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		r, _ := getHdr(e.srv.Client(), e.srv.URL+"/api/v1/hosts/h/series", nil)
		first <- r
	})
	t.Cleanup(func() { b.free(); wg.Wait() })
	recvN(t, b.entered, 1, "first read")
	r, err := getHdr(e.srv.Client(), e.srv.URL+"/api/v1/hosts", nil)
	if err != nil || r.code != http.StatusTooManyRequests || !strings.Contains(mustJSONError(t, r), "--web.max-reads-per-client") {
		t.Fatalf("a second read while the first runs, after the wait: %d %s %v, want the per-client 429", r.code, r.body, err)
	}
}

// TestReadsInAll: past --web.max-concurrent-reads, a read waits for a
// slot, up to the queue timeout; it gets in when one frees, or is refused
// with a JSON 429 naming the flag when none does.
func TestReadsInAll(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wait    time.Duration
		release bool // free the slots while the third read waits
		want    int
	}{
		{"no slot frees: 429", 50 * time.Millisecond, false, http.StatusTooManyRequests},
		{"a slot frees: served", time.Minute, true, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBlockingReads()
			e := newEnv(t, func(o *Options) {
				o.TrustedProxies = mustProxies(t, "127.0.0.0/8", "::1")
				o.Mount = b.mount
				o.MaxReads = 2
				o.Limits.QueueTimeout = tc.wait
			})
			var wg sync.WaitGroup
			t.Cleanup(func() { b.free(); wg.Wait() })
			for _, client := range []string{"203.0.113.1", "203.0.113.2"} {
				wg.Go(func() {
					_, _ = getHdr(e.srv.Client(), e.srv.URL+"/api/v1/hosts/h/series", map[string]string{"X-Forwarded-For": client})
				})
			}
			recvN(t, b.entered, 2, "reads admitted")
			third := make(chan resp, 1)
			wg.Go(func() {
				r, err := getHdr(e.srv.Client(), e.srv.URL+"/api/v1/hosts", map[string]string{"X-Forwarded-For": "203.0.113.3"})
				if err != nil {
					r.body = err.Error()
				}
				third <- r
			})
			if tc.release {
				// Once the third read waits for a slot (its client
				// holds its own one), the others end.
				for i := 0; e.a.readClients.inFlight("203.0.113.3") == 0; i++ {
					if i == 2000 {
						t.Fatal("the third read never started waiting")
					}
					time.Sleep(10 * time.Millisecond)
				}
				b.free()
			}
			r := recvN(t, third, 1, "answers to the third client")[0]
			if r.code != tc.want {
				t.Fatalf("a third client with the server full: %d %s, want %d", r.code, r.body, tc.want)
			}
			if tc.want == http.StatusTooManyRequests {
				if msg := mustJSONError(t, r); !strings.Contains(msg, "--web.max-concurrent-reads") || r.hdr.Get("Retry-After") == "" {
					t.Fatalf("429 %q (Retry-After %q) does not name the flag", msg, r.hdr.Get("Retry-After"))
				}
			}
		})
	}
}

// TestReadDeadline: a read's context ends at HandlerTimeout (the write
// timeout), so storage work for an answer nobody can receive any more is
// cancelled; the client gets the JSON 503 of a timed-out request. The
// live stream is exempt from both the deadline and the read slots.
func TestReadDeadline(t *testing.T) {
	sawDeadline := make(chan error, 1)
	e := newEnv(t, func(o *Options) {
		o.HandlerTimeout = 50 * time.Millisecond
		o.MaxReadsPerClient = 1
		o.Mount = func(r chi.Router) {
			r.Get("/hosts/{hostname}/series", httpapi.Adapter{}.Handle(func(r *http.Request) (any, error) {
				if _, ok := r.Context().Deadline(); !ok {
					sawDeadline <- errors.New("no deadline")
					return nil, errors.New("no deadline")
				}
				select {
				case <-r.Context().Done():
				case <-time.After(20 * time.Second):
				}
				sawDeadline <- r.Context().Err()
				return nil, r.Context().Err()
			}))
		}
	})
	// A stream holds no read slot: with one slot per client, a read still
	// goes through while the stream is open, and the stream outlives the
	// read deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/api/v1/stream", nil)
	stream, err := e.srv.Client().Do(req)
	if err != nil || stream.StatusCode != http.StatusOK {
		t.Fatalf("stream: %v %v", stream, err)
	}
	defer func() { _ = stream.Body.Close() }()

	r, err := getHdr(e.srv.Client(), e.srv.URL+"/api/v1/hosts/h/series", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := <-sawDeadline; !errors.Is(got, context.DeadlineExceeded) {
		t.Fatalf("the read's context ended with %v, want its deadline", got)
	}
	if r.code != http.StatusServiceUnavailable || !strings.Contains(mustJSONError(t, r), "timed out") {
		t.Fatalf("timed-out read: %d %s, want the JSON 503", r.code, r.body)
	}
	// The stream is still open past the read deadline: it announces a
	// new snapshot.
	mustStatus(t, e.ingest("key-0123456789", snap("web-1", "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)
	lines := bufio.NewScanner(stream.Body)
	for lines.Scan() && !strings.Contains(lines.Text(), "web-1") {
	}
	if !strings.Contains(lines.Text(), "web-1") {
		t.Fatalf("stream after the read deadline: %q %v", lines.Text(), lines.Err())
	}
}

// TestReadLimitEveryRoute walks every route the router has (the history
// and events routes mounted as serve mounts them, the UI included): each
// is a bounded read (refused with the per-client 429 while its client
// holds all its read slots) or one of the routes with bounds of their own
// (ingest, the live stream) or nothing to bound (health probes, the
// embedded UI, the JSON 404 of unknown /api paths). A route added outside
// the read group fails here until it is placed.
func TestReadLimitEveryRoute(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.MaxReadsPerClient = 1
		o.UI = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ui")) })
		st := new(LazyStore)
		o.Store = st
		hist := history.NewHandler(nil, st, slog.New(slog.DiscardHandler))
		ev := events.NewHandler(func() store.EventStore { return nil }, httpapi.Adapter{Log: slog.New(slog.DiscardHandler)})
		o.Mount = func(r chi.Router) { hist.Mount(r); ev.Mount(r) }
	})
	exempt := map[string]string{
		"/-/healthy": "probe", "/-/ready": "probe", IngestPath: "ingest limits", "/api/v1/stream": "stream limits",
		"/": "UI", "/*": "UI", "/api": "404", "/api/*": "404",
	}
	client := "127.0.0.1"
	for range readQueueFactor { // the test client's reads in flight, all held
		c := e.a.readClients.enter(client)
		if c == nil {
			t.Fatal("no room")
		}
		defer e.a.readClients.leave(client, c)
	}
	fill := strings.NewReplacer("{id}", "1", "{hostname}", "h", "{pid}", "1", "*", "x")
	reads := 0
	err := chi.Walk(e.a.handler.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		why, isExempt := exempt[route]
		if route == "/api/v1/stream" {
			// It would stay open; its own bounds are TestStreamsPerClient's.
			return nil
		}
		r, err := request(e.srv.Client(), method, e.srv.URL+fill.Replace(route), nil)
		if err != nil {
			return err
		}
		if isExempt {
			if r.code == http.StatusTooManyRequests {
				t.Errorf("%s %s (%s) refused by the read limit: %s", method, route, why, r.body)
			}
			return nil
		}
		reads++
		if r.code != http.StatusTooManyRequests || (method != http.MethodHead && !strings.Contains(r.body, "--web.max-reads-per-client")) {
			t.Errorf("%s %s is not bounded per client: %d %s", method, route, r.code, r.body)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if reads < 12 {
		t.Fatalf("walked only %d read routes", reads)
	}
}
