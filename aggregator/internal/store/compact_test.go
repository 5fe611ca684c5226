package store

import (
	"bytes"
	"compress/gzip"
	"testing"
)

// compactRun ingests n snapshots of a 300-process host whose processes
// change slowly and returns the database bytes per snapshot (after a
// checkpoint) and the mean size of the same snapshots as gzip JSON, the
// wire format the exporter sends.
func compactRun(tb testing.TB, n int) (dbPerSnap, gzipPerSnap float64) {
	tb.Helper()
	dir := tb.TempDir()
	s := openTest(tb, dir, Options{})
	h := newFakeHost(42, "web-1", 300)
	reqs := make([]*IngestRequest, n)
	var gz int64
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for i := range reqs {
		reqs[i] = h.next()
		buf.Reset()
		zw.Reset(&buf)
		_, _ = zw.Write(wireJSON(reqs[i]))
		_ = zw.Close()
		gz += int64(buf.Len())
	}
	ids := ingestAll(tb, s, reqs)
	// Spot-check that what made it small is still what was sent.
	for _, i := range []int{0, n / 2, n - 1} {
		got, err := s.Processes(tb.Context(), ids[i])
		if err != nil || len(got) != len(reqs[i].Processes) {
			tb.Fatalf("snapshot %d: %d processes, %v", ids[i], len(got), err)
		}
	}
	if err := s.Close(); err != nil { // checkpoints the WAL into the file
		tb.Fatal(err)
	}
	return float64(dbFileBytes(s.Path())) / float64(n), float64(gz) / float64(n)
}

// A 300-process snapshot costs at most 3 KB on disk over a long run.
func TestCompactLongRun(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 500
	}
	db, gz := compactRun(t, n)
	t.Logf("%d snapshots of 300 processes: %.0f bytes/snapshot on disk, gzip JSON %.0f bytes (%.1fx smaller)", n, db, gz, gz/db)
	if db > 3000 {
		t.Fatalf("%.0f bytes per snapshot, want <= 3000", db)
	}
}

// BenchmarkCompact reports bytes/snapshot of the database and of gzip JSON
// (the baseline) for the same run; b.N is ignored for the size (one run of
// 2,000 snapshots).
func BenchmarkCompact(b *testing.B) {
	for b.Loop() {
		db, gz := compactRun(b, 2000)
		b.ReportMetric(db, "bytes/snapshot")
		b.ReportMetric(gz, "gzip-bytes/snapshot")
		b.ReportMetric(gz/db, "ratio")
	}
}
