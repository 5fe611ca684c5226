package history

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// readBudget is the most one history read may allocate (issue 11: "raises
// the heap by at most 64 MiB"). TotalAlloc counts every byte allocated, kept
// or not, so a delta under it is a strict upper bound on the heap's growth.
const readBudget = 64 << 20

// allocatedBy returns the bytes the process allocated while f ran. Other
// goroutines (the storage's background work) count too, which only makes
// the bound stricter.
func allocatedBy(f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// getBody GETs path from srv and reads the whole body.
func getBody(t *testing.T, srv *httptest.Server, path string) (int, []byte) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// fsRequest is a snapshot of host with one filesystem per mountpoint.
func fsRequest(host string, at time.Time, mountpoints []string, procs []snapshot.Process) *store.IngestRequest {
	sys := snapshot.SystemInfo{CPU: snapshot.CPUInfo{UsagePercent: 1}}
	for i, mp := range mountpoints {
		sys.Filesystems = append(sys.Filesystems, snapshot.Filesystem{Mountpoint: mp, UsedBytes: uint64(i+1) << 30})
	}
	raw, err := json.Marshal(sys)
	if err != nil {
		panic(err)
	}
	return withSystem(&store.IngestRequest{Hostname: host, CapturedAt: at, SystemInfo: raw, Processes: procs, ReceivedAt: at})
}

// TestSeriesReadMemory400Days: a 400-day filesystem query over a host with
// 64 filesystems allocates less than readBudget, and every series carries
// at most maxPoints+1 points. The data is what made the old reader size
// each series from its first block's density: four samples a day for 400
// days, and two filesystems mounted an hour ago and sampled every 2 s (an
// hour of 2 s samples "predicts" 17 million points over 400 days; the old
// code reserved 64 MiB for each such series).
func TestSeriesReadMemory400Days(t *testing.T) {
	h := openTest(t, t.TempDir(), Options{TopK: -1})
	st := newTestStore(t)
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	start := end.Add(-maxRange)
	var old, all []string
	for i := range maxFilesystems {
		all = append(all, fmt.Sprintf("/srv/disk%02d", i))
	}
	old = all[:maxFilesystems-2]
	for at := start; at.Before(end.Add(-time.Hour)); at = at.Add(6 * time.Hour) {
		h.Add(fsRequest("db-1", at, old, nil))
	}
	for at := end.Add(-time.Hour); !at.After(end); at = at.Add(2 * time.Second) {
		h.Add(fsRequest("db-1", at, all, nil))
	}
	st.add("db-1", end, nil)
	flush(t, h)
	srv := newTestServer(t, h, st)

	path := "/api/v1/hosts/db-1/series?metric=filesystem&from=" + strconv.FormatInt(start.Unix(), 10) + "&to=" + strconv.FormatInt(end.Unix(), 10)
	var status int
	var body []byte
	alloc := allocatedBy(func() { status, body = getBody(t, srv, path) })
	t.Logf("400-day filesystem query over %d filesystems: %.1f MiB allocated, %d bytes answered", len(all), float64(alloc)/(1<<20), len(body))
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	r := decodeSeries(t, body)
	if len(r.Series) != len(all) {
		t.Fatalf("%d series, want %d", len(r.Series), len(all))
	}
	if want := float64((maxRange.Milliseconds()+maxPoints-1)/maxPoints) / 1000; r.Step != want {
		t.Errorf("step %v, want %v (the range over %d points)", r.Step, want, maxPoints)
	}
	for _, s := range r.Series {
		if len(s.Values) > maxPoints+1 || len(s.Values) == 0 {
			t.Errorf("series %v has %d points, want 1..%d", s.Labels, len(s.Values), maxPoints+1)
		}
	}
	if alloc > readBudget {
		t.Errorf("the request allocated %d bytes, more than %d", alloc, readBudget)
	}
}

// TestProcessSeriesReadMemory400Days: the same bound for a PID's series
// over 400 days: one long-running process sampled four times a day, and
// the PID reused by short-lived processes each seen in three snapshots 2 s
// apart (the old reader reserved 64 MiB for each of those series).
func TestProcessSeriesReadMemory400Days(t *testing.T) {
	h := openTest(t, t.TempDir(), Options{TopK: 1})
	st := newTestStore(t)
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	start := end.Add(-maxRange)
	long := snapshot.Process{PID: 4242, Name: "postgres", CPUPercent: 3, MemoryMB: 200, CreateTime: start.Format(time.RFC3339)}
	n := 0
	for at := start; at.Before(end); at = at.Add(6 * time.Hour) {
		long.CPUPercent = float64(n % 7)
		h.Add(fsRequest("db-1", at, nil, []snapshot.Process{long}))
		n++
	}
	const shortLived = 3
	for i := range shortLived {
		born := start.Add(time.Duration(i+1) * 90 * 24 * time.Hour).Add(time.Hour)
		p := snapshot.Process{PID: 4242, Name: "cron", CPUPercent: 50, MemoryMB: 10, CreateTime: born.Format(time.RFC3339)}
		for k := range 3 {
			h.Add(fsRequest("db-1", born.Add(time.Duration(k)*2*time.Second), nil, []snapshot.Process{p}))
		}
	}
	st.add("db-1", end, nil)
	flush(t, h)
	srv := newTestServer(t, h, st)

	path := "/api/v1/hosts/db-1/processes/4242/series?from=" + strconv.FormatInt(start.Unix(), 10) + "&to=" + strconv.FormatInt(end.Unix(), 10)
	var status int
	var body []byte
	alloc := allocatedBy(func() { status, body = getBody(t, srv, path) })
	t.Logf("400-day process query: %.1f MiB allocated, %d bytes answered", float64(alloc)/(1<<20), len(body))
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	var r ProcessSeriesResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.CPU) != 1+shortLived || len(r.Memory) != 1+shortLived {
		t.Fatalf("%d CPU and %d memory series, want %d each", len(r.CPU), len(r.Memory), 1+shortLived)
	}
	for _, s := range append(r.CPU, r.Memory...) {
		if len(s.Values) > maxPoints+1 {
			t.Errorf("series %v has %d points, want at most %d", s.Labels, len(s.Values), maxPoints+1)
		}
	}
	if alloc > readBudget {
		t.Errorf("the request allocated %d bytes, more than %d", alloc, readBudget)
	}
}

// bigTable is n processes as a busy host reports them: sorted by PID, most
// of them idle, every one with a start time, a user and a state.
func bigTable(n int, firstPID int64, born time.Time, seed int) []snapshot.Process {
	ps := make([]snapshot.Process, n)
	for i := range ps {
		ps[i] = snapshot.Process{
			PID: firstPID + int64(i), PPID: 1, Name: fmt.Sprintf("worker-%d", i%500),
			CPUPercent: float64((i*7+seed)%13) / 2, MemoryMB: float64(10 + (i+seed)%300),
			Username: "app", Status: "sleeping", NumThreads: 4,
			CreateTime: born.Add(time.Duration(i%3600) * time.Second).Format(time.RFC3339),
		}
	}
	return ps
}

// TestDiffReadMemory: diffing two 100,000-process snapshots allocates less
// than readBudget, read from a store just opened (nothing decoded cached),
// both for an ordinary pair (a tenth of the processes replaced, CPU and
// memory moved) and for a reboot (no process in common), where the old
// handler answered 200,000 full process rows.
func TestDiffReadMemory(t *testing.T) {
	const n = 100_000
	dir := t.TempDir()
	st, err := store.OpenSQLite(t.Context(), dir, store.Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	s := &testStore{SQLite: st, t: t}
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	born := at.Add(-24 * time.Hour)
	before := bigTable(n, 100, born, 0)
	churned := bigTable(n, 100, born, 1)
	for i := 0; i < n; i += 10 { // a tenth replaced: new start time
		churned[i].CreateTime = at.Format(time.RFC3339)
		churned[i].Name = "job"
	}
	rebooted := bigTable(n, 100, at.Add(30*time.Second), 2)
	idA := s.add("big-1", at, before)
	idB := s.add("big-1", at.Add(time.Minute), churned)
	idC := s.add("big-1", at.Add(2*time.Minute), rebooted)
	_ = st.Close()

	for _, c := range []struct {
		name             string
		a, b             int64
		started, exited  int
		wantCPU, wantMem bool
	}{
		{"a tenth replaced", idA, idB, n / 10, n / 10, true, true},
		{"reboot", idB, idC, n, n, false, false},
		{"two keyframes", idA, idC, n, n, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Reopened for each: the reads decode both tables from their
			// blobs, nothing cached.
			st, err := store.OpenSQLite(t.Context(), dir, store.Options{PruneInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = st.Close() }()
			srv := newTestServer(t, nil, st)
			var status int
			var body []byte
			path := fmt.Sprintf("/api/v1/snapshots/%d/diff?against=%d", c.b, c.a)
			alloc := allocatedBy(func() { status, body = getBody(t, srv, path) })
			t.Logf("diff of two %d-process snapshots (%s): %.1f MiB allocated, %d bytes answered", n, c.name, float64(alloc)/(1<<20), len(body))
			if status != 200 {
				t.Fatalf("status %d: %s", status, body)
			}
			var d Diff
			if err := json.Unmarshal(body, &d); err != nil {
				t.Fatal(err)
			}
			if d.From != c.a || d.To != c.b {
				t.Errorf("from %d to %d, want %d to %d", d.From, d.To, c.a, c.b)
			}
			if d.StartedTotal != c.started || d.ExitedTotal != c.exited {
				t.Errorf("started %d exited %d in all, want %d and %d", d.StartedTotal, d.ExitedTotal, c.started, c.exited)
			}
			if len(d.Started) != min(c.started, defaultDiffLimit) || len(d.Exited) != min(c.exited, defaultDiffLimit) {
				t.Errorf("%d started and %d exited listed, want the first %d of each", len(d.Started), len(d.Exited), defaultDiffLimit)
			}
			if (len(d.CPUChanges) == maxChanges) != c.wantCPU || (len(d.MemoryChanges) == maxChanges) != c.wantMem {
				t.Errorf("%d CPU and %d memory changes", len(d.CPUChanges), len(d.MemoryChanges))
			}
			if alloc > readBudget {
				t.Errorf("the request allocated %d bytes, more than %d", alloc, readBudget)
			}
		})
	}
}
