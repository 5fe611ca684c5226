package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DBFile is the database's file name inside the storage directory.
const DBFile = "procscope.db"

// ErrClosed is returned by every method once Close was called.
var ErrClosed = errors.New("store is closed")

// ErrNewerSchema: the database was written by a newer binary (its schema
// version is above this program's migrations); it is left untouched.
var ErrNewerSchema = errors.New("database is newer than this program")

// ErrInvalid wraps requests the store refuses (answer 400): the HTTP layer
// validates first, the store checks again what its own invariants need.
var ErrInvalid = errors.New("invalid snapshot")

//go:embed migrations/*.sql
var migrationFS embed.FS

// Options configures OpenSQLite. Zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	// RetentionRaw keeps every snapshot this long (default 24h).
	RetentionRaw time.Duration
	// RetentionMid keeps one snapshot per host and 5 minutes up to this age
	// (default 7 days, or within [RetentionRaw, Retention] when those make
	// 7 days impossible); older ones are thinned to one per hour.
	RetentionMid time.Duration
	// Retention deletes snapshots older than this (default 90 days).
	Retention time.Duration
	// PruneInterval is how often retention runs (default 1m); a negative
	// value disables the background pruner (tests call Prune themselves).
	PruneInterval time.Duration
	// PruneBatch is how many snapshots one pruning transaction deletes at
	// most (default 500), and PrunePause the pause between two of them
	// (default 50ms; negative: none), so that pruning never holds the
	// writer for long.
	PruneBatch int
	PrunePause time.Duration
	// MaxBatch is how many ingests one group commit takes at most (default 256).
	MaxBatch int
	// CommitInterval is the least time between the starts of two group
	// commits (default 2ms; negative: none): under load one fsync then
	// covers more snapshots, while a lone push is committed at once.
	CommitInterval time.Duration
	// CacheRows bounds the decoded keyframes kept for readers, counted in
	// process rows (default 500,000, roughly 100 MB).
	CacheRows int
	// MinFreeBytes refuses ingests (ErrStorageFull) while less than this is
	// free on the database's file system (0: only a write failing for a
	// full disk does).
	MinFreeBytes int64
	// Now is the clock (default time.Now); tests inject one for retention.
	Now func() time.Time

	// checkpointEvery is the pause between WAL checkpoints (default
	// defaultCheckpointEvery); tests shorten it.
	checkpointEvery time.Duration
}

func (o *Options) setDefaults() error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.RetentionRaw, 24*time.Hour)
	def(&o.Retention, 90*24*time.Hour)
	if o.RetentionMid == 0 {
		// 7 days, moved inside [RetentionRaw, Retention] when only those
		// were configured (--storage.retention=3d is fine).
		o.RetentionMid = min(max(7*24*time.Hour, o.RetentionRaw), o.Retention)
	}
	def(&o.PruneInterval, time.Minute)
	def(&o.PrunePause, 50*time.Millisecond)
	def(&o.CommitInterval, 2*time.Millisecond)
	def(&o.checkpointEvery, defaultCheckpointEvery)
	if o.PruneBatch == 0 {
		o.PruneBatch = 500
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 256
	}
	if o.CacheRows == 0 {
		o.CacheRows = 500_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.RetentionRaw < 0 || o.RetentionMid < 0 || o.Retention < 0:
		return errors.New("retention periods must be positive")
	case o.RetentionMid < o.RetentionRaw:
		return fmt.Errorf("5-minute retention (%s) is shorter than raw retention (%s)", o.RetentionMid, o.RetentionRaw)
	case o.Retention < o.RetentionMid:
		return fmt.Errorf("retention (%s) is shorter than 5-minute retention (%s)", o.Retention, o.RetentionMid)
	case o.PruneBatch < 0 || o.MaxBatch < 0 || o.CacheRows < 0:
		return errors.New("batch sizes, cache size and pause must not be negative")
	}
	return nil
}

// SQLite is the embedded Store: one database file, one writer goroutine
// that group-commits ingests, and a pool of read connections.
type SQLite struct {
	// core answers the reads (read.go) and holds the keyframe caches.
	core
	opts   Options
	path   string
	wdb    *sql.DB // exactly one connection, used only by the writer goroutine
	rdb    *sql.DB // read-only connections
	ckdb   *sql.DB // one connection for WAL checkpoints
	ckDone chan struct{}
	ckTail chan struct{} // the checkpoint loop asks the writer to finish a checkpoint

	jobs      chan *job
	encodeSem chan struct{} // bounds concurrent encoding in Ingest
	quit      chan struct{}
	done      chan struct{}

	full      atomic.Bool  // the last write failed for a full disk (full.go)
	spaceAt   atomic.Int64 // when checkSpace last looked (unix ns)
	spaceLow  atomic.Bool  // less than MinFreeBytes free then
	commits   atomic.Int64 // transactions the writer committed
	committed atomic.Int64 // jobs those transactions carried
	pruneLate atomic.Int64 // earliest captured_ms stored since the last pass
	pruneMu   sync.Mutex   // one retention pass at a time
	prune     pruneState
	pruneDone chan struct{}

	// Owned by the writer goroutine.
	w     writerState
	stmts stmts
	// bases maps hostname to its *baseFrame; written by the writer, read by
	// Ingest callers to encode before queueing.
	bases sync.Map
}

// keyCheckTTL bounds how long CheckKey trusts a key it found stored. The
// check is only the early answer (403 before the body is judged); the
// authoritative one runs inside the ingest transaction, so a cached key
// can never store a snapshot under the wrong key. In-process ResetKey and
// DeleteHost drop the entry at once; the TTL covers changes made by
// another process on the same file (the hosts admin command).
const keyCheckTTL = time.Second

type keyCheck struct {
	hash [32]byte
	at   time.Time
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating if needed) dir/procscope.db, applies pending
// migrations in one transaction, and starts the writer and the pruner.
func OpenSQLite(ctx context.Context, dir string, opts Options) (*SQLite, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, fmt.Errorf("storage options: %w", err)
	}
	if dir == "" {
		return nil, errors.New("storage directory is empty")
	}
	// The database holds key hashes and process tables: keep it private.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create storage directory: %w", err)
	}
	makePrivate(dir, opts.Logger)
	path := filepath.Join(dir, DBFile)
	// Created here, 0600, rather than by SQLite (0644 less the umask):
	// SQLite gives the -wal and -shm files the database file's mode, so
	// all three stay private whatever the umask. An empty file is a new
	// database to SQLite.
	dbf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create database file: %w", err)
	}
	_ = dbf.Close()
	if err := checkNotNewer(ctx, path); err != nil {
		return nil, err
	}

	// synchronous=FULL in WAL mode fsyncs the WAL on every commit. NORMAL
	// would already survive a kill -9 (a commit is in the OS page cache once
	// COMMIT returns), but may lose the last commits on power loss or a
	// kernel crash, while the API promises that a 2xx is durable. Group
	// commit makes FULL cheap: one fsync covers every ingest of a batch.
	// auto_vacuum=incremental (effective when the file is created) lets
	// retention give freed pages back to the file system in small steps.
	params := url.Values{}
	params.Set("_journal_mode", "WAL")
	params.Set("_synchronous", "FULL")
	params.Set("_busy_timeout", "10000")
	params.Set("_foreign_keys", "on")
	params.Set("_auto_vacuum", "incremental")
	wparams := url.Values{}
	for k, v := range params {
		wparams[k] = v
	}
	// The writer takes the write lock at BEGIN, so a transaction never
	// fails half-way on a lock upgrade.
	wparams.Set("_txlock", "immediate")
	wdb, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?"+wparams.Encode())
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	if err := migrate(ctx, wdb); err != nil {
		_ = wdb.Close()
		return nil, err
	}
	// wal_autocheckpoint=0: checkpoints run beside the writer (checkpoint.go).
	if _, err := wdb.ExecContext(ctx, "PRAGMA journal_size_limit = 67108864; PRAGMA wal_autocheckpoint = 0"); err != nil {
		_ = wdb.Close()
		return nil, fmt.Errorf("set journal_size_limit: %w", err)
	}
	_ = os.Chmod(path, 0o600)

	// journal_mode and auto_vacuum belong to the file, set above by the
	// writer's connection. Setting them again on each new checkpoint or
	// read connection took locks: a checkpoint connection opening while the
	// writer was busy waited in the busy handler, for seconds under load.
	params.Del("_journal_mode")
	params.Del("_auto_vacuum")
	ckdb, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?"+params.Encode())
	if err != nil {
		_ = wdb.Close()
		return nil, fmt.Errorf("open database for checkpoints: %w", err)
	}
	ckdb.SetMaxOpenConns(1)
	closeAll := func() {
		_ = wdb.Close()
		_ = ckdb.Close()
	}

	params.Set("_query_only", "true")
	rdb, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?"+params.Encode())
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("open database for reading: %w", err)
	}
	rdb.SetMaxOpenConns(8)
	rdb.SetMaxIdleConns(8)
	if err := rdb.PingContext(ctx); err != nil {
		closeAll()
		_ = rdb.Close()
		return nil, fmt.Errorf("open database for reading: %w", err)
	}

	s := &SQLite{
		opts:   opts,
		path:   path,
		wdb:    wdb,
		ckdb:   ckdb,
		ckDone: make(chan struct{}),
		ckTail: make(chan struct{}, 1),
		rdb:    rdb,
		jobs:   make(chan *job),

		encodeSem: make(chan struct{}, runtime.GOMAXPROCS(0)),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),

		pruneDone: make(chan struct{}),
	}
	s.init(opts.Logger, sqliteSQL, onSQL[*sql.DB]{rdb}, func(ctx context.Context) (readTx, error) {
		tx, err := rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return nil, err
		}
		return sqlReadTx{onSQL[*sql.Tx]{tx}}, nil
	}, opts.CacheRows)
	s.w.hosts = make(map[int64]*hostState)
	s.w.rows = make(map[string]hostRow)
	s.w.dataVersion = -1 // data_version is positive: the first batch starts clean
	s.w.hostCount = -1
	s.pruneLate.Store(math.MaxInt64)
	if err := s.prepare(ctx); err != nil {
		for _, st := range s.stmts.all {
			_ = st.Close()
		}
		closeAll()
		_ = rdb.Close()
		return nil, err
	}
	go s.writeLoop()
	go s.pruneLoop()
	go s.checkpointLoop()
	return s, nil
}

// escapePath keeps '?' and '#' in a directory name from being read as the
// start of the DSN's parameters.
func escapePath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

// migrate applies the embedded migrations newer than PRAGMA user_version,
// all in one transaction: a failure leaves the schema as it was.
func migrate(ctx context.Context, db *sql.DB) error {
	migs, err := migrations(migrationFS, "migrations")
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	var current int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(migs) {
		return fmt.Errorf("%w: database schema version %d is newer than this program's (%d), no downgrade: run a procscope-aggregator of that version or newer, or restore a backup this version made (docs/operations.md, \"Upgrades\")",
			ErrNewerSchema, current, len(migs))
	}
	for _, m := range migs[current:] {
		body, err := migrationFS.ReadFile(m)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", filepath.Base(m), err)
		}
	}
	if current == len(migs) {
		return nil
	}
	// PRAGMA takes no bind parameters; the value is our own integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migs))); err != nil {
		return fmt.Errorf("set schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migration: %w", err)
	}
	return nil
}

// Path is the database file.
func (s *SQLite) Path() string { return s.path }

// Close stops the pruner and the writer (ingests waiting get ErrClosed),
// checkpoints the WAL into the database file and closes it.
func (s *SQLite) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.quit)
	<-s.pruneDone
	<-s.ckDone
	<-s.done
	var errs []error
	if _, err := s.wdb.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		errs = append(errs, fmt.Errorf("checkpoint: %w", err))
	}
	for _, st := range s.stmts.all {
		errs = append(errs, st.Close())
	}
	errs = append(errs, s.rdb.Close(), s.ckdb.Close(), s.wdb.Close())
	// Wait for callers still encoding: none is at work once Close returns.
	for range cap(s.encodeSem) {
		s.encodeSem <- struct{}{}
	}
	return errors.Join(errs...)
}

// decodeFrame is decodeKeyframe, for the writer.
func (s *SQLite) decodeFrame(procsBlob, sysBlob []byte) (*frame, error) {
	return decodeKeyframe(procsBlob, sysBlob)
}

// Stats implements Store.
func (s *SQLite) Stats(ctx context.Context) (Stats, error) {
	if s.closed.Load() {
		return Stats{}, ErrClosed
	}
	var st Stats
	// max(id) - min(id) would be cheaper but wrong after thinning; count(*)
	// walks the smallest index, the cheapest way to an exact count.
	err := s.rdb.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM hosts), (SELECT count(*) FROM snapshots)").
		Scan(&st.Hosts, &st.Snapshots)
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	st.DatabaseBytes = dbFileBytes(s.path)
	st.RowsPruned = s.pruned.Load()
	st.Commits, st.CommittedWrites = s.commits.Load(), s.committed.Load()
	return st, nil
}

// dbFileBytes is the disk the database at path takes: the file plus its
// -wal and -shm, which hold committed data until a checkpoint. Missing
// files count as zero.
func dbFileBytes(path string) int64 {
	var size int64
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fi, err := os.Stat(path + suffix); err == nil {
			size += fi.Size()
		}
	}
	return size
}
