package history

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"

	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// TestNameCacheBounded: process names that leave the top K are dropped
// after nameIdleSnapshots snapshots, churn cannot grow a host's cache past
// its cap, and idle hosts leave the cache.
func TestNameCacheBounded(t *testing.T) {
	h := openTest(t, t.TempDir(), Options{TopK: 2})
	at := time.Unix(1.7e9, 0)
	req := func(step int, pids ...int64) *store.IngestRequest {
		var procs []snapshot.Process
		for _, p := range pids {
			procs = append(procs, snapshot.Process{PID: p, Name: "p", CPUPercent: 1, MemoryMB: 1})
		}
		return testRequest("web-1", at.Add(time.Duration(step)*2*time.Second), 1, procs)
	}
	hn := func() *hostNames {
		h.names.mu.Lock()
		defer h.names.mu.Unlock()
		return h.names.hosts["web-1"]
	}
	h.buildRows(req(0, 1, 2))
	h.buildRows(req(1, 3, 4))
	if got := len(hn().procs); got != 4 {
		t.Fatalf("%d cached processes after two snapshots of 2, want 4", got)
	}
	for step := 2; step < 2+2*nameIdleSnapshots; step++ {
		h.buildRows(req(step, 3, 4))
	}
	if got := len(hn().procs); got != 2 {
		t.Errorf("%d cached processes, want only the 2 still written", got)
	}
	// Every snapshot a new top: the cache stays under its cap.
	limit := 8*h.topK + 256
	for step := range 1000 {
		h.buildRows(req(step, int64(1000+2*step), int64(1001+2*step)))
		if n := len(hn().procs); n > limit+2 {
			t.Fatalf("step %d: %d cached processes, cap %d", step, n, limit)
		}
	}
	// Hosts not seen for hostIdleAdds snapshots are swept.
	other := testRequest("web-2", at, 1, nil)
	for range hostIdleAdds + 2*hostSweepEvery {
		h.names.host(other.Hostname)
	}
	if hn() != nil {
		t.Errorf("idle host still cached")
	}
	if n := h.names.len(); n != 1 {
		t.Errorf("%d hosts cached, want 1", n)
	}
}

// TestNameCacheHostCap: a pusher inventing hostnames cannot grow the cache
// past maxCachedHosts; hosts beyond it still get correct rows.
func TestNameCacheHostCap(t *testing.T) {
	h := openTest(t, t.TempDir(), Options{TopK: 1})
	fresh := openTest(t, t.TempDir(), Options{TopK: 1})
	for i := range maxCachedHosts + 50 {
		req := testRequest(fmt.Sprint("h-", i), time.Unix(1.7e9, 0), 1, []snapshot.Process{{PID: 1, Name: "p", CPUPercent: 1}})
		rows, _ := h.buildRows(req)
		if i >= maxCachedHosts {
			want, _ := fresh.buildRows(req)
			if fmt.Sprint(rows) != fmt.Sprint(want) {
				t.Fatalf("host %d beyond the cap: rows %v, want %v", i, rows, want)
			}
		}
	}
	if n := h.names.len(); n != maxCachedHosts {
		t.Errorf("%d hosts cached, want the cap %d", n, maxCachedHosts)
	}
}

// The cached names are shared by queued rows: building a name must copy
// the labels it was given.
func TestNewSeriesNameCopies(t *testing.T) {
	ls := []prompb.Label{{Name: labelName, Value: "m"}, {Name: LabelHostname, Value: "a"}}
	n := newSeriesName(ls...)
	ls[1].Value = "b"
	if n.labels[1].Value != "a" || n.labels[0].Value != "m" {
		t.Errorf("labels changed with the caller's slice: %v", n.labels)
	}
	if !bytes.Contains(n.raw, []byte("a")) || bytes.Contains(n.raw, []byte("b")) {
		t.Errorf("raw name %q", n.raw)
	}
}

// TestBuildRowsConcurrent: ingest calls Add from many goroutines, several
// for one host at a time, and each gets the rows one goroutine alone
// builds; run with -race.
func TestBuildRowsConcurrent(t *testing.T) {
	h := openTest(t, t.TempDir(), Options{TopK: 4})
	alone := openTest(t, t.TempDir(), Options{TopK: 4})
	hosts := []*synthHost{newSynthHost(0, 5), newSynthHost(1, 5)}
	start := time.Now().Add(-time.Hour)
	var reqs []*store.IngestRequest
	var wants []string
	for step := range 50 {
		for _, s := range hosts {
			req := s.next(step, start)
			reqs = append(reqs, req)
			rows, _ := alone.buildRows(req)
			wants = append(wants, fmt.Sprint(rows))
		}
	}
	done := make(chan string, 4)
	for w := range 4 {
		go func() {
			for i := w; i < len(reqs); i += 2 { // two workers per request
				rows, _ := h.buildRows(reqs[i])
				if fmt.Sprint(rows) != wants[i] {
					done <- fmt.Sprintf("request %d: rows differ", i)
					return
				}
			}
			done <- ""
		}()
	}
	for range 4 {
		if msg := <-done; msg != "" {
			t.Error(msg)
		}
	}
}

// TestWriterCoalescesBatches: snapshots arriving within the writer's wait
// go to the storage in one AddRows call, and a flush request ends the
// wait at once.
func TestWriterCoalescesBatches(t *testing.T) {
	h, calls := openCounting(t, t.TempDir(), Options{}, 10*time.Second)
	at := time.Now().Add(-time.Minute)
	for i := range 5 {
		h.Add(testRequest(fmt.Sprint("web-", i), at, 1, nil))
	}
	start := time.Now()
	if err := h.Flush(time.Minute); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("flush took %s: it waited for the batch", d)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d AddRows calls for 5 snapshots, want 1", n)
	}
	if st := h.Stats(); st.RowsWritten != 5*10 || st.Dropped != 0 {
		t.Errorf("stats %+v, want 50 rows written", st)
	}
}

// TestTopProcesses: random tables full of ties, zeros, negatives, NaN and
// infinities rank as sortedTop defines it, for several K.
func TestTopProcesses(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	vals := []float64{0, 0, 1, 1, 2, 3.5, 3.5, 100, -1, math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64}
	sc := new(scratch)
	for iter := range 3000 {
		n := rng.IntN(60)
		procs := make([]snapshot.Process, n)
		for i := range procs {
			procs[i] = snapshot.Process{PID: int64(rng.IntN(40)), CPUPercent: vals[rng.IntN(len(vals))], MemoryMB: vals[rng.IntN(len(vals))]}
			if rng.IntN(2) == 0 {
				procs[i].CPUPercent = rng.Float64() * 10
				procs[i].MemoryMB = float64(rng.IntN(20))
			}
		}
		for _, k := range []int{0, 1, 3, 10, 100} {
			got := topProcesses(procs, k, sc)
			want := sortedTop(procs, k)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("iteration %d, k=%d: %v, want %v (table %v)", iter, k, got, want, procs)
			}
		}
	}
}

// sortedTop is topProcesses' definition, written the slow, obvious way:
// of the processes with a positive, finite value, the K first by value
// (highest first, then lower PID, then table order), for CPU and for
// memory; the union in table order.
func sortedTop(procs []snapshot.Process, k int) []int {
	pick := func(val func(p *snapshot.Process) float64) []int {
		var idx []int
		for i := range procs {
			if v := val(&procs[i]); v > 0 && !math.IsInf(v, 0) {
				idx = append(idx, i)
			}
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			va, vb := val(&procs[a]), val(&procs[b])
			if c := cmp.Compare(vb, va); c != 0 {
				return c
			}
			return cmp.Compare(procs[a].PID, procs[b].PID)
		})
		return idx[:min(max(k, 0), len(idx))]
	}
	union := append(pick(func(p *snapshot.Process) float64 { return p.CPUPercent }),
		pick(func(p *snapshot.Process) float64 { return p.MemoryMB })...)
	slices.Sort(union)
	return slices.Compact(union)
}
