package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procscope/procscope/internal/apptest"
)

// TestLoadReadsBack runs a short, slow load against the real aggregator
// binary (behind a proxy that records which connection each key pushes
// on) and expects every snapshot acknowledged and read back; then it
// checks that a lost snapshot is noticed (the read-back can fail).
func TestLoadReadsBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin, err := apptest.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Every simulated host is new and pushes from 127.0.0.1: lift the
	// enrolment limits, as -spawn does.
	p, err := apptest.Start(bin, t.TempDir(), 2*time.Minute, "--hosts.enroll-rate=0", "--hosts.max=0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if !p.Stop(30 * time.Second) {
			t.Errorf("the aggregator did not stop cleanly:\n%s", p.Log())
		}
	}()
	target, err := url.Parse(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	// Which connections each key pushed on, and the most ingests in flight.
	var mu sync.Mutex
	remotes := map[string]map[string]bool{}
	var inFlight, maxInFlight atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/ingest") {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
			}
			mu.Lock()
			k := r.Header.Get("X-API-KEY")
			if remotes[k] == nil {
				remotes[k] = map[string]bool{}
			}
			remotes[k][r.RemoteAddr] = true
			mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()

	// Both workloads: evolve (the default, a table changing push by
	// push) and rotate with command lines (the worst case). Every snapshot
	// is compared process by process.
	for _, wl := range []struct {
		name    string
		cmdline bool
	}{{"evolve", false}, {"rotate", true}} {
		cfg := config{url: srv.URL, hosts: 3, rate: 30, duration: time.Second, procs: 40, variants: 2,
			workers: 4, cmdline: wl.cmdline, workload: wl.name, seed: 5, keyPrefix: "k-", hostPrefix: "t-" + wl.name + "-", verifyContent: 1}
		w, err := prepareWorkload(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.prepared = w
		res, err := load(ctx, cfg, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if res.errors != 0 || res.lost != 0 || res.created != 30 || res.verified != 30 || res.contentChecked != 30 {
			t.Fatalf("%s: result %+v", wl.name, res)
		}
		// One connection per simulated host, as real exporters: each key
		// on one connection of its own.
		mu.Lock()
		seen := map[string]string{}
		for k, rs := range remotes {
			if len(rs) != 1 {
				t.Errorf("%s: key %s pushed on %d connections", wl.name, k, len(rs))
			}
			for r := range rs {
				if other, ok := seen[r]; ok {
					t.Errorf("%s: keys %s and %s share connection %s", wl.name, k, other, r)
				}
				seen[r] = k
			}
		}
		if len(remotes) != cfg.hosts {
			t.Errorf("%s: %d keys pushed, want %d", wl.name, len(remotes), cfg.hosts)
		}
		clear(remotes)
		mu.Unlock()
		var out strings.Builder
		res.print(&out)
		if !strings.Contains(out.String(), "lost=0") {
			t.Fatalf("%s: report: %s", wl.name, out.String())
		}

		// The content check compares what was sent: with one process's
		// memory changed in the expected list, the read-back of that
		// acknowledged snapshot must fail.
		a := res.acks[0]
		hb := &w.hosts[a.host]
		v := a.k % len(hb.tails)
		want := hb.check[v]
		if len(want) == 0 {
			t.Fatalf("%s: no expected processes kept for host %d push %d", wl.name, a.host, a.k)
		}
		want[len(want)-1].MemoryMB += 0.01
		bad := &result{codes: map[int]int{}}
		verify(ctx, cfg, srv.Client(), hostsOf(cfg, w), []ack{a}, bad)
		if bad.lost != 1 || len(bad.lostSample) != 1 || !strings.Contains(bad.lostSample[0], "differ") {
			t.Fatalf("%s: a changed process must be noticed: %+v", wl.name, bad)
		}

		// An acknowledged id the aggregator does not have (as if the
		// snapshot were lost after the answer) counts as lost.
		missing := a
		missing.id = 1 << 40
		gone := &result{codes: map[int]int{}}
		verify(ctx, cfg, srv.Client(), hostsOf(cfg, w), []ack{missing}, gone)
		if gone.lost != 1 || len(gone.lostSample) != 1 || !strings.Contains(gone.lostSample[0], "status 404") {
			t.Fatalf("%s: a missing snapshot must count as lost: %+v", wl.name, gone)
		}
	}

	// -concurrency below -hosts: never more requests in flight than that,
	// even with every push due at once; -push-procs is undone after the push.
	maxInFlight.Store(0)
	cfg := config{url: srv.URL, hosts: 4, rate: 4000, duration: 5 * time.Millisecond, procs: 10,
		workers: 1, workload: "evolve", seed: 5, keyPrefix: "k-", hostPrefix: "t-one-", verifyContent: 0, pushProcs: 1}
	procs := runtime.GOMAXPROCS(0)
	res, err := load(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Fatalf("GOMAXPROCS %d after the push, was %d", got, procs)
	}
	if res.errors != 0 || res.created != 20 || res.lost != 0 || maxInFlight.Load() != 1 {
		t.Fatalf("with -concurrency 1: %d in flight at most, result %+v", maxInFlight.Load(), res)
	}
}

// TestSnapshotID: the fast path and the encoding/json fallback agree, and
// an answer without an id is 0 (counted as an error, never as acknowledged).
func TestSnapshotID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{
		`{"snapshot_id":42}` + "\n":              42,
		`{"snapshot_id": 7, "extra": true}`:      7,
		` { "snapshot_id" : 9 } `:                9,
		`{"error":"the API key does not match"}`: 0,
		`{"snapshot_id":"12"}`:                   0,
		`<html>`:                                 0,
		``:                                       0,
	} {
		if got := snapshotID([]byte(in)); got != want {
			t.Errorf("snapshotID(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestSumRuns: rounds add up by totals (a CPU figure weighted by each
// round's snapshots, not an average of averages), and any error or loss in
// any round shows in the sum.
func TestSumRuns(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	a := &runResult{res: &result{created: 300, elapsed: time.Second, lat: []time.Duration{1 * ms, 2 * ms, 3 * ms}}, aggPushCPU: 1000, selfPushCPU: 100}
	b := &runResult{res: &result{created: 100, repeated: 0, errors: 2, lost: 1, elapsed: time.Second, lat: []time.Duration{10 * ms}}, aggPushCPU: 2000, selfPushCPU: 300}
	s := sumRuns([]*runResult{a, b})
	if s.acked != 400 || s.errors != 2 || s.lost != 1 || s.elapsed != 2*time.Second {
		t.Fatalf("sum %+v", s)
	}
	if s.rate() != 200 || s.aggCPU != 1250 || s.selfCPU != 150 {
		t.Fatalf("rate %v, cpu %v / %v; want 200, 1250 / 150", s.rate(), s.aggCPU, s.selfCPU)
	}
	if len(s.lat) != 4 || s.lat[0] != ms || s.lat[3] != 10*ms {
		t.Fatalf("latencies %v", s.lat)
	}
}

// TestFlagsNeedingSpawn: flags that only make sense with -spawn, and a
// negative warm-up, are refused with a message instead of ignored.
func TestFlagsNeedingSpawn(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-warmup", "2s"},
		{"-rounds", "2"},
		{"-aggregator-flag=--no-history"},
		{"-spawn", "-warmup", "-1s"},
	} {
		var out, errOut strings.Builder
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, errOut.String())
		}
		if errOut.Len() == 0 {
			t.Errorf("%q: no message", args)
		}
	}
}
