package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/procscope/procscope/internal/testutil"
)

// BenchmarkIngestParallelPostgres is BenchmarkIngestParallel's closed loop
// on the PostgreSQL store, with SQLite beside it in the same run as the
// baseline, and PostgreSQL without group commit (MaxBatch 1: each ingest
// its own transaction, as before procscope_ingest_batch) as the baseline
// of the batching. The cluster is this benchmark's own with fsync off: this
// measures CPU and round trips, not the disk (tools/loadgen
// -compare-postgres measures with fsync on). cpu-µs/snapshot is this
// process's CPU, pg-cpu-µs/snapshot the cluster's (postmaster and
// backends). "listen" also runs Store.Listen, as every aggregator does:
// each stored snapshot is then delivered back to it by NOTIFY.
//
//	go test -run '^$' -bench BenchmarkIngestParallelPostgres -benchtime 4000x ./aggregator/internal/store
func BenchmarkIngestParallelPostgres(b *testing.B) {
	const hosts, variants = 200, 8
	pool := make([][]*IngestRequest, hosts)
	for i := range pool {
		h := newFakeHost(uint64(i), fmt.Sprintf("host-%03d", i), 300)
		for range variants {
			pool[i] = append(pool[i], h.next())
		}
	}
	run := func(b *testing.B, s Store, pg *testutil.Postgres) {
		base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
		b.SetParallelism((hosts + 1) / 2)
		b.ResetTimer()
		cpu0 := testutil.SelfCPU()
		var pg0 time.Duration
		if pg != nil {
			pg0, _ = pg.GroupCPU()
		}
		start := time.Now()
		lat := testutil.ParallelLatencies(b, func(n int64) error {
			host := int(n % hosts)
			r := *pool[host][int(n/hosts)%variants]
			r.CapturedAt = base.Add(time.Duration(n/hosts) * time.Second)
			_, err := s.Ingest(context.Background(), &r)
			return err
		})
		el := time.Since(start)
		cpu := testutil.SelfCPU() - cpu0
		var pgCPU time.Duration
		if pg != nil {
			pg1, _ := pg.GroupCPU()
			pgCPU = pg1 - pg0
		}
		b.StopTimer()
		if len(lat) > 0 {
			b.ReportMetric(float64(len(lat))/el.Seconds(), "snapshots/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-µs/snapshot")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			if pg != nil {
				b.ReportMetric(float64(pgCPU.Microseconds())/float64(len(lat)), "pg-cpu-µs/snapshot")
			}
		}
	}
	ctx := context.Background()
	pg, err := testutil.StartPostgres(ctx, testutil.PostgresOptions{})
	if err != nil {
		b.Skipf("PostgreSQL: %v", err)
	}
	b.Cleanup(pg.Stop)
	openPG := func(b *testing.B, opts Options) *Postgres {
		url, err := pg.NewDatabase(ctx)
		if err != nil {
			b.Fatal(err)
		}
		return openTestPostgres(b, url, opts)
	}
	b.Run("sqlite", func(b *testing.B) { run(b, openTest(b, b.TempDir(), Options{}), nil) })
	b.Run("postgres-batch=1", func(b *testing.B) { run(b, openPG(b, Options{MaxBatch: 1}), pg) })
	b.Run("postgres-per-row", func(b *testing.B) {
		s := openPG(b, Options{})
		s.batch.perRow.Store(true)
		run(b, s, pg)
	})
	b.Run("postgres", func(b *testing.B) { run(b, openPG(b, Options{}), pg) })
	b.Run("postgres-listen", func(b *testing.B) {
		s := openPG(b, Options{})
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.Listen(lctx, func(NewSnapshot) {}, func(string) {})
		}()
		b.Cleanup(func() { cancel(); <-done })
		run(b, s, pg)
	})
}
