package main

import (
	"bytes"
	"context"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPingPong(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n    int
		want []int
	}{
		{1, []int{0, 0, 0}},
		{2, []int{0, 1, 0, 1, 0}},
		{4, []int{0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2}},
	} {
		var got []int
		for k := range tc.want {
			got = append(got, pingPong(k, tc.n))
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("n=%d: got %v, want %v", tc.n, got, tc.want)
		}
	}
}

func TestCSVRoundTrip(t *testing.T) {
	t.Parallel()
	in := []sample{
		{Elapsed: 0, RSSBytes: 1 << 20, HeapInuse: 4 << 20, Goroutines: 61, FDs: 16, CPUSeconds: 0.25},
		{Elapsed: 10 * time.Second, RSSBytes: 150 << 20, HeapInuse: 90 << 20, Goroutines: 261, FDs: 231,
			DBBytes: 12345678, HistoryBytes: 987654, Snapshots: 5000, Pruned: 17, Pushed: 5001, Failed: 2, CPUSeconds: 4.5},
	}
	var buf bytes.Buffer
	w, err := newCSVWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range in {
		if err := w.write(s); err != nil {
			t.Fatal(err)
		}
	}
	if first, _, _ := strings.Cut(buf.String(), "\n"); first != strings.Join(csvHeader, ",") {
		t.Errorf("header %q", first)
	}
	out, err := readCSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("read back %+v, wrote %+v", out, in)
	}
	if _, err := readCSV(strings.NewReader("a,b\n1,2\n")); err == nil {
		t.Error("a CSV with another header was read")
	}
}

func TestMetricValues(t *testing.T) {
	t.Parallel()
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 261
go_memstats_heap_inuse_bytes 9.4371840e+07
go_memstats_heap_inuse_bytes_other 1
procscope_aggregator_host_last_seen_timestamp_seconds{hostname="go_goroutines 5"} 1.7e9
procscope_aggregator_snapshots 5000 1733380000000
`
	got, err := metricValues(strings.NewReader(text), "go_goroutines", "go_memstats_heap_inuse_bytes", "procscope_aggregator_snapshots", "absent")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"go_goroutines": 261, "go_memstats_heap_inuse_bytes": 94371840, "procscope_aggregator_snapshots": 5000}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := metricValues(strings.NewReader("go_goroutines many\n"), "go_goroutines"); err == nil {
		t.Error("a value that is not a number was accepted")
	}
}

func TestParseVmRSS(t *testing.T) {
	t.Parallel()
	n, err := parseVmRSS([]byte("Name:\tx\nVmPeak:\t 9 kB\nVmRSS:\t  153600 kB\nThreads:\t9\n"))
	if err != nil || n != 153600*1024 {
		t.Errorf("got %d, %v", n, err)
	}
	if _, err := parseVmRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("no VmRSS line, no error")
	}
}

func TestDiskUsageSplitsHistory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(rel string, size int) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		// Random-ish bytes: a file system may not allocate blocks of zeros.
		b := bytes.Repeat([]byte("procscope soak "), size/15+1)[:size]
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("procscope.db", 1<<20)
	write("procscope.db-wal", 256<<10)
	write("history/data/small/part1/values.bin", 512<<10)
	write("historyish.txt", 8<<10) // not under history/
	db, hist, err := diskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	// du counts whole blocks and the directories themselves: at least
	// the bytes written, not much more.
	if db < (1<<20)+(256<<10)+(8<<10) || db > (1<<20)+(256<<10)+(8<<10)+(64<<10) {
		t.Errorf("db %d bytes", db)
	}
	if hist < 512<<10 || hist > (512<<10)+(64<<10) {
		t.Errorf("history %d bytes", hist)
	}
}

func TestSamplerTake(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("go_goroutines 42\ngo_memstats_heap_inuse_bytes 1048576\nprocscope_aggregator_snapshots 7\nprocscope_aggregator_rows_pruned_total 3\n"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "procscope.db"), bytes.Repeat([]byte("x"), 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	// This test process stands in for the aggregator: it has an RSS and
	// open fds of its own.
	s := &sampler{pid: os.Getpid(), url: srv.URL, storage: dir, client: srv.Client(),
		cpu: func(int) (time.Duration, error) { return 1500 * time.Millisecond, nil }}
	got, err := s.take(context.Background(), 20*time.Second, 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.RSSBytes < 1<<20 || got.FDs < 3 || got.DBBytes < 8192 || got.HistoryBytes != 0 {
		t.Errorf("process and disk figures: %+v", got)
	}
	want := got
	want.Elapsed, want.Pushed, want.Failed, want.CPUSeconds = 20*time.Second, 100, 1, 1.5
	want.Goroutines, want.HeapInuse, want.Snapshots, want.Pruned = 42, 1<<20, 7, 3
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// run makes minute-by-minute samples; f gives heap and goroutines at
// minute m.
func synthetic(minutes int, f func(m int) (heap, goroutines int64)) []sample {
	var out []sample
	for m := range minutes + 1 {
		for k := range 6 {
			heap, g := f(m)
			out = append(out, sample{Elapsed: time.Duration(m)*time.Minute + time.Duration(k)*10*time.Second,
				RSSBytes: 2 * heap, HeapInuse: heap + int64(k%2)*heap/20, Goroutines: g, FDs: 230,
				DBBytes: 100 << 20, Snapshots: 150000, Pushed: int64(m*60+k*10) * 500})
		}
	}
	return out
}

func TestSummarizeVerdict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		f      func(m int) (int64, int64)
		reason string // "" when flat
	}{
		{"flat after warm-up", func(m int) (int64, int64) {
			if m < 5 {
				return int64(m) * 20 << 20, 100 + int64(m)*30
			}
			return 100 << 20, 261
		}, ""},
		{"heap leak", func(m int) (int64, int64) { return int64(80+m) << 20, 261 }, "heap in use changed"},
		{"goroutine leak", func(m int) (int64, int64) { return 100 << 20, 261 + int64(m)*5 }, "goroutines changed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := summarize(synthetic(60, tc.f), 10*time.Minute, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if s.At != 10*time.Minute || s.End != 60*time.Minute+50*time.Second {
				t.Errorf("windows at %s and ending %s", s.At, s.End)
			}
			if r := s.RateAfterWarmup; r < 499 || r > 501 {
				t.Errorf("rate %.1f/s, want 500", r)
			}
			if tc.name == "heap leak" {
				// 1 MiB a minute (and RSS twice the heap): 60 and 120 an hour
				// (the heap a little more: its 5 % jitter grows with it).
				if h, r := s.HeapTrend/(1<<20), s.RSSTrend/(1<<20); h < 59 || h > 63 || r < 118 || r > 122 {
					t.Errorf("trend: heap %.1f MiB/h, RSS %.1f MiB/h; want 60 and 120", h, r)
				}
			}
			why := strings.Join(s.flat(), "; ")
			if (tc.reason == "") != (why == "") || !strings.Contains(why, tc.reason) {
				t.Errorf("verdict %q, want one naming %q", why, tc.reason)
			}
			var out bytes.Buffer
			s.print(&out)
			if !strings.Contains(out.String(), "heap inuse") {
				t.Errorf("summary:\n%s", out.String())
			}
		})
	}
	if _, err := summarize(synthetic(5, func(int) (int64, int64) { return 1, 1 }), 10*time.Minute, time.Minute); err == nil {
		t.Error("a run shorter than its warm-up got a verdict")
	}
}

func TestWriteChart(t *testing.T) {
	t.Parallel()
	samples := synthetic(20, func(m int) (int64, int64) { return int64(80+m) << 20, 261 })
	var buf bytes.Buffer
	if err := writeChart(&buf, samples, "test run", 600, 700); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 600 || b.Dy() != 700 {
		t.Errorf("chart is %dx%d, want 600x700", b.Dx(), b.Dy())
	}
	// Something is drawn in the curves' colours, not just a blank page.
	var blues, oranges int
	for y := range 700 {
		for x := range 600 {
			r, g, b, _ := img.At(x, y).RGBA()
			switch [3]uint32{r >> 8, g >> 8, b >> 8} {
			case [3]uint32{31, 119, 180}:
				blues++
			case [3]uint32{255, 127, 14}:
				oranges++
			}
		}
	}
	if blues < 100 || oranges < 100 {
		t.Errorf("%d blue and %d orange pixels: curves missing", blues, oranges)
	}
	if err := writeChart(&buf, samples[:1], "", 600, 700); err == nil {
		t.Error("one sample drew a chart")
	}
}
