package history

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"

	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/internal/testutil"
)

// synthHost produces a plausible stream of snapshots for one host: values
// that wander the way real hosts do (mean-reverting CPU, slowly moving
// memory, smoothed load, a stable set of busy processes with the odd
// restart) at full float precision as exporters send them, and capture
// times 2 s apart with scheduling jitter.
type synthHost struct {
	name          string
	rng           *rand.Rand
	cpuBase, cpu  float64
	mem           float64
	load          [3]float64
	count         float64
	rootFS        float64
	procs         []snapshot.Process
	procBaseCPU   []float64
	nextPID       int64
	offset        time.Duration // where in the 2 s cycle this host's ticker fires
	cores         float64
	totalMemBytes float64
}

func newSynthHost(i int, seed uint64) *synthHost {
	rng := rand.New(rand.NewPCG(seed, uint64(i)))
	s := &synthHost{
		name:          fmt.Sprintf("host-%03d.example.internal", i),
		rng:           rng,
		cpuBase:       2 + rng.Float64()*30,
		mem:           float64(2<<30) + rng.Float64()*float64(4<<30),
		count:         float64(200 + rng.IntN(300)),
		rootFS:        float64(10<<30) + rng.Float64()*float64(50<<30),
		offset:        time.Duration(rng.Int64N(int64(2 * time.Second))),
		cores:         float64(2 + 2*rng.IntN(8)),
		totalMemBytes: 16 << 30,
		nextPID:       1000,
	}
	names := []string{"postgres", "nginx", "java", "node", "python3", "redis-server", "dockerd", "containerd", "systemd-journald", "sshd", "prometheus", "grafana", "chrome", "rsyslogd", "cron"}
	for j := range 30 {
		s.procs = append(s.procs, snapshot.Process{
			PID: s.nextPID, PPID: 1, Name: names[j%len(names)],
			MemoryMB:   math.Round(rng.ExpFloat64()*200*256) / 256, // whole 4 KiB pages
			CreateTime: time.Unix(1.76e9+rng.Int64N(1e6), 0).UTC().Format(time.RFC3339),
		})
		s.procBaseCPU = append(s.procBaseCPU, rng.ExpFloat64()*5)
		s.nextPID++
	}
	s.cpu = s.cpuBase
	return s
}

func (s *synthHost) next(i int, start time.Time) *store.IngestRequest {
	r := s.rng
	// Ticker jitter: a few ms normally, now and then a slow walk.
	jitter := time.Duration(math.Abs(r.NormFloat64()) * 3 * float64(time.Millisecond))
	if r.IntN(100) == 0 {
		jitter += time.Duration(r.Int64N(int64(200 * time.Millisecond)))
	}
	at := start.Add(s.offset + time.Duration(i)*2*time.Second + jitter).Truncate(time.Millisecond)

	s.cpu += 0.2*(s.cpuBase-s.cpu) + r.NormFloat64()*2
	s.cpu = min(max(s.cpu, 0), 100)
	s.mem += r.NormFloat64() * (256 << 10)
	for k, alpha := range []float64{0.08, 0.016, 0.005} {
		s.load[k] += alpha * (s.cpu/100*s.cores - s.load[k])
	}
	if r.IntN(20) == 0 {
		s.count += float64(r.IntN(3) - 1)
	}
	if r.IntN(30) == 0 {
		s.rootFS += float64(r.IntN(64) << 12)
	}
	for j := range s.procs {
		p := &s.procs[j]
		p.CPUPercent = s.procBaseCPU[j] * (1 + 0.3*r.NormFloat64())
		p.CPUPercent = max(p.CPUPercent, 0)
		if r.IntN(10) == 0 {
			p.MemoryMB += float64(r.IntN(5)-2) / 256
			p.MemoryMB = max(p.MemoryMB, 1)
		}
		if r.IntN(20000) == 0 { // a restart: new PID, new series
			p.PID, p.CreateTime = s.nextPID, at.UTC().Format(time.RFC3339)
			s.nextPID++
		}
	}
	sys := snapshot.SystemInfo{
		CPU:          snapshot.CPUInfo{UsagePercent: s.cpu},
		Memory:       snapshot.MemoryInfo{TotalBytes: uint64(s.totalMemBytes), UsedBytes: uint64(s.mem), AvailableBytes: uint64(s.totalMemBytes - s.mem*1.2)},
		Swap:         snapshot.SwapInfo{TotalBytes: 2 << 30, UsedBytes: 12 << 20},
		LoadAverage:  snapshot.LoadAverage{Load1: s.load[0], Load5: s.load[1], Load15: s.load[2]},
		ProcessCount: int(s.count),
		Filesystems: []snapshot.Filesystem{
			{Mountpoint: "/", FSType: "ext4", TotalBytes: 100 << 30, UsedBytes: uint64(s.rootFS)},
			{Mountpoint: "/boot/efi", FSType: "vfat", TotalBytes: 512 << 20, UsedBytes: 6 << 20},
		},
	}
	raw, _ := json.Marshal(sys)
	procs := make([]snapshot.Process, len(s.procs))
	copy(procs, s.procs)
	return withSystem(&store.IngestRequest{Hostname: s.name, CapturedAt: at, SystemInfo: raw, Processes: procs})
}

// fill writes steps snapshots of every host straight into the storage
// (bypassing the bounded queue, which would drop at this rate), returning
// the number of samples written.
func fill(tb testing.TB, h *History, hosts []*synthHost, start time.Time, steps int) int {
	tb.Helper()
	batch := make([]storage.MetricRow, 0, 64<<10)
	n := 0
	for i := range steps {
		for _, s := range hosts {
			rows, _ := h.buildRows(s.next(i, start))
			batch = append(batch, rows...)
			if len(batch) >= 60<<10 {
				h.addRows(batch)
				n += len(batch)
				batch = batch[:0]
			}
		}
	}
	h.addRows(batch)
	n += len(batch)
	if st := h.Stats(); st.WriteErrors != 0 {
		tb.Fatalf("write errors: %+v", st)
	}
	return n
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// measureBytesPerSample writes hosts x hours of 2 s snapshots, closes the
// storage (everything on disk) and divides its size by the samples; then
// it reopens, force-merges (what VictoriaMetrics' background merges reach
// over time) and measures again.
func measureBytesPerSample(tb testing.TB, hosts, hours, topK int) (samples int, closed, merged float64) {
	dir := tb.TempDir()
	h, err := Open(dir, Options{TopK: topK})
	if err != nil {
		tb.Fatal(err)
	}
	synth := make([]*synthHost, hosts)
	for i := range synth {
		synth[i] = newSynthHost(i, 42)
	}
	start := time.Now().Add(-time.Duration(hours)*time.Hour - time.Minute)
	samples = fill(tb, h, synth, start, hours*1800)
	if err := h.Close(); err != nil {
		tb.Fatal(err)
	}
	size, err := dirSize(dir)
	if err != nil {
		tb.Fatal(err)
	}
	closed = float64(size) / float64(samples)

	h, err = Open(dir, Options{TopK: topK})
	if err != nil {
		tb.Fatal(err)
	}
	if err := h.storage.ForceMergePartitions(""); err != nil {
		tb.Fatal(err)
	}
	if err := h.Close(); err != nil {
		tb.Fatal(err)
	}
	if size, err = dirSize(dir); err != nil {
		tb.Fatal(err)
	}
	merged = float64(size) / float64(samples)
	return samples, closed, merged
}

// TestBytesPerSample keeps the on-disk cost at most 1 byte a sample on a
// small fleet (20 hosts, 1 hour); BenchmarkBytesPerSample measures the
// 200-host run docs/performance.md quotes.
func TestBytesPerSample(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~1.5M samples; skipped with -short")
	}
	samples, closed, merged := measureBytesPerSample(t, 20, 1, 5)
	t.Logf("%d samples: %.3f bytes/sample after close, %.3f after merge", samples, closed, merged)
	if merged > 1 {
		t.Errorf("%.3f bytes/sample after merge, want at most 1", merged)
	}
}

// BenchmarkBytesPerSample: go test -run '^$' -bench BytesPerSample -benchtime 1x
// (PROCSCOPE_BENCH_HOSTS, PROCSCOPE_BENCH_HOURS change the fleet; default 200 x 3).
func BenchmarkBytesPerSample(b *testing.B) {
	hosts := envInt("PROCSCOPE_BENCH_HOSTS", 200)
	hours := envInt("PROCSCOPE_BENCH_HOURS", 3)
	for b.Loop() {
		samples, closed, merged := measureBytesPerSample(b, hosts, hours, 5)
		b.ReportMetric(float64(samples), "samples")
		b.ReportMetric(closed, "bytes/sample-closed")
		b.ReportMetric(merged, "bytes/sample-merged")
	}
}

// BenchmarkQuery reads one host's history out of a store holding 24 hours
// of 10 hosts: "24h" reads all nine host metrics (what the history tab
// draws), "1h" the same for the last hour, the baseline.
func BenchmarkQuery(b *testing.B) {
	dir := b.TempDir()
	h, err := Open(dir, Options{TopK: 5})
	if err != nil {
		b.Fatal(err)
	}
	synth := make([]*synthHost, 10)
	for i := range synth {
		synth[i] = newSynthHost(i, 7)
	}
	end := time.Now().Add(-time.Minute)
	start := end.Add(-24 * time.Hour)
	n := fill(b, h, synth, start, 24*1800)
	// Close, reopen and merge: the day is on disk in merged parts, as it
	// is after a day of running, and the merges the burst started do not
	// compete with the reads being measured.
	if err := h.Close(); err != nil {
		b.Fatal(err)
	}
	h = openTest(b, dir, Options{TopK: 5})
	if err := h.storage.ForceMergePartitions(""); err != nil {
		b.Fatal(err)
	}
	b.Logf("store holds %d samples", n)
	host := synth[3].name
	// raw: Query, every raw point. api: what the series routes read (at
	// most maxPoints a series, folded while reading).
	match := map[string]string{LabelHostname: host}
	read := map[string]func(metric string, from time.Time) ([]Series, error){
		"raw": func(metric string, from time.Time) ([]Series, error) {
			return h.Query(context.Background(), metric, match, from, end)
		},
		"api": func(metric string, from time.Time) ([]Series, error) {
			s, _, err := h.QueryWith(context.Background(), metric, match, from, end,
				QueryOptions{MaxRaw: maxPoints, AutoStep: autoStep(from, end), MaxPoints: maxAnswerPoints})
			return s, err
		},
	}
	for _, rng := range []struct {
		name string
		from time.Time
	}{{"24h", start}, {"1h", end.Add(-time.Hour)}} {
		for _, mode := range []string{"raw", "api"} {
			b.Run(rng.name+"/"+mode, func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				points := 0
				cpu0 := testutil.ThreadCPU()
				for b.Loop() {
					points = 0
					for _, metric := range hostMetrics {
						series, err := read[mode](metric, rng.from)
						if err != nil {
							b.Fatal(err)
						}
						for _, s := range series {
							points += len(s.Points)
						}
					}
				}
				// CPU time of the reading thread per read: on a shared,
				// overloaded machine wall time mostly measures the queue for
				// a core; this measures the work.
				b.ReportMetric(float64((testutil.ThreadCPU()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
				b.ReportMetric(float64(points), "points")
			})
		}
	}
}

// BenchmarkAdd is the cost Add puts on the ingest goroutine (building the
// rows of a 30-process snapshot and queueing them), against decoding that
// snapshot's system_info alone as a baseline.
func BenchmarkAdd(b *testing.B) {
	h := openTest(b, b.TempDir(), Options{TopK: 10, QueueSize: 1 << 20})
	s := newSynthHost(1, 1)
	start := time.Now().Add(-time.Hour)
	reqs := make([]*store.IngestRequest, 1800)
	for i := range reqs {
		reqs[i] = s.next(i, start)
	}
	b.Run("add", func(b *testing.B) {
		i := 0
		for b.Loop() {
			h.Add(reqs[i%len(reqs)])
			i++
		}
	})
	b.Run("baseline-decode-system-info", func(b *testing.B) {
		i := 0
		for b.Loop() {
			var si snapshot.SystemInfo
			if err := json.Unmarshal(reqs[i%len(reqs)].SystemInfo, &si); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
