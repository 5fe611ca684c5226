package history

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"

	"github.com/procscope/procscope/aggregator/snapshot"
)

func openTest(t testing.TB, dir string, opts Options) *History {
	t.Helper()
	h, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// openCounting is openTest with a writer that waits up to batchWait for a
// batch (0: writes what it finds at once) and counts its non-empty AddRows
// calls.
func openCounting(t testing.TB, dir string, opts Options, batchWait time.Duration) (*History, *atomic.Uint64) {
	t.Helper()
	h, err := open(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	calls := new(atomic.Uint64)
	h.start(batchWait, func(rows []storage.MetricRow) {
		if len(rows) > 0 {
			calls.Add(1)
		}
		h.addRows(rows)
	})
	t.Cleanup(func() { _ = h.Close() })
	return h, calls
}

// testLogger sends the package's logs to the test's log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func flush(t testing.TB, h *History) {
	t.Helper()
	if err := h.Flush(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestWriteAndQuery(t *testing.T) {
	h := openTest(t, t.TempDir(), Options{TopK: 2})
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	// Written out of order: a late replay must land in its place.
	for _, i := range []int{0, 1, 3, 4, 2} {
		procs := []snapshot.Process{{PID: 7, Name: "db", CPUPercent: float64(10 * i), MemoryMB: 1, CreateTime: "2026-01-01T00:00:00Z"}}
		if i >= 3 {
			// PID 7 reused by another program with another start time.
			procs[0] = snapshot.Process{PID: 7, Name: "cron", CPUPercent: 1, MemoryMB: 2, CreateTime: "2026-01-02T00:00:00Z"}
		}
		h.Add(testRequest("web-1", base.Add(time.Duration(i)*2*time.Second), float64(i), procs))
		h.Add(testRequest("web-10", base.Add(time.Duration(i)*2*time.Second), 99, nil))
	}
	flush(t, h)

	ctx := context.Background()
	got, err := h.Query(ctx, MetricCPU, map[string]string{LabelHostname: "web-1"}, base.Add(-time.Minute), base.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Labels[LabelHostname] != "web-1" {
		t.Fatalf("got series %+v, want exactly web-1's", got)
	}
	if len(got[0].Points) != 5 {
		t.Fatalf("got %d points, want 5: %v", len(got[0].Points), got[0].Points)
	}
	for i, p := range got[0].Points {
		if p.T != base.Add(time.Duration(i)*2*time.Second).UnixMilli() || p.V != float64(i) {
			t.Errorf("point %d = %+v, want t=%d v=%d", i, p, base.Add(time.Duration(i)*2*time.Second).UnixMilli(), i)
		}
	}

	// The range is honoured.
	got, err = h.Query(ctx, MetricCPU, map[string]string{LabelHostname: "web-1"}, base.Add(2*time.Second), base.Add(4*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Points) != 2 {
		t.Fatalf("narrow range: got %+v, want 2 points", got)
	}

	// The reused PID is two series.
	procs, err := h.Query(ctx, MetricProcessCPU, map[string]string{LabelHostname: "web-1", LabelPID: "7"}, base.Add(-time.Minute), base.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 2 {
		t.Fatalf("pid 7: got %d series, want 2 (db and cron): %+v", len(procs), procs)
	}
	byName := map[string]int{}
	for _, s := range procs {
		byName[s.Labels[LabelProcName]] = len(s.Points)
	}
	if byName["db"] != 3 || byName["cron"] != 2 {
		t.Errorf("pid 7 points per name = %v, want db:3 cron:2", byName)
	}
}

func TestHostileHostnames(t *testing.T) {
	h := openTest(t, t.TempDir(), Options{})
	at := time.Now().Add(-time.Minute)
	hosts := []string{"a", "a ", "a\"b", "a,b=c}", "日本語", "x\\y", strings.Repeat("z", 253), strings.Repeat("z", 252) + "y", "*", ".*"}
	for i, host := range hosts {
		h.Add(testRequest(host, at, float64(i), nil))
	}
	flush(t, h)
	for i, host := range hosts {
		got, err := h.Query(context.Background(), MetricCPU, map[string]string{LabelHostname: host}, at.Add(-time.Second), at.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		// Exact matches only: ".*" is a name, not a regexp.
		if len(got) != 1 || len(got[0].Points) != 1 || got[0].Points[0].V != float64(i) {
			t.Errorf("host %q: got %+v, want one point with value %d", host, got, i)
		}
	}
}

func TestCloseWritesToDiskAndReopen(t *testing.T) {
	dir := t.TempDir()
	h, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-10 * time.Minute)
	for i := range 30 {
		h.Add(testRequest("db-1", at.Add(time.Duration(i)*2*time.Second), float64(i), nil))
	}
	// No Flush: Close alone must drain the queue and persist.
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	h.Add(testRequest("db-1", at, 1, nil))
	if st := h.Stats(); st.Dropped == 0 || st.RowsWritten == 0 {
		t.Errorf("stats after close %+v: want written rows and the late add counted as dropped", st)
	}
	if _, err := h.Query(context.Background(), MetricCPU, nil, at, at); err == nil {
		t.Errorf("query after close succeeded")
	}

	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("storage dir mode %v, want 0700", perm)
	}

	h2 := openTest(t, dir, Options{})
	got, err := h2.Query(context.Background(), MetricCPU, map[string]string{LabelHostname: "db-1"}, at.Add(-time.Second), at.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Points) != 30 {
		t.Fatalf("after reopen: got %+v, want 30 points", got)
	}
}

func TestOpenRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f := func(name, dir string, opts Options, wantErr string) {
		t.Helper()
		h, err := Open(dir, opts)
		if err == nil {
			_ = h.Close()
			t.Errorf("%s: open succeeded", name)
			return
		}
		if !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: error %q does not mention %q", name, err, wantErr)
		}
	}
	f("empty dir", "", Options{}, "empty storage directory")
	f("a file", file, Options{}, "file")
	f("negative retention", dir, Options{Retention: -time.Hour}, "negative retention")
	f("huge top-k", dir, Options{TopK: 5000}, "top-k")
	f("bad remote url", dir, Options{RemoteWriteURL: "ftp://x/y"}, "remote write url")
	f("no host", dir, Options{RemoteWriteURL: "http:///api/v1/write"}, "remote write url")
	f("not enough space", dir, Options{MinFreeBytes: 1 << 62}, "bytes free")
	// Nothing was created by the rejected opens.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("rejected opens left files behind: %v", entries)
	}
}

// A second open of the same directory (a second aggregator on the same
// --storage.path) is refused with an error: VictoriaMetrics panics on its
// lock file, and Open turns that into an error instead of a crash.
func TestOpenTwiceIsAnError(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, Options{})
	h, err := Open(dir, Options{})
	if err == nil {
		_ = h.Close()
		t.Fatal("second open of the same directory succeeded")
	}
	if !strings.Contains(err.Error(), "lock") {
		t.Errorf("error %q does not mention the lock", err)
	}
}
