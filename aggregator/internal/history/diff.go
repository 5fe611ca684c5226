package history

import (
	"cmp"
	"math"
	"slices"
	"strings"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// maxChanges is how many CPU and memory changes a diff lists.
const maxChanges = 20

// Bounds of the started and exited lists of a diff (?limit=). A reboot of
// a 100,000-process host made every process both exited and started: the
// whole answer was 200,000 rows (33 MB of JSON, 350 MB allocated to build
// it); the totals still say how many there are.
const (
	defaultDiffLimit = 1000
	maxDiffLimit     = 10_000
)

// Diff is what changed between two snapshots of one host.
type Diff struct {
	From    int64              `json:"from"` // the older snapshot's id
	To      int64              `json:"to"`   // the newer snapshot's id
	Started []snapshot.Process `json:"started"`
	Exited  []snapshot.Process `json:"exited"`
	// StartedTotal and ExitedTotal count all of them; Started and Exited
	// list the first ones by PID, at most the limit asked for.
	StartedTotal  int      `json:"started_total"`
	ExitedTotal   int      `json:"exited_total"`
	CPUChanges    []Change `json:"cpu_changes"`
	MemoryChanges []Change `json:"memory_changes"`
	// What the started processes use now and the exited ones used last,
	// summed over all of them (not only the listed ones).
	StartedCPU    float64 `json:"started_cpu_percent"`
	StartedMemory float64 `json:"started_memory_mb"`
	ExitedCPU     float64 `json:"exited_cpu_percent"`
	ExitedMemory  float64 `json:"exited_memory_mb"`
	// Movers is "what changed" ranked by impact: started, exited and
	// changed processes grouped by kind and name ("chromium x12"), at most
	// maxMovers, zero-impact ones left out (issue 13).
	Movers []Mover `json:"movers"`
}

// Mover is one group of processes of one name that started, exited or
// changed, with their summed CPU % (of one core) and memory (MiB) before
// and after; a started one was 0 before, an exited one is 0 after.
type Mover struct {
	Kind         string  `json:"kind"` // "started", "exited" or "changed"
	Name         string  `json:"name"`
	Count        int     `json:"count"`
	PIDs         []int64 `json:"pids"` // the first maxMoverPIDs by PID
	CPUBefore    float64 `json:"cpu_before"`
	CPUAfter     float64 `json:"cpu_after"`
	CPUDelta     float64 `json:"cpu_delta"`
	MemoryBefore float64 `json:"memory_before"`
	MemoryAfter  float64 `json:"memory_after"`
	MemoryDelta  float64 `json:"memory_delta"`
	// Impact ranks movers: the members' |CPU delta| (% of one core) plus
	// their |memory delta| as % of RAM, so a core and all of RAM weigh
	// the same.
	Impact float64 `json:"impact"`

	absCPU, absMem float64
}

// Bounds of the movers: how many a diff lists, how many PIDs each names,
// and how many distinct (kind, name) groups are summed before the rest
// fold into one group named moverOverflow (a hostile table of 100,000
// distinct names must not cost 100,000 map entries).
const (
	maxMovers      = 50
	maxMoverPIDs   = 5
	maxMoverGroups = 10_000
	moverOverflow  = "…"
	// fallbackRAMMiB weighs memory when the snapshot does not say the
	// host's RAM: 100 MiB then counts like 1 % of a core.
	fallbackRAMMiB = 10_000
)

type moverKey struct{ kind, name string }

type movers struct {
	m map[moverKey]*Mover
}

func (mv *movers) add(kind string, p *snapshot.Process, cpuBefore, cpuAfter, memBefore, memAfter float64) {
	if cpuBefore == cpuAfter && memBefore == memAfter {
		return
	}
	if mv.m == nil {
		mv.m = map[moverKey]*Mover{}
	}
	k := moverKey{kind, p.Name}
	g := mv.m[k]
	if g == nil {
		if len(mv.m) >= maxMoverGroups {
			k.name = moverOverflow
			g = mv.m[k]
		}
		if g == nil {
			g = &Mover{Kind: kind, Name: k.name, PIDs: []int64{}}
			mv.m[k] = g
		}
	}
	g.Count++
	if len(g.PIDs) < maxMoverPIDs {
		g.PIDs = append(g.PIDs, p.PID)
	}
	g.CPUBefore += cpuBefore
	g.CPUAfter += cpuAfter
	g.MemoryBefore += memBefore
	g.MemoryAfter += memAfter
	g.absCPU += math.Abs(cpuAfter - cpuBefore)
	g.absMem += math.Abs(memAfter - memBefore)
}

// list ranks the groups by impact (ties: kind, then name), the n best.
func (mv *movers) list(ramMiB float64, n int) []Mover {
	if ramMiB <= 0 || math.IsNaN(ramMiB) || math.IsInf(ramMiB, 0) {
		ramMiB = fallbackRAMMiB
	}
	out := make([]Mover, 0, min(len(mv.m), n))
	all := make([]*Mover, 0, len(mv.m))
	for _, g := range mv.m {
		g.CPUDelta = g.CPUAfter - g.CPUBefore
		g.MemoryDelta = g.MemoryAfter - g.MemoryBefore
		g.Impact = g.absCPU + 100*g.absMem/ramMiB
		if g.Impact > 0 {
			all = append(all, g)
		}
	}
	slices.SortFunc(all, func(a, b *Mover) int {
		if c := cmp.Compare(b.Impact, a.Impact); c != 0 {
			return c
		}
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	for _, g := range all[:min(len(all), n)] {
		out = append(out, *g)
	}
	return out
}

// Change is how one process's CPU % or memory (MiB) moved between the two
// snapshots.
type Change struct {
	PID        int64   `json:"pid"`
	Name       string  `json:"name"`
	CreateTime string  `json:"create_time,omitempty"`
	Before     float64 `json:"before"`
	After      float64 `json:"after"`
	Delta      float64 `json:"delta"`
}

// cmpProc orders processes by their identity across snapshots: the PID,
// then the start time when the exporter sends it, else the name (PIDs are
// reused; without a start time a reused PID running the same program counts
// as the same process). Processes with a start time sort after those
// without, as their keys did when they were strings ("pid\x00n<name>" and
// "pid\x00t<time>").
func cmpProc(a, b *snapshot.Process) int {
	if c := cmp.Compare(a.PID, b.PID); c != 0 {
		return c
	}
	at, bt := a.CreateTime != "", b.CreateTime != ""
	switch {
	case at && bt:
		return strings.Compare(a.CreateTime, b.CreateTime)
	case !at && !bt:
		return strings.Compare(a.Name, b.Name)
	case at:
		return 1
	default:
		return -1
	}
}

// byIdentity returns the indexes of procs in cmpProc order, ties in their
// order in procs. Indexes cost 4 bytes a process where a map keyed by
// identity strings cost ~100 (issue 11), and a table usually comes sorted
// by PID already.
func byIdentity(procs []snapshot.Process) []int32 {
	idx := make([]int32, len(procs))
	sorted := true
	for i := range idx {
		idx[i] = int32(i)
		if i > 0 && sorted && cmpProc(&procs[i-1], &procs[i]) > 0 {
			sorted = false
		}
	}
	if !sorted {
		slices.SortFunc(idx, func(a, b int32) int {
			if c := cmpProc(&procs[a], &procs[b]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
	}
	return idx
}

// DiffProcesses compares the process lists of an older (fromID) and a newer
// (toID) snapshot. Started and exited are sorted by PID (then start time or
// name), at most limit of each listed (limit <= 0: all); the changes are
// the maxChanges largest by absolute delta (ties by PID), zero deltas left
// out. Memory: the two lists are read in place through sorted indexes,
// never copied or put in maps.
func DiffProcesses(fromID int64, older []snapshot.Process, toID int64, newer []snapshot.Process, limit int) Diff {
	return DiffProcessesRAM(fromID, older, toID, newer, limit, 0)
}

// DiffProcessesRAM is DiffProcesses with the host's RAM in MiB, which
// weighs memory against CPU in the movers' impact (0: unknown).
func DiffProcessesRAM(fromID int64, older []snapshot.Process, toID int64, newer []snapshot.Process, limit int, ramMiB float64) Diff {
	nMovers := maxMovers
	if limit > 0 {
		nMovers = min(limit, maxMovers)
	}
	if limit <= 0 {
		limit = len(older) + len(newer)
	}
	d := Diff{
		From: fromID, To: toID,
		Started: []snapshot.Process{}, Exited: []snapshot.Process{},
	}
	var cpu, mem topChanges
	var mv movers
	oi, ni := byIdentity(older), byIdentity(newer)
	exited := func(p *snapshot.Process) {
		d.ExitedTotal++
		d.ExitedCPU += p.CPUPercent
		d.ExitedMemory += p.MemoryMB
		mv.add("exited", p, p.CPUPercent, 0, p.MemoryMB, 0)
		if len(d.Exited) < limit {
			d.Exited = append(d.Exited, *p)
		}
	}
	started := func(p *snapshot.Process) {
		d.StartedTotal++
		d.StartedCPU += p.CPUPercent
		d.StartedMemory += p.MemoryMB
		mv.add("started", p, 0, p.CPUPercent, 0, p.MemoryMB)
		if len(d.Started) < limit {
			d.Started = append(d.Started, *p)
		}
	}
	for len(oi) > 0 || len(ni) > 0 {
		var c int
		switch {
		case len(oi) == 0:
			c = 1
		case len(ni) == 0:
			c = -1
		default:
			c = cmpProc(&older[oi[0]], &newer[ni[0]])
		}
		if c < 0 {
			exited(&older[oi[0]])
			oi = oi[1:]
			continue
		}
		if c > 0 {
			started(&newer[ni[0]])
			ni = ni[1:]
			continue
		}
		// The same process in both. A table listing it twice (no exporter
		// does) compares each newer row with the last older one, as the
		// map of the old code did.
		o := &older[oi[0]]
		for len(oi) > 1 && cmpProc(&older[oi[1]], o) == 0 {
			oi = oi[1:]
			o = &older[oi[0]]
		}
		oi = oi[1:]
		for len(ni) > 0 && cmpProc(&newer[ni[0]], o) == 0 {
			p := &newer[ni[0]]
			ni = ni[1:]
			if o.CPUPercent != p.CPUPercent {
				cpu.offer(p, o.CPUPercent, p.CPUPercent)
			}
			if o.MemoryMB != p.MemoryMB {
				mem.offer(p, o.MemoryMB, p.MemoryMB)
			}
			mv.add("changed", p, o.CPUPercent, p.CPUPercent, o.MemoryMB, p.MemoryMB)
		}
	}
	d.CPUChanges, d.MemoryChanges = cpu.list(), mem.list()
	d.Movers = mv.list(ramMiB, nMovers)
	return d
}

// topChanges keeps the maxChanges largest changes by absolute delta, ties
// to the lower PID, best first: a diff of 100,000 busy processes no longer
// collects 100,000 changes to sort them.
type topChanges struct{ cs []Change }

func (t *topChanges) offer(p *snapshot.Process, before, after float64) {
	c := Change{PID: p.PID, Name: p.Name, CreateTime: p.CreateTime, Before: before, After: after, Delta: after - before}
	better := func(a, b *Change) bool {
		da, db := math.Abs(a.Delta), math.Abs(b.Delta)
		return da > db || (da == db && a.PID < b.PID)
	}
	if len(t.cs) == maxChanges && !better(&c, &t.cs[maxChanges-1]) {
		return
	}
	i := len(t.cs)
	for i > 0 && better(&c, &t.cs[i-1]) {
		i--
	}
	if len(t.cs) == maxChanges {
		t.cs = t.cs[:maxChanges-1]
	}
	t.cs = slices.Insert(t.cs, i, c)
}

func (t *topChanges) list() []Change {
	if t.cs == nil {
		return []Change{}
	}
	return t.cs
}
