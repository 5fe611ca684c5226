package history

import (
	"cmp"
	"math"
	"slices"
	"strconv"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// maxChanges is how many CPU and memory changes a diff lists.
const maxChanges = 20

// Diff is what changed between two snapshots of one host.
type Diff struct {
	From          int64              `json:"from"` // the older snapshot's id
	To            int64              `json:"to"`   // the newer snapshot's id
	Started       []snapshot.Process `json:"started"`
	Exited        []snapshot.Process `json:"exited"`
	CPUChanges    []Change           `json:"cpu_changes"`
	MemoryChanges []Change           `json:"memory_changes"`
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

// procKey identifies a process across snapshots. PIDs are reused, so the
// start time is part of the key when the exporter sends it; without it the
// name is the best available tie-breaker (a reused PID running the same
// program then counts as the same process).
func procKey(p *snapshot.Process) string {
	if p.CreateTime != "" {
		return strconv.FormatInt(p.PID, 10) + "\x00t" + p.CreateTime
	}
	return strconv.FormatInt(p.PID, 10) + "\x00n" + p.Name
}

// DiffProcesses compares the process lists of an older (fromID) and a newer
// (toID) snapshot. Started and exited are sorted by PID; the changes are the
// maxChanges largest by absolute delta (ties by PID), zero deltas left out.
func DiffProcesses(fromID int64, older []snapshot.Process, toID int64, newer []snapshot.Process) Diff {
	d := Diff{
		From: fromID, To: toID,
		Started: []snapshot.Process{}, Exited: []snapshot.Process{},
		CPUChanges: []Change{}, MemoryChanges: []Change{},
	}
	before := make(map[string]*snapshot.Process, len(older))
	for i := range older {
		before[procKey(&older[i])] = &older[i]
	}
	matched := make(map[string]bool, len(newer))
	for i := range newer {
		p := &newer[i]
		k := procKey(p)
		o, ok := before[k]
		if !ok {
			d.Started = append(d.Started, *p)
			continue
		}
		matched[k] = true
		change := func(b, a float64) Change {
			return Change{PID: p.PID, Name: p.Name, CreateTime: p.CreateTime, Before: b, After: a, Delta: a - b}
		}
		if o.CPUPercent != p.CPUPercent {
			d.CPUChanges = append(d.CPUChanges, change(o.CPUPercent, p.CPUPercent))
		}
		if o.MemoryMB != p.MemoryMB {
			d.MemoryChanges = append(d.MemoryChanges, change(o.MemoryMB, p.MemoryMB))
		}
	}
	for i := range older {
		if !matched[procKey(&older[i])] {
			d.Exited = append(d.Exited, older[i])
		}
	}
	byPID := func(a, b snapshot.Process) int { return cmp.Compare(a.PID, b.PID) }
	slices.SortFunc(d.Started, byPID)
	slices.SortFunc(d.Exited, byPID)
	d.CPUChanges = topChanges(d.CPUChanges)
	d.MemoryChanges = topChanges(d.MemoryChanges)
	return d
}

func topChanges(cs []Change) []Change {
	slices.SortFunc(cs, func(a, b Change) int {
		if c := cmp.Compare(math.Abs(b.Delta), math.Abs(a.Delta)); c != 0 {
			return c
		}
		return cmp.Compare(a.PID, b.PID)
	})
	if len(cs) > maxChanges {
		cs = cs[:maxChanges]
	}
	return cs
}
