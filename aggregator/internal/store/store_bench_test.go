package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/internal/testutil"
)

// BenchmarkProcesses5000 reads one 5,000-process snapshot (a delta) with
// Processes, end to end through SQLite:
//
//	keyframe-cached  the usual case (the UI reads recent snapshots, whose
//	                 keyframe was read before)
//	cold             no cache: both blobs decompressed and decoded
//	gzip-json        baseline: decoding the same list from gzip JSON, what
//	                 storing the ingest body as it came would cost
func BenchmarkProcesses5000(b *testing.B) {
	ctx := context.Background()
	h := newFakeHost(7, "big", 5000)
	reqs := make([]*IngestRequest, 6)
	for i := range reqs {
		reqs[i] = h.next()
	}
	last := reqs[len(reqs)-1]
	run := func(b *testing.B, cacheRows int) {
		s := openTest(b, b.TempDir(), Options{CacheRows: cacheRows})
		ids := ingestAll(b, s, reqs[:1])
		for _, r := range reqs[1:] { // in order, so that the last is a delta
			ids = append(ids, mustIngestTB(b, s, r))
		}
		var base *int64
		_ = s.rdb.QueryRow("SELECT base_id FROM snapshots WHERE id = ?", ids[len(ids)-1]).Scan(&base)
		if base == nil {
			b.Fatal("the benchmarked snapshot is not a delta")
		}
		b.ResetTimer()
		for b.Loop() {
			procs, err := s.Processes(ctx, ids[len(ids)-1])
			if err != nil || len(procs) != len(last.Processes) {
				b.Fatalf("%d processes, %v", len(procs), err)
			}
		}
	}
	b.Run("keyframe-cached", func(b *testing.B) { run(b, 0) })
	b.Run("cold", func(b *testing.B) { run(b, 1) })
	b.Run("gzip-json", func(b *testing.B) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(wireJSON(last))
		_ = zw.Close()
		blob := buf.Bytes()
		for b.Loop() {
			zr, err := gzip.NewReader(bytes.NewReader(blob))
			if err != nil {
				b.Fatal(err)
			}
			raw, err := io.ReadAll(zr)
			if err != nil {
				b.Fatal(err)
			}
			var snap snapshot.Snapshot
			if err := json.Unmarshal(raw, &snap); err != nil || len(snap.Processes) != len(last.Processes) {
				b.Fatal(err)
			}
		}
	})
}

func mustIngestTB(tb testing.TB, s Store, r *IngestRequest) int64 {
	tb.Helper()
	res, err := s.Ingest(context.Background(), r)
	if err != nil {
		tb.Fatal(err)
	}
	return res.SnapshotID
}

// BenchmarkIngestParallel stores 300-process snapshots from 200 hosts with
// 200 concurrent callers and reports snapshots/s and the p99 latency of
// Ingest:
//
//	group-commit   the store as configured (batches of up to 256)
//	one-per-commit baseline: MaxBatch 1, one transaction and fsync each
func BenchmarkIngestParallel(b *testing.B) {
	const hosts, variants = 200, 8
	pool := make([][]*IngestRequest, hosts)
	for i := range pool {
		h := newFakeHost(uint64(i), fmt.Sprintf("host-%03d", i), 300)
		for range variants {
			pool[i] = append(pool[i], h.next())
		}
	}
	run := func(b *testing.B, maxBatch int) {
		s := openTest(b, b.TempDir(), Options{MaxBatch: maxBatch})
		base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
		b.SetParallelism((hosts + 1) / 2) // GOMAXPROCS(2) * 100 callers
		b.ResetTimer()
		cpu0 := testutil.SelfCPU()
		start := time.Now()
		lat := testutil.ParallelLatencies(b, func(n int64) error {
			host := int(n % hosts)
			r := *pool[host][int(n/hosts)%variants]
			// Unique per host: n/hosts counts this host's snapshots.
			r.CapturedAt = base.Add(time.Duration(n/hosts) * time.Second)
			_, err := s.Ingest(context.Background(), &r)
			return err
		})
		el := time.Since(start)
		cpu := testutil.SelfCPU() - cpu0
		b.StopTimer()
		if len(lat) > 0 {
			b.ReportMetric(float64(len(lat))/el.Seconds(), "snapshots/s")
			// CPU time of the whole process (callers, writer, SQLite) per
			// snapshot: on a shared machine, a steadier figure than
			// snapshots/s; 1e6/(this) is the rate one free core sustains.
			b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-µs/snapshot")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		}
	}
	b.Run("group-commit", func(b *testing.B) { run(b, 0) })
	b.Run("one-per-commit", func(b *testing.B) { run(b, 1) })

	// rate-2000: open loop, the target load. b.N snapshots are sent on a
	// fixed schedule of 2,000/s spread over the 200 hosts (10/s each), and
	// latency counts from the scheduled time, so a stalled store cannot
	// hide its queue by slowing the senders down.
	rate2000 := func(b *testing.B, opts Options) {
		const rate = 2000
		s := openTest(b, b.TempDir(), opts)
		base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
		lat := make([]time.Duration, b.N)
		b.ResetTimer()
		cpu0 := testutil.SelfCPU()
		start := time.Now().Add(20 * time.Millisecond)
		var wg sync.WaitGroup
		for h := range hosts {
			wg.Go(func() {
				for k := h; k < b.N; k += hosts {
					due := start.Add(time.Duration(k) * time.Second / rate)
					time.Sleep(time.Until(due))
					r := *pool[h][(k/hosts)%variants]
					r.CapturedAt = base.Add(time.Duration(k/hosts) * time.Second)
					if _, err := s.Ingest(context.Background(), &r); err != nil {
						b.Error(err)
						return
					}
					lat[k] = time.Since(due)
				}
			})
		}
		wg.Wait()
		el := time.Since(start)
		cpu := testutil.SelfCPU() - cpu0
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(b.N)/el.Seconds(), "snapshots/s")
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/snapshot")
		b.ReportMetric(float64(lat[b.N/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[b.N*99/100].Microseconds())/1000, "p99-ms")
	}
	b.Run("rate-2000", func(b *testing.B) { rate2000(b, Options{}) })
}

// BenchmarkKeyframe encodes a 300-process snapshot as a keyframe, whole
// (blobs and in-memory base, what a host's first push waits for) and in
// two of its parts, each against the alternative it was chosen over, in
// the same run:
//
//	seal=s2 / seal=zstd    compressing the encoded list (zstd at
//	                       SpeedFastest)
//	time=fixed / time=parse+format   create_time to a number, as the API
//	                       hands them over ("…:05.123Z")
//
//	go test -run '^$' -bench Keyframe -count 3 ./aggregator/internal/store
func BenchmarkKeyframe(b *testing.B) {
	req := newFakeHost(3, "web-1", 300).next()
	for i := range req.Processes {
		p := &req.Processes[i]
		// The API's form: milliseconds, UTC.
		p.CreateTime = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC).Add(-time.Duration(i*7919+1) * time.Millisecond * 997).Format("2006-01-02T15:04:05.000Z")
	}
	b.Run("whole", func(b *testing.B) {
		for b.Loop() {
			procs, sys := encodeFullPair(req)
			_ = newKeyframe(req, len(procs)+len(sys))
		}
	})
	raw := encodeFull(req.Processes)
	b.Run("seal=s2", func(b *testing.B) {
		for b.Loop() {
			_ = sealBlob(blobFull, raw)
		}
	})
	b.Run("seal=zstd", func(b *testing.B) {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(1<<20), zstd.WithZeroFrames(true))
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = enc.Close() }()
		var out []byte
		for b.Loop() {
			out = enc.EncodeAll(raw, out[:0])
		}
	})
	b.Run("time=fixed", func(b *testing.B) {
		for b.Loop() {
			for i := range req.Processes {
				_, _ = canonicalTime(req.Processes[i].CreateTime)
			}
		}
	})
	b.Run("time=parse+format", func(b *testing.B) {
		for b.Loop() {
			for i := range req.Processes {
				_, _ = slowCanonicalTime(req.Processes[i].CreateTime)
			}
		}
	})
}
