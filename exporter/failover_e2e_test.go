package main

import (
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procscope/procscope/internal/testutil"
)

// storedSnapshots is the captured_at of every snapshot of host the
// aggregator at addr holds, with the number of duplicates.
func storedSnapshots(t *testing.T, addr, host string, from time.Time) (map[string]bool, int) {
	t.Helper()
	seen := map[string]bool{}
	dups := 0
	for _, r := range listSnapshots(t, addr, host, from) {
		if seen[r.CapturedAt] {
			dups++
		}
		seen[r.CapturedAt] = true
	}
	return seen, dups
}

var failoverMetricRE = regexp.MustCompile(`(?m)^procscope_push_(failovers_total|target_active\{url="([^"]*)"\}) (\S+)$`)

// failoverStats reads the exporter's failover count and the URL it sends to.
func (p *proc) failoverStats(t *testing.T) (failovers int, active string) {
	t.Helper()
	code, body := get(t, http.MethodGet, "http://"+p.addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, m := range failoverMetricRE.FindAllStringSubmatch(body, -1) {
		v, _ := strconv.ParseFloat(m[3], 64)
		switch {
		case m[1] == "failovers_total":
			failovers = int(v)
		case v == 1:
			active = m[2]
		}
	}
	return failovers, active
}

// TestFailoverRealAggregators: the exporter pushes every 100 ms with two
// --push.url to two real aggregators that share nothing (one SQLite file
// each). The first is killed with SIGKILL mid-run and stays dead; the
// exporter moves to the second. Every snapshot it queued is stored: the
// first's file (read back by an aggregator started on it at another
// address, which the exporter does not know) and the second's together
// hold them all. At most the one request in flight at the kill can be
// stored by both (the first committed it but died before answering); with
// a shared PostgreSQL that resend would be idempotent.
func TestFailoverRealAggregators(t *testing.T) {
	agg := aggregatorBinary(t)
	const interval = 100 * time.Millisecond
	addrA, addrB := testutil.FreePort(t), testutil.FreePort(t)
	storageA, storageB := t.TempDir(), t.TempDir()
	a := startAggregator(t, agg, addrA, storageA)
	startAggregator(t, agg, addrB, storageB)
	start := time.Now().Add(-time.Minute)
	urlA, urlB := "http://"+addrA+"/api/v1/ingest", "http://"+addrB+"/api/v1/ingest"

	p := startExporter(t, []string{"PROCSCOPE_API_KEY=real-aggregator-failover-key"},
		"--push.url="+urlA, "--push.url="+urlB, "--push.interval="+interval.String(), "--state.dir="+t.TempDir(),
		"--collect.sample-window=0", "--collect.top-n=50", "--push.timeout=2s")
	host, _ := os.Hostname()
	count := func(addr string) int { m, _ := storedSnapshots(t, addr, host, start); return len(m) }
	waitFor(t, 20*time.Second, "10 snapshots are stored by the first", func() bool { return count(addrA) >= 10 })
	if n, active := p.failoverStats(t); n != 0 || active != urlA {
		t.Fatalf("before the kill: %d failovers, sending to %q", n, active)
	}
	_ = a.Process.Signal(syscall.SIGKILL)
	_ = a.Wait()
	waitFor(t, 30*time.Second, "10 snapshots are stored by the second", func() bool { return count(addrB) >= 10 })
	if n, active := p.failoverStats(t); n != 1 || active != urlB {
		t.Errorf("after the kill: %d failovers, sending to %q; want 1, %s", n, active, urlB)
	}

	// The first's file, as the kill left it.
	addrA2 := testutil.FreePort(t)
	startAggregator(t, agg, addrA2, storageA)
	union := func() map[string]bool {
		inA, _ := storedSnapshots(t, addrA2, host, start)
		inB, _ := storedSnapshots(t, addrB, host, start)
		for k := range inB {
			inA[k] = true
		}
		return inA
	}
	// all is what was stored at the moment the counters st describe (the
	// exporter walks on until it stops).
	var all map[string]bool
	st := drained(t, p, 30*time.Second, func() int { all = union(); return len(all) })
	p.stop(t, 15*time.Second)

	inA, dupsA := storedSnapshots(t, addrA2, host, start)
	inB, dupsB := storedSnapshots(t, addrB, host, start)
	both := 0
	for k := range inA {
		if inB[k] {
			both++
		}
	}
	lost := st.queued - len(all) - st.dropped
	t.Logf("failover, first aggregator SIGKILLed: queued %d, stored first %d + second %d (in both %d), "+
		"acknowledged %d, dropped %d, failed attempts %d, lost %d",
		st.queued, len(inA), len(inB), both, st.sent, st.dropped, st.failed, lost)
	if lost != 0 || st.dropped != 0 {
		t.Errorf("lost %d, dropped %d", lost, st.dropped)
	}
	if dupsA != 0 || dupsB != 0 || both > 1 {
		t.Errorf("duplicates: %d in the first, %d in the second, %d in both (at most the one in flight)", dupsA, dupsB, both)
	}
	if st.sent != len(all) {
		t.Errorf("acknowledged %d, stored %d", st.sent, len(all))
	}
	if c := strings.Count(p.logs(), "failing over"); c != 1 {
		t.Errorf("%d failover lines, want 1:\n%s", c, p.logs())
	}
}
