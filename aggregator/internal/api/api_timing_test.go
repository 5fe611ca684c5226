package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/internal/loadgen/gen"
	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// BenchmarkProcessesHandler: GET /api/v1/snapshots/{id}/processes of a
// 5,000-process snapshot through the whole router on the real SQLite store
// (the target is <= 20 ms), with the response encoded by the hand-written
// encoder and, as the baseline in the same run, by encoding/json.
//
//	go test -run '^$' -bench ProcessesHandler -benchtime 2s ./aggregator/internal/api
func BenchmarkProcessesHandler(b *testing.B) {
	st, err := store.OpenSQLite(context.Background(), b.TempDir(), store.Options{PruneInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	a, err := New(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	a.SetStore(st)
	body := gen.Body(5000, "big-host", "2026-11-25T17:00:00Z", true)
	d, err := snapshot.Decode(body, snapshot.DecodeOptions{})
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
			a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
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
			rec.Write(out)
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

// BenchmarkIngestHandler: POST /api/v1/ingest of a gzip 300-process
// snapshot through the router into the real SQLite store, from parallel
// clients (as 200 exporters would), against the baseline of the body's
// decompression and decoding alone in the same run.
//
//	go test -run '^$' -bench IngestHandler -benchtime 3s ./aggregator/internal/api
func BenchmarkIngestHandler(b *testing.B) {
	st, err := store.OpenSQLite(context.Background(), b.TempDir(), store.Options{PruneInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	a, err := New(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	a.SetStore(st)
	const hosts = 200
	bodies := make([][]byte, hosts)
	for i := range bodies {
		bodies[i] = gen.Body(300, fmt.Sprintf("bench-%d", i), "2026-11-25T17:00:00.000Z", true)
	}
	var seq atomicCounter
	b.Run("handler_parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n := seq.next()
				h := n % hosts
				// A fresh captured_at per request: otherwise it is a repeat.
				body := bytes.Replace(bodies[h], []byte("2026-11-25T17:00:00.000Z"),
					[]byte(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).Add(time.Duration(n)*time.Millisecond).Format(snapshot.CapturedAtFormat)), 1)
				req := httptest.NewRequest(http.MethodPost, "/api/v1/ingest", bytes.NewReader(gzipBytes(body)))
				req.Header.Set("X-API-KEY", "k")
				req.Header.Set("Content-Encoding", "gzip")
				rec := httptest.NewRecorder()
				a.ServeHTTP(rec, req)
				if rec.Code != 201 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	})
	zbody := gzipBytes(bodies[0])
	b.Run("gunzip_and_decode_baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			zr, _ := gzip.NewReader(bytes.NewReader(zbody))
			raw, _ := io.ReadAll(zr)
			if _, err := snapshot.Decode(raw, snapshot.DecodeOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) next() int { return int(c.n.Add(1)) }

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}
