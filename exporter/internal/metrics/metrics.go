// Package metrics exposes the latest walk as Prometheus metrics.
//
// The walk loop calls Update once per walk; Update turns the walk into a
// ready-made list of const metrics, and every scrape only hands that list
// out. A scrape therefore never reads /proc and costs the same whether the
// host runs 50 processes or 50,000, which is what makes /metrics cheaper
// than node_exporter's (see docs/performance.md).
//
// Cardinality is bounded on purpose: per-process series exist only for the
// top N by CPU and by memory, and for named process groups; never one
// series per PID.
package metrics

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/procscope/procscope/exporter/internal/collector"
)

const namespace = "procscope"

// maxNameLabel bounds the name label of top-N series: a process name is
// hostile text and could otherwise make every scrape megabytes larger.
const maxNameLabel = 128

// States are the values of procscope_processes{state}, all always present
// so that a state with no process reads 0 instead of vanishing.
var States = []string{"running", "sleeping", "disk-sleep", "stopped", "zombie", "idle", "other"}

// Group is a named regular expression matched against process names
// (never command lines: group membership must not change with
// --collect.cmdline, and command lines are optional and scrubbed).
type Group struct {
	Name   string
	Regexp *regexp.Regexp
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
}

var (
	descCPUSeconds  = desc("cpu_seconds_total", "Host CPU time by mode, summed over all CPUs, since boot.", "mode")
	descCPUs        = desc("cpus", "Number of logical CPUs.")
	descMemTotal    = desc("memory_total_bytes", "Total RAM.")
	descMemAvail    = desc("memory_available_bytes", "RAM available for new work without swapping.")
	descMemUsed     = desc("memory_used_bytes", "RAM in use.")
	descSwapTotal   = desc("swap_total_bytes", "Total swap space.")
	descSwapUsed    = desc("swap_used_bytes", "Swap space in use.")
	descLoad1       = desc("load1", "1-minute load average.")
	descLoad5       = desc("load5", "5-minute load average.")
	descLoad15      = desc("load15", "15-minute load average.")
	descFSSize      = desc("filesystem_size_bytes", "Filesystem size.", "mountpoint", "device", "fstype")
	descFSAvail     = desc("filesystem_avail_bytes", "Filesystem space available to unprivileged users (excludes blocks reserved for root).", "mountpoint", "device", "fstype")
	descNetRx       = desc("network_receive_bytes_total", "Bytes received by a network interface.", "device")
	descNetTx       = desc("network_transmit_bytes_total", "Bytes sent by a network interface.", "device")
	descBootTime    = desc("boot_time_seconds", "Unix time the host booted.")
	descProcesses   = desc("processes", "Processes by state; sum() is the process count.", "state")
	descTopCPU      = desc("top_process_cpu_percent", "CPU use of the top processes by CPU, percent of one core.", "rank", "pid", "name")
	descTopMem      = desc("top_process_resident_memory_bytes", "Resident memory of the top processes by memory.", "rank", "pid", "name")
	descGroupCount  = desc("process_group_processes", "Processes in a configured process group (0 when none runs).", "group")
	descGroupCPU    = desc("process_group_cpu_seconds_total", "CPU time used by the processes of a group while the exporter watched.", "group")
	descGroupMem    = desc("process_group_resident_memory_bytes", "Resident memory of the processes of a group.", "group")
	descPartDur     = desc("scrape_collector_duration_seconds", "Time one part of the last walk took.", "collector")
	descPartOK      = desc("scrape_collector_success", "Whether one part of the last walk succeeded.", "collector")
	descWalkDur     = desc("walk_duration_seconds", "Time the last walk took.")
	descWalkSkipped = desc("walk_processes_skipped_total", "Processes that vanished or could not be read during a walk.")
	descWalks       = desc("walks_total", "Walks completed.")
	descWalkTime    = desc("walk_last_timestamp_seconds", "Unix time of the last walk.")
	// descHostInfo lets dashboards join this exporter's series to the
	// aggregator's per-host series, which are keyed by the hostname pushed
	// in each snapshot.
	descHostInfo = desc("host_info", "Always 1: the hostname this exporter pushes as, and the host's operating system.",
		"hostname", "os", "distro", "kernel", "arch")
)

var allDescs = []*prometheus.Desc{
	descCPUSeconds, descCPUs, descMemTotal, descMemAvail, descMemUsed, descSwapTotal, descSwapUsed,
	descLoad1, descLoad5, descLoad15, descFSSize, descFSAvail, descNetRx, descNetTx, descBootTime,
	descProcesses, descTopCPU, descTopMem, descGroupCount, descGroupCPU, descGroupMem,
	descPartDur, descPartOK, descWalkDur, descWalkSkipped, descWalks, descWalkTime, descHostInfo,
	descUnitProcs, descUnitCPU, descUnitMem, descUnitRead, descUnitWrite, descUnitStarts, descUnitExits, descForks,
}

// Collector is a prometheus.Collector over the latest walk.
type Collector struct {
	topN   int
	groups []Group
	// hostname is the name snapshots are pushed under; "" leaves
	// procscope_host_info out.
	hostname string

	// latest is what every scrape returns: built once per walk.
	latest atomic.Pointer[[]prometheus.Metric]

	// Walk-to-walk state, touched only by Update (one caller at a time).
	mu       sync.Mutex
	prev     map[procKey]float64 // CPU seconds of grouped processes at the last walk
	groupCPU []float64
	skipped  float64
	walks    float64
	matches  map[string]uint64 // name -> bitmask of matching groups
	units    *unitState
}

// procKey identifies a process across walks: a reused PID has another
// start time.
type procKey struct {
	pid   int64
	start int64
}

// maxGroups is the width of the match bitmask.
const maxGroups = 64

// New returns a Collector reporting the top topN processes by CPU and by
// memory and the given groups (at most 64).
func New(topN int, groups []Group) (*Collector, error) {
	if topN < 0 {
		return nil, fmt.Errorf("top-n %d: must not be negative", topN)
	}
	if len(groups) > maxGroups {
		return nil, fmt.Errorf("%d process groups: at most %d", len(groups), maxGroups)
	}
	return &Collector{topN: topN, groups: groups, prev: map[procKey]float64{},
		groupCPU: make([]float64, len(groups)), matches: map[string]uint64{}, units: newUnitState(DefaultMaxUnits)}, nil
}

// SetMaxUnits bounds the units and containers with series of their own
// (--metrics.max-units); the rest are summed as unit="other". Call it
// before the first Update.
func (c *Collector) SetMaxUnits(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.units = newUnitState(max(n, 1))
}

// SetHostname sets the hostname reported by procscope_host_info: the one
// the exporter pushes snapshots under, so that the label matches the
// aggregator's host series exactly. It takes effect at the next Update.
func (c *Collector) SetHostname(hostname string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hostname = hostname
}

// Ready reports whether a walk has been seen (for /-/ready).
func (c *Collector) Ready() bool { return c.latest.Load() != nil }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it only replays the metrics
// built by the last Update.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if p := c.latest.Load(); p != nil {
		for _, m := range *p {
			ch <- m
		}
	}
}

// Update turns a walk into the metrics served until the next Update.
// walkDuration is how long the walk took. Not for concurrent use; scrapes
// may run concurrently with it.
func (c *Collector) Update(w *collector.Walk, walkDuration time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.walks++
	c.skipped += float64(max(w.Skipped, 0))

	ms := make([]prometheus.Metric, 0, 64+2*c.topN+3*len(c.groups)+2*len(w.Network)+2*len(w.System.Filesystems))
	add := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ms = append(ms, prometheus.MustNewConstMetric(d, t, v, labels...))
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) { add(d, prometheus.GaugeValue, v, labels...) }
	counter := func(d *prometheus.Desc, v float64, labels ...string) { add(d, prometheus.CounterValue, v, labels...) }

	// Host.
	modes := make([]string, 0, len(w.CPUSeconds))
	for m := range w.CPUSeconds {
		modes = append(modes, m)
	}
	slices.Sort(modes)
	for _, m := range modes {
		counter(descCPUSeconds, w.CPUSeconds[m], label(m))
	}
	sys := &w.System
	if sys.CPU.LogicalThreads > 0 {
		gauge(descCPUs, float64(sys.CPU.LogicalThreads))
	}
	gauge(descMemTotal, float64(sys.Memory.TotalBytes))
	gauge(descMemAvail, float64(sys.Memory.AvailableBytes))
	gauge(descMemUsed, float64(sys.Memory.UsedBytes))
	gauge(descSwapTotal, float64(sys.Swap.TotalBytes))
	gauge(descSwapUsed, float64(sys.Swap.UsedBytes))
	gauge(descLoad1, sys.LoadAverage.Load1)
	gauge(descLoad5, sys.LoadAverage.Load5)
	gauge(descLoad15, sys.LoadAverage.Load15)
	// The same label set twice (a bind mount listed twice) would fail the
	// whole scrape with "collected before with the same name and label
	// values": keep the first.
	seen := map[string]bool{}
	for _, fs := range sys.Filesystems {
		l := []string{label(fs.Mountpoint), label(fs.Device), label(fs.FSType)}
		k := strings.Join(l, "\x00")
		if seen[k] {
			continue
		}
		seen[k] = true
		gauge(descFSSize, float64(fs.TotalBytes), l...)
		gauge(descFSAvail, float64(fs.AvailableBytes), l...)
	}
	clear(seen)
	for _, n := range w.Network {
		d := label(n.Device)
		if seen[d] {
			continue
		}
		seen[d] = true
		counter(descNetRx, float64(n.ReceiveBytes), d)
		counter(descNetTx, float64(n.TransmitBytes), d)
	}
	if !w.BootTime.IsZero() {
		gauge(descBootTime, float64(w.BootTime.Unix()))
	}
	if c.hostname != "" {
		o := &sys.OS
		gauge(descHostInfo, 1, label(c.hostname), label(o.Name), label(o.Distro), label(o.Kernel), label(o.Arch))
	}

	// Processes by state.
	var states [8]float64
	for i := range w.Processes {
		states[stateIndex(w.Processes[i].State)]++
	}
	for i, s := range States {
		gauge(descProcesses, states[i], s)
	}

	// Top N by CPU and by memory.
	if c.topN > 0 && len(w.Processes) > 0 {
		idx := make([]int, len(w.Processes))
		for i := range idx {
			idx[i] = i
		}
		top := func(key func(*collector.Process) float64, d *prometheus.Desc) {
			slices.SortFunc(idx, func(a, b int) int {
				pa, pb := &w.Processes[a], &w.Processes[b]
				if r := cmp.Compare(key(pb), key(pa)); r != 0 {
					return r
				}
				return cmp.Compare(pa.PID, pb.PID)
			})
			for r, i := range idx[:min(c.topN, len(idx))] {
				p := &w.Processes[i]
				gauge(d, key(p), strconv.Itoa(r+1), strconv.FormatInt(p.PID, 10), nameLabel(p.Name))
			}
		}
		top(func(p *collector.Process) float64 { return p.CPUPercent }, descTopCPU)
		top(rssBytes, descTopMem)
	}

	// Groups.
	if len(c.groups) > 0 {
		count := make([]float64, len(c.groups))
		mem := make([]float64, len(c.groups))
		next := make(map[procKey]float64, len(c.prev))
		if len(c.matches) > 100_000 {
			// Bound the cache against hosts that spawn uniquely named
			// processes forever.
			clear(c.matches)
		}
		for i := range w.Processes {
			p := &w.Processes[i]
			mask, ok := c.matches[p.Name]
			if !ok {
				for g := range c.groups {
					if c.groups[g].Regexp.MatchString(p.Name) {
						mask |= 1 << g
					}
				}
				c.matches[p.Name] = mask
			}
			if mask == 0 {
				continue
			}
			k := procKey{p.PID, p.StartTime.UnixNano()}
			// A process seen for the first time adds its whole CPU time;
			// a known one adds what it used since the last walk. A process
			// that exits keeps its contribution: the counter never goes
			// back, as a counter must not.
			delta := p.CPUSeconds
			if prev, ok := c.prev[k]; ok {
				delta = max(p.CPUSeconds-prev, 0)
			}
			next[k] = p.CPUSeconds
			for g := range c.groups {
				if mask&(1<<g) != 0 {
					count[g]++
					mem[g] += rssBytes(p)
					c.groupCPU[g] += delta
				}
			}
		}
		c.prev = next
		for g, grp := range c.groups {
			gauge(descGroupCount, count[g], grp.Name)
			counter(descGroupCPU, c.groupCPU[g], grp.Name)
			gauge(descGroupMem, mem[g], grp.Name)
		}
	}

	c.units.update(w, gauge, counter)

	// The walk itself.
	clear(seen)
	for _, part := range w.Parts {
		n := label(part.Name)
		if seen[n] {
			continue
		}
		seen[n] = true
		ok := 1.0
		if part.Err != nil {
			ok = 0
		}
		gauge(descPartDur, part.Duration.Seconds(), n)
		gauge(descPartOK, ok, n)
	}
	gauge(descWalkDur, walkDuration.Seconds())
	counter(descWalkSkipped, c.skipped)
	counter(descWalks, c.walks)
	gauge(descWalkTime, float64(w.Time.UnixNano())/1e9)

	c.latest.Store(&ms)
}

func rssBytes(p *collector.Process) float64 {
	if p.RSSBytes > 0 {
		return float64(p.RSSBytes)
	}
	return p.MemoryMB * (1 << 20)
}

func stateIndex(s string) int {
	for i, v := range States {
		if v == s {
			return i
		}
	}
	return len(States) - 1 // "other"
}

// label makes hostile text a valid label value: client_golang refuses
// invalid UTF-8 (and would fail the scrape); escaping of quotes, backslashes
// and newlines is the exposition format's job.
func label(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func nameLabel(s string) string {
	s = label(s)
	if len(s) <= maxNameLabel {
		return s
	}
	cut := maxNameLabel
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
