package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procscope/procscope/tools/loadgen/gen"
)

// fakeFleet is two ingest receivers sharing one table, as two aggregators
// share PostgreSQL: a snapshot is stored once per (hostname, captured_at),
// a repeat answers 200 with the same id. Each receiver can be told to
// answer 503 or to drop the connection without an answer.
type fakeFleet struct {
	mu    sync.Mutex
	ids   map[string]int64
	by    map[string][]int // which receivers acknowledged each snapshot
	modes [2]atomic.Value  // "ok", "503", "drop"
	srv   [2]*httptest.Server
}

func newFakeFleet(t *testing.T) *fakeFleet {
	f := &fakeFleet{ids: map[string]int64{}, by: map[string][]int{}}
	for i := range f.srv {
		f.modes[i].Store("ok")
		f.srv[i] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch f.modes[i].Load() {
			case "503":
				http.Error(w, `{"error":"overloaded"}`, http.StatusServiceUnavailable)
				return
			case "drop":
				c, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					_ = c.Close()
				}
				return
			}
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			var s struct {
				Hostname   string `json:"hostname"`
				CapturedAt string `json:"captured_at"`
			}
			if err := json.NewDecoder(zr).Decode(&s); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			k := s.Hostname + "@" + s.CapturedAt
			f.mu.Lock()
			id, seen := f.ids[k]
			if !seen {
				id = int64(len(f.ids) + 1)
				f.ids[k] = id
			}
			f.by[k] = append(f.by[k], i)
			f.mu.Unlock()
			code := http.StatusCreated
			if seen {
				code = http.StatusOK
			}
			w.WriteHeader(code)
			_, _ = fmt.Fprintf(w, `{"snapshot_id":%d}`+"\n", id)
		}))
		t.Cleanup(f.srv[i].Close)
	}
	return f
}

// TestFailoverConn: pushes go to -url; when it answers 503 or drops the
// connection they go to the -failover-url at once, each acknowledged once
// with its own id; after -failover-back-after they return to -url; with
// both down a push fails after its rounds, and the ring is not left
// spinning (the probe of -url fails quietly back to the fallback).
func TestFailoverConn(t *testing.T) {
	t.Parallel()
	f := newFakeFleet(t)
	cfg := config{url: f.srv[0].URL, failover: failoverFlags{urls: stringsFlag{f.srv[1].URL}, backAfter: 50 * time.Millisecond}}
	mk, err := newPosters(cfg, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p, err := mk("key-h")
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	fc := p.(*failoverConn)
	fc.pause = time.Millisecond
	tail, err := gen.CompressTail(gen.SystemInfo, gen.Processes(5, 1, false), gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := 0
	pushOne := func() (int, int64) {
		n++
		at := time.Unix(1700000000, 0).Add(time.Duration(n) * time.Second).UTC().Format("2006-01-02T15:04:05.000Z")
		code, body, err := p.post(ctx, gen.HeadMember(gen.QuoteHostname("h<b>"), at), tail)
		if err != nil {
			return 0, 0
		}
		return code, snapshotID(body)
	}
	ids := map[int64]bool{}
	expect := func(what string, code int) {
		t.Helper()
		c, id := pushOne()
		if c != code {
			t.Fatalf("%s: push %d answered %d, want %d", what, n, c, code)
		}
		if code == http.StatusCreated {
			if ids[id] {
				t.Fatalf("%s: id %d acknowledged twice", what, id)
			}
			ids[id] = true
		}
	}
	for range 3 {
		expect("first up", http.StatusCreated)
	}
	if fc.acked[0] != 3 || fc.acked[1] != 0 {
		t.Fatalf("acknowledged per URL %v, want [3 0]", fc.acked)
	}
	for _, mode := range []string{"503", "drop"} {
		f.modes[0].Store(mode)
		for range 3 {
			expect("first "+mode, http.StatusCreated)
		}
	}
	if fc.acked[1] != 6 || fc.failovers < 1 {
		t.Fatalf("with the first down: acknowledged %v, %d failovers", fc.acked, fc.failovers)
	}
	// The first back: pushes return to it once back-after has passed
	// (bounded: 100 pushes 10 ms apart).
	f.modes[0].Store("ok")
	for i := 0; fc.acked[0] == 3; i++ {
		if i == 100 {
			t.Fatalf("never back on the first URL: acknowledged %v", fc.acked)
		}
		time.Sleep(10 * time.Millisecond)
		expect("first back", http.StatusCreated)
	}
	// Both down: refused after every round, then the next push works.
	f.modes[0].Store("503")
	f.modes[1].Store("503")
	before := fc.failovers
	expect("both down", http.StatusServiceUnavailable)
	if got := fc.failovers - before; got != failoverRounds*2 {
		t.Fatalf("both down: %d moves, want %d", got, failoverRounds*2)
	}
	f.modes[1].Store("ok")
	expect("second up", http.StatusCreated)
	// Every snapshot acknowledged was stored once, and each was
	// acknowledged by exactly one receiver.
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ids) != len(ids) {
		t.Fatalf("%d stored, %d acknowledged", len(f.ids), len(ids))
	}
	for k, by := range f.by {
		if len(by) != 1 {
			t.Errorf("%s reached the receivers %v", k, by)
		}
	}
}

// TestLoadFailoverAcksFile: a whole load through failover with the first
// URL answering 503 throughout: every push acknowledged by the second,
// -acks-file lists each once with the id it got, and the report says where
// they went.
func TestLoadFailoverAcksFile(t *testing.T) {
	t.Parallel()
	f := newFakeFleet(t)
	f.modes[0].Store("503")
	acks := filepath.Join(t.TempDir(), "acks.jsonl")
	cfg := config{url: f.srv[0].URL, hosts: 3, rate: 60, duration: 500 * time.Millisecond, procs: 5, variants: 1,
		workers: 3, workload: "evolve", seed: 1, keyPrefix: "k-", hostPrefix: "fo-",
		failover: failoverFlags{urls: stringsFlag{f.srv[1].URL}, backAfter: time.Hour, acksFile: acks}}
	var out strings.Builder
	// The read-back goes to -url, which refuses: the run reports losses,
	// not an error; what matters here is the push.
	res, err := load(context.Background(), cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.errors != 0 || res.created != 30 {
		t.Fatalf("result %+v\n%s", res, out.String())
	}
	if !strings.Contains(out.String(), f.srv[1].URL+" acknowledged 30;") {
		t.Fatalf("report:\n%s", out.String())
	}
	file, err := os.Open(acks)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = file.Close() }()
	sc := bufio.NewScanner(file)
	seen := map[string]bool{}
	f.mu.Lock()
	defer f.mu.Unlock()
	for sc.Scan() {
		var l ackLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		k := l.Hostname + "@" + l.CapturedAt
		if seen[k] || f.ids[k] != l.ID || !strings.HasPrefix(l.Hostname, "fo-") {
			t.Fatalf("line %+v: seen %v, stored as %d", l, seen[k], f.ids[k])
		}
		seen[k] = true
	}
	if len(seen) != 30 {
		t.Fatalf("%d lines, want 30", len(seen))
	}
}

// TestFailoverFlags: -failover-url with -spawn, twice, equal to -url, or
// a back-after that is not positive is refused with a message.
func TestFailoverFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-spawn", "-failover-url", "http://127.0.0.1:2"},
		{"-url", "http://127.0.0.1:1", "-failover-url", "http://127.0.0.1:2", "-failover-url", "http://127.0.0.1:2/"},
		{"-url", "http://127.0.0.1:1", "-failover-url", "http://127.0.0.1:1"},
		{"-failover-url", "http://127.0.0.1:2", "-failover-back-after", "0s"},
	} {
		var out, errOut strings.Builder
		if code := run(args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "failover") {
			t.Errorf("%q: exit %d, want 2 with a message (%s)", args, code, errOut.String())
		}
	}
}
