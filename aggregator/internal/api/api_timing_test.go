package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
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
