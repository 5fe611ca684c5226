package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
)

func openTest(tb testing.TB, dir string, opts Options) *SQLite {
	tb.Helper()
	if opts.PruneInterval == 0 {
		opts.PruneInterval = -1 // tests prune explicitly
	}
	s, err := OpenSQLite(context.Background(), dir, opts)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func key(s string) [32]byte { return sha256.Sum256([]byte(s)) }

var t0 = time.Date(2026, 11, 25, 17, 0, 0, 123e6, time.UTC)

func req(host, k string, at time.Time, procs ...snapshot.Process) *IngestRequest {
	if procs == nil {
		procs = []snapshot.Process{}
	}
	return &IngestRequest{
		Hostname:   host,
		KeyHash:    key(k),
		CapturedAt: at,
		SystemInfo: []byte(fmt.Sprintf(`{"os":{"name":"linux","distro":"debian","version":"13","arch":"x86_64"},"uptime_seconds":%d}`, at.Unix()%100000)),
		Processes:  procs,
		ReceivedAt: at.Add(time.Second),
	}
}

func strp(s string) *string { return &s }

func mustIngest(t *testing.T, s Store, r *IngestRequest) IngestResult {
	t.Helper()
	res, err := s.Ingest(context.Background(), r)
	if err != nil {
		t.Fatalf("ingest %s@%s: %v", r.Hostname, r.CapturedAt, err)
	}
	return res
}

func checkProcesses(t *testing.T, s Store, id int64, want []snapshot.Process) {
	t.Helper()
	got, err := s.Processes(context.Background(), id)
	if err != nil {
		t.Fatalf("processes of %d: %v", id, err)
	}
	if len(got) != len(want) {
		t.Fatalf("snapshot %d: %d processes, want %d", id, len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) || math.Float64bits(got[i].CPUPercent) != math.Float64bits(want[i].CPUPercent) {
			t.Fatalf("snapshot %d row %d:\n got %+v (cmdline %v)\nwant %+v (cmdline %v)", id, i, got[i], deref(got[i].Cmdline), want[i], deref(want[i].Cmdline))
		}
	}
}

func deref(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestIngestAndReadBack(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		s := be.open(t, Options{})
		ctx := context.Background()
		procs := []snapshot.Process{
			{PID: 1, PPID: 0, Name: "systemd", CPUPercent: 0.4, MemoryMB: 12.6, Cmdline: strp("/sbin/init splash")},
			{PID: 2, PPID: 0, Name: "kthreadd", Cmdline: strp("")},
			{PID: 7, PPID: 1, Name: "<script>alert(1)</script>", CPUPercent: 0.1 + 0.2, MemoryMB: 1.0 / 3,
				Username: "root", Status: "running", NumThreads: 12, CreateTime: "2026-11-25T16:00:00.5Z", MemoryPercent: 0.0001},
			{PID: 9, PPID: 9, Name: "", CPUPercent: math.MaxFloat64, MemoryMB: 5e-324}, // ppid == pid is stored as sent
			{PID: 1 << 40, PPID: 7, Name: "naïve ☃ \u2028", CPUPercent: 250.5, MemoryMB: 1e15 + 0.5},
		}
		r := req("web-1", "k1", t0, procs...)
		res := mustIngest(t, s, r)
		if !res.Created || res.SnapshotID <= 0 {
			t.Fatalf("first ingest: %+v", res)
		}
		checkProcesses(t, s, res.SnapshotID, procs)

		m, err := s.Latest(ctx, "web-1")
		if err != nil {
			t.Fatal(err)
		}
		if m.ID != res.SnapshotID || !m.CapturedAt.Equal(t0) || m.ProcessCount != len(procs) || m.Hostname != "web-1" ||
			string(m.SystemInfo) != string(r.SystemInfo) {
			t.Fatalf("latest = %+v", m)
		}
		if m2, err := s.Snapshot(ctx, res.SnapshotID); err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("snapshot(%d) = %+v, %v; want %+v", res.SnapshotID, m2, err, m)
		}
		hosts, err := s.Hosts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(hosts) != 1 || hosts[0].Hostname != "web-1" || hosts[0].LatestSnapshotID != res.SnapshotID ||
			!hosts[0].LastSeen.Equal(r.ReceivedAt.Truncate(time.Millisecond)) || hosts[0].OS != "debian 13 (linux x86_64)" {
			t.Fatalf("hosts = %+v", hosts)
		}

		for _, f := range []func() error{
			func() error { _, err := s.Latest(ctx, "nope"); return err },
			func() error { _, err := s.Latest(ctx, "WEB-1"); return err }, // case-sensitive
			func() error { _, err := s.Snapshot(ctx, res.SnapshotID+1); return err },
			func() error { _, err := s.Processes(ctx, res.SnapshotID+1); return err },
			func() error { _, err := s.Processes(ctx, -1); return err },
			func() error { _, err := s.SnapshotAt(ctx, "web-1", t0.Add(-time.Millisecond)); return err },
		} {
			if err := f(); !errors.Is(err, ErrNotFound) {
				t.Errorf("want ErrNotFound, got %v", err)
			}
		}
	})
}

// Every row of a long run with all field variants round-trips exactly,
// through keyframes and deltas alike.
func TestDeltaRoundTrip(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		s := be.open(t, Options{})
		h := newFakeHost(1, "db-1", 120)
		var reqs []*IngestRequest
		for i := range 300 {
			r := h.next()
			// Exercise every optional field changing: cmdline absent <-> "" <->
			// text, usernames, statuses, odd floats.
			p := &r.Processes[i%len(r.Processes)]
			switch i % 5 {
			case 0:
				p.Cmdline = nil
			case 1:
				p.Cmdline = strp("")
			case 2:
				p.Username, p.Status, p.CreateTime = "", "", ""
			case 3:
				p.CPUPercent, p.MemoryMB, p.MemoryPercent = math.Nextafter(1, 2), 0.1+0.7, math.SmallestNonzeroFloat64
			case 4:
				p.PPID, p.NumThreads, p.Name = p.PID, -5, "renamed\x00\xff"
			}
			r.Processes = append([]snapshot.Process(nil), r.Processes...)
			reqs = append(reqs, r)
		}
		ids := ingestAll(t, s, reqs)
		// Metadata first, with empty caches: system_info of deltas is rebuilt
		// from the keyframe's system_info alone.
		for i, id := range ids {
			m, err := s.Snapshot(context.Background(), id)
			if err != nil || string(m.SystemInfo) != string(reqs[i].SystemInfo) {
				t.Fatalf("system_info of %d: %v\n got %s\nwant %s", id, err, m.SystemInfo, reqs[i].SystemInfo)
			}
		}
		if n := cacheRows(s); n != 0 {
			t.Fatalf("reading metadata decoded %d process rows", n)
		}
		deltas := be.queryInt(t, "SELECT count(*) FROM snapshots WHERE base_id IS NOT NULL")
		if deltas < 200 {
			t.Errorf("only %d of 300 snapshots are deltas", deltas)
		}
		for i, id := range ids {
			checkProcesses(t, s, id, reqs[i].Processes)
			m, err := s.Snapshot(context.Background(), id)
			if err != nil || string(m.SystemInfo) != string(reqs[i].SystemInfo) {
				t.Fatalf("system_info of %d: %v\n got %s\nwant %s", id, err, m.SystemInfo, reqs[i].SystemInfo)
			}
		}
	})
}

func TestRetryIsIdempotent(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		s := be.open(t, Options{})
		ctx := context.Background()
		r := req("web-1", "k1", t0, snapshot.Process{PID: 1, Name: "a"})
		first := mustIngest(t, s, r)
		retry := *r
		retry.CapturedAt = t0.Add(400 * time.Microsecond) // same millisecond
		retry.ReceivedAt = r.ReceivedAt.Add(time.Minute)
		retry.Processes = []snapshot.Process{{PID: 2, Name: "different"}}
		second := mustIngest(t, s, &retry)
		if second.Created || second.SnapshotID != first.SnapshotID {
			t.Fatalf("retry = %+v, first = %+v", second, first)
		}
		checkProcesses(t, s, first.SnapshotID, r.Processes) // the retry stored nothing
		st, _ := s.Stats(ctx)
		if st.Snapshots != 1 {
			t.Fatalf("%d snapshots after a retry", st.Snapshots)
		}
		hosts, _ := s.Hosts(ctx)
		if !hosts[0].LastSeen.Equal(retry.ReceivedAt.Truncate(time.Millisecond)) {
			t.Fatalf("last_seen %s, want the retry's %s", hosts[0].LastSeen, retry.ReceivedAt)
		}
	})
}

func TestWrongKeyChangesNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		s := be.open(t, Options{})
		ctx := context.Background()
		mustIngest(t, s, req("web-1", "k1", t0))
		before, _ := s.Hosts(ctx)

		bad := req("web-1", "k2", t0.Add(time.Minute))
		bad.ReceivedAt = t0.Add(time.Hour)
		if _, err := s.Ingest(ctx, bad); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("wrong key: %v", err)
		}
		// A retry of the stored snapshot with the wrong key is rejected too.
		if _, err := s.Ingest(ctx, req("web-1", "k2", t0)); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("wrong key retry: %v", err)
		}
		after, _ := s.Hosts(ctx)
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("rejected ingest changed hosts: %+v -> %+v", before, after)
		}
		if st, _ := s.Stats(ctx); st.Snapshots != 1 {
			t.Fatalf("%d snapshots", st.Snapshots)
		}
		if _, err := s.CheckKey(ctx, "web-1", key("k2")); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("CheckKey wrong: %v", err)
		}
		if ks, err := s.CheckKey(ctx, "web-1", key("k1")); err != nil || ks != KeyMatches {
			t.Fatalf("CheckKey right: %v %v", ks, err)
		}
		if ks, err := s.CheckKey(ctx, "new-host", key("anything")); err != nil || ks != HostUnknown {
			t.Fatalf("CheckKey new host: %v %v", ks, err)
		}
	})
}

// Many first ingests of one new hostname race with different keys: exactly
// one key is bound, every other caller gets ErrKeyMismatch.
func TestRacingFirstIngests(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		s := be.open(t, Options{})
		ctx := context.Background()
		const n = 64
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				_, errs[i] = s.Ingest(ctx, req("race", fmt.Sprint("key", i), t0.Add(time.Duration(i)*time.Second)))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("two winners: %d and %d", winner, i)
				}
				winner = i
			case !errors.Is(err, ErrKeyMismatch):
				t.Fatalf("caller %d: %v", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("nobody won")
		}
		if _, err := s.CheckKey(ctx, "race", key(fmt.Sprint("key", winner))); err != nil {
			t.Fatalf("winner's key: %v", err)
		}
		if st, _ := s.Stats(ctx); st.Snapshots != 1 || st.Hosts != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// Two stores on one file (two aggregator processes): the UNIQUE constraint,
// not the writer goroutine, decides.
func TestRacingFirstIngestsTwoStores(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		a, b := be.open(t, Options{}), be.open(t, Options{})
		ctx := context.Background()
		for i := range 20 {
			host := fmt.Sprint("h", i)
			var wg sync.WaitGroup
			var ea, eb error
			wg.Go(func() { _, ea = a.Ingest(ctx, req(host, "ka", t0)) })
			wg.Go(func() { _, eb = b.Ingest(ctx, req(host, "kb", t0.Add(time.Second))) })
			wg.Wait()
			if (ea == nil) == (eb == nil) || !errors.Is(errors.Join(ea, eb), ErrKeyMismatch) {
				t.Fatalf("host %s: a=%v b=%v", host, ea, eb)
			}
		}
	})
}

func TestResetKey(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		s := be.open(t, Options{})
		ctx := context.Background()
		mustIngest(t, s, req("web-1", "old", t0))
		if err := s.ResetKey(ctx, "web-1", nil); err != nil {
			t.Fatal(err)
		}
		if err := s.ResetKey(ctx, "unknown", nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("reset unknown: %v", err)
		}
		if n := be.queryInt(t, "SELECT count(*) FROM hosts WHERE hostname = 'web-1' AND key_hash IS NULL"); n != 1 {
			t.Fatal("key_hash is not NULL after a reset")
		}
		// The HTTP layer asks CheckKey before it stores: an unbound host
		// accepts any key until one binds.
		newHash := req("web-1", "new", t0).KeyHash
		if _, err := s.CheckKey(ctx, "web-1", newHash); err != nil {
			t.Fatalf("CheckKey after reset: %v", err)
		}
		mustIngest(t, s, req("web-1", "new", t0.Add(time.Second)))
		if _, err := s.CheckKey(ctx, "web-1", req("web-1", "old", t0).KeyHash); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("CheckKey with the old key after rebinding: %v", err)
		}
		if _, err := s.Ingest(ctx, req("web-1", "old", t0.Add(2*time.Second))); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("old key after rebinding: %v", err)
		}
	})
}

func TestLateReplayDoesNotBecomeLatest(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		s := be.open(t, Options{})
		ctx := context.Background()
		newest := mustIngest(t, s, req("h", "k", t0))
		late := mustIngest(t, s, req("h", "k", t0.Add(-time.Hour)))
		if late.SnapshotID <= newest.SnapshotID {
			t.Fatalf("ids %d then %d", newest.SnapshotID, late.SnapshotID)
		}
		m, err := s.Latest(ctx, "h")
		if err != nil || m.ID != newest.SnapshotID {
			t.Fatalf("latest = %d, %v; want %d", m.ID, err, newest.SnapshotID)
		}
		at, err := s.SnapshotAt(ctx, "h", t0.Add(-time.Minute))
		if err != nil || at.ID != late.SnapshotID {
			t.Fatalf("at = %d, %v; want %d", at.ID, err, late.SnapshotID)
		}
		list, err := s.SnapshotsBetween(ctx, "h", t0.Add(-2*time.Hour), t0, 10)
		if err != nil || len(list) != 2 || list[0].ID != late.SnapshotID || list[1].ID != newest.SnapshotID {
			t.Fatalf("between = %+v, %v", list, err)
		}
		if list, _ := s.SnapshotsBetween(ctx, "h", t0.Add(-2*time.Hour), t0, 1); len(list) != 1 {
			t.Fatalf("limit 1 gave %d", len(list))
		}
	})
}

// Ids are never reused: not after deleting the newest rows, not after
// reopening the database.
func TestIDsNeverReused(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		s := be.open(t, Options{})
		ctx := context.Background()
		var maxID int64
		for i := range 5 {
			maxID = mustIngest(t, s, req("gone", "k", t0.Add(time.Duration(i)*time.Second))).SnapshotID
		}
		if err := s.DeleteHost(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteHost(ctx, "gone"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := s.Processes(ctx, maxID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted snapshot: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2 := be.open(t, Options{})
		res := mustIngest(t, s2, req("gone", "other-key", t0)) // the host is new again
		if res.SnapshotID <= maxID {
			t.Fatalf("id %d reused (max was %d)", res.SnapshotID, maxID)
		}
	})
}

func TestInvalidInputStoresNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		s := be.open(t, Options{})
		ctx := context.Background()
		f := func(name string, mutate func(r *IngestRequest)) {
			t.Helper()
			r := req("web-1", "k", t0, snapshot.Process{PID: 1}, snapshot.Process{PID: 2})
			mutate(r)
			if _, err := s.Ingest(ctx, r); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: want ErrInvalid, got %v", name, err)
			}
		}
		f("empty hostname", func(r *IngestRequest) { r.Hostname = "" })
		f("long hostname", func(r *IngestRequest) { r.Hostname = string(make([]byte, 254)) })
		f("control char", func(r *IngestRequest) { r.Hostname = "a\nb" })
		f("C1 control", func(r *IngestRequest) { r.Hostname = "a\u0085b" })
		f("bad utf-8", func(r *IngestRequest) { r.Hostname = "a\xffb" })
		f("no time", func(r *IngestRequest) { r.CapturedAt = time.Time{} })
		f("sysinfo array", func(r *IngestRequest) { r.SystemInfo = []byte(`[1]`) })
		f("sysinfo broken", func(r *IngestRequest) { r.SystemInfo = []byte(`{"a":`) })
		f("sysinfo null", func(r *IngestRequest) { r.SystemInfo = nil })
		f("duplicate pid", func(r *IngestRequest) { r.Processes[1].PID = 1 })
		f("negative pid", func(r *IngestRequest) { r.Processes[1].PID = -3 })
		f("nil request", func(r *IngestRequest) { *r = IngestRequest{} })
		if _, err := s.Ingest(ctx, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("nil: %v", err)
		}
		if st, _ := s.Stats(ctx); st.Hosts != 0 || st.Snapshots != 0 {
			t.Fatalf("invalid input stored something: %+v", st)
		}
	})
}

func TestOptionsAndSchema(t *testing.T) {
	ctx := context.Background()
	bad := []Options{
		{RetentionRaw: -time.Hour},
		{RetentionRaw: 48 * time.Hour, RetentionMid: 24 * time.Hour},
		{RetentionMid: 10 * 24 * time.Hour, Retention: 9 * 24 * time.Hour},
		{PruneBatch: -1},
	}
	for _, o := range bad {
		if _, err := OpenSQLite(ctx, t.TempDir(), o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	for _, o := range []Options{{Retention: 3 * 24 * time.Hour}, {RetentionRaw: 10 * 24 * time.Hour}, {RetentionRaw: time.Hour, Retention: time.Hour}} {
		s, err := OpenSQLite(ctx, t.TempDir(), o)
		if err != nil {
			t.Errorf("options %+v refused: %v", o, err)
			continue
		}
		if s.opts.RetentionMid < s.opts.RetentionRaw || s.opts.RetentionMid > s.opts.Retention {
			t.Errorf("options %+v: 5-minute tier %s outside raw %s..retention %s", o, s.opts.RetentionMid, s.opts.RetentionRaw, s.opts.Retention)
		}
		_ = s.Close()
	}
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	var version int
	var mode, fk string
	var sync_, autoVac int
	if err := s.wdb.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("migrations/*.sql")
	if version != len(files) || version == 0 {
		t.Fatalf("user_version %d, %d migrations", version, len(files))
	}
	_ = s.wdb.QueryRow("PRAGMA journal_mode").Scan(&mode)
	_ = s.wdb.QueryRow("PRAGMA synchronous").Scan(&sync_)
	_ = s.wdb.QueryRow("PRAGMA foreign_keys").Scan(&fk)
	_ = s.wdb.QueryRow("PRAGMA auto_vacuum").Scan(&autoVac)
	if mode != "wal" || sync_ != 2 || fk != "1" || autoVac != 2 {
		t.Fatalf("journal_mode=%s synchronous=%d foreign_keys=%s auto_vacuum=%d", mode, sync_, fk, autoVac)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ingest(ctx, req("a", "k", t0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("ingest after close: %v", err)
	}

	// Reopening applies nothing; a newer schema is refused untouched.
	s2 := openTest(t, dir, Options{})
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", version+1)); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	if _, err := OpenSQLite(ctx, dir, Options{}); err == nil {
		t.Fatal("opened a database with a newer schema")
	}
}

// An admin command in another process deletes a host while the running
// store holds its keyframe in memory: the next ingest must not reference
// the deleted keyframe.
func TestHostDeletedByAnotherProcess(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		var logs bytes.Buffer
		s := be.open(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		admin := be.open(t, Options{})
		ctx := context.Background()
		h := newFakeHost(1, "web-1", 30)
		for range 3 {
			mustIngest(t, s, h.next())
		}
		if err := admin.DeleteHost(ctx, "web-1"); err != nil {
			t.Fatal(err)
		}
		r := h.next()
		res := mustIngest(t, s, r)
		checkProcesses(t, s, res.SnapshotID, r.Processes)
		r2 := h.next()
		res2 := mustIngest(t, s, r2)
		checkProcesses(t, s, res2.SnapshotID, r2.Processes)
		// The writer saw that another connection committed (data_version)
		// and dropped what it remembered of the host before using it: the
		// foreign-key safety net for a stale keyframe was not needed.
		if strings.Contains(logs.String(), "delta base disappeared") {
			t.Fatalf("the writer used a stale keyframe; log:\n%s", logs.String())
		}
	})
}

// Close while ingests are in flight: every caller gets an answer (stored or
// ErrClosed), nothing hangs or panics, and what was acknowledged is there.
func TestCloseDuringIngest(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSQLite(context.Background(), dir, Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []int64
	for g := range 8 {
		wg.Go(func() {
			h := newFakeHost(uint64(g), fmt.Sprint("h", g), 50)
			for range 200 {
				res, err := s.Ingest(context.Background(), h.next())
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("ingest: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, res.SnapshotID)
				mu.Unlock()
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 50 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s2 := openTest(t, dir, Options{})
	for _, id := range acked {
		if _, err := s2.Snapshot(context.Background(), id); err != nil {
			t.Fatalf("acknowledged %d: %v", id, err)
		}
	}
	t.Logf("%d acknowledged before Close", len(acked))
}

// TestCommitInterval: ingests arriving together share commits (the
// counters /metrics exports say how many), and each is still answered
// only once stored.
func TestCommitInterval(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{CommitInterval: 50 * time.Millisecond})
	// One ingest first: the writer's clock starts with a batch.
	mustIngest(t, s, req("warm", "k", t0))
	const n = 40
	var wg sync.WaitGroup
	ids := make([]int64, n)
	for i := range n {
		wg.Go(func() {
			// Spread over 40 ms: apart enough that each would otherwise
			// find the writer idle and commit alone.
			time.Sleep(time.Duration(i) * time.Millisecond)
			res, err := s.Ingest(context.Background(), req(fmt.Sprintf("h%02d", i), "k", t0))
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = res.SnapshotID
		})
	}
	wg.Wait()
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.CommittedWrites != n+1 {
		t.Fatalf("committed writes %d, want %d", st.CommittedWrites, n+1)
	}
	// Within 50 ms of each other, they share a commit or two.
	if st.Commits > 5 {
		t.Fatalf("%d commits for %d writes: the writer did not gather", st.Commits, st.CommittedWrites)
	}
	for i, id := range ids {
		if _, err := s.Snapshot(context.Background(), id); err != nil {
			t.Fatalf("ingest %d acknowledged id %d but it is not stored: %v", i, id, err)
		}
	}
	t.Logf("%d writes in %d commits", st.CommittedWrites, st.Commits)
}

// TestWALStartsAgainUnderLoad: with the writer never idle, the WAL is still
// checkpointed to its end and reused from its start, so it stays a fraction
// of what was written through it instead of growing with every commit.
func TestWALStartsAgainUnderLoad(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{checkpointEvery: 20 * time.Millisecond, CommitInterval: -1})
	procs := make([]snapshot.Process, 50)
	for i := range procs {
		procs[i] = snapshot.Process{PID: int64(i + 1), Name: fmt.Sprintf("proc-%d", i), Username: "root"}
	}
	// Enough commits that the bound below (a share of what a WAL never
	// started again would hold) stays well above the largest WAL a busy
	// machine leaves between two checkpoints: the WAL's size is its
	// high-water mark, which does not grow with the run, while the bound
	// does.
	const writers, each = 4, 1500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				// Changing CPU figures: every snapshot is a new delta.
				p := slices.Clone(procs)
				for j := range p {
					p[j].CPUPercent = float64((i*j + w) % 97)
				}
				r := req(fmt.Sprintf("host-%d", w), "k", t0.Add(time.Duration(i)*time.Second), p...)
				if _, err := s.Ingest(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	written := s.commits.Load() // each commit appends at least a few pages
	fi, err := os.Stat(s.Path() + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d commits, WAL %d bytes", written, fi.Size())
	// Checkpoints are not commits: the writer's caches stayed valid
	// (data_version moved once, for the first batch).
	if s.w.versionChanges != 1 {
		t.Errorf("data_version moved %d times with no other writer", s.w.versionChanges)
	}
	// Every commit writes at least 3 pages (table, index, hosts): the WAL
	// would hold them all if it never started again.
	if grown := written * 3 * 4096; fi.Size() > grown/4 {
		t.Fatalf("WAL is %d bytes after %d commits: it is not reused", fi.Size(), written)
	}
}

// A key reset by an admin command in another process: the running store
// must let the host bind a new key, although it remembers the old one.
func TestKeyResetByAnotherProcess(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		s := be.open(t, Options{})
		admin := be.open(t, Options{})
		ctx := context.Background()
		h := newFakeHost(2, "db-1", 10)
		for range 2 {
			mustIngest(t, s, h.next())
		}
		if err := admin.ResetKey(ctx, "db-1", nil); err != nil {
			t.Fatal(err)
		}
		r := h.next()
		r.KeyHash = key("new key")
		mustIngest(t, s, r)
		old := h.next()
		if _, err := s.Ingest(ctx, old); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("the old key after a reset and a new binding: %v, want ErrKeyMismatch", err)
		}
		r = h.next()
		r.KeyHash = key("new key")
		mustIngest(t, s, r)
	})
}

// An ingest that fails after it wrote (here a trigger makes updating the
// host's last_seen fail, after the snapshot row went in) rolls back its
// whole batch: it is not acknowledged, nothing of it stays, and the store
// goes on storing.
func TestIngestFailingAfterAWrite(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	ctx := context.Background()
	mustIngest(t, s, req("ok", "k", t0))
	mustIngest(t, s, req("bad", "k", t0))
	db, err := sql.Open("sqlite3", filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	if _, err := db.Exec(`CREATE TRIGGER fail_touch BEFORE UPDATE OF last_seen_ms ON hosts
		WHEN NEW.hostname = 'bad' BEGIN SELECT RAISE(ABORT, 'touch refused'); END`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ingest(ctx, req("bad", "k", t0.Add(time.Second))); err == nil || !strings.Contains(err.Error(), "touch refused") {
		t.Fatalf("ingest failing after its insert: %v", err)
	}
	mustIngest(t, s, req("ok", "k", t0.Add(time.Second)))
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM snapshots JOIN hosts ON hosts.id = host_id WHERE hostname = 'bad'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("host bad has %d snapshots, want only the first", n)
	}
	if _, err := db.Exec(`DROP TRIGGER fail_touch`); err != nil {
		t.Fatal(err)
	}
	if res := mustIngest(t, s, req("bad", "k", t0.Add(time.Second))); !res.Created {
		t.Fatal("the retry found a snapshot that was never acknowledged")
	}
}

// Stats.DatabaseBytes counts the WAL and shared-memory files beside the
// database file, and a missing one as zero.
func TestStatsDatabaseBytes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.db")
	for _, f := range []struct {
		suffix string
		n      int
	}{{"", 4096}, {"-wal", 1000}} {
		if err := os.WriteFile(path+f.suffix, make([]byte, f.n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := dbFileBytes(path); got != 5096 {
		t.Fatalf("dbFileBytes = %d, want 5096 (file + -wal, no -shm)", got)
	}
	if got := dbFileBytes(filepath.Join(dir, "missing.db")); got != 0 {
		t.Fatalf("dbFileBytes of a missing database = %d, want 0", got)
	}

	s := openTest(t, t.TempDir(), Options{})
	st, err := s.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.DatabaseBytes == 0 || st.DatabaseBytes != dbFileBytes(s.Path()) {
		t.Fatalf("Stats.DatabaseBytes = %d, files on disk %d", st.DatabaseBytes, dbFileBytes(s.Path()))
	}
}
