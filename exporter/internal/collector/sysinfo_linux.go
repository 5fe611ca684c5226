package collector

// System details on Linux, read from procfs and sysfs below the configured
// roots (so fixtures and a container looking at the host's /proc work).

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

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
	if b, err := p.readSysFile("cpuinfo"); err == nil {
		ci := parseCPUInfo(b)
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
	b, err := p.readSysFile("meminfo")
	if err != nil {
		return err
	}
	m, err := parseMeminfo(b)
	if err != nil {
		return err
	}
	p.memTotal = m.Total
	w.System.Memory = snapshot.MemoryInfo{TotalBytes: m.Total, UsedBytes: m.Total - m.Available, AvailableBytes: m.Available}
	sw := snapshot.SwapInfo{TotalBytes: m.SwapTotal}
	if m.SwapTotal >= m.SwapFree {
		sw.UsedBytes = m.SwapTotal - m.SwapFree
	}
	w.System.Swap = sw
	return nil
}

// readCPUTimes reads /proc/stat (CPU seconds by mode, boot time) and the
// current CPU frequency.
func (p *platform) readCPUTimes(w *Walk) (map[string]float64, error) {
	b, err := p.readSysFile("stat")
	if err != nil {
		return nil, err
	}
	s, err := parseProcStat(b)
	if err != nil {
		return nil, err
	}
	p.bootTime = time.Unix(s.BootTime, 0)
	w.BootTime = p.bootTime
	secs := make(map[string]float64, len(cpuModes))
	for i, m := range cpuModes {
		secs[m] = float64(s.Ticks[i]) / p.clkTck
	}
	mhz := sysfsCurMHz(filepath.Join(p.opts.SysRoot, "devices/system/cpu"))
	if mhz == 0 {
		// No cpufreq (VMs): cpuinfo's "cpu MHz" is the current clock.
		if b, err := p.readSysFile("cpuinfo"); err == nil {
			mhz = parseCPUInfo(b).AvgMHz
		}
	}
	if mhz > 0 {
		w.System.CPU.CurrentMHz = mhz
	}
	return secs, nil
}

func (p *platform) readLoad(w *Walk) error {
	b, err := p.readSysFile("loadavg")
	if err != nil {
		return err
	}
	l, err := parseLoadavg(b)
	if err != nil {
		return err
	}
	w.System.LoadAverage = snapshot.LoadAverage{Load1: l[0], Load5: l[1], Load15: l[2]}
	return nil
}

func (p *platform) readNetwork(w *Walk) error {
	b, err := p.readSysFile("net/dev")
	if err != nil {
		return err
	}
	devs, err := parseNetDev(b)
	if err != nil {
		return err
	}
	w.Network = devs
	return nil
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
func (p *platform) readFilesystems(w *Walk) error {
	b, err := p.readSysFile("1/mounts")
	if err != nil {
		b, err = p.readSysFile("self/mounts")
		if err != nil {
			return err
		}
	}
	mounts, err := parseMounts(b)
	if err != nil {
		return err
	}
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
