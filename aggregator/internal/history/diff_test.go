package history

import (
	"cmp"
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
