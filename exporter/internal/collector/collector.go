package collector

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// DefaultSampleWindow is the priming window of the very first walk, the
// original agent's sample_sleep_ms (200).
const DefaultSampleWindow = 200 * time.Millisecond

// maxSampleWindow bounds the priming sleep so a typo in a config file cannot
// stall the exporter's first push for hours.
const maxSampleWindow = time.Minute

// maxCmdline bounds one command line: a command line can be megabytes
// (ARG_MAX) and one snapshot is capped at 64 MiB after decompression.
const maxCmdline = 32 << 10

// Options configures a Collector. The zero value is usable: it reads the
// live host.
type Options struct {
	// ProcRoot is where procfs is mounted, "/proc" by default. Tests point
	// it at testdata; a container pointed at the host's /proc sees the host.
	ProcRoot string
	// SysRoot is where sysfs is mounted, "/sys" by default (CPU
	// frequencies and topology on Linux).
	SysRoot string
	// RootFS is the host's root filesystem as the exporter sees it, "/" by
	// default: /etc/os-release is read below it and mounted filesystems are
	// measured below it (node_exporter's --path.rootfs).
	RootFS string
	// SampleWindow is the priming window of the very first walk only:
	// it reads CPU times, sleeps this long, and reads again, so the first
	// snapshot already has CPU%. Later walks compare with the walk before
	// and never sleep. 0 means DefaultSampleWindow; negative means no
	// priming (the first walk then reports 0% CPU for every process).
	SampleWindow time.Duration
	// CollectCmdline fills Process.Cmdline (scrubbed of secrets).
	// Off by default: command lines are sensitive and large.
	CollectCmdline bool
	// SkipAttribution leaves out each process's cgroup, unit, container
	// and pod (Linux reads /proc/PID/cgroup once per process).
	SkipAttribution bool
	// SkipIO leaves out each process's disk I/O rates (Linux reads
	// /proc/PID/io every walk).
	SkipIO bool
	// Logger receives debug details; nil discards them.
	Logger *slog.Logger
}

// Collector walks the host. Each walk is compared with the one before, so
// walks are meant to come one per interval from one caller; concurrent
// calls are serialised rather than allowed to corrupt that state.
type Collector struct {
	mu     sync.Mutex
	opts   Options
	logger *slog.Logger
	// walks counts completed walks; 0 means the next walk primes.
	walks int
	// static holds facts read once at New (OS, CPU model, cores).
	static snapshot.SystemInfo
	// lastCPU is the host CPU time of the previous walk, for usage_percent.
	lastCPU     map[string]float64
	lastCPUBusy float64
	lastCPUAll  float64
	// plat is the OS-specific part (proc reader on Linux, gopsutil elsewhere).
	plat *platform
}

// New checks the options and reads the facts that do not change while the
// host runs (OS, CPU model, core counts), so walks stay cheap.
func New(opts Options) (*Collector, error) {
	if opts.SampleWindow > maxSampleWindow {
		return nil, fmt.Errorf("sample window %s is longer than the maximum %s", opts.SampleWindow, maxSampleWindow)
	}
	opts.SampleWindow = cmp.Or(opts.SampleWindow, DefaultSampleWindow)
	opts.ProcRoot = cmp.Or(opts.ProcRoot, "/proc")
	opts.SysRoot = cmp.Or(opts.SysRoot, "/sys")
	opts.RootFS = cmp.Or(opts.RootFS, "/")
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Collector{opts: opts, logger: logger}
	plat, err := newPlatform(opts, logger)
	if err != nil {
		return nil, err
	}
	c.plat = plat
	c.static = plat.staticInfo()
	// A collector dropped without Close must not leak what it holds.
	runtime.AddCleanup(c, func(p *platform) { p.closeAll() }, plat)
	return c, nil
}

// Close releases what the collector holds open between walks (on Linux,
// one fd per process, see procState.fd). A Walk after Close still works.
func (c *Collector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.plat.closeAll()
	return nil
}

// Walk makes one pass over the host. The very first call primes CPU
// figures (it reads, sleeps SampleWindow, reads again); later calls compare
// with the previous call and do not sleep. One part failing is recorded in
// Walk.Parts and never fails the walk; the only error is ctx ending during
// the priming window.
func (c *Collector) Walk(ctx context.Context) (*Walk, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.walks == 0 && c.opts.SampleWindow > 0 {
		// Priming: the CPU figures of this pass only become the baseline
		// that the real pass below is compared with.
		c.plat.primeProcesses()
		_ = c.readCPU(&Walk{}) // a failure here shows in the real pass below
		t := time.NewTimer(c.opts.SampleWindow)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	// The static facts are copied by value; their only slice,
	// Filesystems, is nil there and filled per walk.
	w := &Walk{System: c.static}
	// Memory first: memory_percent of every process needs the total.
	c.part(w, "memory", c.plat.readMemory)
	c.part(w, "cpu", c.readCPU)
	c.part(w, "processes", c.plat.readProcesses)
	c.part(w, "loadavg", c.plat.readLoad)
	c.part(w, "network", c.plat.readNetwork)
	c.part(w, "filesystem", c.plat.readFilesystems)
	c.part(w, "host", c.plat.readHost)
	w.Time = time.Now()
	// A failed part leaves empty lists, never nil ones: the wire contract
	// rejects "processes": null, and readers of system_info expect arrays.
	if w.Processes == nil {
		w.Processes = []Process{}
	}
	if w.System.Filesystems == nil {
		w.System.Filesystems = []snapshot.Filesystem{}
	}
	w.System.ProcessCount = len(w.Processes)
	if !w.BootTime.IsZero() {
		w.System.BootTime = w.BootTime.UTC().Format(time.RFC3339)
	}
	c.walks++
	return w, nil
}

// part runs one part of the walk, timing it and recording its error; a
// panic in a part (a parser meeting input it did not expect) is recorded as
// that part's error instead of taking the exporter down.
func (c *Collector) part(w *Walk, name string, fn func(*Walk) error) {
	start := time.Now()
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return fn(w)
	}()
	d := time.Since(start)
	if err != nil {
		c.logger.Debug("walk part failed", "part", name, "err", err)
	}
	w.Parts = append(w.Parts, PartResult{Name: name, Duration: d, Err: err})
}

// cpuModes are the modes of Walk.CPUSeconds, in a fixed order.
var cpuModes = [...]string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}

// readCPU fills host CPU seconds by mode and usage over the last interval.
func (c *Collector) readCPU(w *Walk) error {
	secs, err := c.plat.readCPUTimes(w)
	if err != nil {
		return err
	}
	w.CPUSeconds = secs
	var all, idle float64
	for _, m := range cpuModes {
		all += secs[m]
	}
	idle = secs["idle"] + secs["iowait"]
	busy := all - idle
	if c.lastCPU != nil {
		dAll, dBusy := all-c.lastCPUAll, busy-c.lastCPUBusy
		if dAll > 0 && dBusy >= 0 {
			w.System.CPU.UsagePercent = clampPercent(dBusy / dAll * 100)
		}
	}
	c.lastCPU, c.lastCPUAll, c.lastCPUBusy = secs, all, busy
	return nil
}

func clampPercent(p float64) float64 {
	if p < 0 {
		return 0
	}
	if p > 100 {
		return 100
	}
	return p
}

// cpuPercent is a process's share of one core between two readings of its
// cumulative CPU time, like top's %CPU. It is never negative (a counter
// that went back means another process, so nothing is known).
func cpuPercent(prevSec, nowSec float64, dt time.Duration) float64 {
	if dt <= 0 || nowSec < prevSec {
		return 0
	}
	return (nowSec - prevSec) / dt.Seconds() * 100
}

// newProcessPercent is the CPU% of a process not seen by the previous
// walk: started after it, all its CPU time was spent within the interval;
// started before it (the previous walk missed it), its lifetime average is
// the honest figure. Never a delta against another process that had the
// same PID.
func newProcessPercent(cpuSec float64, start, prevWalk, now time.Time) float64 {
	if prevWalk.IsZero() {
		return 0
	}
	if start.After(prevWalk) {
		return cpuPercent(0, cpuSec, now.Sub(prevWalk))
	}
	return cpuPercent(0, cpuSec, now.Sub(start))
}
