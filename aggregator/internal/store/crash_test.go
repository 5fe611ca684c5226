package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const crashChildEnv = "PROCSCOPE_STORE_CRASH_DIR"

// TestCrashKill9 runs this test binary as a child that ingests as fast as
// it can and prints each acknowledged snapshot id, kills it with SIGKILL
// mid-stream, and checks that every acknowledged snapshot is there after
// reopening, and that ids go on without reuse.
func TestCrashKill9(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("-short: skipping the kill -9 test")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Only this child is ever killed, by its PID.
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	acked := map[int64]int64{} // id -> captured_ms
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(60 * time.Second)
	for sc.Scan() && len(acked) < 400 && time.Now().Before(deadline) {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ACK" {
			continue
		}
		id, _ := strconv.ParseInt(f[1], 10, 64)
		ms, _ := strconv.ParseInt(f[2], 10, 64)
		acked[id] = ms
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	killed = true
	// Lines already written before the kill are acknowledgements too.
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "ACK" {
			id, _ := strconv.ParseInt(f[1], 10, 64)
			ms, _ := strconv.ParseInt(f[2], 10, 64)
			acked[id] = ms
		}
	}
	_ = cmd.Wait()
	if len(acked) < 50 {
		t.Fatalf("child acknowledged only %d snapshots", len(acked))
	}

	s := openTest(t, dir, Options{})
	ctx := context.Background()
	var maxID int64
	for id, ms := range acked {
		m, err := s.Snapshot(ctx, id)
		if err != nil {
			t.Fatalf("acknowledged snapshot %d lost: %v", id, err)
		}
		if m.CapturedAt.UnixMilli() != ms {
			t.Fatalf("snapshot %d captured_at %d, acknowledged %d", id, m.CapturedAt.UnixMilli(), ms)
		}
		if procs, err := s.Processes(ctx, id); err != nil || len(procs) != m.ProcessCount {
			t.Fatalf("snapshot %d processes: %d, %v", id, len(procs), err)
		}
		maxID = max(maxID, id)
	}
	st, _ := s.Stats(ctx)
	t.Logf("%d acknowledged before kill -9, %d stored after restart", len(acked), st.Snapshots)
	h := newFakeHost(99, "host-0", 50)
	r := h.next()
	r.CapturedAt = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	res, err := s.Ingest(ctx, r)
	if err != nil || res.SnapshotID <= maxID {
		t.Fatalf("after restart: id %d (max acknowledged %d), %v", res.SnapshotID, maxID, err)
	}
}

// crashChild ingests from four hosts until it is killed (bounded anyway).
func crashChild(dir string) {
	s, err := OpenSQLite(context.Background(), dir, Options{PruneInterval: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(90 * time.Second)
	for g := range 4 {
		wg.Go(func() {
			h := newFakeHost(uint64(g), fmt.Sprint("host-", g), 150)
			for i := 0; i < 100000 && time.Now().Before(deadline); i++ {
				r := h.next()
				res, err := s.Ingest(context.Background(), r)
				if err != nil {
					fmt.Fprintln(os.Stderr, "child ingest:", err)
					os.Exit(2)
				}
				mu.Lock()
				_, _ = fmt.Fprintf(os.Stdout, "ACK %d %d\n", res.SnapshotID, r.CapturedAt.UnixMilli())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}
