package store

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// withAttribution gives a fake host's snapshot what a current exporter
// adds: a unit on 85% of processes (one per name), a container on a
// tenth, a pod on half of those, I/O rates in whole bytes per second on
// the busy processes (the ones with CPU%), 0 on the idle ones, absent on
// a ninth (other users' processes, when the exporter is not root). Rates
// have three significant digits, as the exporter sends them.
func withAttribution(procs []snapshot.Process, rng *rand.Rand) {
	zero := 0.0
	for i := range procs {
		p := &procs[i]
		x := p.Ext()
		if p.PID%7 != 0 {
			x.Unit = "system.slice/" + p.Name + ".service"
		}
		if p.PID%10 == 3 {
			x.ContainerID = fmt.Sprintf("%064x", p.PID*2654435761)
			if p.PID%20 == 3 {
				x.PodUID = fmt.Sprintf("8a9b0c1d-2e3f-4a5b-8c7d-%012x", p.PID)
			}
		}
		if p.PID%9 != 0 {
			x.ReadBytesPerSec, x.WriteBytesPerSec = &zero, &zero
			if p.CPUPercent > 0 && rng.IntN(3) == 0 {
				r, w := sig3(float64(rng.IntN(4<<20))), sig3(float64(rng.IntN(1<<20)))
				x.ReadBytesPerSec, x.WriteBytesPerSec = &r, &w
			}
		}
		p.SetExt(x)
	}
}

// sig3 is the exporter's roundRate (exporter/internal/collector).
func sig3(v float64) float64 {
	if v < 1000 {
		return math.Round(v)
	}
	p := math.Pow(10, math.Floor(math.Log10(v))-2)
	return math.Round(v/p) * p
}

// compactExtRun stores n snapshots of compactRun's host, with or without
// attribution and I/O, and returns the bytes per snapshot of the database
// file (after a checkpoint; it varies by a few percent from run to run
// with how the writer's batches fell) and of the stored blobs (exact).
func compactExtRun(tb testing.TB, n int, ext bool) (file, blobs float64) {
	tb.Helper()
	s := openTest(tb, tb.TempDir(), Options{})
	h := newFakeHost(42, "web-1", 300)
	rng := rand.New(rand.NewPCG(1, 2))
	reqs := make([]*IngestRequest, n)
	for i := range reqs {
		reqs[i] = h.next()
		if ext {
			// A copy: the fake host keeps its own rows for the next step.
			reqs[i].Processes = append([]snapshot.Process(nil), reqs[i].Processes...)
			withAttribution(reqs[i].Processes, rng)
		}
	}
	ids := ingestAll(tb, s, reqs)
	got, err := s.Processes(tb.Context(), ids[n-1])
	if err != nil || !equalProcs(got, reqs[n-1].Processes) {
		tb.Fatalf("last snapshot read back wrong: %v", err)
	}
	var blobBytes int64
	if err := s.rdb.QueryRow("SELECT sum(length(sys) + length(procs)) FROM snapshots").Scan(&blobBytes); err != nil {
		tb.Fatal(err)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return float64(dbFileBytes(s.Path())) / float64(n), float64(blobBytes) / float64(n)
}

// BenchmarkCompactAttribution is BenchmarkCompact's host with and without
// attribution and I/O in the same run: issue 15 allows the fields to grow
// a snapshot on disk by at most 15%.
//
//	go test -run '^$' -bench BenchmarkCompactAttribution -benchtime 1x ./aggregator/internal/store
func BenchmarkCompactAttribution(b *testing.B) {
	for b.Loop() {
		without, blobsWithout := compactExtRun(b, 2000, false)
		with, blobsWith := compactExtRun(b, 2000, true)
		b.ReportMetric(without, "file-bytes/snapshot-without")
		b.ReportMetric(with, "file-bytes/snapshot-with")
		b.ReportMetric(blobsWithout, "blob-bytes/snapshot-without")
		b.ReportMetric(blobsWith, "blob-bytes/snapshot-with")
		b.ReportMetric((blobsWith/blobsWithout-1)*100, "blob-growth-%")
	}
}

// TestCompactAttributionGrowth keeps the growth of the stored blobs (what
// the new fields add; the file's pages follow them) within the budget on
// a shorter run.
func TestCompactAttributionGrowth(t *testing.T) {
	_, without := compactExtRun(t, 500, false)
	_, with := compactExtRun(t, 500, true)
	t.Logf("blob bytes/snapshot: %.0f without, %.0f with attribution and I/O (+%.1f%%)", without, with, (with/without-1)*100)
	if with > without*1.15 {
		t.Fatalf("%.0f blob bytes/snapshot with the new fields, %.0f without: more than 15%% growth", with, without)
	}
}
