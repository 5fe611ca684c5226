package metrics

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// bigWalk is fixtureWalk with n processes, the size of a busy server.
func bigWalkCollector(b *testing.B, n int) *Collector {
	w := fixtureWalk()
	for i := 0; i < n; i++ {
		w.Processes = append(w.Processes, proc(int64(1000+i), 1, fmt.Sprintf("worker-%d", i%50),
			float64(i%97), uint64(i)<<12, float64(i), "sleeping"))
	}
	c, err := New(10, groups(nil, "nginx", "^nginx$", "workers", "^worker-1"))
	if err != nil {
		b.Fatal(err)
	}
	c.Update(w, time.Millisecond)
	return c
}

func serveScrapes(b *testing.B, h http.Handler) {
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
		_, _ = io.Copy(io.Discard, rec.Body)
	}
}

// BenchmarkScrape is one full /metrics response (our collector, Go and
// process collectors, gzip) over a 1000-process walk; the walk is not
// repeated per scrape.
func BenchmarkScrape(b *testing.B) {
	reg, err := NewRegistry(bigWalkCollector(b, 1000))
	if err != nil {
		b.Fatal(err)
	}
	serveScrapes(b, Handler(reg, slog.New(slog.DiscardHandler)))
}

// BenchmarkScrapeProcscopeOnly is the same without the standard Go and
// process collectors, to show what our own series cost.
func BenchmarkScrapeProcscopeOnly(b *testing.B) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(bigWalkCollector(b, 1000))
	serveScrapes(b, Handler(reg, slog.New(slog.DiscardHandler)))
}

// BenchmarkUpdate is the per-walk cost of turning a 1000-process walk into
// metrics (top-N sorts, group matching).
func BenchmarkUpdate(b *testing.B) {
	c := bigWalkCollector(b, 1000)
	w := fixtureWalk()
	for i := 0; i < 1000; i++ {
		w.Processes = append(w.Processes, proc(int64(1000+i), 1, fmt.Sprintf("worker-%d", i%50),
			float64(i%97), uint64(i)<<12, float64(i), "sleeping"))
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Update(w, time.Millisecond)
	}
}
