package history

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A snapshot copied with CopySnapshot opens as a store of its own holding
// exactly what was added before Snapshot, and release deletes it.
func TestSnapshotCopyOpens(t *testing.T) {
	dir := t.TempDir()
	h := openTest(t, filepath.Join(dir, "history"), Options{})
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 10 {
		h.Add(testRequest("web-1", base.Add(time.Duration(i)*time.Second), float64(i), nil))
	}
	// Not flushed by the test: Snapshot writes what was queued before it.
	snap, release, err := h.Snapshot(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h.Add(testRequest("web-1", base.Add(time.Minute), 99, nil)) // after the snapshot
	flush(t, h)
	files := 0
	dst := filepath.Join(dir, "copy")
	if err := CopySnapshot(snap, dst, func(n int, _ int64) { files = n }, nil); err != nil {
		t.Fatal(err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(snap); !os.IsNotExist(err) {
		t.Fatalf("snapshot %s still there after release: %v", snap, err)
	}
	if files == 0 {
		t.Fatal("no progress reported")
	}
	if err := CopySnapshot(snap, dst, nil, nil); err == nil {
		t.Fatal("copied over an existing directory")
	}

	c := openTest(t, dst, Options{})
	got, err := c.Query(context.Background(), MetricCPU, map[string]string{LabelHostname: "web-1"}, base.Add(-time.Minute), base.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Points) != 10 {
		t.Fatalf("copy holds %+v, want the 10 points added before the snapshot", got)
	}
	for i, p := range got[0].Points {
		if p.V != float64(i) {
			t.Fatalf("point %d = %+v", i, p)
		}
	}
}

// A snapshot its process never released (killed mid-backup) is deleted
// when the store opens again.
func TestLeftoverSnapshotDeletedAtOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "history")
	h, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.Add(testRequest("web-1", time.Now().Add(-time.Minute), 1, nil))
	snap, _, err := h.Snapshot(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(snap); err != nil {
		t.Fatal(err)
	}
	openTest(t, dir, Options{})
	if _, err := os.Stat(snap); !os.IsNotExist(err) {
		t.Fatalf("leftover snapshot %s not deleted at open: %v", snap, err)
	}
}
