package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// storedSnapshots is the captured_at of every snapshot of host the
// aggregator at addr holds, with the number of duplicates.
func storedSnapshots(t *testing.T, addr, host string, from time.Time) (map[string]bool, int) {
	t.Helper()
	u := fmt.Sprintf("http://%s/api/v1/hosts/%s/snapshots?from=%s&to=%s&limit=10000", addr, url.PathEscape(host),
		url.QueryEscape(from.UTC().Format(time.RFC3339)), url.QueryEscape(time.Now().Add(time.Minute).UTC().Format(time.RFC3339)))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", u, resp.Status)
	}
	var refs []struct {
		CapturedAt string `json:"captured_at"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&refs); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	dups := 0
	for _, r := range refs {
		if seen[r.CapturedAt] {
			dups++
		}
		seen[r.CapturedAt] = true
	}
	return seen, dups
}

// TestFailoverRealAggregators: the exporter pushes every 100 ms with two
// --push.url to two real aggregators that share nothing (one SQLite file
// each). The first is killed with SIGKILL mid-run and stays dead; the
// exporter moves to the second. Every snapshot it queued is stored: the
// first's file (read back after a restart) and the second's together hold
// them all. At most the one request in flight at the kill can be stored
// by both (the first committed it but died before answering); with a
// shared PostgreSQL that resend would be idempotent.
func TestFailoverRealAggregators(t *testing.T) {
	agg := aggregatorBinary(t)
	const interval = 100 * time.Millisecond
	addrA, addrB := freeAddr(t), freeAddr(t)
	storageA, storageB := t.TempDir(), t.TempDir()
	a := startAggregator(t, agg, addrA, storageA)
	startAggregator(t, agg, addrB, storageB)
	start := time.Now().Add(-time.Minute)

	p := startExporter(t, []string{"PROCSCOPE_API_KEY=real-aggregator-failover-key"},
		"--push.url=http://"+addrA+"/api/v1/ingest", "--push.url=http://"+addrB+"/api/v1/ingest",
		"--push.interval="+interval.String(), "--state.dir="+t.TempDir(), "--collect.sample-window=0",
		"--collect.top-n=50", "--push.timeout=2s")
	time.Sleep(2 * time.Second)
	_ = a.Process.Signal(syscall.SIGKILL)
	_ = a.Wait()
	time.Sleep(3 * time.Second)
	p.stop(t, 15*time.Second)

	logs := p.logs()
	m := flushedRE.FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("no final stats line:\n%s", logs)
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	left, queued, sent, failed, dropped := n(1), n(2), n(3), n(4), n(5)

	// The first aggregator's file, as the kill left it.
	startAggregator(t, agg, addrA, storageA)
	host, _ := os.Hostname()
	inA, dupsA := storedSnapshots(t, addrA, host, start)
	inB, dupsB := storedSnapshots(t, addrB, host, start)
	both := 0
	union := map[string]bool{}
	for k := range inA {
		union[k] = true
		if inB[k] {
			both++
		}
	}
	for k := range inB {
		union[k] = true
	}
	lost := queued - len(union) - left - dropped
	t.Logf("failover, first aggregator SIGKILLed: queued %d, stored first %d + second %d (in both %d), "+
		"acknowledged %d, left %d, dropped %d, failed attempts %d, lost %d",
		queued, len(inA), len(inB), both, sent, left, dropped, failed, lost)
	if len(inA) == 0 || len(inB) == 0 {
		t.Errorf("one aggregator stored nothing (first %d, second %d): no failover happened", len(inA), len(inB))
	}
	if lost != 0 || dropped != 0 || left != 0 {
		t.Errorf("lost %d, dropped %d, left %d", lost, dropped, left)
	}
	if dupsA != 0 || dupsB != 0 || both > 1 {
		t.Errorf("duplicates: %d in the first, %d in the second, %d in both (at most the one in flight)", dupsA, dupsB, both)
	}
	if sent != len(union) {
		t.Errorf("acknowledged %d, stored %d", sent, len(union))
	}
	if c := strings.Count(logs, "failing over"); c != 1 {
		t.Errorf("%d failover lines, want 1:\n%s", c, logs)
	}
	if !strings.Contains(logs, `failovers=1 push_url=http://`+addrB) {
		t.Errorf("final line does not show one failover to the second URL:\n%s", logs)
	}
}
