package gen

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Host is one simulated machine whose process table evolves push by push
// the way a real host's does between two exporter pushes: the same
// processes, new cpu_percent on the busy minority (~15 %), memory drifting
// slowly, a process starting or exiting every few pushes, and the same
// system_info except its usage numbers. Consecutive snapshots of a real
// host are nearly equal, and the aggregator's delta storage is built for
// that, so a load of unrelated trees measures a worst case instead.
//
// The sequence is fully determined by the seed.
type Host struct {
	r       *rand.Rand
	n       int
	cmdline bool
	period  time.Duration
	procs   []Process // ordered by PID (new processes get higher PIDs)
	busy    []bool    // parallel to procs
	nextPID int64

	uptime    float64
	memUsed   int64
	cpuUsage  float64
	load1     float64
	load5     float64
	load15    float64
	baseUsage float64
}

// busyPercent is the share of processes whose CPU use changes each push.
const busyPercent = 15

// NewHost returns a host with an n-process tree (the tree of
// Processes(n, seed, cmdline)) pushing every period.
func NewHost(n int, seed uint64, cmdline bool, period time.Duration) *Host {
	h := &Host{
		r:       rand.New(rand.NewPCG(seed, 0x2545f4914f6cdd1d)),
		n:       n,
		cmdline: cmdline,
		period:  period,
		procs:   Processes(n, seed, cmdline),
	}
	h.busy = make([]bool, len(h.procs))
	for i := range h.procs {
		p := &h.procs[i]
		// Most processes sleep: a real exporter reports 0 % for them.
		if h.r.IntN(100) < busyPercent {
			h.busy[i] = true
			p.CPUPercent = float64(1+h.r.IntN(5000)) / 100
			p.Status = "running"
		} else {
			p.CPUPercent = 0
			if p.Status == "running" {
				p.Status = "sleeping"
			}
		}
	}
	if len(h.procs) > 0 {
		h.nextPID = h.procs[len(h.procs)-1].PID + 1
	}
	h.uptime = float64(100000 + h.r.IntN(1000000))
	h.memUsed = int64(4e9 + float64(h.r.IntN(8000))*1e6)
	h.baseUsage = float64(h.r.IntN(3000)) / 100
	h.cpuUsage = h.baseUsage
	h.load1, h.load5, h.load15 = 0.5, 0.4, 0.3
	return h
}

// Processes returns the current process table, ordered by PID. It is the
// host's own slice: clone it to keep it across Step.
func (h *Host) Processes() []Process { return h.procs }

// Step advances the host by one push period.
func (h *Host) Step() {
	r := h.r
	for i := range h.procs {
		p := &h.procs[i]
		if h.busy[i] {
			// CPU in hundredths of a percent, a bounded random walk.
			c := int(p.CPUPercent*100+0.5) + r.IntN(1001) - 500
			p.CPUPercent = float64(min(max(c, 1), 40000)) / 100
			p.Status = "sleeping"
			if p.CPUPercent > 20 {
				p.Status = "running"
			}
			p.MemoryMB = driftMB(r, p.MemoryMB, 200)
		} else if r.IntN(50) == 0 {
			p.MemoryMB = driftMB(r, p.MemoryMB, 50)
		}
	}
	// Now and then a busy process goes idle and an idle one gets busy, so
	// the busy share stays where it is but not on the same processes.
	if len(h.procs) > 2 && r.IntN(20) == 0 {
		i, j := r.IntN(len(h.procs)), r.IntN(len(h.procs))
		if h.busy[i] != h.busy[j] {
			for _, k := range []int{i, j} {
				h.busy[k] = !h.busy[k]
				if !h.busy[k] {
					h.procs[k].CPUPercent = 0
					h.procs[k].Status = "sleeping"
				}
			}
		}
	}
	// A process starts or exits about every fourth push, keeping the
	// table near its original size.
	if h.n > 2 && r.IntN(4) == 0 {
		if len(h.procs) > h.n || (len(h.procs) == h.n && r.IntN(2) == 0) {
			h.exitOne()
		} else {
			h.startOne()
		}
	}

	secs := h.period.Seconds()
	h.uptime += secs
	var sum float64
	for i, p := range h.procs {
		if h.busy[i] {
			sum += p.CPUPercent
		}
	}
	h.cpuUsage = min(100, float64(int(h.baseUsage*100+sum/8*10))/100)
	h.memUsed = min(max(h.memUsed+int64(r.IntN(2001)-1000)*1<<20/10, 1<<30), 15<<30)
	l := sum / 100
	h.load1 = float64(int((h.load1*0.8+l*0.2)*100)) / 100
	h.load5 = float64(int((h.load5*0.95+l*0.05)*100)) / 100
	h.load15 = float64(int((h.load15*0.98+l*0.02)*100)) / 100
}

// driftMB moves m by up to ±maxHundredths hundredths of a MB, staying at
// least 0.1 MB.
func driftMB(r *rand.Rand, m float64, maxHundredths int) float64 {
	v := int(m*100+0.5) + r.IntN(2*maxHundredths+1) - maxHundredths
	return float64(max(v, 10)) / 100
}

// exitOne ends a random process that has no children and is not pid 1 or 2.
func (h *Host) exitOne() {
	parents := make(map[int64]bool, len(h.procs))
	for _, p := range h.procs {
		parents[p.PPID] = true
	}
	for range 20 { // bounded: give up this push if no leaf was hit
		i := h.r.IntN(len(h.procs))
		if p := h.procs[i]; p.PID > 2 && !parents[p.PID] {
			h.procs = slices.Delete(h.procs, i, i+1)
			h.busy = slices.Delete(h.busy, i, i+1)
			return
		}
	}
}

// startOne starts a worker under a service (a child of pid 1).
func (h *Host) startOne() {
	var services []int64
	for _, p := range h.procs {
		if p.PPID == 1 {
			services = append(services, p.PID)
		}
	}
	parent := int64(1)
	if len(services) > 0 {
		parent = services[h.r.IntN(len(services))]
	}
	pid := h.nextPID
	h.nextPID += 1 + int64(h.r.IntN(5))
	p := Process{
		PID: pid, PPID: parent, Name: "worker",
		CPUPercent: float64(1+h.r.IntN(2000)) / 100,
		MemoryMB:   float64(100+h.r.IntN(20000)) / 100,
		Username:   []string{"root", "www-data", "postgres", "nobody"}[h.r.IntN(4)],
		Status:     "running",
		NumThreads: int32(1 + h.r.IntN(8)),
	}
	if h.cmdline {
		c := "worker process --id=" + strconv.FormatInt(pid, 10)
		p.Cmdline = &c
	}
	// A new process is busy at first (it is starting up).
	h.procs = append(h.procs, p)
	h.busy = append(h.busy, true)
}

// SystemInfo returns the current system_info object: the fields of the
// SystemInfo constant with this host's usage numbers.
func (h *Host) SystemInfo() string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	const total = 16777216000
	return `{"os":{"name":"linux","distro":"debian","version":"12.8","kernel":"6.1.0-28-amd64","arch":"x86_64"},` +
		`"cpu":{"model":"AMD EPYC 7B13","physical_cores":4,"logical_threads":8,"current_mhz":2450.5,"max_mhz":3500,"usage_percent":` + f(h.cpuUsage) + `},` +
		`"memory":{"total_bytes":16777216000,"used_bytes":` + strconv.FormatInt(h.memUsed, 10) +
		`,"available_bytes":` + strconv.FormatInt(max(total-h.memUsed, 0), 10) + `},` +
		`"swap":{"total_bytes":2147483648,"used_bytes":0},` +
		`"filesystems":[{"mountpoint":"/","device":"/dev/sda1","fstype":"ext4","total_bytes":107374182400,"used_bytes":53687091200}],` +
		`"boot_time":"2026-11-20T08:00:00Z","uptime_seconds":` + f(h.uptime) +
		`,"load_average":{"load1":` + f(h.load1) + `,"load5":` + f(h.load5) + `,"load15":` + f(h.load15) + `},` +
		`"process_count":` + strconv.Itoa(len(h.procs)) + `,"exporter":"procscope-exporter 0.1.0"}`
}

// CompressTail returns the gzip member of a body's tail,
// `,"system_info":<sysInfo>,"processes":[...]}`, at the given gzip level;
// HeadMember before it makes a whole body (see GzipParts).
func CompressTail(sysInfo string, procs []Process, level int) ([]byte, error) {
	if procs == nil {
		procs = []Process{} // "processes" is required: [] not null
	}
	pj, err := json.Marshal(procs)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(len(pj) / 4)
	if level < gzip.HuffmanOnly || level > gzip.BestCompression {
		return nil, fmt.Errorf("gen: invalid gzip level %d", level)
	}
	// A gzip writer allocates ~1 MiB of state; the load generator makes
	// tens of thousands of bodies before a run, so writers are reused.
	pool := &writerPools[level-gzip.HuffmanOnly]
	zw, _ := pool.Get().(*gzip.Writer)
	if zw == nil {
		if zw, err = gzip.NewWriterLevel(&buf, level); err != nil {
			return nil, err
		}
	} else {
		zw.Reset(&buf)
	}
	defer pool.Put(zw)
	for _, s := range [][]byte{[]byte(`,"system_info":`), []byte(sysInfo), []byte(`,"processes":`), pj, []byte(`}`)} {
		if _, err := zw.Write(s); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var writerPools [gzip.BestCompression - gzip.HuffmanOnly + 1]sync.Pool

// HeadMember is the stored gzip member `{"hostname":<hostname>,"captured_at":"<at>"`
// that goes before a CompressTail member; hostJSON is the JSON-quoted
// hostname (quote once, reuse per request).
func HeadMember(hostJSON []byte, at string) []byte {
	b := make([]byte, 0, len(hostJSON)+len(at)+32)
	b = append(b, `{"hostname":`...)
	b = append(b, hostJSON...)
	b = append(b, `,"captured_at":"`...)
	b = append(b, at...)
	b = append(b, '"')
	return StoredMember(b)
}

// QuoteHostname returns hostname as a JSON string for HeadMember.
func QuoteHostname(hostname string) []byte {
	q, err := json.Marshal(hostname)
	if err != nil {
		panic(fmt.Sprintf("gen: quoting a string cannot fail: %v", err))
	}
	return q
}
