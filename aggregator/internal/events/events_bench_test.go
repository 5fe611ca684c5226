package events

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/procscope/procscope/aggregator/internal/httpapi"
	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/internal/testutil"
)

// busyDay stores 24 h of a busy host's events: a short-lived process
// started and gone every 2 s snapshot (cron jobs, health checks, CI
// steps: 86,400 events) plus a crash-looping service restarting every
// minute (2,880 more), among 200 other hosts' days of a tenth of that.
func busyDay(b *testing.B) (*store.SQLite, time.Time) {
	b.Helper()
	s := openStore(b)
	ctx := context.Background()
	end := t0.Add(24 * time.Hour)
	for h := range 201 {
		host := "busy"
		step := 2 * time.Second
		if h > 0 {
			host, step = fmt.Sprintf("host-%03d", h), 20*time.Second
		}
		put(b, s, nil, req(host, t0, pr(1, 0, "init", "", "")))
		var evs []store.Event
		pid := int64(1000)
		for at := t0; at.Before(end); at = at.Add(step) {
			pid++
			evs = append(evs,
				store.Event{At: at, Kind: store.EventStarted, PID: pid, PPID: 1, Name: "healthcheck", Unit: "system.slice/health.service"},
				store.Event{At: at.Add(step), Kind: store.EventExited, PID: pid, PPID: 1, Name: "healthcheck", Unit: "system.slice/health.service",
					Started: at, CPUPercent: 12.5, MemoryMB: 3.2})
			if h == 0 && at.Sub(t0)%time.Minute == 0 {
				evs = append(evs, store.Event{At: at, Kind: store.EventRestarted, PID: pid + 1e6, PPID: 1, PrevPID: pid + 1e6 - 1,
					Name: "flaky", Unit: "system.slice/flaky.service"})
			}
			if len(evs) >= 5000 {
				if err := s.AddEvents(ctx, host, evs); err != nil {
					b.Fatal(err)
				}
				evs = evs[:0]
			}
		}
		if err := s.AddEvents(ctx, host, evs); err != nil {
			b.Fatal(err)
		}
	}
	return s, end
}

// BenchmarkEvents24h is GET /api/v1/hosts/busy/events over 24 h through
// the handler (query and JSON): the newest 1,000 (the default limit), the
// most one answer holds (5,000), and a search that scans the whole day
// for the crash-looping unit. Issue 15's budget: 50 ms.
//
//	go test -run '^$' -bench BenchmarkEvents24h -benchtime 20x ./aggregator/internal/events
func BenchmarkEvents24h(b *testing.B) {
	s, end := busyDay(b)
	h := NewHandler(func() store.EventStore { return s }, httpapi.Adapter{})
	r := chi.NewRouter()
	r.Route("/api/v1", h.Mount)
	from, to := end.Add(-24*time.Hour).Format(snapshot.CapturedAtFormat), end.Format(snapshot.CapturedAtFormat)
	for _, c := range []struct{ name, q string }{
		{"limit-1000", ""},
		{"limit-5000", "&limit=5000"},
		{"q-unit", "&q=flaky.service"},
	} {
		b.Run(c.name, func(b *testing.B) {
			url := "/api/v1/hosts/busy/events?from=" + from + "&to=" + to + c.q
			// CPU time, not wall time: on a shared machine the wall clock
			// mostly measures the neighbours.
			cpu0 := testutil.SelfCPU()
			defer func() {
				b.ReportMetric(float64((testutil.SelfCPU()-cpu0).Microseconds())/1e3/float64(b.N), "cpu-ms/op")
			}()
			for b.Loop() {
				rec := httptest.NewRecorder()
				r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
				if rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
