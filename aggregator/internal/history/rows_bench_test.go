package history

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"

	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/internal/testutil"
)

// ingestWorkload is the loadgen's shape: 200 hosts, 300 processes each
// (30 busy ones that wander, 270 idle with a few MiB resident), snapshots
// 2 s apart per host.
type ingestWorkload struct {
	reqs  [][]*store.IngestRequest // [step][host]
	start time.Time
	i     int
}

func newIngestWorkload(hosts, steps int) *ingestWorkload {
	w := &ingestWorkload{start: time.Now().Add(-24 * time.Hour)}
	synth := make([]*synthHost, hosts)
	for i := range synth {
		synth[i] = newSynthHost(i, 17)
	}
	for step := range steps {
		row := make([]*store.IngestRequest, hosts)
		for j, s := range synth {
			req := s.next(step, w.start)
			for k := len(req.Processes); k < 300; k++ {
				// Idle but resident, like most processes of a real host:
				// every one of them is a candidate for the memory ranking.
				req.Processes = append(req.Processes, snapshot.Process{PID: int64(50000 + k), PPID: 1,
					Name: fmt.Sprint("worker-", k), MemoryMB: float64(k%13+1) / 2})
			}
			row[j] = req
		}
		w.reqs = append(w.reqs, row)
	}
	return w
}

// next returns the next snapshot, round robin over the hosts; the stored
// steps repeat with later capture times, so series keep growing forward.
func (w *ingestWorkload) next() *store.IngestRequest {
	hosts, steps := len(w.reqs[0]), len(w.reqs)
	round := w.i / hosts
	req := w.reqs[round%steps][w.i%hosts]
	req.CapturedAt = w.start.Add(time.Duration(round)*2*time.Second + time.Duration(w.i%hosts)*time.Millisecond)
	w.i++
	return req
}

// ingestSide is history's ingest: rows built as Add builds them, written
// in batches as the writer loop writes them.
type ingestSide struct {
	h                     *History
	w                     *ingestWorkload
	batch                 []storage.MetricRow
	reqs                  []*store.IngestRequest
	buildCPU, addRowsCPU  time.Duration
	allocBytes, allocObjs uint64
	snapshots             int
}

// touched keeps the warming reads from being optimized away.
var touched float64

var allocSamples = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/allocs:objects"}}

func readAllocs() (bytes, objs uint64) {
	metrics.Read(allocSamples)
	return allocSamples[0].Value.Uint64(), allocSamples[1].Value.Uint64()
}

// run ingests n snapshots and adds the calling thread's CPU time to the
// side's totals (the caller locked its goroutine to the thread).
func (s *ingestSide) run(n int) {
	// In the server a snapshot reaches history right after its JSON was
	// decoded, its process table still in the CPU's cache; the workload's
	// tables (4,000 of 300 processes) would otherwise come from memory,
	// which is not what is being measured. Touch them first.
	reqs := s.reqs[:0]
	for range n {
		req := s.w.next()
		for i := range req.Processes {
			p := &req.Processes[i]
			touched += p.CPUPercent + p.MemoryMB + float64(p.PID+int64(len(p.Name)+len(p.CreateTime)))
		}
		for _, c := range req.SystemInfo {
			touched += float64(c)
		}
		reqs = append(reqs, req)
	}
	s.reqs = reqs
	b0, o0 := readAllocs()
	c0 := testutil.ThreadCPU()
	s.batch = s.batch[:0]
	for _, req := range reqs {
		rows, _ := s.h.buildRows(req)
		s.batch = append(s.batch, rows...)
	}
	c1 := testutil.ThreadCPU()
	b1, o1 := readAllocs()
	s.h.addRows(s.batch)
	c2 := testutil.ThreadCPU()
	clear(s.batch)
	s.buildCPU += c1 - c0
	s.addRowsCPU += c2 - c1
	s.allocBytes += b1 - b0
	s.allocObjs += o1 - o0
	s.snapshots += n
}

func (s *ingestSide) report(b *testing.B) {
	n := float64(s.snapshots)
	b.ReportMetric(float64(s.buildCPU.Nanoseconds())/n/1e3, "build-µs/snap")
	b.ReportMetric(float64(s.addRowsCPU.Nanoseconds())/n/1e3, "addrows-µs/snap")
	b.ReportMetric(float64((s.buildCPU+s.addRowsCPU).Nanoseconds())/n/1e3, "cpu-µs/snap")
	b.ReportMetric(float64(s.allocBytes)/n, "build-B/snap")
	b.ReportMetric(float64(s.allocObjs)/n, "build-allocs/snap")
}

// BenchmarkIngestCPU measures history's ingest side, building a snapshot's
// rows (Add's work) and writing them (the writer's AddRows) in batches of
// PROCSCOPE_BENCH_BATCH snapshots (default 16, about what the writer
// drains at 2,000 snapshots/s, see BenchmarkWriterBatching). It reports
// the ingest goroutine's CPU time per snapshot (thread CPU: on this shared
// machine wall time measures the queue for a core) and the allocations of
// building.
//
//	go test -run '^$' -bench IngestCPU -benchtime 1000x ./aggregator/internal/history
func BenchmarkIngestCPU(b *testing.B) {
	batch := envInt("PROCSCOPE_BENCH_BATCH", 16)
	side := &ingestSide{h: openTest(b, b.TempDir(), Options{QueueSize: 1}), w: newIngestWorkload(200, 20)}
	// Warm up: every series registered once, as in a running server.
	for range 2 * 200 / batch {
		side.run(batch)
	}
	*side = ingestSide{h: side.h, w: side.w, batch: side.batch, reqs: side.reqs}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for b.Loop() {
		side.run(batch)
	}
	side.report(b)
	if st := side.h.Stats(); st.WriteErrors != 0 {
		b.Fatalf("write errors: %+v", st)
	}
}

// BenchmarkWriterBatching feeds Add at 2,000 snapshots/s, as ingest does,
// into a History whose writer writes what it finds at once ("nowait", the
// old loop) and one that waits up to writeBatchWait for a bigger batch
// ("wait"), alternating 0.5 s phases in one run. It reports the process's
// CPU time per snapshot in each (everything: Add, the writer, the lib's
// background work) and the AddRows calls per snapshot.
//
//	go test -run '^$' -bench WriterBatching -benchtime 6x ./aggregator/internal/history
func BenchmarkWriterBatching(b *testing.B) {
	const perPhase, interval = 1000, 500 * time.Microsecond
	type side struct {
		h         *History
		calls     *atomic.Uint64
		w         *ingestWorkload
		cpu       time.Duration
		snapshots int
	}
	newSide := func(wait time.Duration) *side {
		h, calls := openCounting(b, b.TempDir(), Options{}, wait)
		return &side{h: h, calls: calls, w: newIngestWorkload(200, 10)}
	}
	nowait, wait := newSide(0), newSide(writeBatchWait)
	phase := func(s *side, measure bool) {
		reqs := make([]*store.IngestRequest, perPhase)
		for i := range reqs {
			reqs[i] = s.w.next()
		}
		c0 := testutil.SelfCPU()
		start := time.Now()
		for i, req := range reqs {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			s.h.Add(req)
		}
		if err := s.h.Flush(time.Minute); err != nil {
			b.Fatal(err)
		}
		if measure {
			s.cpu += testutil.SelfCPU() - c0
			s.snapshots += perPhase
		}
	}
	// Warm up: every series registered in both.
	phase(nowait, false)
	phase(wait, false)
	calls0 := [2]uint64{nowait.calls.Load(), wait.calls.Load()}
	round := 0
	for b.Loop() {
		if round%2 == 0 {
			phase(nowait, true)
			phase(wait, true)
		} else {
			phase(wait, true)
			phase(nowait, true)
		}
		round++
	}
	for _, s := range []*side{nowait, wait} {
		if st := s.h.Stats(); st.Dropped != 0 || st.WriteErrors != 0 {
			b.Fatalf("history lost rows: %+v", st)
		}
	}
	n := float64(nowait.snapshots)
	b.ReportMetric(float64(nowait.cpu.Nanoseconds())/n/1e3, "cpu-µs/snap-nowait")
	b.ReportMetric(float64(wait.cpu.Nanoseconds())/n/1e3, "cpu-µs/snap-wait")
	b.ReportMetric(float64(wait.cpu)/float64(nowait.cpu), "cpu-ratio-wait/nowait")
	b.ReportMetric(float64(nowait.calls.Load()-calls0[0])/n, "addrows-calls/snap-nowait")
	b.ReportMetric(float64(wait.calls.Load()-calls0[1])/n, "addrows-calls/snap-wait")
}

// BenchmarkNewHosts measures what a host's first snapshot costs history
// (every one of its ~43 series is new to the storage: index entries, the
// TSID search that misses) against a known host's, as the process's CPU
// time per snapshot, background work included (Flush at the end). 200 new
// hosts pushing at once is how a load test or a fleet starting together
// begins; this cost is that start's tail.
//
//	go test -run '^$' -bench NewHosts -benchtime 1x -count 3 ./aggregator/internal/history
func BenchmarkNewHosts(b *testing.B) {
	const snapshots = 400
	for _, fresh := range []bool{true, false} {
		name := "known"
		if fresh {
			name = "new"
		}
		b.Run(name, func(b *testing.B) {
			h := openTest(b, b.TempDir(), Options{})
			w := newIngestWorkload(200, 4)
			if !fresh {
				for range 200 {
					h.Add(w.next())
				}
				if err := h.Flush(30 * time.Second); err != nil {
					b.Fatal(err)
				}
			}
			n := 0
			for b.Loop() {
				rows0, cpu0 := h.Stats().RowsWritten, testutil.SelfCPU()
				for range snapshots {
					r := w.next()
					if fresh {
						rr := *r
						rr.Hostname = fmt.Sprintf("%s-new-%d", r.Hostname, n)
						r = &rr
					}
					n++
					h.Add(r)
				}
				if err := h.Flush(30 * time.Second); err != nil {
					b.Fatal(err)
				}
				cpu, rows := testutil.SelfCPU()-cpu0, h.Stats().RowsWritten-rows0
				b.ReportMetric(float64(cpu.Microseconds())/snapshots, "cpu-µs/snapshot")
				b.ReportMetric(float64(rows)/snapshots, "rows/snapshot")
			}
		})
	}
}
