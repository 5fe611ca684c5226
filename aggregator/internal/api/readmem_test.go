package api

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"runtime"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// readBudget is the most one read may allocate (issue 11: "raises the heap
// by at most 64 MiB"). TotalAlloc counts every byte allocated, kept or
// not, so a delta under it is a strict upper bound on the heap's growth.
const readBudget = 64 << 20

// TestTreeAtReadMemory: the tree at a moment of a 100,000-process host
// (GET /snapshots/at, then that snapshot's processes, as the UI's time
// travel does), read from a store just opened, allocates less than
// readBudget per request; the process list is the whole answer and comes
// back complete.
func TestTreeAtReadMemory(t *testing.T) {
	const n = 100_000
	dir := t.TempDir()
	st, err := store.OpenSQLite(t.Context(), dir, store.Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	procs := workerProcs(n, at)
	for k := range 2 { // a keyframe and a delta of it
		if k == 1 {
			for i := 0; i < n; i += 10 {
				procs[i].CPUPercent++
			}
		}
		_, err := st.Ingest(t.Context(), &store.IngestRequest{
			Hostname: "big-1", KeyHash: sha256.Sum256([]byte("k")), CapturedAt: at.Add(time.Duration(k) * time.Minute),
			SystemInfo: json.RawMessage(`{"cpu":{"usage_percent":1}}`), Processes: procs, ReceivedAt: time.Now(),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	_ = st.Close()
	st, err = store.OpenSQLite(t.Context(), dir, store.Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	a.SetStore(st)
	srv := httptest.NewServer(a)
	t.Cleanup(func() {
		a.Close()
		srv.Close()
		_ = st.Close()
	})
	// The client reads into a buffer allocated before the measurement, so
	// that what is measured is the server's work (io.ReadAll alone would
	// allocate twice the answer).
	buf := make([]byte, 32<<20)
	get := func(path string) (int, []byte) {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		n, err := io.ReadFull(resp.Body, buf)
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("reading %s: %d bytes, %v", path, n, err)
		}
		return resp.StatusCode, buf[:n]
	}
	measure := func(what, path string) []byte {
		t.Helper()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		status, body := get(path)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %.1f MiB allocated, %d bytes answered", what, float64(alloc)/(1<<20), len(body))
		if status != 200 {
			t.Fatalf("%s: status %d: %s", what, status, body)
		}
		if alloc > readBudget {
			t.Errorf("%s allocated %d bytes, more than %d", what, alloc, readBudget)
		}
		return body
	}

	body := measure("snapshot at", "/api/v1/snapshots/at?hostname=big-1&time="+url.QueryEscape(at.Add(90*time.Second).Format(time.RFC3339)))
	var m struct {
		ID    int64 `json:"snapshot_id"`
		Count int   `json:"process_count"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.Count != n {
		t.Fatalf("snapshot at: %s (%v)", body, err)
	}
	body = measure("its processes (a delta)", fmt.Sprintf("/api/v1/snapshots/%d/processes", m.ID))
	var got []snapshot.Process
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != n || got[n-1].PID != procs[n-1].PID || got[10].CPUPercent != procs[10].CPUPercent || *got[5].Cmdline != *procs[5].Cmdline {
		t.Fatalf("%d processes, last %+v", len(got), got[len(got)-1])
	}
	measure("the keyframe's processes", fmt.Sprintf("/api/v1/snapshots/%d/processes", m.ID-1))
}

// workerProcs is the big hosts' table of the read-memory tests: n worker
// processes with command lines, started within the hour before at.
func workerProcs(n int, at time.Time) []snapshot.Process {
	procs := make([]snapshot.Process, n)
	for i := range procs {
		cmd := fmt.Sprintf("/usr/bin/worker --queue=q%d --threads=4", i%97)
		procs[i] = snapshot.Process{
			PID: int64(100 + i), PPID: 1, Name: fmt.Sprintf("worker-%d", i%500), Cmdline: &cmd,
			CPUPercent: float64(i%13) / 2, MemoryMB: float64(10 + i%300), Username: "app", Status: "sleeping",
			NumThreads: 4, CreateTime: at.Add(-time.Duration(i%3600) * time.Second).Format(time.RFC3339),
		}
	}
	return procs
}
