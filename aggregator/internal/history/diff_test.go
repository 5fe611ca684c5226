package history

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// referenceDiff is the diff as it was computed before issue 11 (string
// keys in maps, every change collected and sorted): the new one must
// agree with it, list for list, except for the limit.
func referenceDiff(older, newer []snapshot.Process) (started, exited []snapshot.Process, cpu, mem []Change) {
	key := func(p *snapshot.Process) string {
		if p.CreateTime != "" {
			return strconv.FormatInt(p.PID, 10) + "\x00t" + p.CreateTime
		}
		return strconv.FormatInt(p.PID, 10) + "\x00n" + p.Name
	}
	before := map[string]*snapshot.Process{}
	for i := range older {
		before[key(&older[i])] = &older[i]
	}
	matched := map[string]bool{}
	for i := range newer {
		p := &newer[i]
		o, ok := before[key(p)]
		if !ok {
			started = append(started, *p)
			continue
		}
		matched[key(p)] = true
		ch := func(b, a float64) Change {
			return Change{PID: p.PID, Name: p.Name, CreateTime: p.CreateTime, Before: b, After: a, Delta: a - b}
		}
		if o.CPUPercent != p.CPUPercent {
			cpu = append(cpu, ch(o.CPUPercent, p.CPUPercent))
		}
		if o.MemoryMB != p.MemoryMB {
			mem = append(mem, ch(o.MemoryMB, p.MemoryMB))
		}
	}
	for i := range older {
		if !matched[key(&older[i])] {
			exited = append(exited, older[i])
		}
	}
	byIdent := func(a, b snapshot.Process) int { return cmpProc(&a, &b) }
	slices.SortStableFunc(started, byIdent)
	slices.SortStableFunc(exited, byIdent)
	top := func(cs []Change) []Change {
		slices.SortStableFunc(cs, func(a, b Change) int {
			if c := cmp.Compare(math.Abs(b.Delta), math.Abs(a.Delta)); c != 0 {
				return c
			}
			return cmp.Compare(a.PID, b.PID)
		})
		return cs[:min(len(cs), maxChanges)]
	}
	return started, exited, top(cpu), top(mem)
}

func TestDiffMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	table := func(n int) []snapshot.Process {
		ps := make([]snapshot.Process, n)
		for i := range ps {
			ps[i] = snapshot.Process{
				PID: int64(r.IntN(60)), Name: fmt.Sprint("p", r.IntN(3)),
				CPUPercent: float64(r.IntN(4)), MemoryMB: float64(r.IntN(4)),
			}
			if r.IntN(2) == 0 {
				ps[i].CreateTime = fmt.Sprint("t", r.IntN(3))
			}
		}
		return ps // unsorted, with duplicate identities now and then
	}
	for i := range 3000 {
		older, newer := table(r.IntN(50)), table(r.IntN(50))
		started, exited, cpu, mem := referenceDiff(older, newer)
		d := DiffProcesses(1, slices.Clone(older), 2, slices.Clone(newer), 0)
		if d.StartedTotal != len(started) || d.ExitedTotal != len(exited) ||
			!reflect.DeepEqual(d.Started, orEmpty(started)) || !reflect.DeepEqual(d.Exited, orEmpty(exited)) {
			t.Fatalf("case %d: started %v exited %v\nwant %v and %v", i, d.Started, d.Exited, started, exited)
		}
		// Equal |delta| and PID (duplicate rows) may come in any order.
		same := func(a, b []Change) bool {
			return len(a) == len(b) && slices.EqualFunc(a, b, func(x, y Change) bool {
				return x.PID == y.PID && math.Abs(x.Delta) == math.Abs(y.Delta)
			})
		}
		if !same(d.CPUChanges, cpu) || !same(d.MemoryChanges, mem) {
			t.Fatalf("case %d: changes %v %v\nwant %v %v", i, d.CPUChanges, d.MemoryChanges, cpu, mem)
		}
		d = DiffProcesses(1, slices.Clone(older), 2, slices.Clone(newer), 3)
		if d.StartedTotal != len(started) || !reflect.DeepEqual(d.Started, orEmpty(started[:min(3, len(started))])) ||
			d.ExitedTotal != len(exited) || !reflect.DeepEqual(d.Exited, orEmpty(exited[:min(3, len(exited))])) {
			t.Fatalf("case %d, limit 3: started %v exited %v", i, d.Started, d.Exited)
		}
	}
}

func orEmpty(ps []snapshot.Process) []snapshot.Process {
	if ps == nil {
		return []snapshot.Process{}
	}
	return ps
}

func TestDiffMovers(t *testing.T) {
	P := func(pid int64, name string, cpu, mem float64) snapshot.Process {
		return snapshot.Process{PID: pid, Name: name, CPUPercent: cpu, MemoryMB: mem}
	}
	older := []snapshot.Process{
		P(1, "init", 0.1, 10),
		P(2, "java", 40, 2000), // exits
		P(3, "idle", 0, 5),     // unchanged: no mover
		P(4, "db", 5, 500),     // changes
	}
	newer := []snapshot.Process{P(1, "init", 0.1, 10), P(3, "idle", 0, 5), P(4, "db", 7, 900)}
	for i := range 12 {
		newer = append(newer, P(int64(100+i), "chromium", 2, 100))
	}
	newer = append(newer, P(200, "sleep", 0, 0)) // started, uses nothing: no mover
	d := DiffProcessesRAM(1, older, 2, newer, 0, 16384)
	if d.StartedTotal != 13 || d.StartedCPU != 24 || d.StartedMemory != 1200 || d.ExitedCPU != 40 || d.ExitedMemory != 2000 {
		t.Errorf("totals: started %d %.1f%% %.1f MiB, exited %.1f%% %.1f MiB", d.StartedTotal, d.StartedCPU, d.StartedMemory, d.ExitedCPU, d.ExitedMemory)
	}
	type row struct {
		kind, name string
		count      int
		cpu, mem   float64
	}
	var got []row
	for _, m := range d.Movers {
		got = append(got, row{m.Kind, m.Name, m.Count, m.CPUDelta, m.MemoryDelta})
	}
	// impacts: java 40 + 100*2000/16384 = 52.2; chromium 24 + 7.3 = 31.3; db 2 + 2.4 = 4.4
	want := []row{{"exited", "java", 1, -40, -2000}, {"started", "chromium", 12, 24, 1200}, {"changed", "db", 1, 2, 400}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("movers\n got %+v\nwant %+v", got, want)
	}
	if c := d.Movers[1]; !reflect.DeepEqual(c.PIDs, []int64{100, 101, 102, 103, 104}) || c.CPUBefore != 0 || c.CPUAfter != 24 {
		t.Errorf("chromium group %+v: want the first %d pids, before 0", c, maxMoverPIDs)
	}
	if m := d.Movers[0]; math.Abs(m.Impact-(40+100*2000.0/16384)) > 1e-9 {
		t.Errorf("java impact %v", m.Impact)
	}
	// RAM weighs memory: with a tiny RAM, the memory-heavy db outranks chromium's CPU.
	d = DiffProcessesRAM(1, older, 2, newer, 0, 1024)
	if d.Movers[1].Name != "chromium" || d.Movers[2].Name != "db" || d.Movers[0].Name != "java" {
		// java 40+195, chromium 24+117, db 2+39
		t.Errorf("ranking with 1 GiB RAM: %+v", d.Movers)
	}
	d = DiffProcessesRAM(1, []snapshot.Process{P(4, "db", 5, 500)}, 2, []snapshot.Process{P(4, "db", 5, 500)}, 0, 1024)
	if d.Movers == nil || len(d.Movers) != 0 {
		t.Errorf("no change: movers %v, want []", d.Movers)
	}
}

func TestDiffMoversBounded(t *testing.T) {
	var newer []snapshot.Process
	for i := range maxMoverGroups + 500 {
		newer = append(newer, snapshot.Process{PID: int64(i + 1), Name: fmt.Sprintf("n%d", i), CPUPercent: 1})
	}
	d := DiffProcesses(1, nil, 2, newer, 100)
	if len(d.Movers) != maxMovers {
		t.Fatalf("%d movers, want at most %d", len(d.Movers), maxMovers)
	}
	if d.Movers[0].Name != moverOverflow || d.Movers[0].Count != 500 {
		t.Errorf("names beyond %d fold into one group: first mover %+v", maxMoverGroups, d.Movers[0])
	}
	if d.StartedTotal != maxMoverGroups+500 || len(d.Started) != 100 {
		t.Errorf("started %d listed of %d", len(d.Started), d.StartedTotal)
	}
}

func TestRAMMiB(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want float64
	}{
		{[]string{`{"memory":{"total_bytes":34359738368}}`}, 32768},
		{[]string{`{"cpu":{}}`, `{"memory":{"total_bytes":1073741824}}`}, 1024},
		{[]string{`{"memory":{"total_bytes":-5}}`, `not json`, ``}, 0},
		{nil, 0},
	} {
		var raws []json.RawMessage
		for _, s := range c.in {
			raws = append(raws, json.RawMessage(s))
		}
		if got := ramMiB(raws...); got != c.want {
			t.Errorf("ramMiB(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestDiffMoversFollowLimit(t *testing.T) {
	var newer []snapshot.Process
	for i := range 30 {
		newer = append(newer, snapshot.Process{PID: int64(i + 1), Name: fmt.Sprintf("n%d", i), CPUPercent: float64(i + 1)})
	}
	for _, c := range []struct{ limit, want int }{{0, 30}, {2, 2}, {1000, 30}} {
		d := DiffProcesses(1, nil, 2, newer, c.limit)
		if len(d.Movers) != c.want || d.Movers[0].Name != "n29" {
			t.Errorf("limit %d: %d movers (first %q), want %d", c.limit, len(d.Movers), d.Movers[0].Name, c.want)
		}
	}
}
