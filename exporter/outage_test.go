package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/procscope/procscope/internal/testutil"
)

// aggregatorBinary builds ./aggregator (cgo: SQLite). It needs a C
// compiler; without one the test skips loudly, or fails under REQUIRE_E2E.
func aggregatorBinary(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		if os.Getenv("REQUIRE_E2E") != "" {
			t.Fatal("gcc not installed (the aggregator needs cgo) and REQUIRE_E2E is set")
		}
		t.Skip("SKIPPING: gcc not installed, cannot build the aggregator; set REQUIRE_E2E=1 to make this a failure")
	}
	bin := filepath.Join(t.TempDir(), "procscope-aggregator")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if err := testutil.Build(ctx, "./aggregator", bin, true); err != nil {
		t.Fatalf("building the aggregator: %v", err)
	}
	return bin
}

func startAggregator(t *testing.T, bin, addr, storage string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--storage.path="+storage, "--no-history")
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("aggregator not ready on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOutageRealAggregator: the exporter pushes every 100 ms to the real
// aggregator, which is killed with SIGKILL, stays down 3 s and is started
// again on the same port and database. Every snapshot the exporter queued
// must be stored exactly once.
func TestOutageRealAggregator(t *testing.T) {
	agg := aggregatorBinary(t)
	const interval = 100 * time.Millisecond
	down := 3 * time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	storage := t.TempDir()
	a := startAggregator(t, agg, addr, storage)
	start := time.Now().Add(-time.Minute)

	p := startExporter(t, []string{"PROCSCOPE_API_KEY=real-aggregator-outage-key"},
		"--push.url=http://"+addr+"/api/v1/ingest", "--push.interval="+interval.String(),
		"--state.dir="+t.TempDir(), "--collect.sample-window=0", "--collect.top-n=50", "--push.timeout=2s")
	host, _ := os.Hostname()
	list := func() []snapshotRef { return listSnapshots(t, addr, host, start) }
	storedN := func() int { return len(list()) }
	waitFor(t, 20*time.Second, "10 snapshots are stored", func() bool { return storedN() >= 10 })
	_ = a.Process.Signal(syscall.SIGKILL)
	_ = a.Wait()
	before := p.pushStats(t)
	waitFor(t, 30*time.Second, "the outage has queued "+down.String()+" of walks", func() bool {
		s := p.pushStats(t)
		return s.failed > before.failed && s.waiting >= int(down/interval)
	})
	startAggregator(t, agg, addr, storage)
	st := drained(t, p, 30*time.Second, storedN)
	p.stop(t, 15*time.Second)
	queued, sent, failed, dropped, storedThen := st.queued, st.sent, st.failed, st.dropped, st.stored
	refs := list()

	seen := map[string]bool{}
	dups := 0
	var times []time.Time
	for _, r := range refs {
		if seen[r.CapturedAt] {
			dups++
		}
		seen[r.CapturedAt] = true
		tm, err := time.Parse(time.RFC3339Nano, r.CapturedAt)
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, tm)
	}
	gaps, maxGap := timelineGaps(times, interval)
	stored := len(seen)
	t.Logf("real aggregator killed (SIGKILL) for %s at %s interval: queued %d, stored %d, duplicates stored %d, "+
		"acknowledged %d (incl. 200 for resends), dropped %d, failed attempts %d, lost %d, "+
		"timeline gaps > 1.5 intervals %d (largest %s)",
		down, interval, queued, stored, dups, sent, dropped, failed, queued-storedThen-dropped, gaps, maxGap)
	if dups != 0 {
		t.Errorf("%d duplicate snapshots stored", dups)
	}
	if lost := queued - storedThen - dropped; lost != 0 || dropped != 0 {
		t.Errorf("lost %d, dropped %d", lost, dropped)
	}
	if failed == 0 {
		t.Error("no failed attempts: the outage did not happen")
	}
	if maxGap > 2*time.Second {
		t.Errorf("a %s hole in the stored timeline", maxGap)
	}
}

// snapshotRef is one row of GET /api/v1/hosts/{hostname}/snapshots.
type snapshotRef struct {
	ID         int64  `json:"snapshot_id"`
	CapturedAt string `json:"captured_at"`
}

// listSnapshots lists what the aggregator at addr stored for host since start.
func listSnapshots(t *testing.T, addr, host string, start time.Time) []snapshotRef {
	t.Helper()
	u := fmt.Sprintf("http://%s/api/v1/hosts/%s/snapshots?from=%s&to=%s&limit=10000", addr, url.PathEscape(host),
		url.QueryEscape(start.UTC().Format(time.RFC3339)), url.QueryEscape(time.Now().Add(time.Minute).UTC().Format(time.RFC3339)))
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var refs []snapshotRef
	if resp.StatusCode == http.StatusNotFound { // no snapshot of the host yet
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&refs); err != nil {
		t.Fatal(err)
	}
	return refs
}

// timelineGaps sorts the captured_at times of stored snapshots and counts
// the gaps longer than 1.5 push intervals, with the largest gap.
func timelineGaps(times []time.Time, interval time.Duration) (gaps int, largest time.Duration) {
	slices.SortFunc(times, time.Time.Compare)
	for i := 1; i < len(times); i++ {
		d := times[i].Sub(times[i-1])
		largest = max(largest, d)
		if d > interval*3/2 {
			gaps++
		}
	}
	return gaps, largest
}
