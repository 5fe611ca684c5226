package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/internal/testutil"
)

// waitFor polls cond (bounded) and fails the test when it never holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}

// Concurrent ingests share a transaction, and each keeps its own answer:
// both flushers are held on a table lock with one ingest each, ten more
// queue meanwhile, and once the lock goes they are committed in one or
// two batches, a wrong key, an unknown host and a retry among them.
func TestPostgresGroupCommit(t *testing.T) {
	url := testutil.PostgresURL(t)
	ctx := context.Background()
	s := openTestPostgres(t, url, Options{})
	if err := s.AddHost(ctx, "bound", key("right")); err != nil {
		t.Fatal(err)
	}
	locker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = locker.Close(ctx) }()
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// SHARE blocks INSERT, not reads.
	if _, err := tx.Exec(ctx, "LOCK TABLE snapshots IN SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	// Another connection: within the locker's transaction,
	// pg_stat_activity would answer from one snapshot.
	watcher, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watcher.Close(ctx) }()
	waiting := func() int {
		var n int
		if err := watcher.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%procscope_ingest_batch%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	st0, _ := s.Stats(ctx)

	proc := func(pid int64) snapshot.Process {
		return snapshot.Process{PID: pid, PPID: 1, Name: fmt.Sprintf("p%d", pid)}
	}
	type call struct {
		req  *IngestRequest
		res  IngestResult
		err  error
		want error
	}
	var calls []*call
	add := func(r *IngestRequest, want error) *call {
		c := &call{req: r, want: want}
		calls = append(calls, c)
		return c
	}
	var wg sync.WaitGroup
	run := func(c *call) { wg.Go(func() { c.res, c.err = s.Ingest(ctx, c.req) }) }
	// One for each flusher, one at a time.
	for i := range pgFlushers {
		run(add(req(fmt.Sprintf("first-%d", i), "k", t0, proc(1)), nil))
		waitFor(t, fmt.Sprintf("%d batches waiting on the lock", i+1), func() bool { return waiting() == i+1 })
	}
	queued := []*call{
		add(req("a", "ka", t0, proc(1), proc(2)), nil),
		add(req("a", "ka", t0.Add(time.Second), proc(1), proc(3)), nil),
		add(req("a", "ka", t0.Add(time.Second), proc(1), proc(3)), nil), // a retry of the one before
		add(req("b", "kb", t0, proc(7)), nil),
		add(req("b", "kb", t0.Add(time.Second), proc(7), proc(8)), nil),
		add(req("c", "kc", t0, proc(4)), nil),
		add(req("bound", "wrong", t0), ErrKeyMismatch),
		add(req("bound", "right", t0, proc(9)), nil),
		add(&IngestRequest{Hostname: "nobody", KeyHash: key("k"), CapturedAt: t0, SystemInfo: []byte(`{}`), NoCreate: true}, ErrUnknownHost),
		add(req("d", "kd", t0, proc(5)), nil),
	}
	for _, c := range queued {
		run(c)
	}
	waitFor(t, "ten ingests queued", func() bool { return len(s.batch.jobs) == len(queued) })
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	for i, c := range calls {
		if !errors.Is(c.err, c.want) || (c.want == nil && c.err != nil) {
			t.Errorf("ingest %d (%s at %s): %v, want %v", i, c.req.Hostname, c.req.CapturedAt, c.err, c.want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// The retry and its original are in the same batch, in either order.
	if r1, r2 := queued[1].res, queued[2].res; r1.Created == r2.Created || r1.SnapshotID != r2.SnapshotID {
		t.Errorf("a snapshot and its retry in one batch answered %+v and %+v, want one created and both the same id", r1, r2)
	}
	// Every created one reads back as sent.
	for i, c := range calls {
		if c.want != nil || !c.res.Created {
			continue
		}
		procs, err := s.Processes(ctx, c.res.SnapshotID)
		if err != nil {
			t.Fatal(err)
		}
		if len(procs) != len(c.req.Processes) || (len(procs) > 0 && procs[len(procs)-1].PID != c.req.Processes[len(procs)-1].PID) {
			t.Errorf("ingest %d read back %+v, sent %+v", i, procs, c.req.Processes)
		}
	}
	st1, _ := s.Stats(ctx)
	if commits := st1.Commits - st0.Commits; commits > int64(2*pgFlushers) {
		t.Errorf("%d ingests took %d commits, want at most %d (one per flusher before the lock, then at most one each)",
			len(calls), commits, 2*pgFlushers)
	}
	if w := st1.CommittedWrites - st0.CommittedWrites; w != int64(len(calls)) {
		t.Errorf("committed writes %d, want %d", w, len(calls))
	}
	if st1.Snapshots != 9 {
		t.Errorf("%d snapshots stored, want 9", st1.Snapshots)
	}
}

// A full disk in PostgreSQL (SQLSTATE disk_full, raised here by a trigger
// where a real one comes from the storage manager) refuses the batch with
// ErrStorageFull (the API's 503) and keeps nothing of it; Full() tells
// the metric, until a batch commits again.
func TestPostgresIngestDiskFull(t *testing.T) {
	url := testutil.PostgresURL(t)
	ctx := context.Background()
	s := openTestPostgres(t, url, Options{})
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close(ctx) }()
	if _, err := c.Exec(ctx, `CREATE FUNCTION test_full() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full'; END $$;
		CREATE TRIGGER test_full BEFORE INSERT ON snapshots FOR EACH ROW EXECUTE FUNCTION test_full()`); err != nil {
		t.Fatal(err)
	}
	_, err = s.Ingest(ctx, req("h", "k", t0))
	if !errors.Is(err, ErrStorageFull) || !s.Full() {
		t.Fatalf("ingest on a full disk: %v, Full() = %v; want ErrStorageFull and true", err, s.Full())
	}
	var hosts int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM hosts").Scan(&hosts); err != nil || hosts != 0 {
		t.Fatalf("%d hosts kept of the failed batch (%v)", hosts, err)
	}
	if _, err := c.Exec(ctx, "DROP TRIGGER test_full ON snapshots"); err != nil {
		t.Fatal(err)
	}
	if res := mustIngest(t, s, req("h", "k", t0)); !res.Created || s.Full() {
		t.Fatalf("after space came back: %+v, Full() = %v", res, s.Full())
	}
}

// Two aggregators storing batches of the same hosts, each in the other's
// order, at the same moment (both held on a table lock, then released
// together): the batch function takes the host rows in hostname order, so
// that neither waits for the other in a cycle (without it PostgreSQL ends
// one batch with a deadlock error).
func TestPostgresBatchesDoNotDeadlock(t *testing.T) {
	url := testutil.PostgresURL(t)
	ctx := context.Background()
	a, b := openTestPostgres(t, url, Options{}), openTestPostgres(t, url, Options{})
	hosts := []string{"x", "y", "z"}
	for _, h := range hosts {
		if err := a.AddHost(ctx, h, key("k")); err != nil {
			t.Fatal(err)
		}
	}
	locker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = locker.Close(ctx) }()
	watcher, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watcher.Close(ctx) }()
	batch := func(at time.Time, names ...string) []*pgJob {
		var out []*pgJob
		for _, h := range names {
			j := &pgJob{req: req(h, "k", at), done: make(chan struct{})}
			j.procs, j.sys = encodeFullPair(j.req)
			out = append(out, j)
		}
		return out
	}
	for round := range 5 {
		tx, err := locker.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "LOCK TABLE snapshots IN SHARE MODE"); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Duration(round) * time.Minute)
		ba := batch(at, "x", "y", "z")
		bb := batch(at.Add(time.Second), "z", "y", "x")
		var wg sync.WaitGroup
		wg.Go(func() { a.runBatch(ba, &pgBatchArgs{}) })
		wg.Go(func() { b.runBatch(bb, &pgBatchArgs{}) })
		waitFor(t, "both batches waiting on the lock", func() bool {
			var n int
			if err := watcher.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE wait_event_type = 'Lock' AND query LIKE '%procscope_ingest_batch%'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 2
		})
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for _, j := range append(ba, bb...) {
			if j.err != nil || j.status != "created" {
				t.Fatalf("round %d: %s: %s, %v", round, j.req.Hostname, j.status, j.err)
			}
		}
	}
}

// Announcements go several to a NOTIFY, each payload within PostgreSQL's
// 8,000 bytes, every snapshot once and in order; a listener reads them
// back, and the one-snapshot form of earlier versions too.
func TestPostgresNotesPacked(t *testing.T) {
	s := &Postgres{origin: "me"}
	var batch []string
	for i := range 300 {
		p, _ := json.Marshal(noteSnapshot{int64(i + 1), strings.Repeat("h", i%60) + "<&\"☃>", int64(i)})
		batch = append(batch, string(p))
	}
	payloads := s.packNotes(batch)
	if len(payloads) < 2 || len(payloads) > 10 {
		t.Fatalf("%d payloads for 300 snapshots", len(payloads))
	}
	next := int64(1)
	for _, p := range payloads {
		if len(p) > 8000 {
			t.Fatalf("payload of %d bytes", len(p))
		}
		var np notePayload
		if err := json.Unmarshal([]byte(p), &np); err != nil || np.Origin != "me" {
			t.Fatalf("payload %q: %v", p, err)
		}
		for _, sn := range np.Snapshots {
			if sn.ID != next || !strings.HasSuffix(sn.Host, "<&\"☃>") {
				t.Fatalf("snapshot %+v, want id %d", sn, next)
			}
			next++
		}
	}
	if next != 301 {
		t.Fatalf("%d snapshots announced, want 300", next-1)
	}
	var old notePayload
	if err := json.Unmarshal([]byte(`{"id":7,"host":"h","ms":5,"origin":"x"}`), &old); err != nil || old.ID != 7 || old.Host != "h" {
		t.Fatalf("the one-snapshot form read as %+v (%v)", old, err)
	}
}
