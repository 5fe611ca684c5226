package history

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"

	"github.com/procscope/procscope/aggregator/internal/ingest"
	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// seriesName is one series' identity in the two forms the sinks need:
// sorted labels for remote write and VictoriaMetrics' marshalled raw name
// for AddRows. Its arrays are never written once built: queued rows and
// samples share them with the cache.
type seriesName struct {
	labels []prompb.Label
	raw    []byte
}

func newSeriesName(labels ...prompb.Label) seriesName {
	n := seriesName{labels: slices.Clone(labels)}
	// MarshalMetricNameRaw rewrites a "__name__" label in place, so it
	// gets a copy; the kept labels go to remote write unchanged.
	var tmp [8]prompb.Label
	n.raw = storage.MarshalMetricNameRaw(nil, append(tmp[:0], labels...))
	return n
}

// point is one value of a snapshot; all points share its timestamp. The
// name is copied in (slice headers, not the bytes) rather than pointed to:
// building the rows then reads only the points, not 50 cache entries
// scattered over the heap.
type point struct {
	name  seriesName
	value float64
}

// Host series in the order buildSamples writes them.
const (
	hostCPU = iota
	hostMemUsed
	hostMemAvail
	hostSwapUsed
	hostLoad1
	hostLoad5
	hostLoad15
	hostProcesses
	numHostMetrics
)

var hostMetricNames = [numHostMetrics]string{
	MetricCPU, MetricMemoryUsed, MetricMemoryAvail, MetricSwapUsed,
	MetricLoad1, MetricLoad5, MetricLoad15, MetricProcesses,
}

// procNames are the series names of one process, keyed by PID in the
// host's cache; createTime and name (capped as written) tell a reused PID
// from the process that had it before.
type procNames struct {
	createTime, name string
	cpu, rss         seriesName
	used             uint64 // hostNames.gen of the last snapshot that wrote it
}

type fsNames struct {
	name seriesName
	used uint64
}

// nameIdleSnapshots is how many snapshots of its host a process or
// filesystem series name stays cached without being written: a process
// that drops out of the top K and comes back within it is not rebuilt.
const nameIdleSnapshots = 64

// hostNames caches the series names of one host. Only the timestamp and
// the values change from one snapshot to the next; building and
// marshalling the names was over half of Add's CPU.
type hostNames struct {
	mu      sync.Mutex                 // one snapshot of the host at a time
	host    string                     // capped hostname label value
	gen     uint64                     // snapshots of this host seen
	lastAdd uint64                     // nameCache.adds at its last snapshot; under nameCache.mu
	metrics [numHostMetrics]seriesName // built on first use (raw not nil)
	fs      map[string]*fsNames
	procs   map[int64]*procNames
}

func newHostNames(hostname string) *hostNames {
	return &hostNames{
		host:  strings.Clone(capLabelFor(LabelHostname, hostname)),
		fs:    make(map[string]*fsNames),
		procs: make(map[int64]*procNames),
	}
}

// Bounds of the host cache: hosts come and go (renames, short-lived
// machines, a hostile pusher inventing hostnames).
const (
	maxCachedHosts = 8192
	// hostIdleAdds: a host not seen for this many snapshots (of all hosts)
	// is dropped at the next sweep; it costs one rebuild if it returns.
	hostIdleAdds   = 1 << 17
	hostSweepEvery = 1 << 10
)

// nameCache maps hostnames to their cached series names.
type nameCache struct {
	mu    sync.Mutex
	hosts map[string]*hostNames
	adds  uint64
}

func newNameCache() *nameCache {
	return &nameCache{hosts: make(map[string]*hostNames)}
}

// host returns the names of hostname, cached when there is room. A nil
// cache returns a fresh, uncached set.
func (c *nameCache) host(hostname string) *hostNames {
	if c == nil {
		return newHostNames(hostname)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.adds++
	if c.adds%hostSweepEvery == 0 {
		c.sweepLocked()
	}
	hn := c.hosts[hostname]
	if hn == nil {
		hn = newHostNames(hostname)
		if len(c.hosts) >= maxCachedHosts {
			c.sweepLocked()
		}
		if len(c.hosts) < maxCachedHosts {
			c.hosts[strings.Clone(hostname)] = hn
		}
	}
	hn.lastAdd = c.adds
	return hn
}

func (c *nameCache) sweepLocked() {
	for name, hn := range c.hosts {
		if c.adds-hn.lastAdd > hostIdleAdds {
			delete(c.hosts, name)
		}
	}
}

// len is the number of cached hosts (for tests).
func (c *nameCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.hosts)
}

// scratch holds the per-snapshot working memory of points, reused.
type scratch struct {
	top    [2][]int
	union  []int
	mpSeen []string
	points []point
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// points appends to sc.points the values one snapshot writes: host series
// from system_info, and CPU and RSS of the top-K processes by CPU and by
// memory, with their names from the host's cache. A system_info that is
// not a JSON object, or lacks fields, yields fewer points, never an error:
// ingest already accepted it.
func (hn *hostNames) points(req *store.IngestRequest, topK int, sc *scratch) {
	hn.mu.Lock()
	defer hn.mu.Unlock()
	hn.gen++
	sys := req.System
	if sys == nil {
		sys = &ingest.SystemNumbers{}
	}
	out := sc.points[:0]
	host := func(m int, v ingest.Num, q quantum) {
		if !v.OK {
			return
		}
		n := &hn.metrics[m]
		if n.raw == nil {
			*n = newSeriesName(prompb.Label{Name: labelName, Value: hostMetricNames[m]},
				prompb.Label{Name: LabelHostname, Value: hn.host})
		}
		out = append(out, point{name: *n, value: q.apply(v.V)})
	}
	host(hostCPU, sys.CPU, perTenth)
	host(hostMemUsed, sys.MemUsed, perKiB)
	host(hostMemAvail, sys.MemAvail, perKiB)
	host(hostSwapUsed, sys.SwapUsed, perKiB)
	host(hostLoad1, sys.Load1, perHundredth)
	host(hostLoad5, sys.Load5, perHundredth)
	host(hostLoad15, sys.Load15, perHundredth)
	if sys.ProcessCount.OK {
		host(hostProcesses, sys.ProcessCount, perOne)
	}

	seenMP := sc.mpSeen[:0]
	for _, f := range sys.Filesystems {
		if len(seenMP) >= maxFilesystems {
			break
		}
		mp := capLabel(f.Mountpoint)
		if mp == "" || slices.Contains(seenMP, mp) || !f.Used.OK {
			continue
		}
		seenMP = append(seenMP, mp)
		e := hn.fs[mp]
		if e == nil {
			mp = strings.Clone(mp)
			e = &fsNames{name: newSeriesName(
				prompb.Label{Name: labelName, Value: MetricFilesystemUsed},
				prompb.Label{Name: LabelHostname, Value: hn.host},
				prompb.Label{Name: LabelMountpoint, Value: mp},
			)}
			hn.fs[mp] = e
		}
		e.used = hn.gen
		out = append(out, point{name: e.name, value: perKiB.apply(f.Used.V)})
	}
	clear(seenMP)
	sc.mpSeen = seenMP[:0]

	if !sys.ProcessCount.OK {
		// Exporters that do not report process_count still sent the table.
		host(hostProcesses, ingest.Num{V: float64(len(req.Processes)), OK: true}, perOne)
	}

	for _, i := range topProcesses(req.Processes, topK, sc) {
		p := &req.Processes[i]
		ct, name := capLabel(p.CreateTime), capLabel(p.Name)
		e := hn.procs[p.PID]
		if e == nil || e.createTime != ct || e.name != name {
			// New, or the PID was reused: the old process's names go.
			e = hn.newProcNames(p.PID, strings.Clone(ct), strings.Clone(name))
			hn.procs[p.PID] = e
		}
		e.used = hn.gen
		if finite(p.CPUPercent) {
			out = append(out, point{name: e.cpu, value: perTenth.apply(p.CPUPercent)})
		}
		if rss := p.MemoryMB * 1024 * 1024; finite(rss) {
			out = append(out, point{name: e.rss, value: perKiB.apply(rss)})
		}
	}
	sc.points = out
	hn.evict(topK)
}

func (hn *hostNames) newProcNames(pid int64, createTime, name string) *procNames {
	// Sorted by name; empty values are left out because an empty value
	// means "no label" to both VictoriaMetrics and Prometheus.
	var pl [5]prompb.Label
	ls := append(pl[:0], prompb.Label{Name: labelName, Value: MetricProcessRSS})
	if createTime != "" {
		ls = append(ls, prompb.Label{Name: LabelCreateTime, Value: createTime})
	}
	ls = append(ls, prompb.Label{Name: LabelHostname, Value: hn.host})
	if name != "" {
		ls = append(ls, prompb.Label{Name: LabelProcName, Value: name})
	}
	ls = append(ls, prompb.Label{Name: LabelPID, Value: strconv.FormatInt(pid, 10)})
	rss := newSeriesName(ls...)
	ls[0].Value = MetricProcessCPU
	return &procNames{createTime: createTime, name: name, cpu: newSeriesName(ls...), rss: rss}
}

// evict drops names unused for nameIdleSnapshots snapshots, checked every
// nameIdleSnapshots snapshots; a host whose table churns faster than that
// (every process new each time) keeps only the current snapshot's names.
func (hn *hostNames) evict(topK int) {
	idle := uint64(nameIdleSnapshots)
	if len(hn.procs) > 8*topK+256 || len(hn.fs) > 2*maxFilesystems {
		idle = 0
	} else if hn.gen%nameIdleSnapshots != 0 {
		return
	}
	for k, e := range hn.procs {
		if hn.gen-e.used > idle {
			delete(hn.procs, k)
		}
	}
	for k, e := range hn.fs {
		if hn.gen-e.used > idle {
			delete(hn.fs, k)
		}
	}
}

// topProcesses returns the indexes of the K processes with the most CPU and
// the K with the most memory (the union, ascending index order), in sc's
// buffers. Idle processes (zero CPU and zero RSS) never qualify: picking
// arbitrary idle ones would only churn series. Ties break on the lower PID
// so the choice is stable between snapshots. O(n*K), no allocation once the
// buffers have grown.
func topProcesses(procs []snapshot.Process, k int, sc *scratch) []int {
	if k <= 0 || len(procs) == 0 {
		return nil
	}
	// One pass for both rankings; most processes are idle and cost two
	// comparisons.
	// Once a ranking is full, a process below its last value cannot enter
	// and costs no call (all real processes have some memory).
	byCPU, byMem := sc.top[0][:0], sc.top[1][:0]
	cpuFloor, memFloor := 0.0, 0.0
	for i := range procs {
		p := &procs[i]
		if v := p.CPUPercent; v > 0 && v >= cpuFloor && finite(v) {
			byCPU = offerTop(byCPU, procs, i, k, false)
			if len(byCPU) == k {
				cpuFloor = procs[byCPU[k-1]].CPUPercent
			}
		}
		if v := p.MemoryMB; v > 0 && v >= memFloor && finite(v) {
			byMem = offerTop(byMem, procs, i, k, true)
			if len(byMem) == k {
				memFloor = procs[byMem[k-1]].MemoryMB
			}
		}
	}
	slices.Sort(byCPU)
	slices.Sort(byMem)
	sc.top[0], sc.top[1] = byCPU, byMem
	// Merge the two ascending lists, dropping duplicates.
	a, b := byCPU, byMem
	u := sc.union[:0]
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || (len(a) > 0 && a[0] < b[0]):
			u, a = append(u, a[0]), a[1:]
		case len(a) == 0 || b[0] < a[0]:
			u, b = append(u, b[0]), b[1:]
		default:
			u, a, b = append(u, a[0]), a[1:], b[1:]
		}
	}
	sc.union = u
	return u
}

// offerTop puts process i into top (indexes, best first, at most k) if it
// ranks there: more CPU (or memory, with mem), ties to the lower PID.
func offerTop(top []int, procs []snapshot.Process, i, k int, mem bool) []int {
	val := func(j int) float64 {
		if mem {
			return procs[j].MemoryMB
		}
		return procs[j].CPUPercent
	}
	better := func(a, b int) bool {
		va, vb := val(a), val(b)
		return va > vb || (va == vb && procs[a].PID < procs[b].PID)
	}
	if len(top) == k {
		if !better(i, top[k-1]) {
			return top
		}
		top[k-1] = i
	} else {
		top = append(top, i)
	}
	for j := len(top) - 1; j > 0 && better(top[j], top[j-1]); j-- {
		top[j], top[j-1] = top[j-1], top[j]
	}
	return top
}
