package collector

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procscope/procscope/internal/testutil"
	"github.com/shirou/gopsutil/v4/process"
)

// benchChildren is how many extra processes the walk benchmarks put on
// the machine, so both walks see a table the size of a busy server's.
const benchChildren = 2000

// spawnSleepers starts n `sleep 600` processes in a process group of their
// own (a shell forks them; forking 2,000 times from this test binary would
// cost far more), waits until all exist, and kills exactly that group when
// the benchmark ends.
func spawnSleepers(b *testing.B, n int) {
	b.Helper()
	if _, err := exec.LookPath("sleep"); err != nil {
		b.Skipf("SKIPPED: no sleep binary to build a process tree: %v", err)
	}
	script := `i=0; while [ $i -lt ` + strconv.Itoa(n) + ` ]; do sleep 600 & i=$((i+1)); done; echo ready; wait`
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	pgid := cmd.Process.Pid
	b.Cleanup(func() {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = errUnexpected(line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			b.Fatalf("spawning %d sleepers: %v", n, err)
		}
	case <-time.After(2 * time.Minute):
		b.Fatalf("spawning %d sleepers took over 2 minutes", n)
	}
}

type errUnexpected string

func (e errUnexpected) Error() string { return "unexpected output " + strconv.Quote(string(e)) }

// measure runs walk b.N times and reports CPU µs and allocations per
// process walked, and the processes per walk (the machine is shared, so
// the count includes everyone else's processes too).
func measure(b *testing.B, walk func() int) float64 {
	b.Helper()
	walk() // warm caches (user names, interned names) as a running exporter has them
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := testutil.SelfCPU()
	procs := 0
	for b.Loop() {
		procs += walk()
	}
	cpu := testutil.SelfCPU() - cpu0
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	if procs == 0 {
		b.Fatal("no processes walked")
	}
	perProc := float64(cpu.Microseconds()) / float64(procs)
	b.ReportMetric(perProc, "cpu-us/proc")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(procs), "allocs/proc")
	b.ReportMetric(float64(procs)/float64(b.N), "procs/op")
	return perProc
}

// BenchmarkWalk compares our Linux walk with the naive gopsutil walk the
// original agent's approach amounts to, on the same process table in the
// same run; the ratio is what carries over to other machines.
//
//	go test -run '^$' -bench BenchmarkWalk -benchtime 20x ./exporter/internal/collector
func BenchmarkWalk(b *testing.B) {
	spawnSleepers(b, benchChildren)
	var ours, naive float64
	walker := func(b *testing.B, opts Options) float64 {
		c, err := New(opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		ctx := context.Background()
		return measure(b, func() int {
			w, err := c.Walk(ctx)
			if err != nil {
				b.Fatal(err)
			}
			return len(w.Processes) + w.Skipped
		})
	}
	// The walk as it was before attribution and I/O (both skipped), with
	// attribution only, and with both (the default): the budget of issue
	// 15 is attribution <= 5% once warm and the whole <= 1.25x.
	var old, attr float64
	b.Run("procscope-old", func(b *testing.B) {
		old = walker(b, Options{SampleWindow: -1, SkipAttribution: true, SkipIO: true})
	})
	b.Run("procscope-attribution", func(b *testing.B) {
		attr = walker(b, Options{SampleWindow: -1, SkipIO: true})
	})
	b.Run("procscope", func(b *testing.B) {
		ours = walker(b, Options{SampleWindow: -1})
	})
	// Worst case: every process ran since the last walk, so every io file
	// is read.
	b.Run("procscope-io-every-walk", func(b *testing.B) {
		c, err := New(Options{SampleWindow: -1})
		if err != nil {
			b.Fatal(err)
		}
		c.plat.ioEveryWalk = true
		b.Cleanup(func() { _ = c.Close() })
		ctx := context.Background()
		measure(b, func() int {
			w, err := c.Walk(ctx)
			if err != nil {
				b.Fatal(err)
			}
			return len(w.Processes) + w.Skipped
		})
	})
	if old > 0 && attr > 0 && ours > 0 {
		b.Logf("cpu-us/proc: old %.2f, attribution %.2f (%.2fx), attribution+io %.2f (%.2fx)", old, attr, attr/old, ours, ours/old)
	}
	b.Run("procscope-cmdline", func(b *testing.B) {
		c, err := New(Options{SampleWindow: -1, CollectCmdline: true})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		measure(b, func() int {
			w, err := c.Walk(ctx)
			if err != nil {
				b.Fatal(err)
			}
			return len(w.Processes) + w.Skipped
		})
	})
	b.Run("gopsutil", func(b *testing.B) {
		ctx := context.Background()
		naive = measure(b, func() int {
			ps, err := process.ProcessesWithContext(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for _, p := range ps {
				// Errors are processes that vanished; the figures are
				// only read, as an exporter would.
				_, _ = p.NameWithContext(ctx)
				_, _ = p.PpidWithContext(ctx)
				_, _ = p.TimesWithContext(ctx)
				_, _ = p.MemoryInfoWithContext(ctx)
			}
			return len(ps)
		})
	})
	if ours > 0 && naive > 0 {
		b.Logf("cpu-us/proc: procscope %.1f, gopsutil %.1f, ratio %.1fx", ours, naive, naive/ours)
	}
}

// BenchmarkParseStat is the parser alone, on a fixture line.
func BenchmarkParseStat(b *testing.B) {
	line := []byte("1400 (kube-controller) S 1 1400 1400 0 -1 4194560 100 0 2 0 2500 700 0 0 20 0 12 0 7000 170000000 51200 18446744073709551615 1 1 0 0 0 0 0 4096 1260 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseStat(line); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHostParts times each host-wide part of a walk on the live
// /proc, alone, so a change to how one host file is read can be compared
// with the walk's whole cost (BenchmarkWalk) in the same run.
//
//	go test -run '^$' -bench BenchmarkHostParts ./exporter/internal/collector
func BenchmarkHostParts(b *testing.B) {
	c, err := New(Options{SampleWindow: -1})
	if err != nil {
		b.Fatal(err)
	}
	p := c.plat
	parts := []struct {
		name string
		read func(*Walk) error
	}{
		{"memory", p.readMemory},
		{"cpu", func(w *Walk) error { _, err := p.readCPUTimes(w); return err }},
		{"loadavg", p.readLoad},
		{"network", p.readNetwork},
		{"filesystem", p.readFilesystems},
		{"host", p.readHost},
	}
	// A 128-CPU host (stat and cpuinfo grow with the CPUs), without
	// cpufreq (a large VM: cpuinfo is then read every walk for the clock)
	// and with it (stat alone).
	big := bigHostProc(b, 128)
	noFreq, err := New(Options{ProcRoot: big, SysRoot: b.TempDir(), SampleWindow: -1})
	if err != nil {
		b.Fatal(err)
	}
	freqRoot := b.TempDir()
	freqDir := filepath.Join(freqRoot, "devices/system/cpu/cpu0/cpufreq")
	if err := os.MkdirAll(freqDir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(freqDir, "scaling_cur_freq"), []byte("2400000\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	withFreq, err := New(Options{ProcRoot: big, SysRoot: freqRoot, SampleWindow: -1})
	if err != nil {
		b.Fatal(err)
	}
	cpuPart := func(p *platform) func(*Walk) error {
		return func(w *Walk) error { _, err := p.readCPUTimes(w); return err }
	}
	parts = append(parts, []struct {
		name string
		read func(*Walk) error
	}{
		{"static", func(*Walk) error { _ = p.readStatic(); return nil }},
		{"cpu-128cpus", cpuPart(noFreq.plat)},
		{"cpu-128cpus-cpufreq", cpuPart(withFreq.plat)},
	}...)
	for _, part := range parts {
		b.Run(part.name, func(b *testing.B) {
			b.ReportAllocs()
			// CPU time, not wall time: on a shared machine the wall
			// clock mostly measures the neighbours.
			cpu0 := testutil.SelfCPU()
			for b.Loop() {
				if err := part.read(&Walk{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((testutil.SelfCPU()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-us/op")
		})
	}
}

// bigHostProc writes stat and cpuinfo of an n-CPU host into a temporary
// proc root: the live first CPU's cpuinfo block (so its flags line is
// real) repeated n times, n cpu lines and a 1,000-IRQ intr line.
func bigHostProc(b *testing.B, n int) string {
	b.Helper()
	live, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		b.Skipf("SKIPPED: no live cpuinfo to copy: %v", err)
	}
	block, _, _ := strings.Cut(string(live), "\n\n")
	_, block, _ = strings.Cut(block, "\n") // drop "processor : 0"
	var ci, st strings.Builder
	st.WriteString("cpu  10132153 290696 3084719 46828483 16683 0 25195 175 0 0\n")
	for i := range n {
		fmt.Fprintf(&ci, "processor\t: %d\n%s\n\n", i, block)
		fmt.Fprintf(&st, "cpu%d 1393280 32966 572056 13343292 6130 0 17875 175 0 0\n", i)
	}
	st.WriteString("intr 199292" + strings.Repeat(" 12345", 1000) + "\n")
	st.WriteString("ctxt 27894512\nbtime 1764000000\nprocesses 142339\nprocs_running 2\nprocs_blocked 0\n")
	st.WriteString("softirq 229245889 94 60001584 13619 5175704 2471304 0 851 8 4 161972\n")
	dir := b.TempDir()
	for name, text := range map[string]string{"cpuinfo": ci.String(), "stat": st.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}
