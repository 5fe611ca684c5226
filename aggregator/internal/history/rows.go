package history

import (
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"

	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
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

// maxHostnameLen is ingest's own limit on hostnames (docs/api.md). Hostnames are
// never cut shorter: two hosts sharing a long prefix must stay two hosts.
const maxHostnameLen = snapshot.MaxHostnameBytes

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

// buildSamples turns one stored snapshot into the samples history keeps
// (see hostNames.points), without the name cache. Tests use it; History
// builds its rows with buildRows.
func buildSamples(req *store.IngestRequest, topK int) []sample {
	sc := new(scratch)
	var c *nameCache
	c.host(req.Hostname).points(req, topK, sc)
	ts := sampleTime(req.CapturedAt)
	out := make([]sample, len(sc.points))
	for i, p := range sc.points {
		out[i] = sample{labels: p.name.labels, timestamp: ts, value: p.value}
	}
	return out
}

// timeResolutionMs is the resolution of sample timestamps. captured_at
// carries milliseconds of scheduling jitter (a ticker firing a few ms late,
// a slow walk); stored exactly, that jitter costs more bytes a sample than
// all the values (docs/performance.md, history bytes per sample). The
// snapshot store keeps the exact captured_at; a chart of samples 2 s or
// more apart loses nothing at 100 ms.
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
