package testutil

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	t.Parallel()
	f := func(stat string, want time.Duration, wantErr bool) {
		t.Helper()
		got, err := parseStat(stat)
		if (err != nil) != wantErr || got != want {
			t.Errorf("parseStat(%q) = %v, %v; want %v, error %v", stat, got, err, want, wantErr)
		}
	}
	// utime 250 and stime 50 ticks of 10 ms.
	f("42 (agg) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1 1 1", 3*time.Second, false)
	// A command name with spaces and a parenthesis of its own.
	f("42 (a b) c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1 1 1", 3*time.Second, false)
	f("42 (agg) S 1 42", 0, true)
	f("42 (agg) S 1 42 42 0 -1 4194560 100 0 0 0 x 50 0", 0, true)
}

func TestProcCPU(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 30")
	if err := cmd.Start(); err != nil {
		t.Skipf("no sh: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := ProcCPU(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if d > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child's CPU time stayed 0 for 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := ProcCPU(0); err == nil {
		t.Error("ProcCPU(0): no error")
	}
}

func TestSelfAndThreadCPU(t *testing.T) {
	t.Parallel()
	s0, t0 := SelfCPU(), ThreadCPU()
	for deadline := time.Now().Add(30 * time.Second); SelfCPU()-s0 < 20*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatal("SelfCPU did not advance in 30 s of spinning")
		}
	}
	if s0 <= 0 || t0 <= 0 {
		t.Errorf("SelfCPU %v, ThreadCPU %v: want both > 0", s0, t0)
	}
}

// TestServerDownUp: down is connection refused, up answers again on the
// same address. Not parallel: this package's other tests start servers on
// ports the OS picks, and one could take the port while it is down.
func TestServerDownUp(t *testing.T) {
	s := NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	addr := s.Addr()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func() (string, error) {
		res, err := client.Get("http://" + addr + "/")
		if err != nil {
			return "", err
		}
		defer func() { _ = res.Body.Close() }()
		b, err := io.ReadAll(res.Body)
		return string(b), err
	}
	if body, err := get(); err != nil || body != "ok" {
		t.Fatalf("up: %q, %v", body, err)
	}
	s.Down()
	if _, err := get(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("down: %v, want connection refused", err)
	}
	s.Up()
	if s.Addr() != addr {
		t.Fatalf("back on %s, want %s", s.Addr(), addr)
	}
	if body, err := get(); err != nil || body != "ok" {
		t.Fatalf("up again: %q, %v", body, err)
	}
}

// TestNotInBinaries: test support stays out of what ships.
func TestNotInBinaries(t *testing.T) {
	t.Parallel()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "./exporter", "./aggregator")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasSuffix(pkg, "/internal/testutil") || strings.HasSuffix(pkg, "/internal/apptest") {
			t.Errorf("a binary imports %s", pkg)
		}
	}
}

func TestBuild(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := Build(ctx, "./no/such/package", t.TempDir()+"/x", false); err == nil || !strings.Contains(err.Error(), "go build ./no/such/package") {
		t.Errorf("Build of a missing package: %v", err)
	}
}

func TestLogBuffer(t *testing.T) {
	t.Parallel()
	var zero LogBuffer
	if n, err := zero.Write([]byte("hello ")); n != 6 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	_, _ = zero.Write([]byte("world"))
	if got := zero.String(); got != "hello world" {
		t.Fatalf("String = %q", got)
	}
	if _, _ = zero.Write(make([]byte, 5<<20)); len(zero.String()) != 4<<20 {
		t.Fatalf("zero Cap kept %d bytes, want 4 MiB", len(zero.String()))
	}

	// Concurrent writers (stdout and stderr) under a cap: every write is
	// reported whole, and what is kept stops at the cap.
	l := LogBuffer{Cap: 1000}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				if n, err := l.Write([]byte("0123456789")); n != 10 || err != nil {
					t.Errorf("Write = %d, %v", n, err)
				}
			}
		})
	}
	wg.Wait()
	if got := l.String(); got != strings.Repeat("0123456789", 100) {
		t.Fatalf("kept %d bytes, want the first 1000", len(got))
	}
}

// ParallelLatencies calls op once for each of 1..b.N and returns one
// sorted latency per call.
func TestParallelLatencies(t *testing.T) {
	var (
		mu    sync.Mutex
		seen  map[int64]int
		lat   []time.Duration
		lastN int
	)
	testing.Benchmark(func(b *testing.B) {
		seen = map[int64]int{}
		lat = ParallelLatencies(b, func(n int64) error {
			time.Sleep(time.Millisecond) // keeps b.N, and the run, small
			mu.Lock()
			seen[n]++
			mu.Unlock()
			return nil
		})
		lastN = b.N
	})
	if lastN == 0 || len(lat) != lastN || len(seen) != lastN {
		t.Fatalf("b.N %d: %d latencies, %d distinct sequence numbers", lastN, len(lat), len(seen))
	}
	for n := int64(1); n <= int64(lastN); n++ {
		if seen[n] != 1 {
			t.Fatalf("sequence number %d used %d times", n, seen[n])
		}
	}
	if !slices.IsSorted(lat) || lat[0] <= 0 {
		t.Fatalf("latencies not sorted or not measured: first %v, last %v", lat[0], lat[len(lat)-1])
	}
}
