package collector

import (
	"encoding/binary"
	"reflect"
	"slices"
	"testing"

	"github.com/procscope/procscope/aggregator/snapshot"
)

func proc(pid, ppid int64, cpu, mem float64) Process {
	return Process{Process: snapshot.Process{PID: pid, PPID: ppid, Name: "p", CPUPercent: cpu, MemoryMB: mem}}
}

func pids(ps []Process) []int64 {
	out := make([]int64, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.PID)
	}
	return out
}

func TestTopN(t *testing.T) {
	t.Parallel()
	// 1 init -> 10 sshd -> 11 bash -> 12 busy; 1 -> 20 idle-ish; 1 -> 30 mem hog
	procs := []Process{
		proc(1, 0, 0, 10), proc(10, 1, 0, 5), proc(11, 10, 0, 3), proc(12, 11, 90, 50),
		proc(20, 1, 0.5, 1), proc(30, 1, 0, 900), proc(40, 1, 0.5, 2),
	}
	f := func(n int, want ...int64) {
		t.Helper()
		if got := pids(TopN(procs, n)); !reflect.DeepEqual(got, want) {
			t.Fatalf("TopN(%d) = %v, want %v", n, got, want)
		}
	}
	f(0, 1, 10, 11, 12, 20, 30, 40)  // all
	f(-1, 1, 10, 11, 12, 20, 30, 40) // all
	f(7, 1, 10, 11, 12, 20, 30, 40)
	f(1, 1, 10, 11, 12)             // the busy one and its whole chain
	f(2, 1, 10, 11, 12, 40)         // CPU ties broken by memory
	f(3, 1, 10, 11, 12, 20, 40)     //
	f(4, 1, 10, 11, 12, 20, 30, 40) // then memory
	if got := TopN(nil, 3); len(got) != 0 {
		t.Fatalf("TopN(nil) = %v", got)
	}

	// Cycles and self-parents end the climb.
	cyc := []Process{proc(5, 6, 1, 1), proc(6, 5, 0, 1), proc(7, 7, 2, 1), proc(8, 9, 0, 1), proc(9, 8, 0, 0)}
	if got := pids(TopN(cyc, 2)); !reflect.DeepEqual(got, []int64{5, 6, 7}) {
		t.Fatalf("cycle: %v", got)
	}
	// A duplicated PID is kept once.
	dup := []Process{proc(1, 0, 5, 1), proc(1, 0, 9, 1), proc(2, 1, 1, 1), proc(3, 1, 0, 1)}
	if got := pids(TopN(dup, 2)); !reflect.DeepEqual(got, []int64{1, 2}) {
		t.Fatalf("duplicate: %v", got)
	}
	// The input is not reordered.
	before := slices.Clone(procs)
	TopN(procs, 2)
	if !reflect.DeepEqual(before, procs) {
		t.Fatal("TopN modified its input")
	}
}

// FuzzTopN checks the properties on random forests, including cycles,
// self-parents, unknown parents and duplicated PIDs: the n heaviest
// are in, each with its whole ancestor chain, nothing twice, nothing
// else, in input order.
func FuzzTopN(f *testing.F) {
	f.Add([]byte{1, 0, 2, 1, 3, 3, 4, 9}, uint8(2))
	f.Add([]byte{5, 6, 6, 5, 7, 7}, uint8(1))
	f.Add([]byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, n8 uint8) {
		// Each 4 bytes: pid, ppid (small, so collisions and cycles are
		// common), cpu, mem.
		var procs []Process
		for len(data) >= 4 {
			procs = append(procs, proc(int64(data[0]%32), int64(data[1]%33), float64(data[2]%8), float64(binary.LittleEndian.Uint16([]byte{data[3], 0})%5)))
			data = data[4:]
		}
		n := int(n8 % 16)
		got := TopN(procs, n)
		if n <= 0 || n >= len(procs) {
			if !reflect.DeepEqual(got, procs) {
				t.Fatalf("TopN(%d) of %d did not return all", n, len(procs))
			}
			return
		}
		first := map[int64]int{}
		for i, p := range procs {
			if _, ok := first[p.PID]; !ok {
				first[p.PID] = i
			}
		}
		seen := map[int64]bool{}
		lastIdx := -1
		for _, p := range got {
			if seen[p.PID] {
				t.Fatalf("pid %d twice in %v", p.PID, pids(got))
			}
			seen[p.PID] = true
			i := first[p.PID]
			if !reflect.DeepEqual(procs[i], p) {
				t.Fatalf("pid %d is not its first occurrence", p.PID)
			}
			if i <= lastIdx {
				t.Fatalf("output not in input order: %v", pids(got))
			}
			lastIdx = i
		}
		// Every kept process's parent, when known, is kept too.
		for _, p := range got {
			if _, known := first[p.PPID]; known && !seen[p.PPID] {
				t.Fatalf("pid %d kept without its parent %d: %v", p.PID, p.PPID, pids(got))
			}
		}
		// The n heaviest distinct PIDs are in; anything else kept is an
		// ancestor of one of them.
		uniq := make([]Process, 0, len(first))
		for i, p := range procs {
			if first[p.PID] == i {
				uniq = append(uniq, p)
			}
		}
		slices.SortStableFunc(uniq, func(a, b Process) int {
			if a.CPUPercent != b.CPUPercent {
				return cmpDesc(a.CPUPercent, b.CPUPercent)
			}
			if a.MemoryMB != b.MemoryMB {
				return cmpDesc(a.MemoryMB, b.MemoryMB)
			}
			return int(a.PID - b.PID)
		})
		allowed := map[int64]bool{}
		for _, p := range uniq[:min(n, len(uniq))] {
			if !seen[p.PID] {
				t.Fatalf("heavy pid %d missing from %v", p.PID, pids(got))
			}
			for cur, steps := p.PID, 0; steps <= len(procs); steps++ {
				if allowed[cur] {
					break
				}
				allowed[cur] = true
				i, ok := first[cur]
				if !ok {
					break
				}
				if _, ok := first[procs[i].PPID]; !ok {
					break
				}
				cur = procs[i].PPID
			}
		}
		for _, p := range got {
			if !allowed[p.PID] {
				t.Fatalf("pid %d kept but neither heavy nor an ancestor: %v", p.PID, pids(got))
			}
		}
	})
}

func cmpDesc(a, b float64) int {
	if a > b {
		return -1
	}
	return 1
}
