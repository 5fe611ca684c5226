package api

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestIngestClockSkew: a captured_at more than MaxClockSkew ahead of the
// aggregator's clock is refused with the skew in the message (exporters
// look for "ahead of the aggregator's clock"), and nothing changes: a
// year-9999 snapshot would otherwise be the host's latest forever.
func TestIngestClockSkew(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	e := newEnv(t, func(o *Options) { o.Now = func() time.Time { return now } })
	mustStatus(t, e.ingest("k", snap("web-1", "2026-11-30T23:59:00Z", proc1)), http.StatusCreated)
	before := e.state()
	latest := e.get("/api/v1/snapshots/latest?hostname=web-1")
	mustStatus(t, latest, http.StatusOK)

	for _, tc := range []struct {
		at, inMsg string
	}{
		{"9999-12-31T23:59:59Z", "captured_at 9999-12-31T23:59:59Z is 7973y ahead of the aggregator's clock (more than --ingest.max-clock-skew=10m0s): fix the exporter host's clock (NTP)"},
		{"2099-01-01T00:00:00Z", "captured_at 2099-01-01T00:00:00Z is 72y ahead of the aggregator's clock"},
		{"2026-12-01T00:10:01Z", "is 10m1s ahead of the aggregator's clock"},
	} {
		t.Run(tc.at, func(t *testing.T) {
			r := e.ingest("k", snap("web-1", tc.at, proc1))
			mustStatus(t, r, http.StatusBadRequest)
			if msg := mustJSONError(t, r); !strings.Contains(msg, tc.inMsg) {
				t.Fatalf("error %q does not contain %q", msg, tc.inMsg)
			}
			if after := e.state(); after != before {
				t.Fatalf("a refused snapshot changed the store:\nbefore %+v\nafter  %+v", before, after)
			}
			if l := e.get("/api/v1/snapshots/latest?hostname=web-1"); l.body != latest.body {
				t.Fatalf("latest changed:\n%s\n%s", latest.body, l.body)
			}
		})
	}
	// Up to the skew is accepted: exporter clocks are never exact.
	mustStatus(t, e.ingest("k", snap("web-1", "2026-12-01T00:10:00Z", proc1)), http.StatusCreated)

	// The skew is a setting.
	e2 := newEnv(t, func(o *Options) {
		o.Now = func() time.Time { return now }
		o.Limits.MaxClockSkew = time.Hour
	})
	mustStatus(t, e2.ingest("k", snap("web-1", "2026-12-01T00:59:00Z", proc1)), http.StatusCreated)
	r := e2.ingest("k", snap("web-1", "2026-12-01T01:00:01Z", proc1))
	mustStatus(t, r, http.StatusBadRequest)
	if msg := mustJSONError(t, r); !strings.Contains(msg, "1h1s ahead of the aggregator's clock (more than --ingest.max-clock-skew=1h0m0s)") {
		t.Fatalf("error %q", msg)
	}
}

// TestSlowBodies: clients that trickle their bodies hold no ingest slot
// (the body is read before one is taken) and are cut at the body
// deadline with 408, while a normal ingest among them is answered at once.
// Before, 64 tricklers held all 32 slots and the normal ingest got 429
// after the 5 s queue timeout.
func TestSlowBodies(t *testing.T) {
	const trickling, bodyTimeout = 64, 2 * time.Second
	e := newEnv(t, func(o *Options) { o.Limits.BodyTimeout = bodyTimeout })
	addr := e.srv.Listener.Addr().String()

	type result struct {
		status  string
		elapsed time.Duration
	}
	results := make([]result, trickling)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range trickling {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		if _, err := fmt.Fprintf(c, "POST /api/v1/ingest HTTP/1.1\r\nHost: %s\r\nX-API-KEY: k\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", addr); err != nil {
			t.Fatal(err)
		}
		// One byte a second, for at most the deadline and a bit.
		wg.Go(func() {
			for range int(bodyTimeout/time.Second) + 3 {
				time.Sleep(time.Second)
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		})
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(bodyTimeout + 10*time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil && line == "" {
				line = "closed: " + err.Error()
			}
			results[i] = result{strings.TrimSpace(line), time.Since(start)}
		})
	}
	// Every trickler's handler has its first byte and 1000 bytes of room.
	for i := 0; e.a.inflight.used.Load() < trickling*1000; i++ {
		if i > 500 {
			t.Fatalf("the tricklers did not all start: %d bytes held", e.a.inflight.used.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}

	t0 := time.Now()
	r := e.ingest("k", snap("web-1", "2026-11-25T17:00:00Z", proc1))
	took := time.Since(t0)
	if r.code == http.StatusTooManyRequests {
		t.Fatalf("a normal ingest among %d slow bodies got 429 after %v: %s", trickling, took, r.body)
	}
	mustStatus(t, r, http.StatusCreated)
	t.Logf("a normal ingest among %d bodies trickling at 1 byte/s: 201 in %v", trickling, took)
	if took > 10*time.Second { // a sanity bound, not a timing claim
		t.Fatalf("the normal ingest took %v", took)
	}

	wg.Wait()
	var first, last time.Duration
	for i, res := range results {
		if !strings.HasPrefix(res.status, "HTTP/1.1 408 ") && !strings.HasPrefix(res.status, "closed: ") || strings.Contains(res.status, "timeout") {
			t.Errorf("trickler %d: %q after %v, want 408 or the connection closed", i, res.status, res.elapsed)
		}
		if first == 0 || res.elapsed < first {
			first = res.elapsed
		}
		last = max(last, res.elapsed)
	}
	t.Logf("tricklers answered %q between %v and %v (body timeout %v)", results[0].status, first, last, bodyTimeout)
	if used := e.a.inflight.used.Load(); used != 0 {
		t.Fatalf("%d bytes of budget still held after every request ended", used)
	}
}
