package store

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// Check decodes every snapshot: a blob damaged inside (the page itself
// sound, so integrity_check cannot see it) is reported with its snapshot.
func TestCheckFindsDamagedBlob(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{PruneInterval: -1})
	var ids []int64
	for i := range 20 {
		procs := make([]snapshot.Process, 0, 50)
		for p := range 50 {
			procs = append(procs, snapshot.Process{PID: int64(p + 1), Name: "proc-with-a-long-name", CPUPercent: float64(i * p), Cmdline: strp("/usr/bin/something --flag")})
		}
		ids = append(ids, mustIngest(t, s, req("h", "k", t0.Add(time.Duration(i)*time.Second), procs...)).SnapshotID)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rep, err := Check(ctx, dir, nil)
	if err != nil || len(rep.Problems) != 0 || rep.Snapshots != 20 || rep.Hosts != 1 {
		t.Fatalf("sound store: %+v %v", rep, err)
	}
	db, err := sql.Open("sqlite3", dir+"/"+DBFile)
	if err != nil {
		t.Fatal(err)
	}
	var blob []byte
	if err := db.QueryRow("SELECT procs FROM snapshots WHERE id = ?", ids[0]).Scan(&blob); err != nil {
		t.Fatal(err)
	}
	if blob[0]&^blobKindMask != blobS2 {
		t.Fatalf("keyframe blob not compressed (%x): the CRC is not exercised", blob[0])
	}
	blob[len(blob)/2] ^= 0x10
	if _, err := db.Exec("UPDATE snapshots SET procs = ? WHERE id = ?", blob, ids[0]); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	rep, err = Check(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Damaged == 0 || len(rep.Problems) == 0 || !strings.Contains(rep.Problems[0], "snapshot 1 ") {
		t.Fatalf("damaged keyframe not reported: %+v", rep)
	}
	t.Logf("%+v", rep)
}
