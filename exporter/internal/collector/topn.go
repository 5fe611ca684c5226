package collector

import (
	"cmp"
	"slices"
)

// TopN returns the n heaviest processes by CPU, then memory, plus every
// ancestor of each, so the tree the UI draws stays connected (a busy
// worker is shown under its master, not as an orphan). n <= 0, or n at
// least len(procs), returns procs unchanged. The result keeps the input's
// order and holds each PID once; procs is not modified. PPID cycles and
// pid == ppid end the ancestor walk instead of looping.
func TopN(procs []Process, n int) []Process {
	if n <= 0 || n >= len(procs) {
		return procs
	}
	// First index of each PID: a duplicated PID (which the wire forbids)
	// is kept once.
	byPID := make(map[int64]int, len(procs))
	for i := range procs {
		if _, dup := byPID[procs[i].PID]; !dup {
			byPID[procs[i].PID] = i
		}
	}
	order := make([]int, 0, len(byPID))
	for i := range procs {
		if byPID[procs[i].PID] == i {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		pa, pb := &procs[a], &procs[b]
		if c := cmp.Compare(pb.CPUPercent, pa.CPUPercent); c != 0 {
			return c
		}
		if c := cmp.Compare(pb.MemoryMB, pa.MemoryMB); c != 0 {
			return c
		}
		return cmp.Compare(pa.PID, pb.PID)
	})
	keep := make([]bool, len(procs))
	for _, i := range order[:min(n, len(order))] {
		// Climb to the root; stop at a process already kept (its chain
		// is in already), at an unknown parent, or at a cycle, which
		// revisits a kept process and so stops too.
		for j, ok := i, true; ok && !keep[j]; {
			keep[j] = true
			j, ok = byPID[procs[j].PPID]
		}
	}
	out := make([]Process, 0, min(len(procs), 2*n))
	for i := range procs {
		if keep[i] {
			out = append(out, procs[i])
		}
	}
	return out
}
