package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sample is one row of the soak's CSV: the aggregator's figures at one
// moment of the run.
type sample struct {
	Elapsed      time.Duration // since the load started
	RSSBytes     int64         // VmRSS of the aggregator process
	HeapInuse    int64         // go_memstats_heap_inuse_bytes from its /metrics
	Goroutines   int64         // go_goroutines
	FDs          int64         // entries of /proc/PID/fd
	DBBytes      int64         // disk use of the storage directory minus history/
	HistoryBytes int64         // disk use of storage/history
	Snapshots    int64         // procscope_aggregator_snapshots (stored now)
	Pruned       int64         // procscope_aggregator_rows_pruned_total
	Pushed       int64         // snapshots acknowledged so far
	Failed       int64         // pushes refused or failed so far
	CPUSeconds   float64       // the aggregator's user+system CPU so far
}

// csvHeader names the columns; sizes are bytes, so the file stays exact
// and the chart chooses its own units.
var csvHeader = []string{"elapsed_s", "rss_bytes", "heap_inuse_bytes", "goroutines", "fds",
	"db_bytes", "history_bytes", "snapshots", "rows_pruned", "pushed", "failed", "cpu_seconds"}

func (s sample) record() []string {
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	return []string{strconv.FormatFloat(s.Elapsed.Seconds(), 'f', 0, 64), i(s.RSSBytes), i(s.HeapInuse), i(s.Goroutines), i(s.FDs),
		i(s.DBBytes), i(s.HistoryBytes), i(s.Snapshots), i(s.Pruned), i(s.Pushed), i(s.Failed),
		strconv.FormatFloat(s.CPUSeconds, 'f', 2, 64)}
}

// csvWriter writes samples as they come and flushes each, so that a run
// stopped early (Ctrl-C, a crash of the machine) keeps what it measured.
type csvWriter struct {
	w *csv.Writer
}

func newCSVWriter(w io.Writer) (*csvWriter, error) {
	c := &csvWriter{w: csv.NewWriter(w)}
	if err := c.w.Write(csvHeader); err != nil {
		return nil, err
	}
	c.w.Flush()
	return c, c.w.Error()
}

func (c *csvWriter) write(s sample) error {
	if err := c.w.Write(s.record()); err != nil {
		return err
	}
	c.w.Flush()
	return c.w.Error()
}

// readCSV reads back what csvWriter wrote (for -replot and the tests).
func readCSV(r io.Reader) ([]sample, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != strings.Join(csvHeader, ",") {
		return nil, fmt.Errorf("not a soak CSV: the first line must be %s", strings.Join(csvHeader, ","))
	}
	out := make([]sample, 0, len(rows)-1)
	for n, row := range rows[1:] {
		var v [12]float64
		for i, f := range row {
			if v[i], err = strconv.ParseFloat(f, 64); err != nil {
				return nil, fmt.Errorf("line %d, column %s: %w", n+2, csvHeader[i], err)
			}
		}
		out = append(out, sample{
			Elapsed: time.Duration(v[0] * float64(time.Second)), RSSBytes: int64(v[1]), HeapInuse: int64(v[2]),
			Goroutines: int64(v[3]), FDs: int64(v[4]), DBBytes: int64(v[5]), HistoryBytes: int64(v[6]),
			Snapshots: int64(v[7]), Pruned: int64(v[8]), Pushed: int64(v[9]), Failed: int64(v[10]), CPUSeconds: v[11],
		})
	}
	return out, nil
}

// metricValues reads the named unlabelled series out of a Prometheus text
// exposition; a name that is absent stays out of the map.
func metricValues(r io.Reader, names ...string) (map[string]float64, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		name, rest, ok := bytes.Cut(line, []byte{' '})
		if !ok || !want[string(name)] {
			continue
		}
		// value [timestamp]
		val, _, _ := bytes.Cut(bytes.TrimSpace(rest), []byte{' '})
		f, err := strconv.ParseFloat(string(val), 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		out[string(name)] = f
	}
	return out, sc.Err()
}

// procRSS is the resident set of pid in bytes (VmRSS of /proc/PID/status).
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVmRSS(b)
}

func parseVmRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("unexpected VmRSS line %q", bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		return kb * 1024, err
	}
	return 0, errors.New("no VmRSS line in /proc/PID/status")
}

// openFDs counts the open file descriptors of pid.
func openFDs(pid int) (int64, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return int64(len(ents)), err
}

// diskUsage is what du reports for the storage directory, split into the
// history store (the "history" subdirectory) and the rest (the SQLite
// database and its WAL): allocated blocks, not apparent sizes, so sparse
// files and preallocation count as on disk. Files vanishing during the
// walk (VictoriaMetrics merges parts, SQLite drops its WAL) are skipped.
func diskUsage(dir string) (db, history int64, err error) {
	hist := filepath.Join(dir, "history")
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		n := info.Size()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			n = st.Blocks * 512
		}
		if path == hist || strings.HasPrefix(path, hist+string(filepath.Separator)) {
			history += n
		} else {
			db += n
		}
		return nil
	})
	return db, history, err
}

// sampler takes the figures of one running aggregator.
type sampler struct {
	pid     int
	url     string // its base URL
	storage string
	client  *http.Client
	cpu     func(pid int) (time.Duration, error)
}

func (s *sampler) take(ctx context.Context, elapsed time.Duration, pushed, failed int64) (sample, error) {
	out := sample{Elapsed: elapsed, Pushed: pushed, Failed: failed}
	var err error
	if out.RSSBytes, err = procRSS(s.pid); err != nil {
		return out, err
	}
	if out.FDs, err = openFDs(s.pid); err != nil {
		return out, err
	}
	if out.DBBytes, out.HistoryBytes, err = diskUsage(s.storage); err != nil {
		return out, err
	}
	if s.cpu != nil {
		d, err := s.cpu(s.pid)
		if err != nil {
			return out, err
		}
		out.CPUSeconds = d.Seconds()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/metrics", nil)
	if err != nil {
		return out, err
	}
	res, err := s.client.Do(req)
	if err != nil {
		return out, err
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		return out, fmt.Errorf("GET /metrics: %s", res.Status)
	}
	const heap, gor, snaps, pruned = "go_memstats_heap_inuse_bytes", "go_goroutines", "procscope_aggregator_snapshots", "procscope_aggregator_rows_pruned_total"
	m, err := metricValues(res.Body, heap, gor, snaps, pruned)
	if err != nil {
		return out, err
	}
	for _, n := range []string{heap, gor} {
		if _, ok := m[n]; !ok {
			return out, fmt.Errorf("GET /metrics: no %s", n)
		}
	}
	out.HeapInuse, out.Goroutines = int64(m[heap]), int64(m[gor])
	out.Snapshots, out.Pruned = int64(m[snaps]), int64(m[pruned])
	return out, nil
}
