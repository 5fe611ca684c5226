package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/procscope/procscope/internal/testutil"
)

// Aggregators starting together apply the migrations once (advisory
// lock); a schema newer than the program's is refused untouched.
func TestPostgresMigrations(t *testing.T) {
	url := testutil.PostgresURL(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := OpenPostgres(ctx, url, Options{PruneInterval: -1})
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close(ctx) }()
	files, _ := filepath.Glob("migrations_postgres/*.sql")
	var n, maxV int
	if err := c.QueryRow(ctx, "SELECT count(*), max(version) FROM procscope_schema").Scan(&n, &maxV); err != nil {
		t.Fatal(err)
	}
	if n != len(files) || maxV != len(files) {
		t.Fatalf("%d versions recorded, newest %d; %d migrations", n, maxV, len(files))
	}
	if _, err := c.Exec(ctx, "INSERT INTO procscope_schema (version) VALUES ($1)", maxV+1); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPostgres(ctx, url, Options{PruneInterval: -1}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("opened a database with a newer schema: %v", err)
	}
	if _, err := OpenPostgres(ctx, "postgres://u:secret@[bad", Options{}); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("bad URL: %v", err)
	}
}

// Retention runs on one aggregator at a time: while another holds the
// lock a pass deletes nothing, and the next pass does the work.
func TestPostgresPruneOneAtATime(t *testing.T) {
	url := testutil.PostgresURL(t)
	ctx := context.Background()
	now := t0.Add(48 * time.Hour)
	s := openTestPostgres(t, url, Options{RetentionRaw: time.Hour, Retention: 2 * time.Hour, Now: func() time.Time { return now }})
	for i := range 5 {
		mustIngest(t, s, req("a", "k", t0.Add(time.Duration(i)*time.Second)))
	}
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close(ctx) }()
	if _, err := c.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(pgPruneLock)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Prune(ctx); err != nil || n != 0 {
		t.Fatalf("prune while another aggregator prunes: %d, %v", n, err)
	}
	if _, err := c.Exec(ctx, "SELECT pg_advisory_unlock($1)", int64(pgPruneLock)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Prune(ctx); err != nil || n != 5 {
		t.Fatalf("prune: %d, %v; want 5", n, err)
	}
}

// One aggregator hears of the snapshots another stores and of the hosts
// it deletes, and not of its own snapshots (the API announced those).
func TestPostgresListen(t *testing.T) {
	url := testutil.PostgresURL(t)
	a := openTestPostgres(t, url, Options{})
	b := openTestPostgres(t, url, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	snaps := make(chan NewSnapshot, 10)
	hosts := make(chan string, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Listen(ctx, func(n NewSnapshot) { snaps <- n }, func(h string) { hosts <- h })
	}()
	defer func() { cancel(); <-done }()
	// LISTEN takes effect once its connection is up: poll with ingests of
	// b until one is heard (bounded).
	var got NewSnapshot
	var want IngestResult
	deadline := time.After(20 * time.Second)
	for i := 0; got.SnapshotID == 0; i++ {
		want = mustIngest(t, b, req("web<1>&☃", "k", t0.Add(time.Duration(i)*time.Second)))
		select {
		case got = <-snaps:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("a never heard of b's snapshots")
		}
	}
	for len(snaps) > 0 { // earlier ones, heard late
		got = <-snaps
	}
	if got.SnapshotID != want.SnapshotID || got.Hostname != "web<1>&☃" || got.CapturedAt.IsZero() {
		t.Fatalf("heard %+v, want snapshot %d", got, want.SnapshotID)
	}
	mustIngest(t, a, req("own", "k", t0))
	mustIngest(t, a, req("web<1>&☃", "k", t0.Add(-time.Hour))) // a now holds a delta base for it
	if _, ok := a.bases.Load("web<1>&☃"); !ok {
		t.Fatal("a has no delta base after an ingest")
	}
	if err := b.DeleteHost(context.Background(), "web<1>&☃"); err != nil {
		t.Fatal(err)
	}
	select {
	case h := <-hosts:
		if h != "web<1>&☃" {
			t.Fatalf("deleted host heard as %q", h)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a never heard of the deletion")
	}
	select {
	case n := <-snaps:
		t.Fatalf("a heard of its own snapshot: %+v", n)
	default:
	}
	if _, ok := a.bases.Load("web<1>&☃"); ok {
		t.Fatal("a kept the deleted host's delta base")
	}
}
