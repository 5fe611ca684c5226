package store

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// Postgres is the Store for several aggregators sharing one PostgreSQL
// database: the same tables and blob encoding as SQLite, so that every API
// answer is the same byte for byte. Each ingest is one call of the
// procscope_ingest function (one round trip, its own transaction), and
// PostgreSQL's own group commit lets concurrent ingests share a WAL flush:
// there is no writer goroutine, so any number of processes write at once.
//
// What each process keeps in memory (the delta base of each host, the
// last key CheckKey matched) is a cache that the database re-checks: the
// ingest function verifies the key and that the base is still a keyframe
// of the host, inside the transaction that stores the snapshot.
type Postgres struct {
	log      *slog.Logger
	opts     Options
	pool     *pgxpool.Pool
	cache    *frameCache
	sysCache *frameCache
	// origin names this process in NOTIFY payloads, so that its own
	// announcements are not published twice.
	origin string

	encodeSem chan struct{}
	closed    atomic.Bool
	quit      chan struct{}
	pruneDone chan struct{}
	notes     chan string // announcements of stored snapshots (postgres_notify.go)
	notesDone chan struct{}

	pruned    atomic.Int64
	commits   atomic.Int64
	pruneLate atomic.Int64
	pruneMu   sync.Mutex
	prune     pruneState

	bases sync.Map // hostname -> *baseFrame
	keyOK sync.Map // hostname -> *keyCheck
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
		log:       opts.Logger,
		opts:      opts,
		pool:      pool,
		cache:     newFrameCache(opts.CacheRows),
		sysCache:  newFrameCache(4096),
		origin:    hex.EncodeToString(o),
		encodeSem: make(chan struct{}, runtime.GOMAXPROCS(0)),
		quit:      make(chan struct{}),
		pruneDone: make(chan struct{}),
		notes:     make(chan string, 4096),
		notesDone: make(chan struct{}),
	}
	s.pruneLate.Store(math.MaxInt64)
	go s.pruneLoop()
	go s.announceLoop()
	return s, nil
}

// migratePostgres applies the embedded migrations newer than the
// recorded version, in one transaction, holding an advisory lock.
func migratePostgres(ctx context.Context, pool *pgxpool.Pool) error {
	files, err := fs.Glob(pgMigrationFS, "migrations_postgres/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(files)
	for i, f := range files {
		num, _, _ := strings.Cut(filepath.Base(f), "_")
		if v, err := strconv.Atoi(num); err != nil || v != i+1 {
			return fmt.Errorf("postgres migration %s: must be numbered 1..n without gaps", filepath.Base(f))
		}
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
	for range cap(s.encodeSem) {
		s.encodeSem <- struct{}{}
	}
	<-s.notesDone
	s.pool.Close()
	return nil
}

// --- reads ---

// pgQuerier is a pool or a transaction.
type pgQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// readTx is a read-only snapshot: a delta and its keyframe are read as of
// one moment even while retention re-encodes them.
func (s *Postgres) readTx(ctx context.Context) (pgx.Tx, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
}

func endRead(tx pgx.Tx) { _ = tx.Rollback(context.Background()) }

// CheckKey implements Store. A key another aggregator reset or a host it
// deleted is seen here within keyCheckTTL (the cache's life), and by the
// ingest itself at once.
func (s *Postgres) CheckKey(ctx context.Context, hostname string, keyHash [32]byte) (KeyState, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	if v, ok := s.keyOK.Load(hostname); ok {
		kc := v.(*keyCheck)
		if time.Since(kc.at) < keyCheckTTL && keyMatches(kc.hash[:], keyHash) == nil {
			return KeyMatches, nil
		}
	}
	var stored []byte
	err := s.pool.QueryRow(ctx, "SELECT key_hash FROM hosts WHERE hostname = $1", hostname).Scan(&stored)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return HostUnknown, nil
	case err != nil:
		return 0, fmt.Errorf("check key: %w", err)
	case stored == nil:
		return KeyUnbound, nil
	}
	if err := keyMatches(stored, keyHash); err != nil {
		return 0, err
	}
	s.keyOK.Store(hostname, &keyCheck{hash: keyHash, at: time.Now()})
	return KeyMatches, nil
}

// Hosts implements Store.
func (s *Postgres) Hosts(ctx context.Context) ([]Host, error) {
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	defer endRead(tx)
	rows, err := tx.Query(ctx, `
		SELECT h.hostname, h.last_seen_ms, s.id, s.captured_ms, s.base_id, s.sys
		FROM hosts h
		LEFT JOIN LATERAL (
			SELECT id, captured_ms, base_id, sys FROM snapshots WHERE host_id = h.id
			ORDER BY captured_ms DESC, id DESC LIMIT 1) s ON true
		ORDER BY h.hostname`)
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	type latest struct {
		base *int64
		sys  []byte
	}
	var out []Host
	var lat []latest
	for rows.Next() {
		var h Host
		var lastSeen int64
		var id, captured *int64
		var l latest
		if err := rows.Scan(&h.Hostname, &lastSeen, &id, &captured, &l.base, &l.sys); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list hosts: %w", err)
		}
		h.LastSeen = msTime(lastSeen)
		if id != nil {
			h.LatestSnapshotID = *id
			h.LatestCapturedAt = msTime(*captured)
		}
		out = append(out, h)
		lat = append(lat, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
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

const pgMetaColumns = `s.id, h.hostname, s.captured_ms, s.process_count, s.base_id, s.sys`

func (s *Postgres) oneMeta(ctx context.Context, query string, args ...any) (SnapshotMeta, error) {
	tx, err := s.readTx(ctx)
	if err != nil {
		return SnapshotMeta{}, err
	}
	defer endRead(tx)
	var m SnapshotMeta
	var captured int64
	var base *int64
	var sys []byte
	if err := tx.QueryRow(ctx, query, args...).Scan(&m.ID, &m.Hostname, &captured, &m.ProcessCount, &base, &sys); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
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

// Latest implements Store.
func (s *Postgres) Latest(ctx context.Context, hostname string) (SnapshotMeta, error) {
	return s.oneMeta(ctx, `SELECT `+pgMetaColumns+` FROM hosts h JOIN snapshots s ON s.host_id = h.id
		WHERE h.hostname = $1 ORDER BY s.captured_ms DESC, s.id DESC LIMIT 1`, hostname)
}

// Snapshot implements Store.
func (s *Postgres) Snapshot(ctx context.Context, id int64) (SnapshotMeta, error) {
	return s.oneMeta(ctx, `SELECT `+pgMetaColumns+` FROM snapshots s JOIN hosts h ON h.id = s.host_id
		WHERE s.id = $1`, id)
}

// SnapshotAt implements Store.
func (s *Postgres) SnapshotAt(ctx context.Context, hostname string, t time.Time) (SnapshotMeta, error) {
	return s.oneMeta(ctx, `SELECT `+pgMetaColumns+` FROM hosts h JOIN snapshots s ON s.host_id = h.id
		WHERE h.hostname = $1 AND s.captured_ms <= $2 ORDER BY s.captured_ms DESC, s.id DESC LIMIT 1`,
		hostname, t.UnixMilli())
}

// SnapshotsBetween implements Store.
func (s *Postgres) SnapshotsBetween(ctx context.Context, hostname string, from, to time.Time, limit int) ([]SnapshotMeta, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit must be positive", ErrInvalid)
	}
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer endRead(tx)
	rows, err := tx.Query(ctx, `SELECT `+pgMetaColumns+` FROM hosts h JOIN snapshots s ON s.host_id = h.id
		WHERE h.hostname = $1 AND s.captured_ms BETWEEN $2 AND $3
		ORDER BY s.captured_ms, s.id LIMIT $4`, hostname, from.UnixMilli(), to.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	type raw struct {
		m    SnapshotMeta
		base *int64
		sys  []byte
	}
	var rs []raw
	for rows.Next() {
		var r raw
		var captured int64
		if err := rows.Scan(&r.m.ID, &r.m.Hostname, &captured, &r.m.ProcessCount, &r.base, &r.sys); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list snapshots: %w", err)
		}
		r.m.CapturedAt = msTime(captured)
		rs = append(rs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
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

// Processes implements Store (the same sharing rules as SQLite's).
func (s *Postgres) Processes(ctx context.Context, id int64) ([]snapshot.Process, error) {
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer endRead(tx)
	var base *int64
	var blob, sysBlob []byte
	err = tx.QueryRow(ctx, "SELECT base_id, procs, sys FROM snapshots WHERE id = $1", id).Scan(&base, &blob, &sysBlob)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read snapshot %d: %w", id, err)
	}
	if base == nil {
		f, err := s.keyframe(ctx, tx, id, blob, sysBlob)
		if err != nil {
			return nil, fmt.Errorf("snapshot %d: %w", id, err)
		}
		return append([]snapshot.Process(nil), f.procs...), nil
	}
	f, err := s.keyframe(ctx, tx, *base, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("snapshot %d: keyframe %d: %w", id, *base, err)
	}
	procs, err := decodeProcsAgainst(blob, f)
	if err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", id, err)
	}
	return procs, nil
}

// keyframe returns keyframe id decoded, from the cache or the database.
func (s *Postgres) keyframe(ctx context.Context, q pgQuerier, id int64, procs, sys []byte) (*frame, error) {
	if f := s.cache.get(id); f != nil {
		return f, nil
	}
	if procs == nil || sys == nil {
		var base *int64
		err := q.QueryRow(ctx, "SELECT base_id, procs, sys FROM snapshots WHERE id = $1", id).Scan(&base, &procs, &sys)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("%w: keyframe %d is missing", errCorrupt, id)
		}
		if err != nil {
			return nil, err
		}
		if base != nil {
			return nil, fmt.Errorf("%w: snapshot %d is not a keyframe", errCorrupt, id)
		}
	}
	f, err := decodeKeyframe(procs, sys)
	if err != nil {
		return nil, err
	}
	s.cache.put(id, f)
	return f, nil
}

func (s *Postgres) keyframeSys(ctx context.Context, q pgQuerier, id int64) ([][]byte, error) {
	if f := s.cache.get(id); f != nil {
		return f.sysTokens, nil
	}
	if f := s.sysCache.get(id); f != nil {
		return f.sysTokens, nil
	}
	var base *int64
	var blob []byte
	err := q.QueryRow(ctx, "SELECT base_id, sys FROM snapshots WHERE id = $1", id).Scan(&base, &blob)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: keyframe %d is missing", errCorrupt, id)
	}
	if err != nil {
		return nil, err
	}
	kind, sys, err := openBlob(blob)
	if err != nil {
		return nil, err
	}
	if base != nil || kind != blobFull {
		return nil, fmt.Errorf("%w: snapshot %d is not a keyframe", errCorrupt, id)
	}
	f := &frame{sys: sys, sysTokens: sysTokens(sys)}
	s.sysCache.put(id, f)
	return f.sysTokens, nil
}

func (s *Postgres) systemInfo(ctx context.Context, q pgQuerier, base *int64, blob []byte) (json.RawMessage, error) {
	kind, raw, err := openBlob(blob)
	if err != nil {
		return nil, err
	}
	switch kind {
	case blobFull:
		return append([]byte(nil), raw...), nil
	case blobDelta:
		if base == nil {
			return nil, fmt.Errorf("%w: system_info delta without keyframe", errCorrupt)
		}
		toks, err := s.keyframeSys(ctx, q, *base)
		if err != nil {
			return nil, err
		}
		return decodeSysDelta(raw, toks)
	default:
		return nil, errCorrupt
	}
}

// decodeKeyframe decodes a keyframe's two blobs.
func decodeKeyframe(procsBlob, sysBlob []byte) (*frame, error) {
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
	st.CommittedWrites = st.Commits
	return st, nil
}
