package collector

import (
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fixtureBoot is btime in testdata/proc/stat.
var fixtureBoot = time.Unix(1764000000, 0)

// newFixtureCollector reads procRoot (a copy of testdata/proc or the
// directory itself) with a fake clock the test advances, and user names
// made from uids so no passwd lookup happens.
func newFixtureCollector(t *testing.T, procRoot string, cmdline bool) (*Collector, *time.Time) {
	t.Helper()
	c, err := New(Options{ProcRoot: procRoot, SysRoot: t.TempDir(), RootFS: "testdata/rootfs",
		SampleWindow: -1, CollectCmdline: cmdline})
	if err != nil {
		t.Fatal(err)
	}
	c.plat.clkTck = 100
	c.plat.users.lookup = func(uid string) (string, error) { return "user" + uid, nil }
	now := fixtureBoot.Add(100 * time.Second)
	c.plat.now = func() time.Time { return now }
	return c, &now
}

func TestFixtureWalk(t *testing.T) {
	c, _ := newFixtureCollector(t, "testdata/proc", true)
	w, err := c.Walk(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range w.Parts {
		if p.Err != nil {
			t.Errorf("part %s failed: %v", p.Name, p.Err)
		}
	}
	// 1500 has a directory but no stat: it exited mid-walk.
	if w.Skipped != 1 {
		t.Errorf("skipped %d, want 1", w.Skipped)
	}
	uid := "user" + strconv.Itoa(os.Getuid())
	page := float64(os.Getpagesize())
	type row struct {
		PID, PPID int64
		Name      string
		Status    string
		State     string
		Cmdline   string
		Threads   int32
		MemoryMB  float64
	}
	var got []row
	for _, p := range w.Processes {
		if p.Cmdline == nil {
			t.Fatalf("pid %d: cmdline nil with CollectCmdline", p.PID)
		}
		if p.Username != uid || p.CPUPercent != 0 {
			t.Errorf("pid %d: username %q cpu %v", p.PID, p.Username, p.CPUPercent)
		}
		got = append(got, row{p.PID, p.PPID, p.Name, p.Status, p.State, *p.Cmdline, p.NumThreads, p.MemoryMB})
	}
	want := []row{
		{1, 0, "systemd", "sleeping", "sleeping", "/sbin/init splash", 1, 3000 * page / (1 << 20)},
		{2, 0, "kthreadd", "sleeping", "sleeping", "", 1, 0},
		{15, 2, "kworker/0:1H-kblockd", "idle", "idle", "", 1, 0},
		{1200, 1, "(sd-pam) x)", "sleeping", "sleeping", "(sd-pam)", 1, 420 * page / (1 << 20)},
		{1300, 1, "defunct-child", "zombie", "zombie", "", 1, 0},
		{1400, 1, "kube-controller-manager", "sleeping", "sleeping", "/usr/local/bin/kube-controller-manager --kubeconfig=/etc/k.conf --token=***", 12, 51200 * page / (1 << 20)},
		{1401, 1400, "abcdefghijklmno", "running", "running", "python3 app.py", 2, 100 * page / (1 << 20)},
		{1600, 1, "postgres", "sleeping", "sleeping", "postgres: app app_db 10.0.0.5(5432) idle PGPASSWORD=***", 1, 2048 * page / (1 << 20)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("processes:\n got %+v\nwant %+v", got, want)
	}
	p1 := w.Processes[0]
	if p1.CreateTime != "2025-11-24T16:00:00.12Z" || !p1.StartTime.Equal(fixtureBoot.Add(120*time.Millisecond)) {
		t.Errorf("pid 1 started %q / %v", p1.CreateTime, p1.StartTime)
	}
	if p1.CPUSeconds != 4.5 || p1.RSSBytes != uint64(3000*page) {
		t.Errorf("pid 1 cpu seconds %v rss %d", p1.CPUSeconds, p1.RSSBytes)
	}
	if want := 3000 * page / (8048836 << 10) * 100; math.Abs(p1.MemoryPercent-want) > 1e-9 {
		t.Errorf("pid 1 memory percent %v, want %v", p1.MemoryPercent, want)
	}

	si := w.System
	if si.OS.Name != "linux" || si.OS.Distro != "debian" || si.OS.Version != "12" || si.OS.Kernel != "6.1.0-28-amd64" || si.OS.Arch == "" {
		t.Errorf("os %+v", si.OS)
	}
	// procfs parses cpuinfo in the layout of the build's architecture, and
	// the fixture is an x86 one.
	if x86 := runtime.GOARCH == "amd64" || runtime.GOARCH == "386"; x86 &&
		(si.CPU.Model != "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz" || si.CPU.PhysicalCores != 2 || si.CPU.LogicalThreads != 4 ||
			si.CPU.CurrentMHz != 2500 || si.CPU.MaxMHz != 2500) {
		t.Errorf("cpu %+v", si.CPU)
	}
	if si.Memory.TotalBytes != 8048836<<10 || si.Memory.AvailableBytes != 5287048<<10 || si.Memory.UsedBytes != (8048836-5287048)<<10 {
		t.Errorf("memory %+v", si.Memory)
	}
	if si.Swap.TotalBytes != 2097148<<10 || si.Swap.UsedBytes != (2097148-1048574)<<10 {
		t.Errorf("swap %+v", si.Swap)
	}
	if si.LoadAverage.Load1 != 0.52 || si.LoadAverage.Load15 != 0.59 || si.UptimeSec != 350735.47 {
		t.Errorf("load %+v uptime %v", si.LoadAverage, si.UptimeSec)
	}
	// Of the fixture's mounts only / exists below testdata/rootfs; the
	// others are real mounts that cannot be measured here and are left out.
	if len(si.Filesystems) != 1 || si.Filesystems[0].Mountpoint != "/" || si.Filesystems[0].FSType != "ext4" || si.Filesystems[0].TotalBytes == 0 {
		t.Errorf("filesystems %+v", si.Filesystems)
	}
	if si.ProcessCount != 8 || si.BootTime != "2025-11-24T16:00:00Z" || !w.BootTime.Equal(fixtureBoot) {
		t.Errorf("process count %d boot %q %v", si.ProcessCount, si.BootTime, w.BootTime)
	}
	if w.CPUSeconds["user"] != 101321.53 || w.CPUSeconds["steal"] != 1.75 || len(w.CPUSeconds) != 8 {
		t.Errorf("cpu seconds %v", w.CPUSeconds)
	}
	if len(w.Network) != 3 || w.Network[1].Device != "eth0" {
		t.Errorf("network %+v", w.Network)
	}
	var parts []string
	for _, p := range w.Parts {
		parts = append(parts, p.Name)
	}
	if want := []string{"memory", "cpu", "processes", "loadavg", "network", "filesystem", "host"}; !reflect.DeepEqual(parts, want) {
		t.Errorf("parts %v, want %v", parts, want)
	}
}

// copyDir copies a fixture tree so a test can change it between walks.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// setStat rewrites fields of <root>/<pid>/stat (field numbers of proc(5),
// counted as parseStat does from the last ')').
func setStat(t *testing.T, root string, pid int, fields map[int]string) {
	t.Helper()
	file := filepath.Join(root, strconv.Itoa(pid), "stat")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(string(b))
	i := strings.LastIndexByte(s, ')')
	rest := strings.Fields(s[i+1:])
	for n, v := range fields {
		rest[n-3] = v
	}
	if err := os.WriteFile(file, []byte(s[:i+1]+" "+strings.Join(rest, " ")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFixtureCPUPercent(t *testing.T) {
	root := copyDir(t, "testdata/proc")
	c, now := newFixtureCollector(t, root, false)
	ctx := context.Background()
	w1, err := c.Walk(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if w1.Processes[0].Cmdline != nil {
		t.Fatal("cmdline sent without CollectCmdline")
	}
	prevWalk := *now
	*now = now.Add(2 * time.Second)
	// 1400 used 1.5 s of CPU in 2 s (75% of one core).
	setStat(t, root, 1400, map[int]string{14: "2600", 15: "750"})
	// 1200 exited and its PID was reused by a process that started 0.5 s
	// after the last walk and has used 0.8 s: a delta against the old
	// process (3 ticks) would say 77/2 = 38.5%; its own figure is 0.8 s
	// over the 2 s since the last walk.
	startTicks := uint64(prevWalk.Sub(fixtureBoot)/(10*time.Millisecond)) + 50
	setStat(t, root, 1200, map[int]string{14: "40", 15: "40", 22: strconv.FormatUint(startTicks, 10)})
	// 1300's PID was reused by a process that started long before the last
	// walk yet was not seen by it: its lifetime average.
	setStat(t, root, 1300, map[int]string{3: "S", 14: "200", 15: "0", 22: "100"}) // started 1 s after boot
	// 1401 vanished.
	if err := os.Remove(filepath.Join(root, "1401", "stat")); err != nil {
		t.Fatal(err)
	}
	// A host CPU delta: 300 busy ticks out of 400.
	if err := os.WriteFile(filepath.Join(root, "stat"), []byte("cpu  10132453 290696 3084719 46828583 16683 0 25195 175 0 0\nbtime 1764000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w2, err := c.Walk(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]float64{}
	for _, p := range w2.Processes {
		got[p.PID] = p.CPUPercent
	}
	lifetime := 2.0 / (now.Sub(fixtureBoot).Seconds() - 1) * 100
	want := map[int64]float64{1: 0, 2: 0, 15: 0, 1200: 40, 1300: lifetime, 1400: 75, 1600: 0}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for pid, w := range want {
		if math.Abs(got[pid]-w) > 1e-9 {
			t.Errorf("pid %d cpu %v, want %v", pid, got[pid], w)
		}
	}
	if w2.Skipped != 2 {
		t.Errorf("skipped %d, want 2 (1401 and 1500)", w2.Skipped)
	}
	if _, ok := c.plat.state[1401]; ok {
		t.Error("state of the vanished process 1401 is still kept")
	}
	if u := w2.System.CPU.UsagePercent; math.Abs(u-75) > 1e-9 {
		t.Errorf("host usage %v, want 75", u)
	}
	if len(c.plat.state) != 7 {
		t.Errorf("state holds %d processes, want 7", len(c.plat.state))
	}
}

// TestFixtureBadRoot: a proc root that is missing is an error at New;
// one that loses its files later fails parts, never the walk.
func TestFixtureBadRoot(t *testing.T) {
	if _, err := New(Options{ProcRoot: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Fatal("New accepted a missing proc root")
	}
	if _, err := New(Options{ProcRoot: "testdata/proc/stat"}); err == nil {
		t.Fatal("New accepted a file as proc root")
	}
	if _, err := New(Options{SampleWindow: time.Hour}); err == nil {
		t.Fatal("New accepted an hour-long sample window")
	}
	if _, err := New(Options{RootFS: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Fatal("New accepted a missing root fs")
	}
	if _, err := New(Options{SysRoot: "testdata/proc/stat"}); err == nil {
		t.Fatal("New accepted a file as sys root")
	}
	empty := t.TempDir()
	c, err := New(Options{ProcRoot: empty, SampleWindow: -1})
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Walk(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]bool{}
	for _, p := range w.Parts {
		failed[p.Name] = p.Err != nil
	}
	// No process directories is an empty table, not a failure; every
	// host-wide file is missing, so those parts fail.
	want := map[string]bool{"processes": false, "memory": true, "cpu": true, "loadavg": true, "network": true, "filesystem": true, "host": true}
	if !reflect.DeepEqual(failed, want) {
		t.Fatalf("failed parts %v, want %v", failed, want)
	}
	if w.Processes == nil || len(w.Processes) != 0 || w.System.Filesystems == nil {
		t.Fatalf("processes %#v filesystems %#v: want empty, non-nil", w.Processes, w.System.Filesystems)
	}
}

func TestFirstWalkHonoursContext(t *testing.T) {
	c, err := New(Options{ProcRoot: "testdata/proc", SampleWindow: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Walk(ctx); err == nil {
		t.Fatal("priming walk ignored the cancelled context")
	}
}

func TestUserCache(t *testing.T) {
	calls := 0
	uc := newUserCache("/", slog.New(slog.DiscardHandler))
	uc.lookup = func(uid string) (string, error) {
		calls++
		if uid == "0" {
			return "root", nil
		}
		return "", os.ErrNotExist
	}
	for range 3 {
		if n := uc.name(0); n != "root" {
			t.Fatalf("uid 0 = %q", n)
		}
		// An unknown uid shows as its number, as ps does.
		if n := uc.name(4242); n != "4242" {
			t.Fatalf("uid 4242 = %q", n)
		}
	}
	if calls != 2 {
		t.Fatalf("%d lookups for 2 uids over 3 rounds, want 2", calls)
	}
	uc.expires = time.Now().Add(-time.Second)
	uc.name(0)
	if calls != 3 {
		t.Fatal("an expired cache was not refreshed")
	}
}
