package collector

// The Linux process walk: /proc read directly with reused buffers and raw
// openat/read/fstat/close, because gopsutil opens several files per process
// and allocates per field (~10x the CPU per process, see
// walk_linux_timing_test.go). Parsing lives in parse_linux.go.

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

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
}

// platform is the Linux half of a Collector.
type platform struct {
	opts     Options
	logger   *slog.Logger
	clkTck   float64
	pageSize int64

	// Reused across walks: getdents buffer, path and file buffers, PIDs.
	dirBuf  []byte
	pathBuf []byte
	fileBuf []byte
	cmdBuf  []byte
	pids    []int32

	state    map[int32]procState
	gen      uint32
	prevWalk time.Time
	lastN    int

	bootTime time.Time // from btime in /proc/stat
	memTotal uint64    // bytes, for memory_percent

	users *userCache
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
		state:    map[int32]procState{},
		users:    newUserCache(),
		stuck:    map[string]bool{},
		now:      time.Now,
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
	if b, err := p.readSysFile("stat"); err == nil {
		if s, err := parseProcStat(b); err == nil {
			p.bootTime = time.Unix(s.BootTime, 0)
		}
	}
	p.static = p.readStatic()
	return p, nil
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
	defer syscall.Close(dirfd)
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
	b, uid, err := p.readPIDFile(dirfd, pid, "stat", &p.fileBuf, len(p.fileBuf), true)
	if err != nil {
		return Process{}, false
	}
	s, err := parseStat(b)
	if err != nil {
		p.logger.Debug("unreadable process stat", "pid", pid, "err", err)
		return Process{}, false
	}
	st, seen := p.state[pid]
	if seen && st.startTicks != s.StartTime {
		// The PID was reused: nothing of the old process applies.
		st, seen = procState{}, false
	}
	st.startTicks = s.StartTime
	start := p.bootTime.Add(time.Duration(float64(s.StartTime) / p.clkTck * float64(time.Second)))

	var cmd []byte
	cmdRead := false
	readCmd := func() {
		if !cmdRead {
			cmdRead = true
			cmd, _, _ = p.readPIDFile(dirfd, pid, "cmdline", &p.cmdBuf, maxCmdline+1, false)
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

	ticks := s.UTime + s.STime
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
	return pr, true
}

// readPIDFile reads <proc>/<pid>/<name> into *buf (grown up to limit bytes)
// and, when wantUID, also returns the owner uid of the file, which is the
// process's effective uid: /proc/PID/stat has no uid, and procfs gives every
// file of /proc/PID the same owner as the directory, so fstat on the fd we
// already hold answers it with one syscall and no path lookup.
func (p *platform) readPIDFile(dirfd int, pid int32, name string, buf *[]byte, limit int, wantUID bool) ([]byte, uint32, error) {
	pb := strconv.AppendInt(p.pathBuf[:0], int64(pid), 10)
	pb = append(pb, '/')
	pb = append(pb, name...)
	pb = append(pb, 0)
	p.pathBuf = pb
	fd, err := openat(dirfd, pb)
	if err != nil {
		return nil, 0, err
	}
	defer syscall.Close(fd)
	var uid uint32
	if wantUID {
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil {
			return nil, 0, err
		}
		uid = st.Uid
	}
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
		m, err := syscall.Read(fd, (*buf)[n:])
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return nil, 0, err
		}
		if m <= 0 {
			break
		}
		n += m
		// procfs fills the whole buffer when it has that much (stat is one
		// record, cmdline is copied in a loop up to the count); a short
		// read is the end, which saves the extra read(2) that returns 0.
		if n < len(*buf) {
			break
		}
	}
	return (*buf)[:n], uid, nil
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
}

const userCacheTTL = 10 * time.Minute

func newUserCache() *userCache {
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
