package metrics

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/exporter/internal/collector"
	"github.com/procscope/procscope/exporter/internal/push"
)

var update = flag.Bool("update", false, "rewrite testdata/metrics.golden")

var boot = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

func proc(pid, ppid int64, name string, cpu float64, rss uint64, cpuSec float64, state string) collector.Process {
	return collector.Process{
		Process:    snapshot.Process{PID: pid, PPID: ppid, Name: name, CPUPercent: cpu, MemoryMB: float64(rss) / (1 << 20)},
		CPUSeconds: cpuSec, RSSBytes: rss, StartTime: boot.Add(time.Duration(pid) * time.Second), State: state,
	}
}

// fixtureWalk is a small host with hostile process names and the edge
// cases /metrics must survive (duplicate mounts, a failed part).
func fixtureWalk() *collector.Walk {
	w := fixtureWalkBare()
	// Attribution, hostile unit included.
	for i, u := range map[int]string{0: "init.scope", 2: "system.slice/nginx.service", 3: "system.slice/nginx.service", 5: "system.slice/evil\"unit\n.service"} {
		w.Processes[i].SetExt(snapshot.ProcessExt{Unit: u})
	}
	w.Processes[4].SetExt(snapshot.ProcessExt{ContainerID: "3f1c9a1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7"})
	return w
}

func fixtureWalkBare() *collector.Walk {
	return &collector.Walk{
		Time: time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC),
		System: snapshot.SystemInfo{
			OS:          snapshot.OSInfo{Name: "linux", Distro: "debian", Version: "12", Kernel: "6.1.0-28-amd64", Arch: "x86_64"},
			CPU:         snapshot.CPUInfo{LogicalThreads: 4},
			Memory:      snapshot.MemoryInfo{TotalBytes: 8 << 30, UsedBytes: 3 << 30, AvailableBytes: 5 << 30},
			Swap:        snapshot.SwapInfo{TotalBytes: 1 << 30, UsedBytes: 1 << 20},
			LoadAverage: snapshot.LoadAverage{Load1: 0.5, Load5: 0.25, Load15: 0.125},
			Filesystems: []snapshot.Filesystem{
				{Mountpoint: "/", Device: "/dev/sda1", FSType: "ext4", TotalBytes: 100 << 30, UsedBytes: 40 << 30, AvailableBytes: 55 << 30},
				{Mountpoint: "/", Device: "/dev/sda1", FSType: "ext4", TotalBytes: 100 << 30, UsedBytes: 40 << 30, AvailableBytes: 55 << 30},
				{Mountpoint: "/mnt/we\"ird\\dir\nx", Device: "tmpfs", FSType: "tmpfs", TotalBytes: 1 << 20, UsedBytes: 2 << 20},
			},
		},
		Processes: []collector.Process{
			proc(1, 0, "systemd", 0.1, 12<<20, 30, "sleeping"),
			proc(2, 0, "kthreadd", 0, 0, 0.5, "sleeping"),
			proc(100, 1, "nginx", 12.5, 40<<20, 100, "sleeping"),
			proc(101, 100, "nginx", 7.25, 38<<20, 50, "running"),
			proc(200, 1, "postgres", 3, 300<<20, 400, "disk-sleep"),
			proc(300, 1, "evil\"name\\with\nnewline", 50, 1<<20, 5, "running"),
			proc(301, 1, "bad\xffutf8", 0, 2<<20, 1, "zombie"),
			proc(302, 1, strings.Repeat("long", 100), 0, 3<<20, 1, "stopped"),
			proc(303, 1, "worker", 0, 4<<20, 1, "weird-state"),
		},
		Skipped:    2,
		CPUSeconds: map[string]float64{"user": 1000, "system": 500, "idle": 90000, "iowait": 10, "nice": 1, "irq": 2, "softirq": 3, "steal": 0},
		Network: []collector.NetDevice{
			{Device: "eth0", ReceiveBytes: 1e9, TransmitBytes: 2e8},
			{Device: "lo", ReceiveBytes: 5e6, TransmitBytes: 5e6},
		},
		BootTime: boot,
		Parts: []collector.PartResult{
			{Name: "processes", Duration: 3 * time.Millisecond},
			{Name: "filesystem", Duration: time.Millisecond, Err: errors.New("statfs /mnt/x: permission denied")},
		},
	}
}

func groups(_ testing.TB, specs ...string) []Group {
	var gs []Group
	for i := 0; i < len(specs); i += 2 {
		gs = append(gs, Group{Name: specs[i], Regexp: regexp.MustCompile(specs[i+1])})
	}
	return gs
}

// scrape builds the registry as main does (our collector, Go and process
// collectors, build info, the push counters) and returns the handler's
// text output.
func scrape(t *testing.T, c *Collector) string {
	t.Helper()
	reg, err := NewRegistry(c)
	if err != nil {
		t.Fatal(err)
	}
	q, _, err := push.OpenQueue(t.TempDir(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := push.New(push.Options{URL: "http://127.0.0.1:1/", Queue: q, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	Handler(reg, slog.New(slog.DiscardHandler)).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// stable drops the series that depend on the machine, the run or the build.
func stable(out string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(out, "\n") {
		name := line
		if strings.HasPrefix(line, "# ") {
			f := strings.Fields(line)
			if len(f) >= 3 {
				name = f[2]
			}
		}
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") ||
			strings.HasPrefix(name, "procscope_exporter_build_info") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	c, err := New(3, groups(t, "nginx", "^nginx$", "db", "^(postgres|mysqld)$", "absent", "^nothing-runs-this$"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetHostname("web-1")
	c.Update(fixtureWalk(), 5*time.Millisecond)
	got := stable(scrape(t, c))
	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./exporter/internal/metrics -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("/metrics differs from %s (rerun with -update if intended):\n%s", golden, got)
	}
}

func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("REQUIRE_E2E") != "" {
			t.Fatal("promtool not installed and REQUIRE_E2E is set")
		}
		t.Skip("SKIPPING: promtool not installed (apt-get install prometheus); set REQUIRE_E2E=1 to make this a failure")
	}
	c, _ := New(10, groups(t, "nginx", "^nginx$"))
	c.SetHostname("web-1")
	c.Update(fixtureWalk(), 5*time.Millisecond)
	out := scrape(t, c)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	var res bytes.Buffer
	cmd.Stdout, cmd.Stderr = &res, &res
	if err := cmd.Run(); err != nil || strings.TrimSpace(res.String()) != "" {
		t.Errorf("promtool check metrics: %v\n%s", err, res.String())
	}
}

func TestNotReadyBeforeFirstWalk(t *testing.T) {
	c, _ := New(10, nil)
	if c.Ready() {
		t.Error("ready before any walk")
	}
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("%d metrics before any walk", n)
	}
	c.Update(fixtureWalk(), time.Millisecond)
	if !c.Ready() {
		t.Error("not ready after a walk")
	}
}

func TestTopNBoundsCardinality(t *testing.T) {
	w := fixtureWalk()
	for i := 0; i < 5000; i++ {
		w.Processes = append(w.Processes, proc(int64(1000+i), 1, "p", float64(i%7), uint64(i)<<10, 1, "sleeping"))
	}
	for _, n := range []int{0, 1, 10} {
		c, _ := New(n, nil)
		c.Update(w, time.Millisecond)
		if got := testutil.CollectAndCount(c, "procscope_top_process_cpu_percent"); got != n {
			t.Errorf("top-n %d: %d cpu series", n, got)
		}
		if got := testutil.CollectAndCount(c, "procscope_top_process_resident_memory_bytes"); got != n {
			t.Errorf("top-n %d: %d memory series", n, got)
		}
	}
	c, _ := New(2, nil)
	c.Update(fixtureWalk(), time.Millisecond)
	want := `# HELP procscope_top_process_cpu_percent CPU use of the top processes by CPU, percent of one core.
# TYPE procscope_top_process_cpu_percent gauge
procscope_top_process_cpu_percent{name="evil\"name\\with\nnewline",pid="300",rank="1"} 50
procscope_top_process_cpu_percent{name="nginx",pid="100",rank="2"} 12.5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "procscope_top_process_cpu_percent"); err != nil {
		t.Error(err)
	}
}

func TestGroupCPUCounterNeverGoesBack(t *testing.T) {
	c, _ := New(0, groups(t, "nginx", "^nginx$"))
	value := func() float64 {
		return testutil.ToFloat64(prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
			ch2 := make(chan prometheus.Metric, 100)
			c.Collect(ch2)
			close(ch2)
			for m := range ch2 {
				if strings.Contains(m.Desc().String(), "process_group_cpu_seconds_total") {
					ch <- m
				}
			}
		}))
	}
	w := fixtureWalk()
	c.Update(w, 0)
	if v := value(); v != 150 {
		t.Fatalf("first walk: %v, want 100+50", v)
	}
	// Worker 101 used 5 s more; 100 exited; a new nginx (PID 102) appears
	// with 2 s; PID 101 is then reused by a new nginx with 1 s.
	w2 := fixtureWalk()
	w2.Processes = []collector.Process{proc(101, 1, "nginx", 0, 1, 55, "running"), proc(102, 1, "nginx", 0, 1, 2, "running")}
	c.Update(w2, 0)
	if v := value(); v != 157 {
		t.Fatalf("second walk: %v, want 150+5+2", v)
	}
	w3 := fixtureWalk()
	reused := proc(101, 1, "nginx", 0, 1, 1, "running")
	reused.StartTime = reused.StartTime.Add(time.Hour)
	w3.Processes = []collector.Process{reused, proc(102, 1, "nginx", 0, 1, 2, "running")}
	c.Update(w3, 0)
	if v := value(); v != 158 {
		t.Fatalf("third walk: %v, want 157+1 (PID reuse is a new process)", v)
	}
	w4 := fixtureWalk()
	w4.Processes = nil
	c.Update(w4, 0)
	if v := value(); v != 158 {
		t.Fatalf("no nginx left: %v, want 158 kept", v)
	}
	if n := testutil.ToFloat64(groupGauge(c, "procscope_process_group_processes")); n != 0 {
		t.Errorf("group count %v with no process, want 0", n)
	}
}

func groupGauge(c *Collector, name string) prometheus.Collector {
	return prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		ch2 := make(chan prometheus.Metric, 100)
		c.Collect(ch2)
		close(ch2)
		for m := range ch2 {
			if strings.Contains(m.Desc().String(), `"`+name+`"`) {
				ch <- m
			}
		}
	})
}

func TestNameLabel(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := nameLabel(in); got != want {
			t.Errorf("nameLabel(%q) = %q, want %q", in, got, want)
		}
	}
	f("nginx", "nginx")
	f("a\xffb", "a\uFFFDb")
	f(strings.Repeat("x", 128), strings.Repeat("x", 128))
	f(strings.Repeat("x", 129), strings.Repeat("x", 128)+"…")
	// A cut inside a multi-byte rune backs off to the rune's start.
	f(strings.Repeat("x", 127)+"é", strings.Repeat("x", 127)+"…")
}

// TestHostInfo: the identity series carries the pushed hostname and the
// walk's OS, survives hostile text, and is absent until a hostname is set
// (a series with hostname="" would join to nothing).
func TestHostInfo(t *testing.T) {
	c, _ := New(0, nil)
	c.Update(fixtureWalk(), 0)
	if n := testutil.CollectAndCount(c, "procscope_host_info"); n != 0 {
		t.Fatalf("%d host_info series without a hostname, want 0", n)
	}
	c.SetHostname("db-\"2\"\n")
	w := fixtureWalk()
	w.System.OS.Kernel = "6.1\xff-evil"
	w.System.OS.Distro = ""
	c.Update(w, 0)
	want := `# HELP procscope_host_info Always 1: the hostname this exporter pushes as, and the host's operating system.
# TYPE procscope_host_info gauge
procscope_host_info{arch="x86_64",distro="",hostname="db-\"2\"\n",kernel="6.1�-evil",os="linux"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "procscope_host_info"); err != nil {
		t.Error(err)
	}
}
