package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/procscope/procscope/aggregator/snapshot"
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
	log      *slog.Logger
	opts     Options
	path     string
	wdb      *sql.DB // exactly one connection, used only by the writer goroutine
	rdb      *sql.DB // read-only connections
	ckdb     *sql.DB // one connection for WAL checkpoints
	ckDone   chan struct{}
	ckTail   chan struct{} // the checkpoint loop asks the writer to finish a checkpoint
	cache    *frameCache   // decoded keyframes
	sysCache *frameCache   // keyframes' system_info only

	jobs      chan *job
	encodeSem chan struct{} // bounds concurrent encoding in Ingest
	quit      chan struct{}
	done      chan struct{}
	closed    atomic.Bool

	full      atomic.Bool  // the last write failed for a full disk (full.go)
	spaceAt   atomic.Int64 // when checkSpace last looked (unix ns)
	spaceLow  atomic.Bool  // less than MinFreeBytes free then
	pruned    atomic.Int64
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
	// keyOK maps hostname to a *keyCheck: the key hash CheckKey last found
	// stored for it, so that a host pushing many times a second costs one
	// query a keyCheckTTL instead of one per ingest.
	keyOK sync.Map
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
		log:    opts.Logger,
		opts:   opts,
		path:   path,
		wdb:    wdb,
		ckdb:   ckdb,
		ckDone: make(chan struct{}),
		ckTail: make(chan struct{}, 1),
		rdb:    rdb,
		cache:  newFrameCache(opts.CacheRows),
		// system_info of keyframes alone (about 1 KB each), for listings.
		sysCache: newFrameCache(4096),
		jobs:     make(chan *job),

		encodeSem: make(chan struct{}, runtime.GOMAXPROCS(0)),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),

		pruneDone: make(chan struct{}),
	}
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
	files, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return err
	}
	type mig struct {
		version int
		name    string
	}
	var migs []mig
	for _, f := range files {
		base := filepath.Base(f)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return fmt.Errorf("migration %s: name must start with a positive number and '_'", base)
		}
		migs = append(migs, mig{v, f})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].version < migs[j].version })
	for i, m := range migs {
		if m.version != i+1 {
			return fmt.Errorf("migrations must be numbered 1..n without gaps, found %d at position %d", m.version, i+1)
		}
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
		body, err := migrationFS.ReadFile(m.name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", filepath.Base(m.name), err)
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

// --- reads ---

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// CheckKey implements Store.
func (s *SQLite) CheckKey(ctx context.Context, hostname string, keyHash [32]byte) (KeyState, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	if v, ok := s.keyOK.Load(hostname); ok {
		kc := v.(*keyCheck)
		if time.Since(kc.at) < keyCheckTTL && subtle.ConstantTimeCompare(kc.hash[:], keyHash[:]) == 1 {
			return KeyMatches, nil
		}
	}
	var stored []byte
	err := s.rdb.QueryRowContext(ctx, "SELECT key_hash FROM hosts WHERE hostname = ?", hostname).Scan(&stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return HostUnknown, nil
	case err != nil:
		return 0, fmt.Errorf("check key: %w", err)
	case stored == nil:
		// `hosts reset-key` unbound it: the next ingest binds a new key.
		return KeyUnbound, nil
	}
	if err := keyMatches(stored, keyHash); err != nil {
		return 0, err
	}
	s.keyOK.Store(hostname, &keyCheck{hash: keyHash, at: time.Now()})
	return KeyMatches, nil
}

// Hosts implements Store.
func (s *SQLite) Hosts(ctx context.Context) ([]Host, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	rows, err := tx.QueryContext(ctx, `
		SELECT h.hostname, h.last_seen_ms, s.id, s.captured_ms, s.base_id, s.sys
		FROM hosts h
		LEFT JOIN snapshots s ON s.id = (
			SELECT id FROM snapshots WHERE host_id = h.id
			ORDER BY captured_ms DESC, id DESC LIMIT 1)
		ORDER BY h.hostname`)
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	defer func() { _ = rows.Close() }()
	type latest struct {
		base sql.NullInt64
		sys  []byte
	}
	var out []Host
	var lat []latest
	for rows.Next() {
		var h Host
		var lastSeen int64
		var id, captured sql.NullInt64
		var l latest
		if err := rows.Scan(&h.Hostname, &lastSeen, &id, &captured, &l.base, &l.sys); err != nil {
			return nil, fmt.Errorf("list hosts: %w", err)
		}
		h.LastSeen = msTime(lastSeen)
		if id.Valid {
			h.LatestSnapshotID = id.Int64
			h.LatestCapturedAt = msTime(captured.Int64)
		}
		out = append(out, h)
		lat = append(lat, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	_ = rows.Close()
	for i := range out {
		if out[i].LatestSnapshotID == 0 {
			continue
		}
		sys, err := s.systemInfo(ctx, tx, lat[i].base, lat[i].sys)
		if err != nil {
			s.log.Warn("cannot read latest system_info", "hostname", out[i].Hostname, "snapshot_id", out[i].LatestSnapshotID, "err", err)
			continue
		}
		out[i].OS = osSummary(sys)
	}
	return out, nil
}

// osSummary is "distro version (name arch)" from a system_info document,
// or "" when it has none of those fields.
func osSummary(sys []byte) string {
	var v struct {
		OS struct {
			Name    string `json:"name"`
			Distro  string `json:"distro"`
			Version string `json:"version"`
			Arch    string `json:"arch"`
		} `json:"os"`
	}
	if json.Unmarshal(sys, &v) != nil {
		return ""
	}
	o := v.OS
	var parts []string
	for _, p := range []string{o.Distro, o.Version} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	var inner []string
	for _, p := range []string{o.Name, o.Arch} {
		if p != "" {
			inner = append(inner, p)
		}
	}
	out := strings.Join(parts, " ")
	if len(inner) > 0 {
		if out != "" {
			out += " "
		}
		out += "(" + strings.Join(inner, " ") + ")"
	}
	return out
}

const metaColumns = `s.id, h.hostname, s.captured_ms, s.process_count, s.base_id, s.sys`

type metaScanner interface{ Scan(dest ...any) error }

func (s *SQLite) scanMeta(ctx context.Context, tx *sql.Tx, row metaScanner) (SnapshotMeta, error) {
	var m SnapshotMeta
	var captured int64
	var base sql.NullInt64
	var sys []byte
	if err := row.Scan(&m.ID, &m.Hostname, &captured, &m.ProcessCount, &base, &sys); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return m, ErrNotFound
		}
		return m, err
	}
	m.CapturedAt = msTime(captured)
	info, err := s.systemInfo(ctx, tx, base, sys)
	if err != nil {
		return m, fmt.Errorf("snapshot %d: %w", m.ID, err)
	}
	m.SystemInfo = info
	return m, nil
}

func (s *SQLite) readTx(ctx context.Context) (*sql.Tx, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
}

func (s *SQLite) oneMeta(ctx context.Context, query string, args ...any) (SnapshotMeta, error) {
	tx, err := s.readTx(ctx)
	if err != nil {
		return SnapshotMeta{}, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	return s.scanMeta(ctx, tx, tx.QueryRowContext(ctx, query, args...))
}

// Latest implements Store.
func (s *SQLite) Latest(ctx context.Context, hostname string) (SnapshotMeta, error) {
	return s.oneMeta(ctx, `SELECT `+metaColumns+` FROM hosts h JOIN snapshots s ON s.host_id = h.id
		WHERE h.hostname = ? ORDER BY s.captured_ms DESC, s.id DESC LIMIT 1`, hostname)
}

// Snapshot implements Store.
func (s *SQLite) Snapshot(ctx context.Context, id int64) (SnapshotMeta, error) {
	return s.oneMeta(ctx, `SELECT `+metaColumns+` FROM snapshots s JOIN hosts h ON h.id = s.host_id
		WHERE s.id = ?`, id)
}

// SnapshotAt implements Store.
func (s *SQLite) SnapshotAt(ctx context.Context, hostname string, t time.Time) (SnapshotMeta, error) {
	return s.oneMeta(ctx, `SELECT `+metaColumns+` FROM hosts h JOIN snapshots s ON s.host_id = h.id
		WHERE h.hostname = ? AND s.captured_ms <= ? ORDER BY s.captured_ms DESC, s.id DESC LIMIT 1`,
		hostname, t.UnixMilli())
}

// SnapshotsBetween implements Store.
func (s *SQLite) SnapshotsBetween(ctx context.Context, hostname string, from, to time.Time, limit int) ([]SnapshotMeta, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit must be positive", ErrInvalid)
	}
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	rows, err := tx.QueryContext(ctx, `SELECT `+metaColumns+` FROM hosts h JOIN snapshots s ON s.host_id = h.id
		WHERE h.hostname = ? AND s.captured_ms BETWEEN ? AND ?
		ORDER BY s.captured_ms, s.id LIMIT ?`, hostname, from.UnixMilli(), to.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	defer func() { _ = rows.Close() }()
	type raw struct {
		m    SnapshotMeta
		base sql.NullInt64
		sys  []byte
	}
	var rs []raw
	for rows.Next() {
		var r raw
		var captured int64
		if err := rows.Scan(&r.m.ID, &r.m.Hostname, &captured, &r.m.ProcessCount, &r.base, &r.sys); err != nil {
			return nil, fmt.Errorf("list snapshots: %w", err)
		}
		r.m.CapturedAt = msTime(captured)
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	_ = rows.Close()
	out := make([]SnapshotMeta, len(rs))
	for i, r := range rs {
		info, err := s.systemInfo(ctx, tx, r.base, r.sys)
		if err != nil {
			return nil, fmt.Errorf("snapshot %d: %w", r.m.ID, err)
		}
		r.m.SystemInfo = info
		out[i] = r.m
	}
	return out, nil
}

// Processes implements Store. The returned slice is the caller's; the
// strings (and Cmdline pointers) in it may be shared with a cache and must
// not be modified through the pointers.
func (s *SQLite) Processes(ctx context.Context, id int64) ([]snapshot.Process, error) {
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	var base sql.NullInt64
	var blob []byte
	var sysBlob []byte
	err = tx.QueryRowContext(ctx, "SELECT base_id, procs, sys FROM snapshots WHERE id = ?", id).Scan(&base, &blob, &sysBlob)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read snapshot %d: %w", id, err)
	}
	if !base.Valid {
		// A keyframe: serve it from the cache, or decode and remember it
		// (deltas of the same keyframe will want it next).
		f, err := s.keyframe(ctx, tx, id, blob, sysBlob)
		if err != nil {
			return nil, fmt.Errorf("snapshot %d: %w", id, err)
		}
		return append([]snapshot.Process(nil), f.procs...), nil
	}
	f, err := s.keyframe(ctx, tx, base.Int64, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("snapshot %d: keyframe %d: %w", id, base.Int64, err)
	}
	kind, raw, err := openBlob(blob)
	if err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", id, err)
	}
	switch kind {
	case blobDelta:
		procs, err := decodeDelta(raw, f.procs)
		if err != nil {
			return nil, fmt.Errorf("snapshot %d: %w", id, err)
		}
		return procs, nil
	case blobFull:
		procs, err := decodeFull(raw)
		if err != nil {
			return nil, fmt.Errorf("snapshot %d: %w", id, err)
		}
		return procs, nil
	default:
		return nil, fmt.Errorf("snapshot %d: %w", id, errCorrupt)
	}
}

// keyframe returns keyframe id decoded, from the cache or from the database
// (procs/sys are its blobs when the caller already read them).
func (s *SQLite) keyframe(ctx context.Context, q querier, id int64, procs, sys []byte) (*frame, error) {
	if f := s.cache.get(id); f != nil {
		return f, nil
	}
	if procs == nil || sys == nil {
		var base sql.NullInt64
		err := q.QueryRowContext(ctx, "SELECT base_id, procs, sys FROM snapshots WHERE id = ?", id).Scan(&base, &procs, &sys)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("%w: keyframe %d is missing", errCorrupt, id)
		}
		if err != nil {
			return nil, err
		}
		if base.Valid {
			return nil, fmt.Errorf("%w: snapshot %d is not a keyframe", errCorrupt, id)
		}
	}
	f, err := s.decodeFrame(procs, sys)
	if err != nil {
		return nil, err
	}
	s.cache.put(id, f)
	return f, nil
}

func (s *SQLite) decodeFrame(procsBlob, sysBlob []byte) (*frame, error) {
	kind, raw, err := openBlob(procsBlob)
	if err != nil {
		return nil, err
	}
	if kind != blobFull {
		return nil, fmt.Errorf("%w: keyframe holds a delta", errCorrupt)
	}
	procs, err := decodeFull(raw)
	if err != nil {
		return nil, err
	}
	kind, sys, err := openBlob(sysBlob)
	if err != nil {
		return nil, err
	}
	if kind != blobFull {
		return nil, fmt.Errorf("%w: keyframe system_info is a delta", errCorrupt)
	}
	return &frame{procs: procs, sys: sys, sysTokens: sysTokens(sys)}, nil
}

// keyframeSys returns the system_info tokens of keyframe id without
// decoding its process list: listing hosts or snapshots needs only these.
func (s *SQLite) keyframeSys(ctx context.Context, q querier, id int64) ([][]byte, error) {
	if f := s.cache.get(id); f != nil {
		return f.sysTokens, nil
	}
	if f := s.sysCache.get(id); f != nil {
		return f.sysTokens, nil
	}
	var base sql.NullInt64
	var blob []byte
	err := q.QueryRowContext(ctx, "SELECT base_id, sys FROM snapshots WHERE id = ?", id).Scan(&base, &blob)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: keyframe %d is missing", errCorrupt, id)
	}
	if err != nil {
		return nil, err
	}
	kind, sys, err := openBlob(blob)
	if err != nil {
		return nil, err
	}
	if base.Valid || kind != blobFull {
		return nil, fmt.Errorf("%w: snapshot %d is not a keyframe", errCorrupt, id)
	}
	f := &frame{sys: sys, sysTokens: sysTokens(sys)}
	s.sysCache.put(id, f)
	return f.sysTokens, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// systemInfo rebuilds a snapshot's system_info from its blob (and its
// keyframe's when the blob is a delta).
func (s *SQLite) systemInfo(ctx context.Context, q querier, base sql.NullInt64, blob []byte) (json.RawMessage, error) {
	kind, raw, err := openBlob(blob)
	if err != nil {
		return nil, err
	}
	switch kind {
	case blobFull:
		if blob[0]&^blobKindMask == 0 {
			// Stored raw: do not alias the driver's buffer.
			raw = append([]byte(nil), raw...)
		}
		return raw, nil
	case blobDelta:
		if !base.Valid {
			return nil, fmt.Errorf("%w: system_info delta without keyframe", errCorrupt)
		}
		toks, err := s.keyframeSys(ctx, q, base.Int64)
		if err != nil {
			return nil, err
		}
		return decodeSysDelta(raw, toks)
	default:
		return nil, errCorrupt
	}
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
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fi, err := os.Stat(s.path + suffix); err == nil {
			st.DatabaseBytes += fi.Size()
		}
	}
	st.RowsPruned = s.pruned.Load()
	st.Commits, st.CommittedWrites = s.commits.Load(), s.committed.Load()
	return st, nil
}

// isForeignKeyViolation reports a FOREIGN KEY constraint failure.
func isForeignKeyViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint && se.ExtendedCode == sqlite3.ErrConstraintForeignKey
}

// isUniqueViolation reports a UNIQUE or PRIMARY KEY constraint failure.
func isUniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint &&
		(se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}
