package collector

// The process walk on Windows, macOS and the rest: gopsutil. There is no
// procfs to read cheaply, and these hosts have far fewer processes than the
// Linux servers the fast path is for. It builds on Linux too, where its
// tests run it against the live host (platform_other.go picks it
// elsewhere).

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/shirou/gopsutil/v4/process"
)

// gopsutilProcState is what a walk remembers of one process for the next
// walk, valid while the create time matches (a reused PID is another
// process).
type gopsutilProcState struct {
	createMS   int64
	cpuSec     float64
	gen        uint32
	name       string
	username   string
	createTime string
}

// gopsutilPlatform is the portable half of a Collector.
type gopsutilPlatform struct {
	opts     Options
	logger   *slog.Logger
	static   snapshot.SystemInfo
	state    map[int32]gopsutilProcState
	gen      uint32
	prevWalk time.Time
	memTotal uint64
	bootTime time.Time
	// now is the clock; tests may replace it.
	now func() time.Time
}

func newGopsutilPlatform(opts Options, logger *slog.Logger) (*gopsutilPlatform, error) {
	p := &gopsutilPlatform{opts: opts, logger: logger, state: map[int32]gopsutilProcState{}, now: time.Now}
	p.static = p.readStatic()
	return p, nil
}

// closeAll: nothing is held open between walks here.
//
//nolint:unused // called off Linux, where platform_other.go makes this the platform; lint runs for Linux
func (p *gopsutilPlatform) closeAll() {}

func (p *gopsutilPlatform) staticInfo() snapshot.SystemInfo { return p.static }

func (p *gopsutilPlatform) primeProcesses() { _ = p.readProcesses(&Walk{}) }

func (p *gopsutilPlatform) readProcesses(w *Walk) error {
	ctx := context.Background()
	list, err := process.ProcessesWithContext(ctx)
	if err != nil {
		return err
	}
	now := p.now()
	var dt time.Duration
	if !p.prevWalk.IsZero() {
		dt = now.Sub(p.prevWalk)
	}
	p.gen++
	procs := make([]Process, 0, len(list))
	for _, gp := range list {
		pr, ok := p.readOne(ctx, gp, now, dt)
		if !ok {
			w.Skipped++
			continue
		}
		procs = append(procs, pr)
	}
	for pid, st := range p.state {
		if st.gen != p.gen {
			delete(p.state, pid)
		}
	}
	slices.SortFunc(procs, func(a, b Process) int { return int(a.PID - b.PID) })
	p.prevWalk = now
	w.Processes = procs
	return nil
}

func (p *gopsutilPlatform) readOne(ctx context.Context, gp *process.Process, now time.Time, dt time.Duration) (Process, bool) {
	createMS, err := gp.CreateTimeWithContext(ctx)
	if err != nil {
		return Process{}, false
	}
	times, err := gp.TimesWithContext(ctx)
	if err != nil {
		return Process{}, false
	}
	mem, err := gp.MemoryInfoWithContext(ctx)
	if err != nil {
		return Process{}, false
	}
	ppid, _ := gp.PpidWithContext(ctx)
	st, seen := p.state[gp.Pid]
	if seen && st.createMS != createMS {
		st, seen = gopsutilProcState{}, false // the PID was reused
	}
	start := time.UnixMilli(createMS)
	if !seen {
		st.createMS = createMS
		st.name, _ = gp.NameWithContext(ctx)
		st.username, _ = gp.UsernameWithContext(ctx)
		st.createTime = start.UTC().Format(time.RFC3339Nano)
	}
	cpuSec := times.User + times.System
	var pct float64
	if seen {
		pct = cpuPercent(st.cpuSec, cpuSec, dt)
	} else {
		pct = newProcessPercent(cpuSec, start, p.prevWalk, now)
	}
	st.cpuSec = cpuSec
	st.gen = p.gen
	p.state[gp.Pid] = st

	status, state := "unknown", "other"
	if ss, err := gp.StatusWithContext(ctx); err == nil && len(ss) > 0 {
		status, state = gopsutilStatus(ss[0])
	}
	threads, _ := gp.NumThreadsWithContext(ctx)
	pr := Process{
		Process: snapshot.Process{
			PID:        int64(gp.Pid),
			PPID:       int64(ppid),
			Name:       st.name,
			CPUPercent: pct,
			MemoryMB:   float64(mem.RSS) / (1 << 20),
			Username:   st.username,
			Status:     status,
			NumThreads: threads,
			CreateTime: st.createTime,
		},
		CPUSeconds: cpuSec,
		RSSBytes:   mem.RSS,
		StartTime:  start,
		State:      state,
	}
	if p.memTotal > 0 {
		pr.MemoryPercent = float64(mem.RSS) / float64(p.memTotal) * 100
	}
	if p.opts.CollectCmdline {
		cmd, _ := gp.CmdlineWithContext(ctx)
		if len(cmd) > maxCmdline {
			cmd = cmd[:maxCmdline]
		}
		c := ScrubCmdline(cmd)
		pr.Cmdline = &c
	}
	return pr, true
}

// gopsutilStatus maps gopsutil's status words to the wire status (psutil's
// names) and the one-word state of /metrics.
func gopsutilStatus(s string) (status, state string) {
	switch s {
	case process.Running:
		return "running", "running"
	case process.Sleep:
		return "sleeping", "sleeping"
	case process.Idle:
		return "idle", "idle"
	case process.Blocked:
		return "disk-sleep", "disk-sleep"
	case process.Wait:
		return "waiting", "other"
	case process.Lock:
		return "locked", "other"
	case process.Stop:
		return "stopped", "stopped"
	case process.Zombie:
		return "zombie", "zombie"
	}
	return "unknown", "other"
}
