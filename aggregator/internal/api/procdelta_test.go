package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// deltaAnswer is the delta answer as a client reads it.
type deltaAnswer struct {
	SnapshotID   int64             `json:"snapshot_id"`
	Since        int64             `json:"since"`
	ProcessCount int               `json:"process_count"`
	Changed      []json.RawMessage `json:"changed"`
	Gone         []int64           `json:"gone"`
	PIDs         []int64           `json:"pids"`
}

// applyDelta rebuilds the list as the UI does (web/ui/static/js/api.js
// applyDelta): the held rows by pid, gone ones removed, changed ones
// replaced or added, in the order pids gives, else by ascending pid.
func applyDelta(t *testing.T, held []json.RawMessage, d deltaAnswer) []json.RawMessage {
	t.Helper()
	byPID := map[int64]json.RawMessage{}
	pidOf := func(row json.RawMessage) int64 {
		var p struct {
			PID int64 `json:"pid"`
		}
		if err := json.Unmarshal(row, &p); err != nil {
			t.Fatal(err)
		}
		return p.PID
	}
	for _, r := range held {
		byPID[pidOf(r)] = r
	}
	for _, pid := range d.Gone {
		if _, ok := byPID[pid]; !ok {
			t.Fatalf("gone pid %d was not held", pid)
		}
		delete(byPID, pid)
	}
	for _, r := range d.Changed {
		byPID[pidOf(r)] = r
	}
	order := d.PIDs
	if order == nil {
		for pid := range byPID {
			order = append(order, pid)
		}
		slices.Sort(order)
	}
	if len(order) != len(byPID) || len(order) != d.ProcessCount {
		t.Fatalf("rebuilt %d rows, order of %d, process_count %d", len(byPID), len(order), d.ProcessCount)
	}
	out := make([]json.RawMessage, 0, len(order))
	for _, pid := range order {
		out = append(out, byPID[pid])
	}
	return out
}

func (e *env) fullList(id int64) []json.RawMessage {
	e.t.Helper()
	r := e.get(fmt.Sprintf("/api/v1/snapshots/%d/processes", id))
	mustStatus(e.t, r, http.StatusOK)
	var l []json.RawMessage
	if err := json.Unmarshal([]byte(r.body), &l); err != nil {
		e.t.Fatal(err)
	}
	return l
}

func (e *env) delta(id, since int64) deltaAnswer {
	e.t.Helper()
	r := e.get(fmt.Sprintf("/api/v1/snapshots/%d/processes?since=%d", id, since))
	mustStatus(e.t, r, http.StatusOK)
	var d deltaAnswer
	if err := json.Unmarshal([]byte(r.body), &d); err != nil {
		e.t.Fatalf("%v: %s", err, r.body)
	}
	if d.SnapshotID != id || d.Since != since {
		e.t.Fatalf("delta names %d since %d, asked %d since %d", d.SnapshotID, d.Since, id, since)
	}
	return d
}

func (e *env) push(host, key, at string, procs []snapshot.Process) int64 {
	e.t.Helper()
	b, err := json.Marshal(procs)
	if err != nil {
		e.t.Fatal(err)
	}
	r := e.ingest(key, snap(host, at, string(b)))
	if r.code != http.StatusCreated && r.code != http.StatusOK {
		e.t.Fatalf("ingest: %d %s", r.code, r.body)
	}
	var ir ingestResponse
	if err := json.Unmarshal([]byte(r.body), &ir); err != nil {
		e.t.Fatal(err)
	}
	return ir.SnapshotID
}

func strp(s string) *string { return &s }

func rowPIDs(t *testing.T, rows []json.RawMessage) []int64 {
	t.Helper()
	var out []int64
	for _, r := range rows {
		var p struct {
			PID int64 `json:"pid"`
		}
		if err := json.Unmarshal(r, &p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p.PID)
	}
	return out
}

// TestProcessDelta: a process unchanged is left out; one with a new number,
// a rename, a reused pid (another start time), a new command line or a new
// optional field is sent whole; an exited one is in gone; a new one is
// sent; and the list rebuilt from the held one equals the full answer,
// hostile text included (escaped as the full answer escapes it).
func TestProcessDelta(t *testing.T) {
	e := newEnv(t, nil)
	const start = "2026-11-25T16:00:00Z"
	hostile := `<script>alert(1)</script>` + "\u2028"
	io := 10.0
	before := []snapshot.Process{
		{PID: 1, PPID: 0, Name: "systemd", CPUPercent: 0.1, MemoryMB: 12, Cmdline: strp("/sbin/init"), CreateTime: start},
		{PID: 2, PPID: 1, Name: "busy", CPUPercent: 50, MemoryMB: 100, CreateTime: start},
		{PID: 3, PPID: 1, Name: "exits", CPUPercent: 1, MemoryMB: 5, CreateTime: start},
		{PID: 4, PPID: 1, Name: "reused", CPUPercent: 1, MemoryMB: 5, CreateTime: start},
		{PID: 5, PPID: 1, Name: "old-name", CPUPercent: 1, MemoryMB: 5, CreateTime: start},
		{PID: 6, PPID: 1, Name: hostile, CPUPercent: 1, MemoryMB: 5, Cmdline: strp(hostile), CreateTime: start},
		{PID: 7, PPID: 1, Name: "cmd", CPUPercent: 1, MemoryMB: 5, Cmdline: strp("a"), CreateTime: start},
		{PID: 8, PPID: 1, Name: "io", CPUPercent: 1, MemoryMB: 5, CreateTime: start},
	}
	after := []snapshot.Process{
		before[0],
		{PID: 2, PPID: 1, Name: "busy", CPUPercent: 75, MemoryMB: 100, CreateTime: start},
		{PID: 4, PPID: 1, Name: "reborn", CPUPercent: 0, MemoryMB: 1, CreateTime: "2026-11-25T16:59:00Z"},
		{PID: 5, PPID: 1, Name: "new-name", CPUPercent: 1, MemoryMB: 5, CreateTime: start},
		before[5],
		{PID: 7, PPID: 1, Name: "cmd", CPUPercent: 1, MemoryMB: 5, Cmdline: strp("a --b"), CreateTime: start},
		{PID: 8, PPID: 1, Name: "io", CPUPercent: 1, MemoryMB: 5, CreateTime: start, ProcessExt: &snapshot.ProcessExt{ReadBytesPerSec: &io}},
		{PID: 9, PPID: 1, Name: "started", CPUPercent: 3, MemoryMB: 7, CreateTime: "2026-11-25T16:59:30Z"},
	}
	a := e.push("web-1", "key-web-1", "2026-11-25T17:00:00Z", before)
	b := e.push("web-1", "key-web-1", "2026-11-25T17:00:02Z", after)

	d := e.delta(b, a)
	if got, want := rowPIDs(t, d.Changed), []int64{2, 4, 5, 7, 8, 9}; !slices.Equal(got, want) {
		t.Errorf("changed pids %v, want %v", got, want)
	}
	if !slices.Equal(d.Gone, []int64{3}) {
		t.Errorf("gone %v, want [3]", d.Gone)
	}
	if d.PIDs != nil || d.ProcessCount != len(after) {
		t.Errorf("pids %v (want none: the list is in pid order), process_count %d", d.PIDs, d.ProcessCount)
	}
	full := e.fullList(b)
	if got := applyDelta(t, e.fullList(a), d); !slices.EqualFunc(got, full, func(x, y json.RawMessage) bool { return string(x) == string(y) }) {
		t.Errorf("rebuilt list differs from the full answer:\n%s\n%s", got, full)
	}
	r := e.get(fmt.Sprintf("/api/v1/snapshots/%d/processes?since=%d", b, a))
	if strings.Contains(r.body, "<script>") || strings.Contains(r.body, "\u2028") {
		t.Errorf("hostile text must stay escaped: %s", r.body)
	}

	// Nothing changed: an empty delta.
	c := e.push("web-1", "key-web-1", "2026-11-25T17:00:04Z", after)
	if d := e.delta(c, b); len(d.Changed) != 0 || len(d.Gone) != 0 || d.ProcessCount != len(after) {
		t.Errorf("unchanged snapshot: %+v", d)
	}
	// Any older snapshot will do, not only the one just before.
	if got := applyDelta(t, e.fullList(a), e.delta(c, a)); len(got) != len(after) {
		t.Errorf("delta over two snapshots: %d rows", len(got))
	}
}

// TestProcessDeltaOrder: rows not in ascending pid order (the exporter
// decides the order) come with "pids", and the rebuilt list keeps it.
func TestProcessDeltaOrder(t *testing.T) {
	e := newEnv(t, nil)
	mk := func(pids ...int64) []snapshot.Process {
		var out []snapshot.Process
		for _, p := range pids {
			out = append(out, snapshot.Process{PID: p, PPID: 1, Name: fmt.Sprint("p", p), CPUPercent: float64(p), MemoryMB: 1})
		}
		return out
	}
	a := e.push("h", "key-h-1234", "2026-11-25T17:00:00Z", mk(1, 5, 3, 9))
	bl := mk(9, 1, 7, 3)
	bl[1].CPUPercent = 42
	b := e.push("h", "key-h-1234", "2026-11-25T17:00:02Z", bl)
	d := e.delta(b, a)
	if !slices.Equal(d.PIDs, []int64{9, 1, 7, 3}) {
		t.Errorf("pids %v", d.PIDs)
	}
	if got := rowPIDs(t, d.Changed); !slices.Equal(got, []int64{1, 7}) {
		t.Errorf("changed %v, want [1 7] in the snapshot's order", got)
	}
	if !slices.Equal(d.Gone, []int64{5}) {
		t.Errorf("gone %v", d.Gone)
	}
	full := e.fullList(b)
	if got := applyDelta(t, e.fullList(a), d); fmt.Sprint(got) != fmt.Sprint(full) {
		t.Errorf("rebuilt %s, full %s", got, full)
	}
}

// TestProcessDeltaChurn: random churn over many snapshots, ascending or
// shuffled; from any older snapshot the rebuilt list equals the full one.
func TestProcessDeltaChurn(t *testing.T) {
	e := newEnv(t, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	procs := make([]snapshot.Process, 200)
	next := int64(1)
	for i := range procs {
		procs[i] = snapshot.Process{PID: next, PPID: 1, Name: fmt.Sprint("w", next%17), CPUPercent: 1, MemoryMB: 2, CreateTime: "2026-11-25T16:00:00Z"}
		next += 1 + rng.Int64N(3)
	}
	var ids []int64
	at := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	for k := range 12 {
		var nextProcs []snapshot.Process
		for _, p := range procs {
			switch rng.IntN(20) {
			case 0: // exits
				continue
			case 1: // pid reused by another process
				p.Name, p.CreateTime = "again", at.Format(time.RFC3339)
			case 2, 3, 4:
				p.CPUPercent = float64(rng.IntN(400)) / 4
			case 5:
				p.MemoryMB += 1.5
			case 6:
				p.Cmdline = strp(fmt.Sprint("cmd ", rng.IntN(3)))
			}
			nextProcs = append(nextProcs, p)
		}
		for range rng.IntN(10) {
			nextProcs = append(nextProcs, snapshot.Process{PID: next, PPID: 1, Name: "new", CPUPercent: 3, MemoryMB: 1})
			next += 1 + rng.Int64N(5)
		}
		procs = nextProcs
		sent := slices.Clone(procs)
		if k%3 == 2 {
			rng.Shuffle(len(sent), func(i, j int) { sent[i], sent[j] = sent[j], sent[i] })
		}
		ids = append(ids, e.push("churn", "key-churn-1", at.Add(time.Duration(k)*2*time.Second).Format(time.RFC3339), sent))
	}
	for j := 1; j < len(ids); j++ {
		full := fmt.Sprint(e.fullList(ids[j]))
		for i := range j {
			if got := fmt.Sprint(applyDelta(t, e.fullList(ids[i]), e.delta(ids[j], ids[i]))); got != full {
				t.Fatalf("snapshot %d since %d: rebuilt list differs from the full answer", ids[j], ids[i])
			}
		}
	}
}

// TestProcessDeltaRefusals: every answer that sends the client back to
// the full list is one clear JSON error that says so.
func TestProcessDeltaRefusals(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	clock := now
	st, err := store.OpenSQLite(context.Background(), t.TempDir(), store.Options{
		PruneInterval: -1, RetentionRaw: 10 * time.Minute, RetentionMid: 20 * time.Minute, Retention: time.Hour,
		Now: func() time.Time { return clock },
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveStore(t, a, st)
	e := &env{t: t, a: a, st: st, srv: srv}
	ts := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	procs := []snapshot.Process{{PID: 1, Name: "init", MemoryMB: 1}}
	doomed := e.push("web-1", "key-web-1", ts(-2*time.Hour), procs) // retention deletes it below
	older := e.push("web-1", "key-web-1", ts(-2*time.Second), procs)
	newer := e.push("web-1", "key-web-1", ts(0), procs)
	if replay := e.push("web-1", "key-web-1", ts(0), procs); replay != newer {
		t.Fatalf("a replay made snapshot %d (not %d): this test assumes one snapshot per captured_at", replay, newer)
	}
	other := e.push("web-2", "key-web-2", ts(-4*time.Second), procs)
	if n, err := st.Prune(context.Background()); err != nil || n == 0 {
		t.Fatalf("prune: %d deleted, %v", n, err)
	}
	u := func(id int64, since string) string {
		return fmt.Sprintf("/api/v1/snapshots/%d/processes?since=%s", id, since)
	}
	for _, c := range []struct {
		name, path string
		code       int
		msg        string
	}{
		{"empty since", u(newer, ""), 400, "positive integer"},
		{"since not a number", u(newer, "abc"), 400, "positive integer"},
		{"since zero", u(newer, "0"), 400, "positive integer"},
		{"since negative", u(newer, "-1"), 400, "positive integer"},
		{"since out of range", u(newer, "99999999999999999999999"), 404, "fetch the processes without since"},
		{"since unknown", u(newer, "999999"), 404, "fetch the processes without since"},
		{"since deleted by retention", u(newer, fmt.Sprint(doomed)), 404, "retention"},
		{"since of another host", u(newer, fmt.Sprint(other)), 400, "another host"},
		{"since the same snapshot", u(newer, fmt.Sprint(newer)), 400, "captured before"},
		{"since newer", u(older, fmt.Sprint(newer)), 400, "captured before"},
		{"unknown id", u(999999, fmt.Sprint(older)), 404, "no such snapshot"},
		{"bad id", "/api/v1/snapshots/x/processes?since=1", 400, "positive integer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.get(c.path)
			if r.code != c.code {
				t.Fatalf("status %d, want %d: %s", r.code, c.code, r.body)
			}
			if msg := mustJSONError(t, r); !strings.Contains(msg, c.msg) {
				t.Errorf("message %q lacks %q", msg, c.msg)
			}
		})
	}
	if d := e.delta(newer, older); len(d.Changed) != 0 || len(d.Gone) != 0 {
		t.Errorf("older since: %+v", d)
	}
	// The full answer is unchanged by all this.
	if l := e.fullList(newer); len(l) != 1 {
		t.Errorf("full list: %s", l)
	}
}

// TestDiffProcessListsDuplicatePID: a list holding a pid twice (ingest
// refuses those) cannot be patched by pid; the answer says so.
func TestDiffProcessListsDuplicatePID(t *testing.T) {
	one := []snapshot.Process{{PID: 1}, {PID: 2}}
	dup := []snapshot.Process{{PID: 2}, {PID: 1}, {PID: 2}}
	for _, c := range [][2][]snapshot.Process{{one, dup}, {dup, one}} {
		if _, ok := diffProcessLists(c[0], c[1]); ok {
			t.Errorf("%v -> %v: accepted", c[0], c[1])
		}
	}
	if _, ok := diffProcessLists(one, one); !ok {
		t.Error("no duplicates: refused")
	}
}

// TestProcessDeltaReadMemory: the delta between two snapshots of a
// 100,000-process host, read from a store just opened, allocates less than
// readBudget (readmem_test.go), as the full answer does: two lists in
// memory instead of one, no map, the answer streamed. Every process
// changed is the worst case (a reboot), and it is measured too.
func TestProcessDeltaReadMemory(t *testing.T) {
	const n = 100_000
	dir := t.TempDir()
	st, err := store.OpenSQLite(t.Context(), dir, store.Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	procs := workerProcs(n, at)
	var ids []int64
	for k := range 4 { // a keyframe, two deltas of it, and a reboot
		switch k {
		case 1, 2:
			for i := k; i < n; i += 10 {
				procs[i].CPUPercent++
			}
		case 3:
			for i := range procs {
				procs[i].PID += n
			}
		}
		res, err := st.Ingest(t.Context(), &store.IngestRequest{
			Hostname: "big-1", KeyHash: [32]byte{1}, CapturedAt: at.Add(time.Duration(k) * time.Minute),
			SystemInfo: json.RawMessage(`{"cpu":{"usage_percent":1}}`), Processes: procs, ReceivedAt: time.Now(),
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.SnapshotID)
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
	srv := serveStore(t, a, st)
	buf := make([]byte, 32<<20) // read into, allocated before measuring
	for _, c := range []struct {
		name          string
		id, since     int64
		changed, gone int
	}{
		{"a delta since the one before", ids[2], ids[1], n / 10, 0},
		{"a reboot: every process new", ids[3], ids[2], n, n},
	} {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		resp, err := srv.Client().Get(fmt.Sprintf("%s/api/v1/snapshots/%d/processes?since=%d", srv.URL, c.id, c.since))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadFull(resp.Body, buf)
		_ = resp.Body.Close()
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("%s: reading %d bytes: %v", c.name, got, err)
		}
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %.1f MiB allocated, %d bytes answered", c.name, float64(alloc)/(1<<20), got)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", c.name, resp.StatusCode, buf[:got])
		}
		var d deltaAnswer
		if err := json.Unmarshal(buf[:got], &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Changed) != c.changed || len(d.Gone) != c.gone || d.ProcessCount != n {
			t.Errorf("%s: %d changed, %d gone, count %d", c.name, len(d.Changed), len(d.Gone), d.ProcessCount)
		}
		if alloc > readBudget {
			t.Errorf("%s allocated %d bytes, more than %d", c.name, alloc, readBudget)
		}
	}
}
