package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// A backup taken while snapshots are being ingested holds every snapshot
// acknowledged before it began, identical, and opens as a store.
func TestBackupDuringIngest(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{PruneInterval: -1})
	ctx := context.Background()
	var acked sync.Map // id -> request
	var n atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 { // bounded; stop ends it sooner
				select {
				case <-stop:
					return
				default:
				}
				host := fmt.Sprintf("h%d", w)
				r := req(host, "k"+host, t0.Add(time.Duration(i)*time.Second),
					snapshot.Process{PID: int64(i) + 2, Name: "p", CPUPercent: float64(i)}, snapshot.Process{PID: 1, Name: "init"})
				res, err := s.Ingest(ctx, r)
				if err != nil {
					t.Error(err)
					return
				}
				acked.Store(res.SnapshotID, r)
				n.Add(1)
			}
		}()
	}
	for i := 0; n.Load() < 200 && i < 3000; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	var before []int64
	acked.Range(func(k, _ any) bool { before = append(before, k.(int64)); return true })
	dst := filepath.Join(t.TempDir(), "copy")
	var calls atomic.Int64
	info, err := Backup(ctx, dir, filepath.Join(dst+".db"), func(_, _ int64) { calls.Add(1) })
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() == 0 || info.Snapshots < int64(len(before)) || info.Hosts != 3 || info.SchemaVersion == 0 {
		t.Fatalf("backup info %+v (progress calls %d), %d acknowledged before", info, calls.Load(), len(before))
	}
	if _, err := Backup(ctx, dir, dst+".db", nil); err == nil {
		t.Fatal("backup over an existing file")
	}

	rdir := t.TempDir()
	if err := copyFileTo(dst+".db", filepath.Join(rdir, DBFile)); err != nil {
		t.Fatal(err)
	}
	r := openTest(t, rdir, Options{PruneInterval: -1})
	for _, id := range before {
		v, _ := acked.Load(id)
		want := v.(*IngestRequest)
		meta, err := r.Snapshot(ctx, id)
		if err != nil {
			t.Fatalf("snapshot %d acknowledged before the backup: %v", id, err)
		}
		if meta.Hostname != want.Hostname || !meta.CapturedAt.Equal(want.CapturedAt) {
			t.Fatalf("snapshot %d: %+v", id, meta)
		}
		checkProcesses(t, r, id, want.Processes)
	}
}

func copyFileTo(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}
