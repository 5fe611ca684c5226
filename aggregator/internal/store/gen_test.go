package store

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// fakeHost produces a realistic run of snapshots of one host: a few hundred
// processes of which a few start or exit between snapshots, the busy ones
// with a new (arbitrary float) CPU% every time as the exporter computes it
// from tick deltas, some with a changing RSS, and system_info whose numbers
// move every time.
type fakeHost struct {
	rng     *rand.Rand
	name    string
	procs   []snapshot.Process
	nextPID int64
	t       time.Time
	step    int
	memUsed uint64
}

var (
	fakeNames = []string{"systemd", "kthreadd", "rcu_sched", "kworker/0:1-events", "sshd", "nginx", "postgres",
		"python3", "java", "node", "containerd", "dockerd", "bash", "cron", "rsyslogd", "journald", "chrome",
		"redis-server", "prometheus", "grafana", "snapd", "udisksd", "polkitd", "dbus-daemon", "agetty"}
	fakeUsers  = []string{"root", "root", "root", "www-data", "postgres", "alice", "systemd-journal"}
	fakeStatus = []string{"sleeping", "sleeping", "sleeping", "idle", "running"}
)

func newFakeHost(seed uint64, name string, n int) *fakeHost {
	h := &fakeHost{
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		name:    name,
		nextPID: 1,
		t:       time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC),
		memUsed: 6 << 30,
	}
	for range n {
		h.procs = append(h.procs, h.newProc())
	}
	return h
}

func (h *fakeHost) newProc() snapshot.Process {
	r := h.rng
	name := fakeNames[r.IntN(len(fakeNames))]
	p := snapshot.Process{
		PID:        h.nextPID,
		PPID:       int64(r.IntN(int(h.nextPID))),
		Name:       name,
		Username:   fakeUsers[r.IntN(len(fakeUsers))],
		Status:     fakeStatus[r.IntN(len(fakeStatus))],
		NumThreads: int32(1 + r.IntN(40)),
		CreateTime: h.t.Add(-time.Duration(r.IntN(1e6)) * time.Second).Format(time.RFC3339Nano),
	}
	h.nextPID += 1 + int64(r.IntN(30))
	if r.IntN(10) < 7 { // most have a command line; kernel threads send ""
		var c string
		if r.IntN(6) > 0 {
			c = fmt.Sprintf("/usr/bin/%s --config=/etc/%s/%s.conf --workers=%d --log-level=info", name, name, name, 1+r.IntN(16))
		}
		p.Cmdline = &c
	}
	h.setRSS(&p, uint64(1+r.IntN(50000))*4096)
	return p
}

func (h *fakeHost) setRSS(p *snapshot.Process, rss uint64) {
	p.MemoryMB = float64(rss) / (1 << 20)
	p.MemoryPercent = float64(rss) / float64(16<<30) * 100
}

// next advances the host by one interval and returns its snapshot.
func (h *fakeHost) next() *IngestRequest {
	r := h.rng
	h.step++
	h.t = h.t.Add(2*time.Second + time.Duration(r.IntN(5))*time.Millisecond)
	dt := 2.0 + float64(r.IntN(5000))/1e6
	// A few processes exit and start.
	if r.IntN(3) == 0 && len(h.procs) > 10 {
		i := 1 + r.IntN(len(h.procs)-1)
		h.procs = append(h.procs[:i], h.procs[i+1:]...)
	}
	if r.IntN(3) == 0 {
		h.procs = append(h.procs, h.newProc())
	}
	for i := range h.procs {
		p := &h.procs[i]
		// About one in eight is busy: CPU% = ticks/clk_tck/dt*100, an
		// arbitrary float that differs every interval.
		if i%8 == h.step%8 || i%97 == 0 {
			p.CPUPercent = float64(r.IntN(40)) / 100 / dt * 100
		} else {
			p.CPUPercent = 0
		}
		if r.IntN(25) == 0 {
			h.setRSS(p, uint64(1+r.IntN(50000))*4096)
		}
		if r.IntN(200) == 0 {
			p.NumThreads = int32(1 + r.IntN(40))
		}
	}
	h.memUsed += uint64(r.IntN(1<<20)) - 1<<19
	si := snapshot.SystemInfo{
		OS:  snapshot.OSInfo{Name: "linux", Distro: "debian", Version: "13", Kernel: "6.12.38+deb13-amd64", Arch: "x86_64"},
		CPU: snapshot.CPUInfo{Model: "AMD EPYC 7B13", PhysicalCores: 4, LogicalThreads: 8, CurrentMHz: 2450 + float64(r.IntN(100)), MaxMHz: 3500, UsagePercent: float64(r.IntN(10000)) / 100},
		Memory: snapshot.MemoryInfo{TotalBytes: 16 << 30, UsedBytes: h.memUsed,
			AvailableBytes: 16<<30 - h.memUsed},
		Swap: snapshot.SwapInfo{TotalBytes: 2 << 30, UsedBytes: 12 << 20},
		Filesystems: []snapshot.Filesystem{
			{Mountpoint: "/", Device: "/dev/vda1", FSType: "ext4", TotalBytes: 250 << 30, UsedBytes: 80<<30 + uint64(h.step)*4096},
			{Mountpoint: "/boot/efi", Device: "/dev/vda15", FSType: "vfat", TotalBytes: 124 << 20, UsedBytes: 12 << 20},
		},
		BootTime:     "2026-11-01T08:00:00Z",
		UptimeSec:    float64(h.t.Unix() - 1793520000),
		LoadAverage:  snapshot.LoadAverage{Load1: float64(r.IntN(400)) / 100, Load5: 1.2, Load15: 0.9},
		ProcessCount: len(h.procs),
		Exporter:     "procscope-exporter 0.1.0",
	}
	sys, err := json.Marshal(si)
	if err != nil {
		panic(err)
	}
	return &IngestRequest{
		Hostname:   h.name,
		KeyHash:    sha256.Sum256([]byte("key-" + h.name)),
		CapturedAt: h.t,
		SystemInfo: sys,
		Processes:  append([]snapshot.Process(nil), h.procs...),
		ReceivedAt: h.t.Add(30 * time.Millisecond),
	}
}

// wireJSON is the ingest body the exporter would send for req.
func wireJSON(req *IngestRequest) []byte {
	b, err := json.Marshal(snapshot.Snapshot{
		Hostname:   req.Hostname,
		CapturedAt: req.CapturedAt.Format(time.RFC3339Nano),
		SystemInfo: req.SystemInfo,
		Processes:  req.Processes,
	})
	if err != nil {
		panic(err)
	}
	return b
}

// ingestAll stores reqs with a few concurrent callers (so that group commit
// batches them, roughly in order) and returns their ids.
func ingestAll(tb testing.TB, s Store, reqs []*IngestRequest) []int64 {
	tb.Helper()
	ids := make([]int64, len(reqs))
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) {
					return
				}
				res, err := s.Ingest(context.Background(), reqs[i])
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("ingest %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
				ids[i] = res.SnapshotID
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		tb.Fatal(firstErr)
	}
	return ids
}
