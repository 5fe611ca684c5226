package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

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

// BenchmarkPostgresBatchFunctions stores the same steady-state batches
// (20 known hosts each, deltas against their keyframes, realistic blobs)
// encoded as Ingest encodes them (a keyframe when one is due), on two
// databases, batch by batch in turn on one connection each, so that both
// see the same machine at the same moment: by procscope_ingest_batch_rows
// (one procscope_ingest call per ingest, as before migration 0004) and by
// the set-based procscope_ingest_batch.
// pg-cpu-µs/snapshot is each backend's own CPU (/proc), nothing else's:
// the batch function's cost and its commit, without the Go side or the
// scheduling noise of a parallel benchmark; with fsync off, then on (the
// backend flushes the WAL at its commit).
//
//	go test -run '^$' -bench BenchmarkPostgresBatchFunctions -benchtime 400x ./aggregator/internal/store
func BenchmarkPostgresBatchFunctions(b *testing.B) {
	b.Run("fsync=off", func(b *testing.B) { benchBatchFunctions(b, false) })
	b.Run("fsync=on", func(b *testing.B) { benchBatchFunctions(b, true) })
}

func benchBatchFunctions(b *testing.B, durable bool) {
	const hosts, perBatch = 200, 20
	ctx := context.Background()
	pg, err := testutil.StartPostgres(ctx, testutil.PostgresOptions{Durable: durable})
	if err != nil {
		b.Skipf("PostgreSQL: %v", err)
	}
	b.Cleanup(pg.Stop)
	gen := make([]*fakeHost, hosts)
	for i := range gen {
		gen[i] = newFakeHost(uint64(i), fmt.Sprintf("host-%03d", i), 300)
	}
	first := make([]*IngestRequest, hosts)
	for i, h := range gen {
		first[i] = h.next()
	}
	// The batches' requests, the same for every side.
	reqs := make([][]*IngestRequest, b.N)
	for n := range reqs {
		for i := range perBatch {
			reqs[n] = append(reqs[n], gen[(n*perBatch+i)%hosts].next())
		}
	}
	type side struct {
		name, fn string
		s        *Postgres // encodes as Ingest does
		conn     *pgx.Conn
		pid      int
		cpu      time.Duration
	}
	setup := func(name, fn string) *side {
		url, err := pg.NewDatabase(ctx)
		if err != nil {
			b.Fatal(err)
		}
		sd := &side{name: name, fn: fn, s: openTestPostgres(b, url, Options{})}
		for _, r := range first { // the hosts and their keyframes
			if _, err := sd.s.Ingest(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
		if sd.conn, err = pgx.Connect(ctx, url); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = sd.conn.Close(context.Background()) })
		if err := sd.conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&sd.pid); err != nil {
			b.Fatal(err)
		}
		return sd
	}
	sides := []*side{
		setup("per-row", "procscope_ingest_batch_rows"),
		setup("set", "procscope_ingest_batch"),
	}
	var a pgBatchArgs
	call := func(sd *side, n int) {
		var jobs []*pgJob
		for _, r := range reqs[n] {
			j, err := sd.s.encode(ctx, r)
			if err != nil {
				b.Fatal(err)
			}
			jobs = append(jobs, j)
		}
		a.fill(jobs)
		c0, _ := testutil.ProcCPU(sd.pid)
		rows, err := sd.conn.Query(ctx, "SELECT o_idx, o_status, o_snapshot_id, o_host_id FROM "+sd.fn+"($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
			a.hostnames, a.keys, a.captured, a.counts, a.bases, a.sys, a.procs, a.recv, a.noCreate, a.maxHosts)
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
			var idx int32
			var st string
			var id, host pgtype.Int8
			if err := rows.Scan(&idx, &st, &id, &host); err != nil || st != "created" {
				b.Fatalf("%s: %s %v", sd.fn, st, err)
			}
			j := jobs[idx-1]
			j.id, j.hostID = id, host
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		c1, _ := testutil.ProcCPU(sd.pid)
		sd.cpu += c1 - c0
		for _, j := range jobs {
			sd.s.noteCreated(j)
		}
	}
	b.ResetTimer()
	for n := range b.N {
		// Which goes first rotates too.
		for i := range sides {
			call(sides[(n+i)%len(sides)], n)
		}
	}
	b.StopTimer()
	for _, sd := range sides {
		b.ReportMetric(float64(sd.cpu.Microseconds())/float64(b.N*perBatch), sd.name+"-pg-cpu-µs/snapshot")
	}
	var kb, rows int64
	_ = sides[1].conn.QueryRow(ctx, "SELECT pg_total_relation_size('snapshots'), (SELECT count(*) FROM snapshots)").Scan(&kb, &rows)
	b.ReportMetric(float64(kb)/float64(rows), "set-bytes/snapshot")
}
