package collector

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/prometheus/procfs"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// fixtureFS reads the host-wide fixtures below testdata/proc as a walk does.
func fixtureFS(t *testing.T) procfs.FS {
	t.Helper()
	fs, err := procfs.NewFS("testdata/proc")
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestMemoryFrom(t *testing.T) {
	m, err := fixtureFS(t).Meminfo()
	if err != nil {
		t.Fatal(err)
	}
	mem, swap, err := memoryFrom(m)
	if err != nil {
		t.Fatal(err)
	}
	wantMem := snapshot.MemoryInfo{TotalBytes: 8048836 << 10, UsedBytes: (8048836 - 5287048) << 10, AvailableBytes: 5287048 << 10}
	wantSwap := snapshot.SwapInfo{TotalBytes: 2097148 << 10, UsedBytes: (2097148 - 1048574) << 10}
	if mem != wantMem || swap != wantSwap {
		t.Fatalf("got %+v %+v, want %+v %+v", mem, swap, wantMem, wantSwap)
	}
	kb := func(v uint64) *uint64 { v <<= 10; return &v }
	f := func(m procfs.Meminfo, wantAvail uint64, ok bool) {
		t.Helper()
		mem, _, err := memoryFrom(m)
		if (err == nil) != ok || mem.AvailableBytes != wantAvail {
			t.Fatalf("memoryFrom(%+v) = %+v, %v; want available %d, ok=%v", m, mem, err, wantAvail, ok)
		}
	}
	// Before Linux 3.14 there is no MemAvailable: estimated as free(1) did.
	f(procfs.Meminfo{MemTotalBytes: kb(1000), MemFreeBytes: kb(100), BuffersBytes: kb(10), CachedBytes: kb(200), SReclaimableBytes: kb(5)}, 315<<10, true)
	// Never more available than there is.
	f(procfs.Meminfo{MemTotalBytes: kb(1000), MemAvailableBytes: kb(2000)}, 1000<<10, true)
	f(procfs.Meminfo{MemFreeBytes: kb(1)}, 0, false)
	// Swap free above total (a racing read) is no swap used, not a wrap.
	if _, swap, _ := memoryFrom(procfs.Meminfo{MemTotalBytes: kb(1), SwapTotalBytes: kb(1), SwapFreeBytes: kb(2)}); swap.UsedBytes != 0 {
		t.Fatalf("swap used %d, want 0", swap.UsedBytes)
	}
}

func TestCPUSecondsFrom(t *testing.T) {
	s, err := fixtureFS(t).Stat()
	if err != nil {
		t.Fatal(err)
	}
	got, err := cpuSecondsFrom(s)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"user": 101321.53, "nice": 2906.96, "system": 30847.19, "idle": 468284.83,
		"iowait": 166.83, "irq": 0, "softirq": 251.95, "steal": 1.75}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if len(got) != len(cpuModes) {
		t.Fatalf("%d modes, want %d", len(got), len(cpuModes))
	}
	if _, err := cpuSecondsFrom(procfs.Stat{CPUTotal: procfs.CPUStat{Idle: 1}}); err == nil {
		t.Fatal("a stat without btime gave no error")
	}
	if _, err := cpuSecondsFrom(procfs.Stat{BootTime: 5}); err == nil {
		t.Fatal("a stat without a cpu line gave no error")
	}
}

func TestNetDevices(t *testing.T) {
	nd, err := fixtureFS(t).NetDev()
	if err != nil {
		t.Fatal(err)
	}
	got := netDevices(nd)
	// By name, whatever order the kernel listed them in.
	want := []NetDevice{
		{Device: "docker0"},
		{Device: "eth0", ReceiveBytes: 2890581113, TransmitBytes: 157820311},
		{Device: "lo", ReceiveBytes: 1883745, TransmitBytes: 1883745},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestMountsFromAndRealMounts(t *testing.T) {
	mi, err := fixtureFS(t).GetProcMounts(1)
	if err != nil {
		t.Fatal(err)
	}
	ms := mountsFrom(mi)
	if len(ms) != 9 || ms[6] != (mount{"/dev/sdb1", "/mnt/my disk", "xfs"}) {
		t.Fatalf("got %d mounts, 7th %+v", len(ms), ms[6])
	}
	var points []string
	for _, m := range realMounts(ms) {
		points = append(points, m.Device+" "+m.Mountpoint+" "+m.FSType)
	}
	want := []string{"/dev/sda1 / ext4", "tmpfs /run tmpfs", "/dev/sdb1 /mnt/my disk xfs", "/dev/sda2 /boot ext4"}
	if !reflect.DeepEqual(points, want) {
		t.Fatalf("real mounts %q, want %q", points, want)
	}
	// Two mounts on one point: the later one hides the earlier.
	ms = []mount{{"/dev/a", "/data", "ext4"}, {"/dev/b", "/data", "xfs"}}
	if got := realMounts(ms); len(got) != 1 || got[0].Device != "/dev/b" {
		t.Fatalf("stacked mounts gave %+v", got)
	}
}

func TestSummarizeCPUInfo(t *testing.T) {
	f := func(cpus []procfs.CPUInfo, want cpuInfo) {
		t.Helper()
		if got := summarizeCPUInfo(cpus); got != want {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	}
	const xeon = "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz"
	// Two sockets of one core with two threads each: 2 cores, 4 threads.
	f([]procfs.CPUInfo{
		{ModelName: xeon, PhysicalID: "0", CoreID: "0", CPUMHz: 2400},
		{ModelName: xeon, PhysicalID: "0", CoreID: "0", CPUMHz: 2600},
		{ModelName: xeon, PhysicalID: "1", CoreID: "0", CPUMHz: 2400},
		{ModelName: xeon, PhysicalID: "1", CoreID: "0", CPUMHz: 2600},
	}, cpuInfo{Model: xeon, Logical: 4, PhysicalCores: 2, AvgMHz: 2500})
	// ARM: no physical id/core id, no MHz, often no model.
	f([]procfs.CPUInfo{{BogoMips: 48}, {BogoMips: 48}}, cpuInfo{Logical: 2})
	f(nil, cpuInfo{})
}

// TestCPUInfoPanicIsAnError: procfs's cpuinfo parsers index a split line
// unchecked; a cpuinfo that trips them leaves the CPU facts empty and
// neither New nor a walk fails.
func TestCPUInfoPanicIsAnError(t *testing.T) {
	root := copyDir(t, "testdata/proc")
	if err := os.WriteFile(filepath.Join(root, "cpuinfo"), []byte("processor:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _ := newFixtureCollector(t, root, false)
	if _, err := c.plat.readCPUInfo(); err == nil {
		t.Fatal("a cpuinfo procfs cannot parse gave no error")
	}
	w, err := c.Walk(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range w.Parts {
		if p.Err != nil {
			t.Errorf("part %s failed: %v", p.Name, p.Err)
		}
	}
	if w.System.CPU.Model != "" || w.System.CPU.LogicalThreads != 0 {
		t.Errorf("cpu %+v from an unparsable cpuinfo", w.System.CPU)
	}
}
