package history

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/internal/api"
	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// ingestRig is the aggregator's ingest path as the server runs it: the api
// handler over a real SQLite store, with or without history on its hook.
type ingestRig struct {
	handler http.Handler
	hist    *History
	hosts   []*synthHost
	step    int
	start   time.Time
}

func newIngestRig(b *testing.B, withHistory bool) *ingestRig {
	b.Helper()
	logger := slog.New(slog.DiscardHandler)
	st, err := store.OpenSQLite(context.Background(), b.TempDir(), store.Options{Logger: logger, PruneInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	lazy := new(api.LazyStore)
	lazy.Set(st)
	rig := &ingestRig{start: time.Now().Add(-time.Hour)}
	opts := api.Options{Logger: logger, Store: lazy}
	if withHistory {
		rig.hist = openTest(b, b.TempDir(), Options{})
		hd := NewHandler(rig.hist, lazy, logger)
		opts.OnIngest, opts.Mount = hd.OnIngest, hd.Mount
	}
	a, err := api.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.Close)
	rig.handler = a
	for i := range 16 {
		rig.hosts = append(rig.hosts, newSynthHost(i, 99))
	}
	return rig
}

// bodies builds the next n ingest bodies (300 processes each), round robin
// over the hosts, outside the timed part.
func (r *ingestRig) bodies(n int) [][]byte {
	out := make([][]byte, 0, n)
	for len(out) < n {
		for _, h := range r.hosts {
			req := h.next(r.step, r.start)
			procs := req.Processes
			for j := len(procs); j < 300; j++ {
				procs = append(procs, snapshot.Process{PID: int64(50000 + j), PPID: 1, Name: "kworker/u8:" + fmt.Sprint(j), MemoryMB: 0})
			}
			body, err := json.Marshal(snapshot.Snapshot{
				Hostname:   req.Hostname,
				CapturedAt: req.CapturedAt.UTC().Format(time.RFC3339Nano),
				SystemInfo: req.SystemInfo,
				Processes:  procs,
			})
			if err != nil {
				panic(err)
			}
			out = append(out, body)
			if len(out) == n {
				break
			}
		}
		r.step++
	}
	return out
}

// run posts the bodies from workers goroutines and returns the wall time.
func (r *ingestRig) run(b *testing.B, bodies [][]byte, workers int) time.Duration {
	var wg sync.WaitGroup
	next := make(chan []byte, len(bodies))
	for _, body := range bodies {
		next <- body
	}
	close(next)
	var failMu sync.Mutex
	var fail string
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for body := range next {
				req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/api/v1/ingest", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				// Every host binds to the same key on its first ingest.
				req.Header.Set("X-API-KEY", "bench-key")
				rec := httptest.NewRecorder()
				r.handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusCreated {
					failMu.Lock()
					fail = fmt.Sprintf("ingest answered %d: %s", rec.Code, rec.Body.String())
					failMu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	if fail != "" {
		b.Fatal(fail)
	}
	return d
}

// BenchmarkIngestHistoryOverhead measures aggregator ingest (api handler,
// validation, SQLite with its fsync'd group commit) with history off and on,
// interleaved round by round in one run so that machine noise hits both
// alike. It reports ns per ingest for each and their ratio (on/off).
func BenchmarkIngestHistoryOverhead(b *testing.B) {
	off := newIngestRig(b, false)
	on := newIngestRig(b, true)
	const workers, perRound = 4, 64
	var dOff, dOn time.Duration
	rounds := 0
	for b.Loop() {
		bOff, bOn := off.bodies(perRound), on.bodies(perRound)
		if rounds%2 == 0 {
			dOff += off.run(b, bOff, workers)
			dOn += on.run(b, bOn, workers)
		} else {
			dOn += on.run(b, bOn, workers)
			dOff += off.run(b, bOff, workers)
		}
		rounds++
	}
	n := float64(rounds * perRound)
	b.ReportMetric(float64(dOff.Nanoseconds())/n, "ns/ingest-off")
	b.ReportMetric(float64(dOn.Nanoseconds())/n, "ns/ingest-on")
	b.ReportMetric(float64(dOn)/float64(dOff), "ratio-on/off")
	if err := on.hist.Flush(time.Minute); err != nil {
		b.Fatal(err)
	}
	if st := on.hist.Stats(); st.RowsWritten == 0 || st.Dropped != 0 {
		b.Fatalf("history did not keep up: %+v", st)
	}
}
