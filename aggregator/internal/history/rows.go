package history

import (
	"encoding/json"
	"errors"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"

	"github.com/procscope/procscope/aggregator/internal/store"
)

// Metric names of the series written from each snapshot. They are prefixed
// procscope_snapshot_ so that, once forwarded by remote write, they never
// collide with the exporter's own scraped procscope_* series.
const (
	MetricCPU            = "procscope_snapshot_cpu_usage_percent"
	MetricMemoryUsed     = "procscope_snapshot_memory_used_bytes"
	MetricMemoryAvail    = "procscope_snapshot_memory_available_bytes"
	MetricSwapUsed       = "procscope_snapshot_swap_used_bytes"
	MetricLoad1          = "procscope_snapshot_load1"
	MetricLoad5          = "procscope_snapshot_load5"
	MetricLoad15         = "procscope_snapshot_load15"
	MetricProcesses      = "procscope_snapshot_processes"
	MetricFilesystemUsed = "procscope_snapshot_filesystem_used_bytes"
	MetricProcessCPU     = "procscope_snapshot_process_cpu_percent"
	MetricProcessRSS     = "procscope_snapshot_process_resident_bytes"
)

// Label names.
const (
	labelName       = "__name__"
	LabelHostname   = "hostname"
	LabelMountpoint = "mountpoint"
	LabelPID        = "pid"
	LabelProcName   = "name"
	LabelCreateTime = "create_time"
)

// maxLabelValueLen caps every label value taken from a host but the
// hostname. Process names and mount points are attacker-controlled;
// VictoriaMetrics stores any bytes but panics on values over 64 KiB, and
// long values bloat the index for nothing a human reads.
const maxLabelValueLen = 128

// maxHostnameLen is ingest's own limit on hostnames (API.md). Hostnames are
// never cut shorter: two hosts sharing a long prefix must stay two hosts.
const maxHostnameLen = 253

// maxFilesystems bounds the per-mountpoint series one snapshot can create:
// a host with thousands of (bind) mounts must not explode cardinality.
const maxFilesystems = 64

// sample is one value of one series, in the form both sinks need: labels
// sorted by name (Prometheus requires it; __name__ sorts first).
type sample struct {
	labels    []prompb.Label
	timestamp int64 // milliseconds since the epoch
	value     float64
}

// optNum is a number from system_info that may be absent or unusable: a
// missing field, null, a string, or a number out of float64's range leaves
// ok false instead of failing the whole object. An exporter that does not
// send swap must not get a flat zero swap series.
type optNum struct {
	v  float64
	ok bool
}

// UnmarshalJSON never fails: a value that is not a finite number is absent.
func (n *optNum) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	*n = optNum{v: f, ok: err == nil && finite(f)}
	return nil
}

// systemNumbers is the part of system_info history reads.
type systemNumbers struct {
	CPU *struct {
		UsagePercent optNum `json:"usage_percent"`
	} `json:"cpu"`
	Memory *struct {
		UsedBytes      optNum `json:"used_bytes"`
		AvailableBytes optNum `json:"available_bytes"`
	} `json:"memory"`
	Swap *struct {
		UsedBytes optNum `json:"used_bytes"`
	} `json:"swap"`
	Filesystems []struct {
		Mountpoint string `json:"mountpoint"`
		UsedBytes  optNum `json:"used_bytes"`
	} `json:"filesystems"`
	LoadAverage *struct {
		Load1  optNum `json:"load1"`
		Load5  optNum `json:"load5"`
		Load15 optNum `json:"load15"`
	} `json:"load_average"`
	ProcessCount optNum `json:"process_count"`
}

// capLabel makes a hostile string a safe label value: valid UTF-8, at most
// maxLabelValueLen bytes, cut on a rune boundary.
func capLabel(s string) string { return capLabelN(s, maxLabelValueLen) }

// capLabelFor caps a value of the named label: the hostname to ingest's
// limit, everything else to maxLabelValueLen. Writes and queries both use
// it, so a query matches what was written.
func capLabelFor(name, s string) string {
	if name == LabelHostname {
		return capLabelN(s, maxHostnameLen)
	}
	return capLabel(s)
}

func capLabelN(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// buildSamples turns one stored snapshot into the samples history keeps:
// host series from system_info, and CPU and RSS of the top-K processes by
// CPU and by memory. A system_info that is not a JSON object, or lacks
// fields, yields fewer samples, never an error: ingest already accepted it.
func buildSamples(req *store.IngestRequest, topK int) []sample {
	ts := sampleTime(req.CapturedAt)
	host := capLabelFor(LabelHostname, req.Hostname)
	out := make([]sample, 0, 12+2*2*topK)
	// All label slices are cut from one array: one allocation instead of
	// one per sample.
	arena := make([]prompb.Label, 0, 2*10+3*8+5*2*2*topK)
	labels := func(ls ...prompb.Label) []prompb.Label {
		if len(arena)+len(ls) > cap(arena) {
			arena = make([]prompb.Label, 0, max(64, len(ls)))
		}
		start := len(arena)
		arena = append(arena, ls...)
		return arena[start:len(arena):len(arena)]
	}

	hostSample := func(name string, v optNum, q quantum) {
		if !v.ok {
			return
		}
		out = append(out, sample{
			labels:    labels(prompb.Label{Name: labelName, Value: name}, prompb.Label{Name: LabelHostname, Value: host}),
			timestamp: ts,
			value:     q.apply(v.v),
		})
	}

	var sys systemNumbers
	err := json.Unmarshal(req.SystemInfo, &sys)
	var typeErr *json.UnmarshalTypeError
	if err == nil || errors.As(err, &typeErr) {
		// A field of the wrong type (or a number out of range) leaves
		// that field nil; the rest is still good.
		if sys.CPU != nil {
			hostSample(MetricCPU, sys.CPU.UsagePercent, perTenth)
		}
		if sys.Memory != nil {
			hostSample(MetricMemoryUsed, sys.Memory.UsedBytes, perKiB)
			hostSample(MetricMemoryAvail, sys.Memory.AvailableBytes, perKiB)
		}
		if sys.Swap != nil {
			hostSample(MetricSwapUsed, sys.Swap.UsedBytes, perKiB)
		}
		if sys.LoadAverage != nil {
			hostSample(MetricLoad1, sys.LoadAverage.Load1, perHundredth)
			hostSample(MetricLoad5, sys.LoadAverage.Load5, perHundredth)
			hostSample(MetricLoad15, sys.LoadAverage.Load15, perHundredth)
		}
		hostSample(MetricProcesses, sys.ProcessCount, perOne)
		seen := make(map[string]bool, len(sys.Filesystems))
		for _, f := range sys.Filesystems {
			if len(seen) >= maxFilesystems {
				break
			}
			mp := capLabel(f.Mountpoint)
			if mp == "" || seen[mp] || !f.UsedBytes.ok {
				continue
			}
			seen[mp] = true
			out = append(out, sample{
				labels: labels(
					prompb.Label{Name: labelName, Value: MetricFilesystemUsed},
					prompb.Label{Name: LabelHostname, Value: host},
					prompb.Label{Name: LabelMountpoint, Value: mp},
				),
				timestamp: ts,
				value:     perKiB.apply(f.UsedBytes.v),
			})
		}
	}
	if !sys.ProcessCount.ok {
		// Exporters that do not report process_count still sent the table.
		hostSample(MetricProcesses, optNum{v: float64(len(req.Processes)), ok: true}, perOne)
	}

	for _, i := range topProcesses(req, topK) {
		p := &req.Processes[i]
		// Sorted by name; empty values are left out because an empty value
		// means "no label" to both VictoriaMetrics and Prometheus.
		var pl [5]prompb.Label
		ls := append(pl[:0], prompb.Label{Name: labelName, Value: MetricProcessRSS})
		if ct := capLabel(p.CreateTime); ct != "" {
			ls = append(ls, prompb.Label{Name: LabelCreateTime, Value: ct})
		}
		ls = append(ls, prompb.Label{Name: LabelHostname, Value: host})
		if name := capLabel(p.Name); name != "" {
			ls = append(ls, prompb.Label{Name: LabelProcName, Value: name})
		}
		ls = append(ls, prompb.Label{Name: LabelPID, Value: strconv.FormatInt(p.PID, 10)})
		if finite(p.CPUPercent) {
			cpu := labels(ls...)
			cpu[0].Value = MetricProcessCPU
			out = append(out, sample{labels: cpu, timestamp: ts, value: perTenth.apply(p.CPUPercent)})
		}
		if rss := p.MemoryMB * 1024 * 1024; finite(rss) {
			out = append(out, sample{labels: labels(ls...), timestamp: ts, value: perKiB.apply(rss)})
		}
	}
	return out
}

// topProcesses returns the indexes of the K processes with the most CPU and
// the K with the most memory (the union, ascending index order). Idle
// processes (zero CPU and zero RSS) never qualify: picking arbitrary idle
// ones would only churn series. Ties break on the lower PID so the choice is
// stable between snapshots. O(n*K), no allocation per process.
func topProcesses(req *store.IngestRequest, k int) []int {
	if k <= 0 || len(req.Processes) == 0 {
		return nil
	}
	procs := req.Processes
	pick := func(val func(i int) float64) []int {
		top := make([]int, 0, k)
		better := func(a, b int) bool {
			va, vb := val(a), val(b)
			if va != vb {
				return va > vb
			}
			return procs[a].PID < procs[b].PID
		}
		for i := range procs {
			v := val(i)
			if !(v > 0) || !finite(v) {
				continue
			}
			if len(top) == k && !better(i, top[k-1]) {
				continue
			}
			if len(top) < k {
				top = append(top, i)
			} else {
				top[k-1] = i
			}
			for j := len(top) - 1; j > 0 && better(top[j], top[j-1]); j-- {
				top[j], top[j-1] = top[j-1], top[j]
			}
		}
		return top
	}
	byCPU := pick(func(i int) float64 { return procs[i].CPUPercent })
	byMem := pick(func(i int) float64 { return procs[i].MemoryMB })
	seen := make(map[int]bool, len(byCPU)+len(byMem))
	union := make([]int, 0, len(byCPU)+len(byMem))
	for _, i := range append(byCPU, byMem...) {
		if !seen[i] {
			seen[i] = true
			union = append(union, i)
		}
	}
	sort.Ints(union)
	return union
}

// timeResolutionMs is the resolution of sample timestamps. captured_at
// carries milliseconds of scheduling jitter (a ticker firing a few ms late,
// a slow walk); stored exactly, that jitter alone cost 0.75 bytes a sample
// in TestBytesPerSample (0.34 at 10 ms, 0.18 at 100 ms), more than all the
// values. The snapshot store keeps the exact captured_at; a chart of
// samples 2 s or more apart loses nothing at 100 ms.
const timeResolutionMs int64 = 100

// sampleTime is t in milliseconds rounded to timeResolutionMs.
func sampleTime(t time.Time) int64 {
	ms := t.UnixMilli()
	r := timeResolutionMs
	return floorDiv(ms+r/2, r) * r
}

// quantum is the resolution a series is stored with. Exporters send
// full-precision floats (CPU % from tick deltas: 12.345678...), whose noise
// digits would cost VictoriaMetrics several bytes a sample; nobody reads a
// chart to better than 0.1 % CPU, 0.01 load or 1 KiB.
type quantum struct {
	scale float64 // multiply, round, divide: exact for decimal fractions
	unit  float64 // or: divide, round, multiply (for integral units)
}

var (
	perTenth     = quantum{scale: 10}
	perHundredth = quantum{scale: 100}
	perOne       = quantum{unit: 1}
	perKiB       = quantum{unit: 1024}
)

// apply rounds v to the quantum. Dividing by the scale (not multiplying by
// 0.1) gives the double nearest to the decimal, which VictoriaMetrics then
// stores as a short decimal mantissa.
func (q quantum) apply(v float64) float64 {
	var r float64
	if q.scale != 0 {
		r = math.Round(v*q.scale) / q.scale
	} else {
		r = math.Round(v/q.unit) * q.unit
	}
	if !finite(r) { // v*scale overflowed: keep v as it is
		return v
	}
	return r
}

func finite(v float64) bool {
	return v-v == 0 // false for NaN and ±Inf
}
