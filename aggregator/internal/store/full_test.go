package store

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/internal/testutil"
)

// SQLite itself running out of space (no margin configured): the ingest
// fails with ErrStorageFull, Full() says so, what was acknowledged reads
// back, and once space is freed the next ingest goes through.
func TestSQLiteFullDisk(t *testing.T) {
	mnt := testutil.MountTmpfs(t, "8m")
	dir := filepath.Join(mnt, "store")
	s := openTest(t, dir, Options{PruneInterval: -1})
	ctx := context.Background()
	procs := make([]snapshot.Process, 300)
	var acked []int64
	full := false
	for i := range 5000 { // the 8 MiB fill long before
		for p := range procs {
			procs[p] = snapshot.Process{PID: int64(p + 1), Name: fmt.Sprintf("proc-%d-%d", i, p), CPUPercent: float64(i), Cmdline: strp(fmt.Sprintf("/usr/bin/x --run=%d --p=%d", i, p))}
		}
		res, err := s.Ingest(ctx, req("h", "k", t0.Add(time.Duration(i)*time.Second), procs...))
		if errors.Is(err, ErrStorageFull) {
			full = true
			break
		}
		if err != nil {
			t.Fatalf("ingest %d: %v", i, err)
		}
		acked = append(acked, res.SnapshotID)
	}
	if !full || !s.Full() {
		t.Fatalf("never full (%d ingests), Full() = %v", len(acked), s.Full())
	}
	for _, id := range acked[len(acked)-3:] {
		if _, err := s.Processes(ctx, id); err != nil {
			t.Fatalf("reading %d while full: %v", id, err)
		}
	}
	// Space comes back: a filler-free disk is what the test has, so
	// make room by growing the tmpfs.
	if out, err := exec.Command("mount", "-o", "remount,size=64m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	if _, err := s.Ingest(ctx, req("h", "k", t0.Add(-time.Hour), snapshot.Process{PID: 1, Name: "after"})); err != nil {
		t.Fatalf("ingest once space is back: %v", err)
	}
	if s.Full() {
		t.Fatal("still full after space came back")
	}
	for _, id := range acked {
		if _, err := s.Processes(ctx, id); err != nil {
			t.Fatalf("acknowledged %d: %v", id, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(ctx, dir, nil)
	if err != nil || len(rep.Problems) != 0 || rep.Snapshots != int64(len(acked)+1) {
		t.Fatalf("after the full disk: %+v %v (acknowledged %d + 1)", rep, err, len(acked))
	}
}
