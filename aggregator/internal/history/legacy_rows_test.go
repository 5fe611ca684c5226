package history

import (
	"encoding/json"
	"errors"
	"sort"
	"strconv"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"

	"github.com/procscope/procscope/aggregator/internal/store"
)

// legacyBuildSamples is buildSamples as it was before the name cache and
// the system_info scanner: the reference the new path is compared with
// (tests, fuzzing) and the baseline its benchmark measures against. It
// turns one stored snapshot into the samples history keeps:
// host series from system_info, and CPU and RSS of the top-K processes by
// CPU and by memory. A system_info that is not a JSON object, or lacks
// fields, yields fewer samples, never an error: ingest already accepted it.
func legacyBuildSamples(req *store.IngestRequest, topK int) []sample {
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

	for _, i := range legacyTopProcesses(req, topK) {
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

// legacyTopProcesses returns the indexes of the K processes with the most CPU and
// the K with the most memory (the union, ascending index order). Idle
// processes (zero CPU and zero RSS) never qualify: picking arbitrary idle
// ones would only churn series. Ties break on the lower PID so the choice is
// stable between snapshots. O(n*K), no allocation per process.
func legacyTopProcesses(req *store.IngestRequest, k int) []int {
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

// legacyBuildRows is History.buildRows before the name cache: it builds the storage rows of one snapshot (names marshalled into
// one buffer) and the samples they came from (for remote write).
func legacyBuildRows(req *store.IngestRequest, topK int) ([]storage.MetricRow, []sample) {
	samples := legacyBuildSamples(req, topK)
	rows := make([]storage.MetricRow, len(samples))
	ends := make([]int, len(samples))
	// One buffer sized up front for all names: growing it call by call
	// was the largest cost of Add.
	size := 0
	for i := range samples {
		for _, l := range samples[i].labels {
			size += len(l.Name) + len(l.Value) + 4
		}
	}
	buf := make([]byte, 0, size)
	var tmp [8]prompb.Label
	for i := range samples {
		// MarshalMetricNameRaw rewrites a "__name__" label in place, so it
		// gets a copy; the originals go to remote write unchanged.
		buf = storage.MarshalMetricNameRaw(buf, append(tmp[:0], samples[i].labels...))
		ends[i] = len(buf)
		rows[i].Timestamp = samples[i].timestamp
		rows[i].Value = samples[i].value
	}
	// Slice the names only now: buf may move while it grows.
	start := 0
	for i := range rows {
		rows[i].MetricNameRaw = buf[start:ends[i]:ends[i]]
		start = ends[i]
	}
	return rows, samples
}
