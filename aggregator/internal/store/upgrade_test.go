package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// Upgrades: every schema change is a numbered migration, and the database
// of the version before it is committed under testdata/ as
// schema-vN.db (with schema-vN.json, what it must read back as). Today's
// code must open each of them, migrate it and read every host and
// snapshot back. A new migration NNNN needs schema-v(NNNN-1).db, which
// `go test ./aggregator/internal/store -run TestSchemaFixtures -update`
// writes from the migrations 1..NNNN-1 alone (fixtures already committed
// are never rewritten: they are what older binaries wrote).

var update = flag.Bool("update", false, "write the missing schema fixtures testdata/schema-vN.db from the migrations 1..N")

// migrationFiles lists the embedded migrations in order.
func migrationFiles(t *testing.T) []string {
	t.Helper()
	files, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(files, func(i, j int) bool {
		a, _, _ := strings.Cut(filepath.Base(files[i]), "_")
		b, _, _ := strings.Cut(filepath.Base(files[j]), "_")
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x < y
	})
	return files
}

// fixtureSnapshot is one snapshot of a fixture as its JSON records it.
type fixtureSnapshot struct {
	Hostname   string             `json:"hostname"`
	CapturedAt time.Time          `json:"captured_at"`
	SystemInfo json.RawMessage    `json:"system_info"`
	Processes  []snapshot.Process `json:"processes"`
}

// fixtureContent is what the generator writes: two hosts, each with a
// keyframe and two deltas against it (so both blob kinds of that version
// are read back), hostile text included.
func fixtureContent() []fixtureSnapshot {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	var out []fixtureSnapshot
	for hi, host := range []string{"alpha.example", "beta-<script>"} {
		procs := []snapshot.Process{
			{PID: 1, Name: "systemd", CPUPercent: 0.1, MemoryMB: 12.5, Cmdline: strp("/sbin/init"), Username: "root", Status: "sleeping", NumThreads: 1, CreateTime: "2026-01-01T00:00:00Z", MemoryPercent: 0.2},
			{PID: 2, Name: "kthreadd", Cmdline: strp("")},
			{PID: 300 + int64(hi), PPID: 1, Name: "nginx\x1b[31m", CPUPercent: 12.25, MemoryMB: 80, Username: "www-data", Status: "running", NumThreads: 4},
		}
		for step := range 3 {
			at := t0.Add(time.Duration(hi*10+step) * time.Second)
			ps := make([]snapshot.Process, len(procs))
			copy(ps, procs)
			ps[2].CPUPercent += float64(step) * 1.5
			if step == 2 {
				ps = append(ps, snapshot.Process{PID: 900, PPID: 300, Name: "worker", CPUPercent: 3, MemoryMB: 5.75})
			}
			sys := fmt.Sprintf(`{"os":{"name":"Debian GNU/Linux","kernel":"6.1.0"},"memory":{"total":8000000000,"used":%d},"uptime_seconds":%d}`,
				1_000_000_000+step*1000, 100+step)
			out = append(out, fixtureSnapshot{Hostname: host, CapturedAt: at, SystemInfo: json.RawMessage(sys), Processes: ps})
		}
	}
	return out
}

// writeFixture builds testdata/schema-vN.db with the migrations 1..n only,
// and stores fixtureContent in it as the store writes snapshots: per host
// a keyframe, then deltas against it.
func writeFixture(t *testing.T, files []string, n int, path string) {
	t.Helper()
	_ = os.Remove(path)
	db, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?_foreign_keys=on&_auto_vacuum=incremental")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	db.SetMaxOpenConns(1)
	for _, f := range files[:n] {
		body, err := migrationFS.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", n)); err != nil {
		t.Fatal(err)
	}
	hostIDs := map[string]int64{}
	var base []snapshot.Process
	var baseSys [][]byte
	var baseID int64
	for _, fs := range fixtureContent() {
		ms := fs.CapturedAt.UnixMilli()
		id, ok := hostIDs[fs.Hostname]
		if !ok {
			k := key("key of " + fs.Hostname)
			res, err := db.Exec(`INSERT INTO hosts (hostname, key_hash, created_ms, last_seen_ms) VALUES (?, ?, ?, ?)`,
				fs.Hostname, k[:], ms, ms)
			if err != nil {
				t.Fatal(err)
			}
			id, _ = res.LastInsertId()
			hostIDs[fs.Hostname] = id
			procs, sys := sealBlob(blobFull, encodeFull(fs.Processes)), sealBlob(blobFull, fs.SystemInfo)
			res, err = db.Exec(`INSERT INTO snapshots (host_id, captured_ms, process_count, base_id, sys, procs) VALUES (?, ?, ?, NULL, ?, ?)`,
				id, ms, len(fs.Processes), sys, procs)
			if err != nil {
				t.Fatal(err)
			}
			baseID, _ = res.LastInsertId()
			base, baseSys = fs.Processes, sysTokens(fs.SystemInfo)
			continue
		}
		procs := sealBlob(blobDelta, encodeDelta(fs.Processes, base, baseIndex(base)))
		sys := sealBlob(blobFull, fs.SystemInfo)
		if raw, ok := encodeSysDelta(baseSys, fs.SystemInfo); ok {
			sys = sealBlob(blobDelta, raw)
		}
		if _, err := db.Exec(`INSERT INTO snapshots (host_id, captured_ms, process_count, base_id, sys, procs) VALUES (?, ?, ?, ?, ?, ?)`,
			id, ms, len(fs.Processes), baseID, sys, procs); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`UPDATE hosts SET last_seen_ms = ? WHERE id = ?`, ms, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec("VACUUM"); err != nil {
		t.Fatal(err)
	}
	want, err := json.MarshalIndent(fixtureContent(), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(strings.TrimSuffix(path, ".db")+".json", append(want, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSchemaFixtures opens the database of every schema version before
// today's with today's code: it migrates, and every host, snapshot and
// process list reads back as that version stored it.
func TestSchemaFixtures(t *testing.T) {
	files := migrationFiles(t)
	latest := len(files)
	if *update {
		for n := 1; n <= latest; n++ {
			path := filepath.Join("testdata", fmt.Sprintf("schema-v%d.db", n))
			if _, err := os.Stat(path); err == nil {
				continue // committed: what an older binary wrote, never rewritten
			}
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			writeFixture(t, files, n, path)
			t.Logf("wrote %s", path)
		}
	}
	// Every migration N needs the database of version N-1 (version 0 is
	// the empty file every other test starts from).
	for n := 1; n < latest; n++ {
		if _, err := os.Stat(filepath.Join("testdata", fmt.Sprintf("schema-v%d.db", n))); err != nil {
			t.Errorf("migration %s has no fixture of the version before it: run this test with -update and commit testdata/schema-v%d.{db,json}",
				filepath.Base(files[n]), n)
		}
	}
	fixtures, _ := filepath.Glob(filepath.Join("testdata", "schema-v*.db"))
	if len(fixtures) == 0 {
		t.Fatal("no schema fixtures under testdata/")
	}
	for _, fx := range fixtures {
		t.Run(filepath.Base(fx), func(t *testing.T) {
			checkFixture(t, fx, latest)
		})
	}
}

func checkFixture(t *testing.T, fixture string, latest int) {
	raw, err := os.ReadFile(strings.TrimSuffix(fixture, ".db") + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var want []fixtureSnapshot
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DBFile), src, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := openTest(t, dir, Options{PruneInterval: -1})
	var version int
	if err := s.rdb.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != latest {
		t.Fatalf("schema version %d after opening, want %d", version, latest)
	}
	hosts, err := s.Hosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byHost := map[string][]fixtureSnapshot{}
	for _, w := range want {
		byHost[w.Hostname] = append(byHost[w.Hostname], w)
	}
	if len(hosts) != len(byHost) {
		t.Fatalf("%d hosts, want %d", len(hosts), len(byHost))
	}
	for _, h := range hosts {
		snaps := byHost[h.Hostname]
		if len(snaps) == 0 {
			t.Fatalf("unexpected host %q", h.Hostname)
		}
		last := snaps[len(snaps)-1]
		if !h.LatestCapturedAt.Equal(last.CapturedAt) || h.OS == "" {
			t.Errorf("host %q: latest %s os %q, want %s", h.Hostname, h.LatestCapturedAt, h.OS, last.CapturedAt)
		}
		metas, err := s.SnapshotsBetween(ctx, h.Hostname, time.Unix(0, 0), time.Now(), 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(metas) != len(snaps) {
			t.Fatalf("host %q: %d snapshots, want %d", h.Hostname, len(metas), len(snaps))
		}
		for i, m := range metas {
			w := snaps[i]
			if !m.CapturedAt.Equal(w.CapturedAt) || m.ProcessCount != len(w.Processes) {
				t.Errorf("host %q snapshot %d: captured %s, %d processes; want %s, %d", h.Hostname, m.ID, m.CapturedAt, m.ProcessCount, w.CapturedAt, len(w.Processes))
			}
			if !jsonEqual(t, m.SystemInfo, w.SystemInfo) {
				t.Errorf("host %q snapshot %d: system_info %s, want %s", h.Hostname, m.ID, m.SystemInfo, w.SystemInfo)
			}
			procs, err := s.Processes(ctx, m.ID)
			if err != nil {
				t.Fatalf("host %q snapshot %d: %v", h.Hostname, m.ID, err)
			}
			if !reflect.DeepEqual(procs, w.Processes) {
				t.Errorf("host %q snapshot %d: processes\n%+v\nwant\n%+v", h.Hostname, m.ID, procs, w.Processes)
			}
		}
	}
	// The upgraded database takes new snapshots as any other.
	mustIngest(t, s, req("alpha.example", "key of alpha.example", want[len(want)-1].CapturedAt.Add(time.Minute),
		snapshot.Process{PID: 5, Name: "after-upgrade"}))
}

func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

// TestNewerSchemaRefused: a database written by a newer binary is refused
// with both versions named and left as it was (no silent downgrade).
func TestNewerSchemaRefused(t *testing.T) {
	latest := len(migrationFiles(t))
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, DBFile)
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", latest+7)); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenSQLite(context.Background(), dir, Options{})
	if err == nil {
		t.Fatal("opened a database with a newer schema")
	}
	want := fmt.Sprintf("schema version %d is newer than this program's (%d)", latest+7, latest)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "no downgrade") || !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("error %q does not say %q and what to do", err, want)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Fatal("the refused database was changed")
	}
}
