package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procscope/procscope/internal/testutil"
)

// BenchmarkIngestParallelPostgres is BenchmarkIngestParallel's closed loop
// on the PostgreSQL store, with SQLite beside it in the same run as the
// baseline (the test cluster runs with fsync off: this measures the
// store's CPU and round trips, not the disk; tools/loadgen
// -compare-postgres measures with fsync on). cpu-µs/snapshot is this
// process's CPU only (PostgreSQL's own is not in it).
func BenchmarkIngestParallelPostgres(b *testing.B) {
	const hosts, variants = 200, 8
	pool := make([][]*IngestRequest, hosts)
	for i := range pool {
		h := newFakeHost(uint64(i), fmt.Sprintf("host-%03d", i), 300)
		for range variants {
			pool[i] = append(pool[i], h.next())
		}
	}
	run := func(b *testing.B, s Store) {
		base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
		var seq atomic.Int64
		var mu sync.Mutex
		var lat []time.Duration
		b.SetParallelism((hosts + 1) / 2)
		b.ResetTimer()
		cpu0 := testutil.SelfCPU()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			var mine []time.Duration
			for pb.Next() {
				n := seq.Add(1)
				host := int(n % hosts)
				r := *pool[host][int(n/hosts)%variants]
				r.CapturedAt = base.Add(time.Duration(n/hosts) * time.Second)
				t0 := time.Now()
				if _, err := s.Ingest(context.Background(), &r); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
		el := time.Since(start)
		cpu := testutil.SelfCPU() - cpu0
		b.StopTimer()
		slices.Sort(lat)
		if len(lat) > 0 {
			b.ReportMetric(float64(len(lat))/el.Seconds(), "snapshots/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-µs/snapshot")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		}
	}
	b.Run("sqlite", func(b *testing.B) { run(b, openTest(b, b.TempDir(), Options{})) })
	b.Run("postgres", func(b *testing.B) { run(b, openTestPostgres(b, testutil.PostgresURL(b), Options{})) })
}
