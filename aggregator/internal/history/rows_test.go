package history

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"

	"github.com/procscope/procscope/aggregator/internal/ingest"
	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// testRequest builds a stored-snapshot request with a full system_info.
func testRequest(host string, at time.Time, cpu float64, procs []snapshot.Process) *store.IngestRequest {
	sys := snapshot.SystemInfo{
		CPU:          snapshot.CPUInfo{UsagePercent: cpu},
		Memory:       snapshot.MemoryInfo{TotalBytes: 8 << 30, UsedBytes: 3 << 30, AvailableBytes: 5 << 30},
		Swap:         snapshot.SwapInfo{TotalBytes: 1 << 30, UsedBytes: 1 << 20},
		LoadAverage:  snapshot.LoadAverage{Load1: 0.5, Load5: 0.25, Load15: 0.125},
		ProcessCount: 321,
		Filesystems: []snapshot.Filesystem{
			{Mountpoint: "/", UsedBytes: 10 << 30},
			{Mountpoint: "/home", UsedBytes: 20 << 30},
		},
	}
	raw, err := json.Marshal(sys)
	if err != nil {
		panic(err)
	}
	return withSystem(&store.IngestRequest{Hostname: host, CapturedAt: at, SystemInfo: raw, Processes: procs, ReceivedAt: at})
}

// withSystem sets req.System as the ingest decoder reads req.SystemInfo
// in a body: history takes the decoder's numbers and reads no JSON itself.
// A system_info the decoder refuses (ingest would answer 400) gives none.
func withSystem(req *store.IngestRequest) *store.IngestRequest {
	body := append([]byte(`{"hostname":"h","captured_at":"2026-11-25T17:00:00Z","system_info":`), req.SystemInfo...)
	body = append(body, `,"processes":[]}`...)
	if d, err := ingest.Decode(body, ingest.DecodeOptions{}); err == nil {
		req.System = &d.System
	}
	return req
}

func labelMap(ls []prompb.Label) map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

func TestBuildSamplesHostSeries(t *testing.T) {
	at := time.Date(2026, 11, 25, 17, 0, 0, 123e6, time.UTC)
	req := testRequest("web-1", at, 42.5, nil)
	got := map[string]float64{}
	for _, s := range buildSamples(req, 10) {
		l := labelMap(s.labels)
		if l[LabelHostname] != "web-1" {
			t.Errorf("sample %v: hostname label %q", l, l[LabelHostname])
		}
		// captured_at rounded to 100 ms.
		if want := at.Add(-23 * time.Millisecond).UnixMilli(); s.timestamp != want {
			t.Errorf("sample %v: timestamp %d, want captured_at rounded to %d", l, s.timestamp, want)
		}
		key := l[labelName]
		if mp := l[LabelMountpoint]; mp != "" {
			key += " " + mp
		}
		got[key] = s.value
	}
	want := map[string]float64{
		MetricCPU:                       42.5,
		MetricMemoryUsed:                3 << 30,
		MetricMemoryAvail:               5 << 30,
		MetricSwapUsed:                  1 << 20,
		MetricLoad1:                     0.5,
		MetricLoad5:                     0.25,
		MetricLoad15:                    0.13, // 0.125 stored to 0.01
		MetricProcesses:                 321,
		MetricFilesystemUsed + " /":     10 << 30,
		MetricFilesystemUsed + " /home": 20 << 30,
	}
	if len(got) != len(want) {
		t.Errorf("got %d series %v, want %d", len(got), got, len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestBuildSamplesPartialSystemInfo(t *testing.T) {
	f := func(sys string, wantNames ...string) {
		t.Helper()
		req := withSystem(&store.IngestRequest{Hostname: "h", CapturedAt: time.Unix(1e9, 0), SystemInfo: json.RawMessage(sys),
			Processes: []snapshot.Process{{PID: 1}, {PID: 2}}})
		var names []string
		for _, s := range buildSamples(req, 5) {
			names = append(names, labelMap(s.labels)[labelName])
		}
		if strings.Join(names, ",") != strings.Join(wantNames, ",") {
			t.Errorf("system_info %s: series %v, want %v", sys, names, wantNames)
		}
	}
	// Absent fields write no series (no fake zeros); the process count
	// falls back to the length of the table.
	f(`{}`, MetricProcesses)
	f(`[1,2]`, MetricProcesses)
	f(`"garbage"`, MetricProcesses)
	f(`{"cpu":{"usage_percent":7}}`, MetricCPU, MetricProcesses)
	f(`{"swap":{"used_bytes":0},"process_count":9}`, MetricSwapUsed, MetricProcesses)
	f(`{"memory":{"used_bytes":"12"}}`, MetricProcesses) // wrong type: nothing from that object
	f(`{"filesystems":[{"mountpoint":"","used_bytes":1},{"mountpoint":"/x"}]}`, MetricProcesses)
}

func TestBuildSamplesTopK(t *testing.T) {
	procs := []snapshot.Process{
		{PID: 10, Name: "idle", CPUPercent: 0, MemoryMB: 0},
		{PID: 11, Name: "cpu-hog", CPUPercent: 90, MemoryMB: 1},
		{PID: 12, Name: "mem-hog", CPUPercent: 0.1, MemoryMB: 4000},
		{PID: 13, Name: "mid", CPUPercent: 5, MemoryMB: 100},
		{PID: 14, Name: "small", CPUPercent: 1, MemoryMB: 2, CreateTime: "2026-11-25T10:00:00Z"},
	}
	req := testRequest("h", time.Unix(1e9, 0), 1, procs)
	pids := func(k int) map[string]bool {
		m := map[string]bool{}
		for _, s := range buildSamples(req, k) {
			l := labelMap(s.labels)
			if l[labelName] == MetricProcessCPU || l[labelName] == MetricProcessRSS {
				m[l[LabelPID]+"/"+l[LabelProcName]] = true
			}
		}
		return m
	}
	f := func(k int, want ...string) {
		t.Helper()
		got := pids(k)
		if len(got) != len(want) {
			t.Errorf("k=%d: got %v, want %v", k, got, want)
		}
		for _, w := range want {
			if !got[w] {
				t.Errorf("k=%d: missing %s in %v", k, w, got)
			}
		}
	}
	f(0)
	f(1, "11/cpu-hog", "12/mem-hog")
	f(2, "11/cpu-hog", "12/mem-hog", "13/mid")
	// The idle process never qualifies, however large K is.
	f(100, "11/cpu-hog", "12/mem-hog", "13/mid", "14/small")

	// create_time becomes a label so a reused PID is another series, and
	// RSS is in bytes.
	for _, s := range buildSamples(req, 100) {
		l := labelMap(s.labels)
		if l[LabelPID] == "14" {
			if l[LabelCreateTime] != "2026-11-25T10:00:00Z" {
				t.Errorf("pid 14 create_time label %q", l[LabelCreateTime])
			}
			if l[labelName] == MetricProcessRSS && s.value != 2*1024*1024 {
				t.Errorf("pid 14 rss %v, want 2 MiB in bytes", s.value)
			}
		}
		if l[LabelPID] == "11" {
			if _, ok := l[LabelCreateTime]; ok {
				t.Errorf("pid 11 has an empty create_time label")
			}
		}
		for i := 1; i < len(s.labels); i++ {
			if s.labels[i-1].Name >= s.labels[i].Name {
				t.Errorf("labels not sorted: %v", s.labels)
			}
		}
	}
}

func TestBuildSamplesHostileText(t *testing.T) {
	long := strings.Repeat("é", 500) // 1000 bytes
	procs := []snapshot.Process{{PID: 1, Name: long + "\xff\x00</script>", CPUPercent: 1, MemoryMB: math.NaN()}}
	req := testRequest(strings.Repeat("h", 253), time.Unix(1e9, 0), 0, procs)
	// 1e400 overflows float64: that one value is skipped, not the rest.
	req.SystemInfo = json.RawMessage(`{"cpu":{"usage_percent":1e400},"load_average":{"load1":2}}`)
	withSystem(req)
	seenLoad := false
	for _, s := range buildSamples(req, 3) {
		for _, l := range s.labels {
			limit := maxLabelValueLen
			if l.Name == LabelHostname {
				// Hostnames are kept whole (ingest allows 253 bytes).
				limit = maxHostnameLen
				if l.Value != req.Hostname {
					t.Errorf("hostname label %q changed", l.Value)
				}
			}
			if len(l.Value) > limit || !utf8.ValidString(l.Value) {
				t.Errorf("label %s: %d bytes, valid UTF-8 %v", l.Name, len(l.Value), utf8.ValidString(l.Value))
			}
		}
		if !finite(s.value) {
			t.Errorf("non-finite value written for %v", s.labels)
		}
		switch labelMap(s.labels)[labelName] {
		case MetricCPU:
			t.Errorf("an out-of-range CPU value was written")
		case MetricLoad1:
			seenLoad = s.value == 2
		}
	}
	if !seenLoad {
		t.Errorf("load1 was lost because another field was out of range")
	}
}

func TestCapLabel(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := capLabel(in); got != want {
			t.Errorf("capLabel(%q) = %q, want %q", in, got, want)
		}
	}
	f("", "")
	f("nginx", "nginx")
	f("a\xffb", "a\uFFFDb")
	f(strings.Repeat("x", 200), strings.Repeat("x", maxLabelValueLen))
	// A multi-byte rune straddling the cap is dropped whole.
	f(strings.Repeat("x", maxLabelValueLen-1)+"é", strings.Repeat("x", maxLabelValueLen-1))
}

func TestSampleTime(t *testing.T) {
	f := func(ms, want int64) {
		t.Helper()
		if got := sampleTime(time.UnixMilli(ms)); got != want {
			t.Errorf("sampleTime(%d ms) = %d, want %d", ms, got, want)
		}
	}
	f(1764090000000, 1764090000000)
	f(1764090000049, 1764090000000)
	f(1764090000050, 1764090000100)
	f(1764090001999, 1764090002000)
	f(-149, -100)
}

func TestQuantum(t *testing.T) {
	f := func(q quantum, in, want float64) {
		t.Helper()
		if got := q.apply(in); got != want {
			t.Errorf("%+v.apply(%v) = %v, want %v", q, in, got, want)
		}
	}
	f(perTenth, 12.345678, 12.3)
	f(perTenth, 0.05, 0.1)
	f(perTenth, 250.0, 250)
	f(perHundredth, 1.005001, 1.01)
	f(perKiB, 1000, 1024)
	f(perKiB, 3<<30+100, 3<<30)
	f(perOne, 311.6, 312)
	f(perTenth, math.MaxFloat64, math.MaxFloat64) // overflow keeps the value
}

func TestDownsample(t *testing.T) {
	pts := []Point{{1000, 1}, {1500, 3}, {2000, 10}, {4100, 4}, {4200, 8}}
	f := func(step int64, agg Aggregation, want []Point) {
		t.Helper()
		got := Downsample(pts, step, agg)
		if len(got) != len(want) {
			t.Fatalf("step %d: got %v, want %v", step, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("step %d: got %v, want %v", step, got, want)
				break
			}
		}
	}
	f(0, AggAvg, pts)
	f(1000, AggAvg, []Point{{1000, 2}, {2000, 10}, {4000, 6}})
	f(1000, AggMax, []Point{{1000, 3}, {2000, 10}, {4000, 8}})
	f(10000, AggAvg, []Point{{0, 26.0 / 5}})
}
