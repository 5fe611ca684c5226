package collector

import (
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/process"
)

// TestGopsutilPlatform runs the Windows/macOS code path on Linux, where
// gopsutil works too, with the checks of the Linux walk's live test: CI
// runs on Linux only, and the portable path must not ship untested.
func TestGopsutilPlatform(t *testing.T) {
	busy := startGroup(t, "while :; do :; done")
	p, err := newGopsutilPlatform(Options{CollectCmdline: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	si := p.staticInfo()
	if si.OS.Name != runtime.GOOS || si.OS.Kernel == "" || si.CPU.LogicalThreads < 1 || si.CPU.PhysicalCores < 1 {
		t.Errorf("static info %+v", si)
	}
	w := &Walk{}
	if err := p.readMemory(w); err != nil || w.System.Memory.TotalBytes == 0 || p.memTotal != w.System.Memory.TotalBytes {
		t.Errorf("memory %+v, %v", w.System.Memory, err)
	}
	secs, err := p.readCPUTimes(w)
	if err != nil || len(secs) != len(cpuModes) || secs["idle"] <= 0 {
		t.Errorf("cpu seconds %v, %v", secs, err)
	}
	if err := p.readLoad(w); err != nil {
		t.Errorf("load: %v", err)
	}
	if err := p.readNetwork(w); err != nil || !slices.ContainsFunc(w.Network, func(d NetDevice) bool { return d.Device == "lo" }) {
		t.Errorf("network %+v, %v", w.Network, err)
	}
	if err := p.readFilesystems(w); err != nil || w.System.Filesystems == nil {
		t.Errorf("filesystems %+v, %v", w.System.Filesystems, err)
	}
	for _, fs := range w.System.Filesystems {
		if !keepFilesystem(fs.Mountpoint, fs.FSType) || fs.TotalBytes == 0 {
			t.Errorf("filesystem %+v should have been left out", fs)
		}
	}
	if err := p.readHost(w); err != nil || w.System.UptimeSec <= 0 || w.BootTime.IsZero() {
		t.Errorf("host: uptime %v boot %v, %v", w.System.UptimeSec, w.BootTime, err)
	}

	p.primeProcesses()
	time.Sleep(300 * time.Millisecond)
	if err := p.readProcesses(w); err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(w.Processes, func(a, b Process) int { return int(a.PID - b.PID) }) {
		t.Error("processes not in PID order")
	}
	var self, spinner *Process
	for i := range w.Processes {
		switch w.Processes[i].PID {
		case int64(os.Getpid()):
			self = &w.Processes[i]
		case int64(busy):
			spinner = &w.Processes[i]
		}
	}
	if self == nil || spinner == nil {
		t.Fatalf("own process or spinner missing from %d processes", len(w.Processes))
	}
	if self.PPID != int64(os.Getppid()) || self.RSSBytes == 0 || self.MemoryPercent <= 0 || self.State == "" || self.CreateTime == "" {
		t.Errorf("own row %+v", *self)
	}
	if want := filepath.Base(os.Args[0]); len(want) <= 15 && self.Name != want {
		t.Errorf("own name %q, want %q", self.Name, want)
	}
	if u, err := user.Current(); err == nil && self.Username != u.Username {
		t.Errorf("own username %q, want %q", self.Username, u.Username)
	}
	if self.Cmdline == nil || !strings.Contains(*self.Cmdline, "-test.") {
		t.Errorf("own cmdline %v", self.Cmdline)
	}
	// One clock tick in the window at least (see TestFirstWalkPrimesCPU).
	if spinner.CPUPercent < 2.5 || spinner.CPUPercent > 110 {
		t.Errorf("spinner cpu %.1f%%", spinner.CPUPercent)
	}
}

func TestGopsutilStatus(t *testing.T) {
	f := func(in, status, state string) {
		t.Helper()
		if s, st := gopsutilStatus(in); s != status || st != state {
			t.Fatalf("gopsutilStatus(%q) = %q, %q; want %q, %q", in, s, st, status, state)
		}
	}
	f(process.Running, "running", "running")
	f(process.Sleep, "sleeping", "sleeping")
	f(process.Idle, "idle", "idle")
	f(process.Blocked, "disk-sleep", "disk-sleep")
	f(process.Stop, "stopped", "stopped")
	f(process.Zombie, "zombie", "zombie")
	f(process.Wait, "waiting", "other")
	f(process.Lock, "locked", "other")
	f("", "unknown", "other")
}
