package api

import (
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/procscope/procscope/aggregator/internal/ingest"
	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/internal/testutil"
	"github.com/procscope/procscope/tools/loadgen/gen"
)

// benchAPI is an API over a fresh SQLite store, both closed when b ends.
func benchAPI(b *testing.B) (*store.SQLite, *API) {
	b.Helper()
	st, err := store.OpenSQLite(context.Background(), b.TempDir(), store.Options{PruneInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	a, err := New(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	a.SetStore(st)
	return st, a
}

// BenchmarkProcessesHandler: GET /api/v1/snapshots/{id}/processes of a
// 5,000-process snapshot through the whole router on the real SQLite store
// (the target is <= 20 ms), with the response encoded by the hand-written
// encoder and, as the baseline in the same run, by encoding/json.
//
//	go test -run '^$' -bench ProcessesHandler -benchtime 2s ./aggregator/internal/api
func BenchmarkProcessesHandler(b *testing.B) {
	st, a := benchAPI(b)
	body := gen.Body(5000, "big-host", "2026-11-25T17:00:00Z", true)
	d, err := ingest.Decode(body, ingest.DecodeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	res, err := st.Ingest(context.Background(), &store.IngestRequest{
		Hostname: "big-host", CapturedAt: d.CapturedAt, SystemInfo: d.Snapshot.SystemInfo,
		Processes: d.Snapshot.Processes, ReceivedAt: time.Now(),
	})
	if err != nil {
		b.Fatal(err)
	}
	path := fmt.Sprintf("/api/v1/snapshots/%d/processes", res.SnapshotID)

	b.Run("handler", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+path, nil))
			if rec.Code != 200 || rec.Body.Len() < 5000*50 {
				b.Fatalf("status %d, %d bytes", rec.Code, rec.Body.Len())
			}
		}
	})
	// The baseline: the same store read, encoded with encoding/json.
	b.Run("encoding_json_baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			procs, err := st.Processes(context.Background(), res.SnapshotID)
			if err != nil {
				b.Fatal(err)
			}
			rec := httptest.NewRecorder()
			out, _ := json.Marshal(procs)
			_, _ = rec.Write(out)
		}
	})
	// The store read alone, to show where the time goes.
	b.Run("store_only", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.Processes(context.Background(), res.SnapshotID); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIngestHandler: POST /api/v1/ingest of gzip 300-process
// snapshots from 200 hosts through the router into the real SQLite store,
// 64 clients at once (as many exporters would push), against the baseline
// of the same snapshots given to store.Ingest directly (already decoded)
// in the same run. Reported per snapshot: the process's CPU time (steadier
// than wall time on a shared machine; 1e6 / cpu-µs is what one free core
// sustains), p99 latency and snapshots/s.
//
//	go test -run '^$' -bench IngestHandler -benchtime 4000x ./aggregator/internal/api
func BenchmarkIngestHandler(b *testing.B) {
	const hosts = 200
	parts := make([]*gen.GzipParts, hosts)
	reqs := make([]*store.IngestRequest, hosts)
	for i := range hosts {
		name := fmt.Sprintf("bench-%03d", i)
		procs := gen.Processes(300, gen.Seed(name, 0), true)
		p, err := gen.NewGzipParts(name, procs)
		if err != nil {
			b.Fatal(err)
		}
		parts[i] = p
		d, err := ingest.Decode(gen.BodyOf(name, "2026-11-25T00:00:00Z", procs), ingest.DecodeOptions{})
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = &store.IngestRequest{Hostname: name, KeyHash: [32]byte{1}, SystemInfo: d.Snapshot.SystemInfo, System: &d.System, Processes: d.Snapshot.Processes}
	}
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

	run := func(b *testing.B, one func(st *store.SQLite, a *API, n int) error) {
		st, a := benchAPI(b)
		b.SetParallelism(32) // x GOMAXPROCS clients
		b.ResetTimer()
		cpu0, start := testutil.SelfCPU(), time.Now()
		lat := testutil.ParallelLatencies(b, func(n int64) error { return one(st, a, int(n)) })
		el, cpu := time.Since(start), testutil.SelfCPU()-cpu0
		b.StopTimer()
		if len(lat) > 0 {
			b.ReportMetric(float64(len(lat))/el.Seconds(), "snapshots/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-µs/snapshot")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		}
	}
	at := func(n int) time.Time { return base.Add(time.Duration(n/hosts) * time.Second) }
	b.Run("http_handler", func(b *testing.B) {
		run(b, func(_ *store.SQLite, a *API, n int) error {
			p := parts[n%hosts]
			head := p.Head(at(n).Format(snapshot.CapturedAtFormat))
			req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/api/v1/ingest", io.MultiReader(bytes.NewReader(head), bytes.NewReader(p.Tail)))
			req.ContentLength = int64(len(head) + len(p.Tail))
			req.Header.Set("X-API-KEY", "k")
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Content-Encoding", "gzip")
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, req)
			if rec.Code != 201 {
				return fmt.Errorf("status %d: %s", rec.Code, rec.Body)
			}
			return nil
		})
	})
	b.Run("store_only_baseline", func(b *testing.B) {
		run(b, func(st *store.SQLite, _ *API, n int) error {
			r := *reqs[n%hosts]
			r.CapturedAt, r.ReceivedAt = at(n), time.Now()
			_, err := st.Ingest(context.Background(), &r)
			return err
		})
	})
}

// BenchmarkGunzip: ingest decompresses with klauspost/compress (already a
// dependency of the store's zstd); the standard library is the baseline.
//
//	go test -run '^$' -bench Gunzip ./aggregator/internal/api
func BenchmarkGunzip(b *testing.B) {
	p, err := gen.NewGzipParts("bench", gen.Processes(300, 1, true))
	if err != nil {
		b.Fatal(err)
	}
	body := append(p.Head("2026-11-25T17:00:00.000Z"), p.Tail...)
	var out bytes.Buffer
	b.Run("klauspost", func(b *testing.B) {
		zr, _ := gzip.NewReader(bytes.NewReader(body))
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			out.Reset()
			if err := zr.Reset(bytes.NewReader(body)); err != nil {
				b.Fatal(err)
			}
			if _, err := out.ReadFrom(zr); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stdlib_baseline", func(b *testing.B) {
		zr, _ := stdgzip.NewReader(bytes.NewReader(body))
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			out.Reset()
			if err := zr.Reset(bytes.NewReader(body)); err != nil {
				b.Fatal(err)
			}
			if _, err := out.ReadFrom(zr); err != nil {
				b.Fatal(err)
			}
		}
	})
}
