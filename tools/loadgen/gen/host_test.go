package gen

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestHostEvolves: consecutive snapshots of a host are nearly equal (a
// minority of rows change, a process starts or exits now and then), the
// tree stays a tree near its size, system_info moves with it, and the
// sequence is the same for the same seed.
func TestHostEvolves(t *testing.T) {
	t.Parallel()
	const n, steps = 300, 200
	h := NewHost(n, 42, false, 2*time.Second)
	twin := NewHost(n, 42, false, 2*time.Second)
	other := NewHost(n, 43, false, 2*time.Second)
	var changedRows, rows, churn int
	var lastUptime float64
	prev := slices.Clone(h.Processes())
	for step := range steps {
		h.Step()
		twin.Step()
		other.Step()
		cur := h.Processes()
		if !reflect.DeepEqual(cur, twin.Processes()) || h.SystemInfo() != twin.SystemInfo() {
			t.Fatalf("step %d: same seed, different snapshot", step)
		}
		if step == 0 && reflect.DeepEqual(cur, other.Processes()) {
			t.Fatal("different seeds gave the same snapshot")
		}
		if len(cur) < n-20 || len(cur) > n+20 {
			t.Fatalf("step %d: %d processes, drifted away from %d", step, len(cur), n)
		}
		byPID := map[int64]Process{}
		for i, p := range cur {
			if i > 0 && cur[i-1].PID >= p.PID {
				t.Fatalf("step %d: pids not increasing at %d", step, p.PID)
			}
			if p.Cmdline != nil {
				t.Fatal("cmdline sent though not asked for")
			}
			byPID[p.PID] = p
		}
		for _, p := range cur {
			if p.PPID != 0 && byPID[p.PPID].PID == 0 {
				t.Fatalf("step %d: pid %d has unknown parent %d", step, p.PID, p.PPID)
			}
		}
		seen := 0
		for _, p := range prev {
			q, ok := byPID[p.PID]
			if !ok {
				churn++
				continue
			}
			seen++
			rows++
			if q != p {
				changedRows++
			}
		}
		churn += len(cur) - seen
		var si struct {
			ProcessCount int     `json:"process_count"`
			Uptime       float64 `json:"uptime_seconds"`
			CPU          struct {
				Usage float64 `json:"usage_percent"`
			} `json:"cpu"`
		}
		if err := json.Unmarshal([]byte(h.SystemInfo()), &si); err != nil {
			t.Fatalf("step %d: system_info is not JSON: %v", step, err)
		}
		if si.ProcessCount != len(cur) || si.Uptime <= lastUptime || si.CPU.Usage < 0 || si.CPU.Usage > 100 {
			t.Fatalf("step %d: system_info %+v for %d processes after uptime %v", step, si, len(cur), lastUptime)
		}
		lastUptime = si.Uptime
		prev = slices.Clone(cur)
	}
	t.Logf("%d of %d rows changed, %d starts or exits in %d pushes", changedRows, rows, churn, steps)
	// ~15 % busy rows change every push, plus a few drifting ones.
	share := float64(changedRows) / float64(rows)
	if share < 0.08 || share > 0.30 {
		t.Fatalf("%.1f %% of rows changed a push, want 8-30 %%", share*100)
	}
	// A start or an exit about every fourth push.
	if churn < steps/10 || churn > steps/2 {
		t.Fatalf("%d processes started or exited in %d pushes", churn, steps)
	}
}

// TestCompressTailIsTheBody: HeadMember + CompressTail decompress to a
// body equal to BodyOf's for the same values, at any level.
func TestCompressTailIsTheBody(t *testing.T) {
	t.Parallel()
	procs := Processes(300, Seed("host-1", 0), true)
	at := "2026-11-25T17:00:00.123Z"
	for _, level := range []int{gzip.BestSpeed, gzip.DefaultCompression} {
		tail, err := CompressTail(SystemInfo, procs, level)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(io.MultiReader(bytes.NewReader(HeadMember(QuoteHostname("host-1"), at)), bytes.NewReader(tail)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if want := BodyOf("host-1", at, procs); !bytes.Equal(got, want) {
			t.Fatalf("level %d: decompressed body differs:\n got %.200s\nwant %.200s", level, got, want)
		}
	}
	if _, err := CompressTail(SystemInfo, procs, 42); err == nil {
		t.Fatal("gzip level 42 accepted")
	}
}
