package history

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"

	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// checkSameRows builds req's rows with h (cached names) and with the
// pre-cache code, and requires the same rows in the same order: same
// series, same label values, same timestamp and value.
func checkSameRows(t *testing.T, h *History, req *store.IngestRequest) {
	t.Helper()
	rows, samples := h.buildRows(req)
	wantRows, wantSamples := legacyBuildRows(req, h.topK)
	if len(rows) != len(wantRows) {
		t.Fatalf("host %q: %d rows, want %d", req.Hostname, len(rows), len(wantRows))
	}
	for i := range rows {
		g, w := rows[i], wantRows[i]
		if !bytes.Equal(g.MetricNameRaw, w.MetricNameRaw) || g.Timestamp != w.Timestamp ||
			math.Float64bits(g.Value) != math.Float64bits(w.Value) {
			t.Fatalf("host %q row %d: %q %d %v, want %q %d %v", req.Hostname, i,
				g.MetricNameRaw, g.Timestamp, g.Value, w.MetricNameRaw, w.Timestamp, w.Value)
		}
	}
	if h.remote == nil {
		if samples != nil {
			t.Fatalf("samples built without remote write")
		}
		return
	}
	if len(samples) != len(wantSamples) {
		t.Fatalf("%d samples, want %d", len(samples), len(wantSamples))
	}
	for i := range samples {
		if fmt.Sprint(samples[i]) != fmt.Sprint(wantSamples[i]) {
			t.Fatalf("sample %d: %v, want %v", i, samples[i], wantSamples[i])
		}
	}
}

// TestBuildRowsMatchesLegacy runs synthetic hosts (restarts, moving top-K)
// and hostile snapshots through the cached path and the old one.
func TestBuildRowsMatchesLegacy(t *testing.T) {
	for _, remote := range []bool{false, true} {
		h := openTest(t, t.TempDir(), Options{TopK: 5})
		if remote {
			// Only buildRows' use of h.remote matters here: it is never
			// started, nothing is sent.
			h.remote = &remoteWriter{}
			t.Cleanup(func() { h.remote = nil }) // runs before Close
		}
		hosts := make([]*synthHost, 8)
		for i := range hosts {
			hosts[i] = newSynthHost(i, 11)
		}
		start := time.Now().Add(-time.Hour)
		for step := range 300 {
			for _, s := range hosts {
				req := s.next(step, start)
				if step%7 == 0 {
					// Churn: a burst of new busy processes now and then.
					for j := range 6 {
						req.Processes = append(req.Processes, snapshot.Process{
							PID: int64(90000 + step*10 + j), Name: fmt.Sprint("job-", step), CPUPercent: 50 + float64(j),
						})
					}
				}
				checkSameRows(t, h, req)
			}
		}
		for _, sys := range hostileSystemInfos {
			long := strings.Repeat("é", 300)
			req := testRequest(long+"\xff", time.Unix(1.7e9, 0), 1, []snapshot.Process{
				{PID: 1, Name: long + "\xff\x00</script>", CPUPercent: 1, MemoryMB: math.NaN()},
				{PID: 2, Name: "", CreateTime: "\xfe", CPUPercent: math.Inf(1), MemoryMB: 1},
				{PID: -3, Name: "a", CPUPercent: 2, MemoryMB: math.MaxFloat64},
				{PID: 4, Name: "a", CPUPercent: 2, MemoryMB: 2},
				{PID: 5, Name: "a\xffb", CPUPercent: 3},
				{PID: 6, Name: "a\xfeb", CPUPercent: 3},
			})
			req.SystemInfo = []byte(sys)
			checkSameRows(t, h, req)
		}
	}
}

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
	for i := range maxCachedHosts + 50 {
		req := testRequest(fmt.Sprint("h-", i), time.Unix(1.7e9, 0), 1, nil)
		if i >= maxCachedHosts {
			checkSameRows(t, h, req)
		} else {
			h.buildRows(req)
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

// TestBuildRowsPIDReuse: a PID taken by another process (other name or
// start time) gets the new process's series, also when two processes of
// one hostile snapshot share a PID.
func TestBuildRowsPIDReuse(t *testing.T) {
	h := openTest(t, t.TempDir(), Options{TopK: 3})
	at := time.Unix(1.7e9, 0)
	for step, procs := range [][]snapshot.Process{
		{{PID: 7, Name: "a", CPUPercent: 5, MemoryMB: 5}},
		{{PID: 7, Name: "b", CPUPercent: 5, MemoryMB: 5}},
		{{PID: 7, Name: "b", CreateTime: "2026-11-25T10:00:00Z", CPUPercent: 5, MemoryMB: 5}},
		{{PID: 7, Name: "a", CPUPercent: 5, MemoryMB: 5}, {PID: 7, Name: "b", CPUPercent: 4, MemoryMB: 4}},
		{{PID: 7, Name: "a", CPUPercent: 5, MemoryMB: 5}, {PID: 7, Name: "b", CPUPercent: 4, MemoryMB: 4}},
	} {
		req := testRequest("web-1", at.Add(time.Duration(step)*2*time.Second), 1, procs)
		checkSameRows(t, h, req)
	}
}

// TestBuildRowsConcurrent: ingest calls Add from many goroutines, several
// for one host at a time; run with -race.
func TestBuildRowsConcurrent(t *testing.T) {
	h := openTest(t, t.TempDir(), Options{TopK: 4})
	hosts := []*synthHost{newSynthHost(0, 5), newSynthHost(1, 5)}
	start := time.Now().Add(-time.Hour)
	var reqs []*store.IngestRequest
	for step := range 50 {
		for _, s := range hosts {
			reqs = append(reqs, s.next(step, start))
		}
	}
	done := make(chan string, 4)
	for w := range 4 {
		go func() {
			for i := w; i < len(reqs); i += 2 { // two workers per request
				rows, _ := h.buildRows(reqs[i])
				want, _ := legacyBuildRows(reqs[i], h.topK)
				if fmt.Sprint(rows) != fmt.Sprint(want) {
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

// TestTopProcessesMatchesLegacy: random tables full of ties, zeros,
// negatives, NaN and infinities rank as before, for several K.
func TestTopProcessesMatchesLegacy(t *testing.T) {
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
			want := legacyTopProcesses(&store.IngestRequest{Processes: procs}, k)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("iteration %d, k=%d: %v, want %v (table %v)", iter, k, got, want, procs)
			}
		}
	}
}
