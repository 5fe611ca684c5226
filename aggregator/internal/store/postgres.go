package store

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the Store for several aggregators sharing one PostgreSQL
// database: the same tables and blob encoding as SQLite, so that every API
// answer is the same byte for byte. Concurrent ingests of one process are
// stored together, one call of procscope_ingest_batch (one round trip, one
// transaction) per group commit (postgres_ingest.go); any number of
// processes write at once.
//
// What each process keeps in memory (the delta base of each host, the
// last key CheckKey matched) is a cache that the database re-checks: the
// ingest function verifies the key and that the base is still a keyframe
// of the host, inside the transaction that stores the snapshot.
type Postgres struct {
	// core answers the reads (read.go) and holds the keyframe caches.
	core
	opts Options
	pool *pgxpool.Pool
	// origin names this process in NOTIFY payloads, so that its own
	// announcements are not published twice.
	origin string

	encodeSem chan struct{}
	quit      chan struct{}
	pruneDone chan struct{}
	notes     chan string // announcements of stored snapshots (postgres_notify.go)
	notesDone chan struct{}

	commits   atomic.Int64
	pruneLate atomic.Int64
	pruneMu   sync.Mutex
	prune     pruneState

	bases sync.Map // hostname -> *baseFrame

	batch pgBatcher // group commit (postgres_ingest.go)
}

var _ Store = (*Postgres)(nil)

//go:embed migrations_postgres/*.sql
var pgMigrationFS embed.FS

// pgMigrateLock is the advisory lock key migrations are applied under (so
// that aggregators starting together do not apply them twice), and
// pgPruneLock the one retention runs under (one instance at a time).
const (
	pgMigrateLock = 7277630617190399
	pgPruneLock   = 7277630617190400
)

// OpenPostgres connects to url (postgres://...), applies pending
// migrations under an advisory lock, and starts the pruner.
func OpenPostgres(ctx context.Context, url string, opts Options) (*Postgres, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, fmt.Errorf("storage options: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("invalid PostgreSQL URL: expected postgres://USER:PASSWORD@HOST:PORT/DATABASE (add ?sslmode=require or verify-full across a network)")
	}
	if !strings.Contains(url, "pool_max_conns") {
		// Ingests wait on commits, not on CPU: more connections than cores
		// keep the WAL flushes shared (see --ingest.max-concurrent).
		cfg.MaxConns = 32
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := migratePostgres(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	o := make([]byte, 8)
	_, _ = rand.Read(o)
	s := &Postgres{
		opts:      opts,
		pool:      pool,
		origin:    hex.EncodeToString(o),
		encodeSem: make(chan struct{}, runtime.GOMAXPROCS(0)),
		quit:      make(chan struct{}),
		pruneDone: make(chan struct{}),
		notes:     make(chan string, 4096),
		notesDone: make(chan struct{}),
	}
	s.init(opts.Logger, postgresSQL, onPG[*pgxpool.Pool]{pool}, func(ctx context.Context) (readTx, error) {
		tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return nil, err
		}
		return pgReadTx{onPG[pgx.Tx]{tx}}, nil
	}, opts.CacheRows)
	s.pruneLate.Store(math.MaxInt64)
	go s.pruneLoop()
	go s.announceLoop()
	s.startBatcher()
	return s, nil
}

// migratePostgres applies the embedded migrations newer than the
// recorded version, in one transaction, holding an advisory lock.
func migratePostgres(ctx context.Context, pool *pgxpool.Pool) error {
	files, err := migrations(pgMigrationFS, "migrations_postgres")
	if err != nil {
		return fmt.Errorf("postgres %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(pgMigrateLock)); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(pgMigrateLock))
	}()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS procscope_schema (
		version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var current int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM procscope_schema").Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(files) {
		return fmt.Errorf("database schema version %d is newer than this program's (%d): refusing to use it", current, len(files))
	}
	for i := current; i < len(files); i++ {
		body, err := pgMigrationFS.ReadFile(files[i])
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, string(body)); err != nil {
			return fmt.Errorf("postgres migration %s: %w", filepath.Base(files[i]), err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO procscope_schema (version) VALUES ($1)", i+1); err != nil {
			return fmt.Errorf("postgres migration %s: %w", filepath.Base(files[i]), err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit migration: %w", err)
	}
	return nil
}

// Close stops the pruner and closes the connections; ingests in flight
// are either committed or answered with an error.
func (s *Postgres) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.quit)
	<-s.pruneDone
	s.stopBatcher()
	for range cap(s.encodeSem) {
		s.encodeSem <- struct{}{}
	}
	<-s.notesDone
	s.pool.Close()
	return nil
}

// Stats implements Store. DatabaseBytes is what the store's tables take,
// indexes and TOAST included.
func (s *Postgres) Stats(ctx context.Context) (Stats, error) {
	if s.closed.Load() {
		return Stats{}, ErrClosed
	}
	var st Stats
	err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM hosts), (SELECT count(*) FROM snapshots),
		pg_total_relation_size('hosts') + pg_total_relation_size('snapshots') + pg_total_relation_size('deleted_hosts')`).
		Scan(&st.Hosts, &st.Snapshots, &st.DatabaseBytes)
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	st.RowsPruned = s.pruned.Load()
	st.Commits = s.commits.Load()
	st.CommittedWrites = s.batch.writes.Load()
	return st, nil
}
