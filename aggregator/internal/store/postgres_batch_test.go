package store

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/procscope/procscope/internal/testutil"
)

// batchIngest is one ingest of a batch given to the batch functions
// directly: base > 0 stores it as a delta against that snapshot id
// (kfOf: the keyframe the named earlier ingest created).
type batchIngest struct {
	host, key string
	at        int // seconds after t0
	recv      int // ms after t0 (ReceivedAt)
	base      int64
	kfOf      string
	noCreate  bool
}

// batchAnswer is one row of a batch function's answer, with the host's
// last_seen after the batch.
type batchAnswer struct {
	Status   string
	ID, Host pgtype.Int8
}

// runBatchFn calls fn on conn with batch, in a transaction, and answers
// its rows in the batch's order and how many times procscope_ingest ran.
func runBatchFn(t *testing.T, conn *pgx.Conn, fn string, batch []batchIngest, ids map[string]int64) ([]batchAnswer, int64) {
	t.Helper()
	ctx := context.Background()
	var jobs []*pgJob
	for _, in := range batch {
		r := req(in.host, in.key, t0.Add(time.Duration(in.at)*time.Second))
		r.ReceivedAt = t0.Add(time.Duration(in.recv) * time.Millisecond)
		r.NoCreate = in.noCreate
		j := &pgJob{req: r}
		j.procs, j.sys = encodeFullPair(r)
		base := in.base
		if in.kfOf != "" {
			base = ids[in.kfOf]
		}
		if base != 0 {
			j.base = &baseFrame{keyID: base}
		}
		jobs = append(jobs, j)
	}
	var a pgBatchArgs
	a.fill(jobs)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SET LOCAL track_functions = 'all'"); err != nil {
		t.Fatal(err)
	}
	// Counts pending since the last flush of statistics, earlier
	// transactions' too: the difference is this call's.
	calls := func() int64 {
		var n pgtype.Int8
		if err := tx.QueryRow(ctx, "SELECT pg_stat_get_xact_function_calls('procscope_ingest'::regproc)").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n.Int64
	}
	before := calls()
	rows, err := tx.Query(ctx, "SELECT o_idx, o_status, o_snapshot_id, o_host_id FROM "+fn+"($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
		a.hostnames, a.keys, a.captured, a.counts, a.bases, a.sys, a.procs, a.recv, a.noCreate, a.maxHosts)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]batchAnswer, len(batch))
	for rows.Next() {
		var idx int32
		var ans batchAnswer
		if err := rows.Scan(&idx, &ans.Status, &ans.ID, &ans.Host); err != nil {
			t.Fatal(err)
		}
		out[idx-1] = ans
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
	n := calls() - before
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return out, n
}

// The set-based batch of migration 0004 answers what the per-ingest loop
// of 0003 answers (same statuses, snapshot ids, hosts, last_seen and rows),
// batch after batch on two databases with the same history, and takes the
// loop only for the batches that need it (a new host, a wrong key, an
// unbound key).
func TestPostgresBatchSetMatchesPerRow(t *testing.T) {
	ctx := context.Background()
	steps := []struct {
		name  string
		batch []batchIngest
		slow  bool // the loop runs (procscope_ingest is called)
	}{
		{"new hosts", []batchIngest{
			{host: "b", key: "kb", at: 0, recv: 5}, {host: "a", key: "ka", at: 0, recv: 3}, {host: "c", key: "kc", at: 0, recv: 1},
		}, true},
		{"steady: deltas, keyframes, a copy, hosts out of order", []batchIngest{
			{host: "c", key: "kc", at: 1, recv: 20, kfOf: "c0"},
			{host: "a", key: "ka", at: 1, recv: 30, kfOf: "a0"},
			{host: "a", key: "ka", at: 2, recv: 10},
			{host: "b", key: "kb", at: 1, recv: 40, kfOf: "b0"},
			{host: "a", key: "ka", at: 1, recv: 31, kfOf: "a0"}, // a copy of the second
		}, false},
		{"resent: every one exists", []batchIngest{
			{host: "a", key: "ka", at: 1, recv: 50, kfOf: "a0"}, {host: "b", key: "kb", at: 1, recv: 51, kfOf: "b0"},
		}, false},
		{"bases gone or another host's", []batchIngest{
			{host: "a", key: "ka", at: 3, recv: 60, base: 1 << 40}, // no such snapshot: no_base
			{host: "b", key: "kb", at: 3, recv: 61, kfOf: "a0"},    // a's keyframe: no_base
			{host: "c", key: "kc", at: 1, recv: 62, base: 1 << 40}, // stored already: exists
			{host: "c", key: "kc", at: 3, recv: 63, kfOf: "a2"},    // a delta as base: no_base
			{host: "c", key: "kc", at: 4, recv: 64, kfOf: "c0"},    // fine
			{host: "b", key: "kb", at: 4, recv: 2, noCreate: true}, // last_seen stays at b's newest
		}, false},
		{"a wrong key among known hosts", []batchIngest{
			{host: "a", key: "ka", at: 5, recv: 70}, {host: "b", key: "wrong", at: 5, recv: 71},
		}, true},
		{"an unknown host refused", []batchIngest{
			{host: "a", key: "ka", at: 6, recv: 80}, {host: "zz", key: "k", at: 6, recv: 81, noCreate: true},
		}, true},
	}
	type db struct {
		conn *pgx.Conn
		ids  map[string]int64 // "a0": the snapshot id of a at second 0
	}
	open := func() *db {
		u := testutil.PostgresURL(t)
		openTestPostgres(t, u, Options{}) // migrations
		c, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		return &db{c, map[string]int64{}}
	}
	set, rows := open(), open()
	state := func(d *db) (out []string) {
		r, err := d.conn.Query(ctx, `SELECT format('%s %s %s', h.hostname, h.last_seen_ms, coalesce(string_agg(
			format('%s@%s<-%s', s.id, s.captured_ms, s.base_id), ' ' ORDER BY s.id), ''))
			FROM hosts h LEFT JOIN snapshots s ON s.host_id = h.id GROUP BY h.id ORDER BY h.hostname`)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var s string
			if err := r.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	for _, st := range steps {
		got, calls := runBatchFn(t, set.conn, "procscope_ingest_batch", st.batch, set.ids)
		want, _ := runBatchFn(t, rows.conn, "procscope_ingest_batch_rows", st.batch, rows.ids)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: set-based answered\n%+v\nper ingest\n%+v", st.name, got, want)
		}
		if (calls > 0) != st.slow {
			t.Errorf("%s: procscope_ingest ran %d times, want the per-ingest loop %v", st.name, calls, st.slow)
		}
		if s, r := state(set), state(rows); !reflect.DeepEqual(s, r) {
			t.Errorf("%s: set-based left\n%q\nper ingest\n%q", st.name, s, r)
		}
		for i, in := range st.batch {
			if got[i].Status == "created" {
				set.ids[fmt.Sprintf("%s%d", in.host, in.at)] = got[i].ID.Int64
				rows.ids[fmt.Sprintf("%s%d", in.host, in.at)] = want[i].ID.Int64
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	// The copy in one batch: the first created, the second exists, one id.
	if got, _ := runBatchFn(t, set.conn, "procscope_ingest_batch", []batchIngest{
		{host: "a", key: "ka", at: 9, recv: 90}, {host: "a", key: "ka", at: 9, recv: 91},
	}, set.ids); got[0].Status != "created" || got[1].Status != "exists" || got[0].ID != got[1].ID {
		t.Errorf("a snapshot twice in one batch: %+v", got)
	}
}

// Two aggregators storing the same snapshot at once (an exporter's
// failover): the second batch waits on the host's row, then finds the
// snapshot the first committed, with its id.
func TestPostgresBatchSameSnapshotConcurrently(t *testing.T) {
	ctx := context.Background()
	url := testutil.PostgresURL(t)
	s := openTestPostgres(t, url, Options{})
	if err := s.AddHost(ctx, "h", key("k")); err != nil {
		t.Fatal(err)
	}
	first, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Close(ctx) }()
	tx, err := first.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	r := req("h", "k", t0)
	procs, sys := encodeFullPair(r)
	var id int64
	var status string
	if err := tx.QueryRow(ctx, `SELECT o_status, o_snapshot_id FROM procscope_ingest_batch(ARRAY['h'], $1, $2, ARRAY[0],
		ARRAY[NULL::bigint], $3, $4, ARRAY[0::bigint], ARRAY[false], ARRAY[0])`,
		[][]byte{r.KeyHash[:]}, []int64{t0.UnixMilli()}, [][]byte{sys}, [][]byte{procs}).Scan(&status, &id); err != nil || status != "created" {
		t.Fatalf("first: %s %v", status, err)
	}
	var res IngestResult
	var ierr error
	var wg sync.WaitGroup
	wg.Go(func() { res, ierr = s.Ingest(ctx, req("h", "k", t0)) })
	watcher, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watcher.Close(ctx) }()
	waitFor(t, "the second batch waiting", func() bool {
		var n int
		if err := watcher.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%procscope_ingest_batch%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if ierr != nil || res.Created || res.SnapshotID != id {
		t.Fatalf("second: %+v, %v; want exists with id %d", res, ierr, id)
	}
}
