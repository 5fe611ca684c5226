package history

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"

	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ from what the code builds now")

// TestBuildRowsGolden: every testdata/rows/*.in (a sequence of snapshots)
// goes through one History's buildRows, the cached path ingest uses, and
// the rows must be those in the matching .golden file: same series (label
// by label, in stored order), timestamp and value. The inputs hold
// synthetic hosts (a moving top-K, churn), hostile system_info and process
// fields, and PID reuse. go test -run TestBuildRowsGolden -update rewrites
// the .golden files; review their diff.
func TestBuildRowsGolden(t *testing.T) {
	ins, err := filepath.Glob(filepath.Join("testdata", "rows", "*.in"))
	if err != nil || len(ins) == 0 {
		t.Fatalf("no inputs under testdata/rows: %v", err)
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in")
		t.Run(name, func(t *testing.T) {
			topK, reqs := readRowsInput(t, in)
			// One History with remote write (samples built too), one
			// without: the rows must not depend on it.
			h := openTest(t, t.TempDir(), Options{TopK: topK})
			h.remote = &remoteWriter{}           // never started: only buildRows' use matters
			t.Cleanup(func() { h.remote = nil }) // runs before Close
			plain := openTest(t, t.TempDir(), Options{TopK: topK})
			var out bytes.Buffer
			for i, req := range reqs {
				rows, samples := h.buildRows(req)
				plainRows, none := plain.buildRows(req)
				if none != nil || fmt.Sprint(plainRows) != fmt.Sprint(rows) {
					t.Fatalf("snapshot %d: rows differ without remote write (samples %v)", i, none)
				}
				checkSamplesMatchRows(t, rows, samples)
				fmt.Fprintf(&out, "# snapshot %d %q\n", i, req.Hostname)
				for _, r := range rows {
					fmt.Fprintf(&out, "%d %s %s\n", r.Timestamp, strconv.FormatFloat(r.Value, 'g', -1, 64), formatRawName(t, r.MetricNameRaw))
				}
			}
			golden := filepath.Join("testdata", "rows", name+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				got, wantLines := strings.Split(out.String(), "\n"), strings.Split(string(want), "\n")
				for i := range min(len(got), len(wantLines)) {
					if got[i] != wantLines[i] {
						t.Fatalf("%s line %d:\n got  %s\n want %s", golden, i+1, got[i], wantLines[i])
					}
				}
				t.Fatalf("%s: %d lines, want %d", golden, len(got), len(wantLines))
			}
		})
	}
}

// checkSamplesMatchRows: what remote write forwards is what was stored.
func checkSamplesMatchRows(t *testing.T, rows []storage.MetricRow, samples []sample) {
	t.Helper()
	if len(samples) != len(rows) {
		t.Fatalf("%d samples for %d rows", len(samples), len(rows))
	}
	for i, s := range samples {
		raw := storage.MarshalMetricNameRaw(nil, append(s.labels[:0:0], s.labels...))
		if !bytes.Equal(raw, rows[i].MetricNameRaw) || s.timestamp != rows[i].Timestamp ||
			math.Float64bits(s.value) != math.Float64bits(rows[i].Value) {
			t.Fatalf("sample %d %v differs from row %q %d %v", i, s, rows[i].MetricNameRaw, rows[i].Timestamp, rows[i].Value)
		}
	}
}

// formatRawName spells a MetricNameRaw (uint16 big-endian length, bytes;
// key then value; the empty key is the metric name) as name{k="v",...},
// every pair in stored order and quoted so that any byte shows.
func formatRawName(t *testing.T, raw []byte) string {
	t.Helper()
	next := func() string {
		if len(raw) < 2 || len(raw) < 2+int(binary.BigEndian.Uint16(raw)) {
			t.Fatalf("bad raw metric name %q", raw)
		}
		n := int(binary.BigEndian.Uint16(raw))
		s := string(raw[2 : 2+n])
		raw = raw[2+n:]
		return s
	}
	var b strings.Builder
	first := true
	for len(raw) > 0 {
		k, v := next(), next()
		if k == "" {
			k = "__name__"
		}
		if !first {
			b.WriteByte(' ')
		}
		first = false
		fmt.Fprintf(&b, "%s=%q", k, v)
	}
	return b.String()
}

// readRowsInput reads a rows fixture: "top_k K", then per snapshot
// `snapshot "host" captured_at`, `sys "json"` and one
// `proc pid "name" "create_time" cpu_percent memory_mb` line a process
// (strings Go-quoted, so any byte can be written; floats as
// strconv.FormatFloat writes them, NaN and ±Inf included).
func readRowsInput(t *testing.T, path string) (int, []*store.IngestRequest) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	topK := -1
	var reqs []*store.IngestRequest
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		fail := func(err error) { t.Fatalf("%s:%d: %v: %s", path, n, err, line) }
		word, _, _ := strings.Cut(line, " ")
		var cur *store.IngestRequest
		if len(reqs) > 0 {
			cur = reqs[len(reqs)-1]
		}
		switch {
		case word == "" || word == "#":
		case word == "top_k":
			if _, err := fmt.Sscanf(line, "top_k %d", &topK); err != nil {
				fail(err)
			}
		case word == "snapshot":
			var host, at string
			if _, err := fmt.Sscanf(line, "snapshot %q %s", &host, &at); err != nil {
				fail(err)
			}
			ts, err := time.Parse(time.RFC3339Nano, at)
			if err != nil {
				fail(err)
			}
			reqs = append(reqs, &store.IngestRequest{Hostname: host, CapturedAt: ts, SystemInfo: []byte{}})
		case word == "sys" && cur != nil:
			var sys string
			if _, err := fmt.Sscanf(line, "sys %q", &sys); err != nil {
				fail(err)
			}
			cur.SystemInfo = []byte(sys)
		case word == "proc" && cur != nil:
			var p snapshot.Process
			if _, err := fmt.Sscanf(line, "proc %d %q %q %g %g", &p.PID, &p.Name, &p.CreateTime, &p.CPUPercent, &p.MemoryMB); err != nil {
				fail(err)
			}
			cur.Processes = append(cur.Processes, p)
		default:
			fail(fmt.Errorf("unknown line"))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if topK < 0 || len(reqs) == 0 {
		t.Fatalf("%s: no top_k or no snapshot", path)
	}
	for _, req := range reqs {
		withSystem(req)
	}
	return topK, reqs
}
