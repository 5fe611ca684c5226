package collector

// System details on Linux, read from procfs and sysfs below the configured
// roots (so fixtures and a container looking at the host's /proc work).
// Host-wide /proc files are parsed by github.com/prometheus/procfs, as
// node_exporter does; /proc/uptime, which it does not parse, by hand.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// statfsTimeout bounds one statfs: a hung NFS server must not stall the walk.
const statfsTimeout = 2 * time.Second

// readStatic reads what does not change while the host runs.
func (p *platform) readStatic() snapshot.SystemInfo {
	var si snapshot.SystemInfo
	si.OS.Name = "linux"
	si.OS.Arch = unameArch()
	var u syscall.Utsname
	if err := syscall.Uname(&u); err == nil {
		if m := utsString(u.Machine[:]); m != "" {
			si.OS.Arch = m
		}
	}
	if b, err := p.readSysFile("sys/kernel/osrelease"); err == nil {
		si.OS.Kernel = strings.TrimSpace(string(b))
	}
	for _, f := range []string{"etc/os-release", "usr/lib/os-release"} {
		b, err := os.ReadFile(filepath.Join(p.opts.RootFS, f))
		if err != nil {
			continue
		}
		osr := parseOSRelease(b)
		si.OS.Distro = osr["ID"]
		si.OS.Version = osr["VERSION_ID"]
		if si.OS.Version == "" {
			si.OS.Version = osr["VERSION"] // rolling releases (Arch) have neither
		}
		break
	}
	if ci, err := p.readCPUInfo(); err == nil {
		si.CPU.Model = ci.Model
		si.CPU.LogicalThreads = ci.Logical
		si.CPU.PhysicalCores = ci.PhysicalCores
		si.CPU.CurrentMHz = ci.AvgMHz
	}
	cpuDir := filepath.Join(p.opts.SysRoot, "devices/system/cpu")
	if cores := sysfsPhysicalCores(cpuDir); cores > 0 {
		si.CPU.PhysicalCores = cores
	}
	if si.CPU.PhysicalCores == 0 {
		si.CPU.PhysicalCores = si.CPU.LogicalThreads
	}
	si.CPU.MaxMHz = sysfsMaxMHz(cpuDir)
	if si.CPU.MaxMHz == 0 {
		si.CPU.MaxMHz = si.CPU.CurrentMHz
	}
	return si
}

// cpuInfo is what /proc/cpuinfo tells about the processors.
type cpuInfo struct {
	Model         string
	Logical       int
	PhysicalCores int     // 0 when cpuinfo does not say (most ARM kernels)
	AvgMHz        float64 // 0 when cpuinfo does not say
}

// readCPUInfo reads cpuinfo with procfs, whose parser is chosen by the
// build's GOARCH and indexes split lines unchecked on some layouts (a
// "processor:0" first line, an arm cpuinfo without "Features"): New
// reads it outside any part's recover, and such a file must cost the CPU
// facts, not the exporter's start.
func (p *platform) readCPUInfo() (_ cpuInfo, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cpuinfo: panic: %v", r)
		}
	}()
	cpus, err := p.fs.CPUInfo()
	if err != nil {
		return cpuInfo{}, err
	}
	return summarizeCPUInfo(cpus), nil
}

// summarizeCPUInfo sums up cpuinfo's processors. Physical cores are the
// distinct (physical id, core id) pairs: "cpu cores" alone is per socket.
func summarizeCPUInfo(cpus []procfs.CPUInfo) cpuInfo {
	ci := cpuInfo{Logical: len(cpus)}
	type core struct{ pkg, id string }
	cores := map[core]bool{}
	var mhzSum float64
	var mhzN int
	for _, c := range cpus {
		if ci.Model == "" {
			ci.Model = strings.TrimSpace(c.ModelName)
		}
		if c.PhysicalID != "" || c.CoreID != "" {
			cores[core{c.PhysicalID, c.CoreID}] = true
		}
		if c.CPUMHz > 0 {
			mhzSum += c.CPUMHz
			mhzN++
		}
	}
	ci.PhysicalCores = len(cores)
	if mhzN > 0 {
		ci.AvgMHz = mhzSum / float64(mhzN)
	}
	return ci
}

func utsString[T int8 | uint8](b []T) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

// sysfsPhysicalCores counts distinct (package, core) pairs of the CPU
// topology, which ARM kernels expose while their cpuinfo does not.
func sysfsPhysicalCores(cpuDir string) int {
	dirs, _ := filepath.Glob(filepath.Join(cpuDir, "cpu[0-9]*"))
	seen := map[string]bool{}
	for _, d := range dirs {
		pkg, err1 := os.ReadFile(filepath.Join(d, "topology/physical_package_id"))
		core, err2 := os.ReadFile(filepath.Join(d, "topology/core_id"))
		if err1 != nil || err2 != nil {
			continue
		}
		seen[strings.TrimSpace(string(pkg))+"/"+strings.TrimSpace(string(core))] = true
	}
	return len(seen)
}

// sysfsMaxMHz is the highest cpuinfo_max_freq (kHz) of all CPUs, 0 where
// cpufreq is absent (most VMs).
func sysfsMaxMHz(cpuDir string) float64 {
	files, _ := filepath.Glob(filepath.Join(cpuDir, "cpu[0-9]*/cpufreq/cpuinfo_max_freq"))
	var best float64
	for _, f := range files {
		if v, ok := readKHz(f); ok && v > best {
			best = v
		}
	}
	return best
}

// sysfsCurMHz averages scaling_cur_freq over all CPUs, 0 without cpufreq.
func sysfsCurMHz(cpuDir string) float64 {
	files, _ := filepath.Glob(filepath.Join(cpuDir, "cpu[0-9]*/cpufreq/scaling_cur_freq"))
	var sum float64
	var n int
	for _, f := range files {
		if v, ok := readKHz(f); ok {
			sum += v
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

func readKHz(file string) (float64, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v == 0 {
		return 0, false
	}
	return float64(v) / 1000, true
}

func (p *platform) readMemory(w *Walk) error {
	m, err := p.fs.Meminfo()
	if err != nil {
		return err
	}
	mem, swap, err := memoryFrom(m)
	if err != nil {
		return err
	}
	p.memTotal = mem.TotalBytes
	w.System.Memory, w.System.Swap = mem, swap
	return nil
}

// memoryFrom turns meminfo into the walk's memory and swap figures.
func memoryFrom(m procfs.Meminfo) (snapshot.MemoryInfo, snapshot.SwapInfo, error) {
	if m.MemTotalBytes == nil {
		return snapshot.MemoryInfo{}, snapshot.SwapInfo{}, errors.New("no MemTotal in meminfo")
	}
	v := func(p *uint64) uint64 {
		if p == nil {
			return 0
		}
		return *p
	}
	total := *m.MemTotalBytes
	avail := v(m.MemAvailableBytes)
	if m.MemAvailableBytes == nil {
		// Kernels before 3.14: estimate as free(1) did.
		avail = v(m.MemFreeBytes) + v(m.BuffersBytes) + v(m.CachedBytes) + v(m.SReclaimableBytes)
	}
	avail = min(avail, total)
	swapTotal, swapFree := v(m.SwapTotalBytes), v(m.SwapFreeBytes)
	swap := snapshot.SwapInfo{TotalBytes: swapTotal}
	if swapTotal >= swapFree {
		swap.UsedBytes = swapTotal - swapFree
	}
	return snapshot.MemoryInfo{TotalBytes: total, UsedBytes: total - avail, AvailableBytes: avail}, swap, nil
}

// readCPUTimes reads /proc/stat (CPU seconds by mode, boot time) and the
// current CPU frequency.
func (p *platform) readCPUTimes(w *Walk) (map[string]float64, error) {
	s, err := p.fs.Stat()
	if err != nil {
		return nil, err
	}
	secs, err := cpuSecondsFrom(s)
	if err != nil {
		return nil, err
	}
	p.bootTime = time.Unix(int64(s.BootTime), 0)
	w.BootTime = p.bootTime
	w.System.ForksSinceLast = p.forksSince(s.ProcessCreated)
	mhz := sysfsCurMHz(filepath.Join(p.opts.SysRoot, "devices/system/cpu"))
	if mhz == 0 {
		// No cpufreq (VMs): cpuinfo's "cpu MHz" is the current clock.
		if ci, err := p.readCPUInfo(); err == nil {
			mhz = ci.AvgMHz
		}
	}
	if mhz > 0 {
		w.System.CPU.CurrentMHz = mhz
	}
	return secs, nil
}

// forksSince is the growth of /proc/stat's "processes" counter since the
// last walk; nil on the first walk or when it went back (another boot, or
// a proc root that is not the same host's any more).
func (p *platform) forksSince(n uint64) *uint64 {
	prev, had := p.forks, p.forksRead
	p.forks, p.forksRead = n, true
	if !had || n < prev {
		return nil
	}
	d := n - prev
	return &d
}

// cpuSecondsFrom is the host's CPU seconds by mode (cpuModes) from the
// aggregate cpu line of /proc/stat; guest time is already inside user and
// nice. procfs divides ticks by USER_HZ 100, which every Linux
// architecture Go supports uses (per-process ticks use the auxv value).
func cpuSecondsFrom(s procfs.Stat) (map[string]float64, error) {
	t := s.CPUTotal
	if s.BootTime == 0 || t == (procfs.CPUStat{}) {
		return nil, errors.New("no cpu or btime line in /proc/stat")
	}
	return map[string]float64{"user": t.User, "nice": t.Nice, "system": t.System, "idle": t.Idle,
		"iowait": t.Iowait, "irq": t.IRQ, "softirq": t.SoftIRQ, "steal": t.Steal}, nil
}

func (p *platform) readLoad(w *Walk) error {
	l, err := p.fs.LoadAvg()
	if err != nil {
		return err
	}
	w.System.LoadAverage = snapshot.LoadAverage{Load1: l.Load1, Load5: l.Load5, Load15: l.Load15}
	return nil
}

func (p *platform) readNetwork(w *Walk) error {
	nd, err := p.fs.NetDev()
	if err != nil {
		return err
	}
	w.Network = netDevices(nd)
	return nil
}

// netDevices lists the interfaces by name: procfs returns a map, and a
// stable order keeps walks comparable.
func netDevices(nd procfs.NetDev) []NetDevice {
	out := make([]NetDevice, 0, len(nd))
	for _, l := range nd {
		out = append(out, NetDevice{Device: l.Name, ReceiveBytes: l.RxBytes, TransmitBytes: l.TxBytes})
	}
	slices.SortFunc(out, func(a, b NetDevice) int { return strings.Compare(a.Device, b.Device) })
	return out
}

// readHost fills uptime; the OS facts were read at New.
func (p *platform) readHost(w *Walk) error {
	b, err := p.readSysFile("uptime")
	if err != nil {
		return err
	}
	up, err := parseUptime(b)
	if err != nil {
		return err
	}
	w.System.UptimeSec = up
	if w.BootTime.IsZero() && !p.bootTime.IsZero() {
		w.BootTime = p.bootTime
	}
	return nil
}

// readFilesystems lists real mounted filesystems with their size. The
// mount table is init's (PID 1), which is the host's when the exporter runs
// in a container with the host's /proc; it falls back to our own.
// mountinfo rather than mounts: procfs parses the former, and both show
// the same source, mount point and type.
func (p *platform) readFilesystems(w *Walk) error {
	mi, err := p.fs.GetProcMounts(1)
	if err != nil {
		mi, err = p.fs.GetMounts()
		if err != nil {
			return err
		}
	}
	mounts := mountsFrom(mi)
	var errs []error
	out := []snapshot.Filesystem{}
	for _, m := range realMounts(mounts) {
		st, err := p.statfs(m.Mountpoint)
		if err != nil {
			if !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("statfs %q: %w", m.Mountpoint, err))
			}
			continue
		}
		bs := uint64(st.Bsize)
		if st.Blocks == 0 {
			continue
		}
		total := st.Blocks * bs
		used := (st.Blocks - min(st.Bfree, st.Blocks)) * bs
		avail := min(st.Bavail, st.Blocks) * bs
		out = append(out, snapshot.Filesystem{Mountpoint: m.Mountpoint, Device: m.Device, FSType: m.FSType,
			TotalBytes: total, UsedBytes: used, AvailableBytes: avail})
	}
	w.System.Filesystems = out
	return errors.Join(errs...)
}

// mount is one mounted filesystem, its paths unescaped.
type mount struct {
	Device, Mountpoint, FSType string
}

// mountsFrom takes what a walk needs from mountinfo; procfs leaves the
// kernel's octal escapes (\040 for a space) in paths.
func mountsFrom(mi []*procfs.MountInfo) []mount {
	out := make([]mount, 0, len(mi))
	for _, m := range mi {
		out = append(out, mount{Device: unescapeOctal(m.Source), Mountpoint: unescapeOctal(m.MountPoint), FSType: m.FSType})
	}
	return out
}

// realMounts keeps the mounts worth reporting: real filesystems (see
// keepFilesystem), and of several mounts on one point only the last, which
// hides the others.
func realMounts(mounts []mount) []mount {
	last := map[string]int{}
	for i, m := range mounts {
		last[m.Mountpoint] = i
	}
	var out []mount
	for i, m := range mounts {
		if last[m.Mountpoint] == i && keepFilesystem(m.Mountpoint, m.FSType) {
			out = append(out, m)
		}
	}
	return out
}

var errStatfsStuck = errors.New("statfs has not returned yet (hung network filesystem?)")

// statfs measures one mount point below RootFS, giving up after
// statfsTimeout; a mount that hangs is skipped until its statfs returns.
func (p *platform) statfs(mountpoint string) (syscall.Statfs_t, error) {
	p.stuckMu.Lock()
	stuck := p.stuck[mountpoint]
	p.stuckMu.Unlock()
	if stuck {
		return syscall.Statfs_t{}, errStatfsStuck
	}
	type result struct {
		st  syscall.Statfs_t
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var st syscall.Statfs_t
		err := syscall.Statfs(filepath.Join(p.opts.RootFS, mountpoint), &st)
		ch <- result{st, err}
		p.stuckMu.Lock()
		delete(p.stuck, mountpoint)
		p.stuckMu.Unlock()
	}()
	t := time.NewTimer(statfsTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.st, r.err
	case <-t.C:
		p.stuckMu.Lock()
		p.stuck[mountpoint] = true
		p.stuckMu.Unlock()
		// The goroutine sends before it clears the mark, so if it finished
		// while the mark was being set, its result is waiting here.
		select {
		case r := <-ch:
			p.stuckMu.Lock()
			delete(p.stuck, mountpoint)
			p.stuckMu.Unlock()
			return r.st, r.err
		default:
		}
		p.logger.Warn("statfs timed out, skipping mount until it answers", "mountpoint", mountpoint)
		return syscall.Statfs_t{}, errStatfsStuck
	}
}
