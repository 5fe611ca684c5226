package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/internal/ingest"
	"github.com/procscope/procscope/aggregator/internal/store"
)

// BenchmarkFleet: GET /api/v1/fleet for 10,000 hosts through the router
// (answered from memory), and as the baseline in the same run GET
// /api/v1/hosts, which reads every host's latest system_info from SQLite.
//
//	go test -run '^$' -bench Fleet -benchtime 20x ./aggregator/internal/api
func BenchmarkFleet(b *testing.B) {
	const hosts = 10000
	st, a := benchAPI(b)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range work {
				name := fmt.Sprintf("host-%05d", i)
				d, err := ingest.Decode(sysSnap(name, "2026-11-25T17:00:00Z", float64(i%100), 8<<30, 4<<30, twoFS), ingest.DecodeOptions{})
				if err != nil {
					b.Error(err)
					return
				}
				req := &store.IngestRequest{Hostname: name, CapturedAt: d.CapturedAt, SystemInfo: d.Snapshot.SystemInfo,
					System: &d.System, Processes: d.Snapshot.Processes, ReceivedAt: time.Now(), SystemInfoIsObject: true}
				res, err := st.Ingest(context.Background(), req)
				if err != nil {
					b.Error(err)
					return
				}
				a.fleet.observe(req, res)
			}
		})
	}
	for i := range hosts {
		work <- i
	}
	close(work)
	wg.Wait()
	for _, route := range []string{"fleet", "hosts"} {
		b.Run(route, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1/api/v1/"+route, nil))
				if rec.Code != 200 || rec.Body.Len() < hosts*100 {
					b.Fatalf("status %d, %d bytes", rec.Code, rec.Body.Len())
				}
			}
		})
	}
}
