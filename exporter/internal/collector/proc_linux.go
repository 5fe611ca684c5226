package collector

// The Linux process walk: /proc read directly with reused buffers and raw
// syscalls, one file per process (stat), kept open between walks and
// re-read with pread. gopsutil opens several files per process each time
// and allocates per field, which costs an order of magnitude more CPU per
// process (walk_bench_linux_test.go; docs/performance.md, "Exporter walk"). Parsing lives in parse_linux.go.

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/prometheus/procfs"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// procState is what a walk remembers of one process for the next walk,
// keyed by PID and valid only while the start time matches (a reused PID
// is another process).
type procState struct {
	startTicks uint64
	cpuTicks   uint64
	gen        uint32
	// comm is the raw comm the name was derived from: while it does not
	// change, name is reused instead of read and allocated again.
	comm       string
	name       string
	createTime string
	// cmdRaw is the unscrubbed command line cmdline was made from, so an
	// unchanged command line costs a comparison, not a scrub and a copy.
	cmdRaw  string
	cmdline *string
	// fd+1 of the process's open /proc/PID/stat, 0 when none is held.
	// Holding it lets the next walk pread instead of open+close, the two
	// syscalls that cost as much as the read itself; the fd stays bound to
	// this process (a reused PID makes it fail with ESRCH), so it can never
	// read another process's figures.
	fd int32
	// cmdFD is fd+1 of the open /proc/PID/cmdline (with CollectCmdline),
	// only ever used after fd read this same process: it is closed
	// whenever fd has to be reopened by path.
	cmdFD int32
	// ioFD is fd+1 of the open /proc/PID/io, under the same rule as cmdFD.
	ioFD int32
	// attr is the process's attribution, read once (attrRead) from its
	// cgroup and shared by every process of the same cgroup.
	attr     *Attribution
	attrRead bool
	// ioDenied: the kernel refused /proc/PID/io (EACCES: another user's
	// process and no CAP_SYS_PTRACE), which does not change while the
	// process lives, so it is not asked again.
	ioDenied bool
	ioKnown  bool
	ioRead   uint64
	ioWrite  uint64
	ioAt     int64 // Unix ns of the walk that read ioRead and ioWrite
}

// platform is the Linux half of a Collector.
type platform struct {
	opts     Options
	logger   *slog.Logger
	fs       procfs.FS // host-wide files below ProcRoot (sysinfo_linux.go)
	clkTck   float64
	pageSize int64

	// Reused across walks: getdents buffer, path and file buffers, PIDs.
	dirBuf  []byte
	pathBuf []byte
	fileBuf []byte
	cmdBuf  []byte
	ioBuf   []byte
	cgBuf   []byte
	pids    []int32
	// rates backs the I/O rate pointers of one walk's processes: one
	// allocation a walk instead of two a process.
	rates []float64
	// exts backs the ProcessExt pointers of one walk's processes, as
	// rates does the rates.
	exts []snapshot.ProcessExt
	// attrs interns attributions by cgroup path: a host has far fewer
	// cgroups than processes.
	attrs map[string]*Attribution
	// forks is /proc/stat's "processes" counter at the previous walk.
	forks     uint64
	forksRead bool
	// ioEveryWalk reads every io file every walk (the benchmark's worst
	// case, every process busy).
	ioEveryWalk bool

	state    map[int32]procState
	gen      uint32
	prevWalk time.Time
	lastN    int

	bootTime time.Time // from btime in /proc/stat
	memTotal uint64    // bytes, for memory_percent

	users *userCache

	// cacheFDs is true on a real procfs on an architecture where pidOwner
	// can ask the uid without allocating; fdBudget bounds the fds held, so
	// a host with 100,000 processes cannot exhaust RLIMIT_NOFILE.
	cacheFDs bool
	fdBudget int
	openFDs  int
	// now is the clock; tests replace it to get exact CPU percentages.
	now func() time.Time

	// static system facts read at New.
	static snapshot.SystemInfo

	// stuck holds mount points whose statfs has not returned (a hung NFS
	// server): they are skipped until it does.
	stuckMu sync.Mutex
	stuck   map[string]bool
}

func newPlatform(opts Options, logger *slog.Logger) (*platform, error) {
	p := &platform{
		opts:     opts,
		logger:   logger,
		clkTck:   100,
		pageSize: int64(os.Getpagesize()),
		dirBuf:   make([]byte, 32<<10),
		pathBuf:  make([]byte, 0, 64),
		fileBuf:  make([]byte, 4096),
		ioBuf:    make([]byte, 512),
		cgBuf:    make([]byte, 1024),
		state:    map[int32]procState{},
		attrs:    map[string]*Attribution{},
		users:    newUserCache(opts.RootFS, logger),
		stuck:    map[string]bool{},
		now:      time.Now,
	}
	// The roots must exist: a typo would otherwise show up only as
	// silently missing CPU frequencies or filesystems. A missing default
	// /sys is tolerated (minimal containers); one given explicitly is not.
	roots := []struct{ name, dir string }{{"root fs", opts.RootFS}}
	if opts.SysRoot != "/sys" {
		roots = append(roots, struct{ name, dir string }{"sys root", opts.SysRoot})
	}
	for _, r := range roots {
		if fi, err := os.Stat(r.dir); err != nil {
			return nil, fmt.Errorf("%s: %w", r.name, err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("%s %s is not a directory", r.name, r.dir)
		}
	}
	fi, err := os.Stat(opts.ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("proc root: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("proc root %s is not a directory", opts.ProcRoot)
	}
	// USER_HZ is 100 on every Linux architecture Go supports, but the
	// kernel says it in the auxiliary vector; believe the kernel.
	if b, err := os.ReadFile("/proc/self/auxv"); err == nil {
		if hz, ok := parseAuxvClkTck(b); ok {
			p.clkTck = float64(hz)
		}
	}
	if p.fs, err = procfs.NewFS(opts.ProcRoot); err != nil {
		return nil, fmt.Errorf("proc root: %w", err)
	}
	if s, err := p.fs.Stat(); err == nil && s.BootTime > 0 {
		p.bootTime = time.Unix(int64(s.BootTime), 0)
	}
	p.static = p.readStatic()
	var sfs syscall.Statfs_t
	var rl syscall.Rlimit
	if haveFstatat && syscall.Statfs(opts.ProcRoot, &sfs) == nil && sfs.Type == procSuperMagic &&
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		// Half the fd limit (Go raises the soft limit to the hard one at
		// start), leaving the rest to the HTTP server and push queue.
		p.fdBudget = int(min(rl.Cur/2, 1<<17))
		p.cacheFDs = p.fdBudget > 0
	}
	return p, nil
}

// procSuperMagic is PROC_SUPER_MAGIC, statfs's f_type of procfs. Held fds
// are only used on a real procfs: on fixtures a held fd of a deleted file
// would still read it, where procfs answers ESRCH for an ended process.
const procSuperMagic = 0x9fa0

// closeAll releases every held fd.
func (p *platform) closeAll() {
	for pid, st := range p.state {
		if st.fd > 0 || st.cmdFD > 0 || st.ioFD > 0 {
			p.closeFD(&st)
			p.state[pid] = st
		}
	}
}

// closeFD closes every held fd of a process.
func (p *platform) closeFD(st *procState) {
	for _, fd := range []*int32{&st.fd, &st.cmdFD, &st.ioFD} {
		if *fd > 0 {
			_ = syscall.Close(int(*fd - 1))
			*fd = 0
			p.openFDs--
		}
	}
}

func (p *platform) staticInfo() snapshot.SystemInfo { return p.static }

// primeProcesses reads every process's CPU time as the baseline of the
// first real walk.
func (p *platform) primeProcesses() {
	_ = p.readProcesses(&Walk{})
}

// readProcesses walks /proc once.
func (p *platform) readProcesses(w *Walk) error {
	dirfd, err := syscall.Open(p.opts.ProcRoot, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", p.opts.ProcRoot, err)
	}
	defer func() { _ = syscall.Close(dirfd) }()
	p.pids = p.pids[:0]
	for range 1 << 16 { // bounded: a /proc with millions of entries still ends
		n, err := syscall.ReadDirent(dirfd, p.dirBuf)
		if err != nil {
			return fmt.Errorf("read %s: %w", p.opts.ProcRoot, err)
		}
		if n <= 0 {
			break
		}
		p.pids = appendDirentPIDs(p.pids, p.dirBuf[:n])
	}
	slices.Sort(p.pids)

	now := p.now()
	var dt time.Duration
	if !p.prevWalk.IsZero() {
		dt = now.Sub(p.prevWalk)
	}
	p.gen++
	procs := make([]Process, 0, max(len(p.pids), p.lastN))
	if !p.opts.SkipIO {
		// Never grown during the walk: the pointers handed out stay valid.
		p.rates = make([]float64, 0, 2*len(p.pids))
	}
	p.exts = make([]snapshot.ProcessExt, 0, len(p.pids))
	if len(p.attrs) > maxAttrs {
		// Cgroups come and go with containers; processes still holding
		// an entry keep it through their procState.
		clear(p.attrs)
	}
	for _, pid := range p.pids {
		pr, ok := p.readOne(dirfd, pid, now, dt)
		if !ok {
			w.Skipped++
			continue
		}
		procs = append(procs, pr)
	}
	// Forget processes that are gone so the map does not grow forever.
	for pid, st := range p.state {
		if st.gen != p.gen {
			p.closeFD(&st)
			delete(p.state, pid)
		}
	}
	p.prevWalk = now
	p.lastN = len(procs)
	w.Processes = procs
	return nil
}

// readOne reads one process; false means it vanished or could not be read.
func (p *platform) readOne(dirfd int, pid int32, now time.Time, dt time.Duration) (Process, bool) {
	st, seen := p.state[pid]
	b, uid, err := p.readStat(dirfd, pid, &st)
	if err == nil {
		var s procStat
		if s, err = parseStat(b); err == nil {
			return p.fill(dirfd, pid, st, seen, s, uid, now, dt), true
		}
		p.logger.Debug("unreadable process stat", "pid", pid, "err", err)
	}
	// Keep what happened to the held fd; the entry is dropped (and its fd
	// closed) at the end of the walk, as it was not marked seen.
	if seen || st.fd > 0 || st.ioFD > 0 {
		p.state[pid] = st
	}
	return Process{}, false
}

// fill turns one parsed stat into a Process, updating the remembered state.
func (p *platform) fill(dirfd int, pid int32, st procState, seen bool, s procStat, uid uint32, now time.Time, dt time.Duration) Process {
	if seen && st.startTicks != s.StartTime {
		// The PID was reused: nothing of the old process applies (the fd,
		// if any, was opened just now and is the new process's).
		st, seen = procState{fd: st.fd}, false
	}
	st.startTicks = s.StartTime
	start := p.bootTime.Add(time.Duration(float64(s.StartTime) / p.clkTck * float64(time.Second)))

	var cmd []byte
	cmdRead := false
	readCmd := func() {
		if !cmdRead {
			cmdRead = true
			cmd = p.readCmdline(dirfd, pid, &st)
		}
	}
	if !seen || st.comm != string(s.Comm) {
		if len(s.Comm) == commLen {
			readCmd()
		}
		st.comm = string(s.Comm)
		st.name = fullName(s.Comm, cmd)
		if st.name == st.comm {
			st.name = st.comm // one string, not two
		}
	}
	if st.createTime == "" {
		st.createTime = start.UTC().Format(time.RFC3339Nano)
	}
	if p.opts.CollectCmdline {
		readCmd()
		if st.cmdline == nil || st.cmdRaw != string(cmd) {
			st.cmdRaw = string(cmd)
			c := ScrubCmdline(cmdlineString(cmd))
			st.cmdline = &c
		}
	}

	if !st.attrRead && !p.opts.SkipAttribution {
		st.attrRead = true
		st.attr = p.readAttribution(dirfd, pid)
	}
	ticks := s.UTime + s.STime
	var readRate, writeRate *float64
	if !p.opts.SkipIO && !st.ioDenied {
		readRate, writeRate = p.ioRates(dirfd, pid, &st, seen, ticks, start, now)
	}

	cpuSec := float64(ticks) / p.clkTck
	var pct float64
	if seen {
		pct = cpuPercent(float64(st.cpuTicks)/p.clkTck, cpuSec, dt)
	} else {
		pct = newProcessPercent(cpuSec, start, p.prevWalk, now)
	}
	st.cpuTicks = ticks
	st.gen = p.gen
	p.state[pid] = st

	rss := uint64(max(s.RSSPages, 0)) * uint64(p.pageSize)
	status, state := procStatus(s.State)
	pr := Process{
		Process: snapshot.Process{
			PID:        int64(pid),
			PPID:       s.PPID,
			Name:       st.name,
			CPUPercent: pct,
			MemoryMB:   float64(rss) / (1 << 20),
			Username:   p.users.name(uid),
			Status:     status,
			NumThreads: int32(min(max(s.NumThreads, 0), 1<<31-1)),
			CreateTime: st.createTime,
		},
		CPUSeconds: cpuSec,
		RSSBytes:   rss,
		StartTime:  start,
		State:      state,
	}
	if p.memTotal > 0 {
		pr.MemoryPercent = float64(rss) / float64(p.memTotal) * 100
	}
	if p.opts.CollectCmdline {
		pr.Cmdline = st.cmdline
	}
	x := snapshot.ProcessExt{ReadBytesPerSec: readRate, WriteBytesPerSec: writeRate}
	if st.attr != nil {
		x.Unit, x.ContainerID, x.PodUID = st.attr.Unit, st.attr.ContainerID, st.attr.PodUID
		pr.Cgroup = st.attr.Cgroup
	}
	if x != (snapshot.ProcessExt{}) {
		if len(p.exts) < cap(p.exts) {
			p.exts = append(p.exts, x)
			pr.ProcessExt = &p.exts[len(p.exts)-1]
		} else {
			pr.SetExt(x)
		}
	}
	if st.ioKnown {
		pr.IOReadBytes, pr.IOWriteBytes, pr.IOKnown = st.ioRead, st.ioWrite, true
	}
	return pr
}

// maxAttrs bounds the interned attributions between clears.
const maxAttrs = 1 << 14

// readAttribution reads /proc/PID/cgroup once for a new process; nil when
// it cannot be read (the process is ending, or an OS without cgroups) or
// names nothing.
func (p *platform) readAttribution(dirfd int, pid int32) *Attribution {
	b, _, _, err := p.readPIDFile(dirfd, pid, "cgroup", &p.cgBuf, 64<<10, false, false)
	if err != nil {
		return nil
	}
	path := cgroupPath(b)
	if path == "" || path == "/" {
		return nil
	}
	if a, ok := p.attrs[path]; ok {
		return a
	}
	a := attribute(path)
	p.attrs[a.Cgroup] = &a
	return &a
}

// ioRates returns the read and write bytes per second of a process since
// its io file was last read; nil for unknown: the kernel refused the file,
// the process is new and started before the last walk (its bytes span
// more than the interval), or a counter went back.
//
// A process that used no CPU time since the last read (most of a server's
// processes in any interval) is not read again and shows 0: issuing I/O
// costs CPU time, so its counters did not move, except for I/O that cost
// under one clock tick, which is then counted the next time the process
// runs, spread over the time since the last read. Reading every io file
// every walk cost the walk 1.5x (docs/performance.md, "Exporter walk").
func (p *platform) ioRates(dirfd int, pid int32, st *procState, seen bool, ticks uint64, start, now time.Time) (*float64, *float64) {
	if seen && st.ioKnown && ticks == st.cpuTicks && !p.ioEveryWalk {
		return p.rate(0, 0)
	}
	b, err := p.readIO(dirfd, pid, st)
	if err != nil {
		if err == syscall.EACCES || err == syscall.EPERM {
			st.ioDenied = true
		}
		st.ioKnown = false
		return nil, nil
	}
	rb, wb, ok := parseIO(b)
	if !ok {
		st.ioKnown = false
		return nil, nil
	}
	var span time.Duration
	var r0, w0 uint64
	switch {
	case seen && st.ioKnown && rb >= st.ioRead && wb >= st.ioWrite:
		span, r0, w0 = now.Sub(time.Unix(0, st.ioAt)), st.ioRead, st.ioWrite
	case !seen && !p.prevWalk.IsZero() && start.After(p.prevWalk):
		span = now.Sub(p.prevWalk)
	}
	st.ioRead, st.ioWrite, st.ioKnown, st.ioAt = rb, wb, true, now.UnixNano()
	if span <= 0 {
		return nil, nil
	}
	secs := span.Seconds()
	return p.rate(roundRate(float64(rb-r0)/secs), roundRate(float64(wb-w0)/secs))
}

// roundRate keeps three significant digits of a rate, in whole bytes per
// second (1,234,567 B/s is sent as 1,230,000): what a person reads of a
// rate (iotop shows as much), and the aggregator stores such a number in
// two bytes where an exact one takes four or more, which kept the store
// within its growth budget (docs/performance.md, "Snapshot store"). The
// exact cumulative bytes are /metrics' counters.
func roundRate(v float64) float64 {
	if v < 1000 {
		return math.Round(v)
	}
	p := math.Pow(10, math.Floor(math.Log10(v))-2)
	return math.Round(v/p) * p
}

// rate hands out two rates from the walk's slab.
func (p *platform) rate(r, w float64) (*float64, *float64) {
	if len(p.rates)+2 > cap(p.rates) {
		return nil, nil
	}
	p.rates = append(p.rates, r, w)
	n := len(p.rates)
	return &p.rates[n-2], &p.rates[n-1]
}

// readIO reads /proc/PID/io through the held fd when there is one, else
// by path, keeping the fd when the process's stat fd is held (which
// proves the PID still names the same process).
func (p *platform) readIO(dirfd int, pid int32, st *procState) ([]byte, error) {
	if st.ioFD > 0 {
		n, err := syscall.Pread(int(st.ioFD-1), p.ioBuf, 0)
		if err == nil && n > 0 {
			return p.ioBuf[:n], nil
		}
		_ = syscall.Close(int(st.ioFD - 1))
		st.ioFD = 0
		p.openFDs--
		if err != nil {
			return nil, err
		}
	}
	keep := st.fd > 0 && p.openFDs < p.fdBudget
	b, _, fd, err := p.readPIDFile(dirfd, pid, "io", &p.ioBuf, len(p.ioBuf), false, keep)
	if err != nil {
		return nil, err
	}
	if fd >= 0 {
		st.ioFD = int32(fd + 1)
		p.openFDs++
	}
	return b, nil
}

// readStat reads /proc/PID/stat and the process's uid, through the held
// fd when there is one (pread, and the uid from the PID directory, which
// procfs computes afresh) or else by path, keeping the fd when allowed.
func (p *platform) readStat(dirfd int, pid int32, st *procState) ([]byte, uint32, error) {
	if st.fd > 0 {
		n, err := syscall.Pread(int(st.fd-1), p.fileBuf, 0)
		if err == nil && n > 0 {
			uid, err := p.pidOwner(dirfd, pid)
			if err != nil {
				p.closeFD(st)
				return nil, 0, err
			}
			return p.fileBuf[:n], uid, nil
		}
		// The process ended; its PID may already be another's, which is
		// read by path below.
	}
	// Reading by path may meet another process than the held fds did.
	p.closeFD(st)
	keep := p.cacheFDs && p.openFDs < p.fdBudget
	b, uid, fd, err := p.readPIDFile(dirfd, pid, "stat", &p.fileBuf, len(p.fileBuf), true, keep)
	if err != nil {
		return nil, 0, err
	}
	if fd >= 0 {
		st.fd = int32(fd + 1)
		p.openFDs++
	}
	return b, uid, nil
}

// readCmdline reads /proc/PID/cmdline: through the held fd when there is
// one, else by path, keeping the fd when command lines are collected every
// walk. Errors give an empty command line (the process is ending).
func (p *platform) readCmdline(dirfd int, pid int32, st *procState) []byte {
	if st.cmdFD > 0 {
		b, err := preadAll(int(st.cmdFD-1), &p.cmdBuf, maxCmdline+1)
		if err == nil {
			return b
		}
		_ = syscall.Close(int(st.cmdFD - 1))
		st.cmdFD = 0
		p.openFDs--
	}
	// Only a process whose stat fd is held may hold a cmdline fd: that fd
	// proves the PID still names the same process.
	keep := p.opts.CollectCmdline && st.fd > 0 && p.openFDs < p.fdBudget
	b, _, fd, err := p.readPIDFile(dirfd, pid, "cmdline", &p.cmdBuf, maxCmdline+1, false, keep)
	if err != nil {
		return nil
	}
	if fd >= 0 {
		st.cmdFD = int32(fd + 1)
		p.openFDs++
	}
	return b
}

// preadAll reads an open file from offset 0 into *buf, growing it up to
// limit bytes. It serves a freshly opened file and a kept one alike: pread
// from offset 0 needs no seek back.
func preadAll(fd int, buf *[]byte, limit int) ([]byte, error) {
	if len(*buf) == 0 {
		*buf = make([]byte, 4096)
	}
	n := 0
	for range 64 { // bounded: each round reads or grows
		if n == len(*buf) {
			if n >= limit {
				break
			}
			nb := make([]byte, min(2*len(*buf), limit))
			copy(nb, (*buf)[:n])
			*buf = nb
		}
		m, err := syscall.Pread(fd, (*buf)[n:], int64(n))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m <= 0 {
			break
		}
		n += m
		// procfs fills the whole buffer when it has that much (stat is one
		// record, cmdline is copied in a loop up to the count); a short
		// read is the end, which saves the extra read that returns 0.
		if n < len(*buf) {
			break
		}
	}
	return (*buf)[:n], nil
}

// pidOwner is the owner uid of /proc/PID: the process's effective uid
// (root for non-dumpable processes, as ps shows them too).
func (p *platform) pidOwner(dirfd int, pid int32) (uint32, error) {
	pb := strconv.AppendInt(p.pathBuf[:0], int64(pid), 10)
	pb = append(pb, 0)
	p.pathBuf = pb
	var st syscall.Stat_t
	if err := fstatat(dirfd, pb, &st); err != nil {
		return 0, err
	}
	return st.Uid, nil
}

// readPIDFile reads <proc>/<pid>/<name> into *buf (grown up to limit bytes)
// and, when wantUID, also returns the owner uid of the file, which is the
// process's effective uid: /proc/PID/stat has no uid, and procfs gives every
// file of /proc/PID the same owner as the directory, so fstat on the fd we
// already hold answers it with one syscall and no path lookup.
//
// With keep it leaves the file open and returns its fd (else -1).
func (p *platform) readPIDFile(dirfd int, pid int32, name string, buf *[]byte, limit int, wantUID, keep bool) (_ []byte, _ uint32, keptFD int, _ error) {
	pb := strconv.AppendInt(p.pathBuf[:0], int64(pid), 10)
	pb = append(pb, '/')
	pb = append(pb, name...)
	pb = append(pb, 0)
	p.pathBuf = pb
	fd, err := openat(dirfd, pb)
	if err != nil {
		return nil, 0, -1, err
	}
	keptFD = -1
	defer func() {
		if keptFD < 0 {
			_ = syscall.Close(fd)
		}
	}()
	var uid uint32
	if wantUID {
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil {
			return nil, 0, -1, err
		}
		uid = st.Uid
	}
	b, err := preadAll(fd, buf, limit)
	if err != nil {
		return nil, 0, -1, err
	}
	if keep {
		keptFD = fd
	}
	return b, uid, keptFD, nil
}

// openat opens a NUL-terminated path relative to dirfd without the
// allocation syscall.Openat makes to copy the path.
func openat(dirfd int, path []byte) (int, error) {
	r, _, e := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&path[0])),
		uintptr(syscall.O_RDONLY|syscall.O_CLOEXEC), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// parseAuxvClkTck finds AT_CLKTCK (17) in an auxiliary vector: pairs of
// native words, ended by AT_NULL.
func parseAuxvClkTck(b []byte) (int, bool) {
	const atClkTck = 17
	w := strconv.IntSize / 8
	word := func(x []byte) uint64 {
		if w == 8 {
			return binary.NativeEndian.Uint64(x)
		}
		return uint64(binary.NativeEndian.Uint32(x))
	}
	for i := 0; i+2*w <= len(b); i += 2 * w {
		k, v := word(b[i:]), word(b[i+w:])
		if k == 0 {
			break
		}
		if k == atClkTck && v > 0 && v < 1<<20 {
			return int(v), true
		}
	}
	return 0, false
}

// userCache maps uids to user names. Looking a name up reads /etc/passwd
// (or asks NSS), far too slow per process per walk, so names are cached and
// the cache dropped every userCacheTTL to pick up renamed users.
type userCache struct {
	lookup  func(uid string) (string, error)
	names   map[uint32]string
	expires time.Time
	// reset, when set, runs as the cache expires, so that a file-backed
	// lookup reads its file again.
	reset func()
}

const userCacheTTL = 10 * time.Minute

// newUserCache resolves uids with os/user when rootFS is the exporter's own
// root (which also asks NSS: LDAP, sssd on a plain host), and from
// <rootFS>/etc/passwd otherwise: in a container started with
// --path.rootfs=/host the processes are the host's, so their names are in
// the host's passwd, not in the image's (which has none).
func newUserCache(rootFS string, logger *slog.Logger) *userCache {
	if rootFS != "" && filepath.Clean(rootFS) != "/" {
		pf := &passwdFile{root: rootFS, onErr: func(err error) {
			logger.Warn("cannot read the host's passwd file; user names show as uids", "err", err)
		}}
		return &userCache{lookup: pf.lookup, reset: pf.reset}
	}
	return &userCache{lookup: func(uid string) (string, error) {
		u, err := user.LookupId(uid)
		if err != nil {
			return "", err
		}
		return u.Username, nil
	}}
}

func (c *userCache) name(uid uint32) string {
	if c.names == nil || time.Now().After(c.expires) {
		c.names = map[uint32]string{}
		c.expires = time.Now().Add(userCacheTTL)
		if c.reset != nil {
			c.reset()
		}
	}
	if n, ok := c.names[uid]; ok {
		return n
	}
	id := strconv.FormatUint(uint64(uid), 10)
	n, err := c.lookup(id)
	if err != nil || n == "" {
		// An unknown uid (a container's user) is shown as the number, as
		// ps does.
		n = id
	}
	c.names[uid] = n
	return n
}

// readSysFile reads a host-wide file below ProcRoot (meminfo, stat, ...).
func (p *platform) readSysFile(name string) ([]byte, error) {
	return os.ReadFile(p.opts.ProcRoot + "/" + name)
}

// fstatat stats a NUL-terminated path relative to dirfd without the
// allocation syscall's wrappers make to copy the path.
func fstatat(dirfd int, path []byte, st *syscall.Stat_t) error {
	if !haveFstatat {
		return syscall.ENOSYS
	}
	_, _, e := syscall.Syscall6(sysFstatat, uintptr(dirfd), uintptr(unsafe.Pointer(&path[0])),
		uintptr(unsafe.Pointer(st)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
