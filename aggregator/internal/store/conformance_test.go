package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/procscope/procscope/internal/testutil"
)

// The store conformance suite: every test that goes through the Store
// interface (and the admin methods both stores have) runs against SQLite
// and against PostgreSQL, on a cluster this test binary starts (see
// testutil.PostgresURL). Tests of SQLite's own machinery (WAL,
// checkpoints, kill -9 of the writer, group commit) stay SQLite-only.

func TestMain(m *testing.M) { os.Exit(testutil.PostgresMain(m)) }

// testStore is what both stores offer the tests.
type testStore interface {
	Store
	AddHost(ctx context.Context, hostname string, keyHash [32]byte) error
	HostDeletions(ctx context.Context, afterID int64) ([]HostDeletion, error)
	ForgetHostDeletion(ctx context.Context, id int64) error
	Prune(ctx context.Context) (int64, error)
}

var (
	_ testStore = (*SQLite)(nil)
	_ testStore = (*Postgres)(nil)
)

// backend is one kind of store with one database of its own for the test.
type backend struct {
	name string
	// open opens a store on the test's database: every call the same
	// database, as two aggregators (or a server and an admin command) share
	// one. Closed at the test's end.
	open func(t testing.TB, opts Options) testStore
	// queryInts runs SQL that both dialects read alike and returns the
	// first column of every row.
	queryInts func(t testing.TB, query string) []int64
	// exec runs SQL that both dialects read alike.
	exec func(t testing.TB, query string)
}

func (b *backend) queryInt(t testing.TB, query string) int64 {
	t.Helper()
	v := b.queryInts(t, query)
	if len(v) != 1 {
		t.Fatalf("%s: %d rows", query, len(v))
	}
	return v[0]
}

// cacheRows is how many decoded process rows the store's keyframe cache holds.
func cacheRows(s testStore) int {
	switch s := s.(type) {
	case *SQLite:
		return s.cache.rows
	case *Postgres:
		return s.cache.rows
	}
	return -1
}

// forEachStore runs fn as a subtest per store.
func forEachStore(t *testing.T, fn func(t *testing.T, b *backend)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		b := &backend{name: "sqlite"}
		b.open = func(tb testing.TB, opts Options) testStore { return openTest(tb, dir, opts) }
		var db *sql.DB
		read := func(tb testing.TB) *sql.DB {
			if db == nil {
				var err error
				db, err = sql.Open("sqlite3", "file:"+escapePath(filepath.Join(dir, DBFile))+"?_busy_timeout=10000")
				if err != nil {
					tb.Fatal(err)
				}
				tb.Cleanup(func() { _ = db.Close() })
			}
			return db
		}
		b.queryInts = func(tb testing.TB, query string) []int64 {
			tb.Helper()
			rows, err := read(tb).Query(query)
			if err != nil {
				tb.Fatalf("%s: %v", query, err)
			}
			defer func() { _ = rows.Close() }()
			var out []int64
			for rows.Next() {
				var v int64
				if err := rows.Scan(&v); err != nil {
					tb.Fatal(err)
				}
				out = append(out, v)
			}
			return out
		}
		b.exec = func(tb testing.TB, query string) {
			tb.Helper()
			if _, err := read(tb).Exec(query); err != nil {
				tb.Fatalf("%s: %v", query, err)
			}
		}
		fn(t, b)
	})
	t.Run("postgres", func(t *testing.T) {
		url := testutil.PostgresURL(t)
		b := &backend{name: "postgres"}
		b.open = func(tb testing.TB, opts Options) testStore { return openTestPostgres(tb, url, opts) }
		// One connection for the test's own queries: opening one costs a
		// backend and a SCRAM exchange.
		var c *pgx.Conn
		conn := func(tb testing.TB) *pgx.Conn {
			if c == nil {
				var err error
				if c, err = pgx.Connect(context.Background(), url); err != nil {
					tb.Fatal(err)
				}
				tb.Cleanup(func() { _ = c.Close(context.Background()) })
			}
			return c
		}
		b.queryInts = func(tb testing.TB, query string) []int64 {
			tb.Helper()
			rows, err := conn(tb).Query(context.Background(), query)
			if err != nil {
				tb.Fatalf("%s: %v", query, err)
			}
			out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				tb.Fatalf("%s: %v", query, err)
			}
			return out
		}
		b.exec = func(tb testing.TB, query string) {
			tb.Helper()
			if _, err := conn(tb).Exec(context.Background(), query); err != nil {
				tb.Fatalf("%s: %v", query, err)
			}
		}
		fn(t, b)
	})
}

func openTestPostgres(tb testing.TB, url string, opts Options) *Postgres {
	tb.Helper()
	if opts.PruneInterval == 0 {
		opts.PruneInterval = -1
	}
	s, err := OpenPostgres(context.Background(), url, opts)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
