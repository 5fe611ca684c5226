package store

import (
	"context"
	"database/sql"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Both stores read (and plan retention) with one piece of code: each
// query is written once with "?" placeholders, PostgreSQL's copy has them
// numbered ($1, $2, ...) when the package loads, and one function scans
// and assembles each answer from the rows either driver returns. Where the
// dialects really differ (a LATERAL join, ILIKE, FOR UPDATE) the dialect
// holds its own text. Plain functions over a three-method interface, as
// Prometheus and VictoriaMetrics keep their storage code: no ORM, no
// reflection of our own.

// row is one result row of either driver (*sql.Row, pgx.Row).
type row interface{ Scan(dest ...any) error }

// rows is a result set of either driver; Close may be called again.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// querier runs SQL of its store's dialect on a connection or in a
// transaction of either engine.
type querier interface {
	QueryRow(ctx context.Context, query string, args ...any) row
	Query(ctx context.Context, query string, args ...any) (rows, error)
	Exec(ctx context.Context, query string, args ...any) error
}

// sqlRunner is a *sql.DB or a *sql.Tx (SQLite).
type sqlRunner interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// onSQL is a querier on database/sql.
type onSQL[T sqlRunner] struct{ q T }

func (s onSQL[T]) QueryRow(ctx context.Context, query string, args ...any) row {
	return s.q.QueryRowContext(ctx, query, args...)
}

func (s onSQL[T]) Query(ctx context.Context, query string, args ...any) (rows, error) {
	r, err := s.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}

func (s onSQL[T]) Exec(ctx context.Context, query string, args ...any) error {
	_, err := s.q.ExecContext(ctx, query, args...)
	return err
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

// pgRunner is a pgx pool, connection or transaction (PostgreSQL).
type pgRunner interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// onPG is a querier on pgx.
type onPG[T pgRunner] struct{ q T }

func (p onPG[T]) QueryRow(ctx context.Context, query string, args ...any) row {
	return p.q.QueryRow(ctx, query, args...)
}

func (p onPG[T]) Query(ctx context.Context, query string, args ...any) (rows, error) {
	return p.q.Query(ctx, query, args...)
}

func (p onPG[T]) Exec(ctx context.Context, query string, args ...any) error {
	_, err := p.q.Exec(ctx, query, args...)
	return err
}

// readTx is a read-only transaction: a delta and its keyframe are read as
// of one moment, even while retention re-encodes them.
type readTx interface {
	querier
	end()
}

type sqlReadTx struct{ onSQL[*sql.Tx] }

func (t sqlReadTx) end() { _ = t.q.Rollback() }

type pgReadTx struct{ onPG[pgx.Tx] }

func (t pgReadTx) end() { _ = t.q.Rollback(context.Background()) }

// core is the part of a store written once for both engines: the SQL of
// its dialect, the caches of decoded keyframes, the key check's cache, and
// (read.go) every read of Store and EventStore. SQLite and Postgres embed
// one; their Open functions fill it.
type core struct {
	log *slog.Logger
	sql *dialect
	// db runs single statements outside a transaction: SQLite's read
	// connections, PostgreSQL's pool.
	db querier
	// begin starts a read-only transaction.
	begin func(ctx context.Context) (readTx, error)

	cache    *frameCache // decoded keyframes
	sysCache *frameCache // keyframes' system_info only (about 1 KB each), for listings
	closed   atomic.Bool
	pruned   atomic.Int64 // snapshots retention deleted since the store was opened
	// keyOK maps hostname to a *keyCheck: the key hash CheckKey last found
	// stored for it, so that a host pushing many times a second costs one
	// query a keyCheckTTL instead of one per ingest.
	keyOK sync.Map
}

func (c *core) init(log *slog.Logger, d *dialect, db querier, begin func(context.Context) (readTx, error), cacheRows int) {
	c.log, c.sql, c.db, c.begin = log, d, db, begin
	c.cache = newFrameCache(cacheRows)
	c.sysCache = newFrameCache(4096)
}

// readTx begins a read-only transaction unless the store is closed.
func (c *core) readTx(ctx context.Context) (readTx, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	return c.begin(ctx)
}

// deleted counts n snapshots retention deleted (of ids) and drops them
// from the keyframe caches.
func (c *core) deleted(ids []int64, n int64) {
	for _, id := range ids {
		c.cache.forget(id)
		c.sysCache.forget(id)
	}
	c.pruned.Add(n)
}

// dialect is the SQL of one engine.
type dialect struct {
	keyHash, hostID               string
	hosts                         string
	latest, snapshot, at, between string
	blobs, sysBlob                string
	events, eventsSearch          string
	addEvent, pruneEvents         string
	expired, thin                 string
	rebaseDeps, rebaseUpdate      string
	deleteSnapshot                string
}

// metaColumns are what scanMeta reads, in its order.
const metaColumns = `s.id, h.hostname, s.captured_ms, s.process_count, s.base_id, s.sys`

const eventColumns = `at_ms, kind, pid, ppid, name, unit, container_id, prev_pid, started_ms, cpu_percent, memory_mb`

// newDialect writes every query once; ph numbers the placeholders (or
// leaves them), hosts is the engine's latest-snapshot-per-host join, like
// its substring operator and lock what rebase adds to lock the deltas it
// rewrites.
func newDialect(ph func(string) string, hosts, like, lock string) *dialect {
	events := `SELECT ` + eventColumns + ` FROM events WHERE host_id = ? AND at_ms BETWEEN ? AND ?`
	order := ` ORDER BY at_ms DESC, pid DESC, kind DESC LIMIT ?`
	// The search is a parameter with LIKE's wildcards escaped, never SQL
	// text.
	search := strings.ReplaceAll(` AND (name LIKE ? ESCAPE '\' OR unit LIKE ? ESCAPE '\' OR container_id LIKE ? ESCAPE '\')`, "LIKE", like)
	return &dialect{
		keyHash: ph(`SELECT key_hash FROM hosts WHERE hostname = ?`),
		hostID:  ph(`SELECT id FROM hosts WHERE hostname = ?`),
		hosts: `SELECT h.hostname, h.last_seen_ms, s.id, s.captured_ms, s.base_id, s.sys
		FROM hosts h ` + hosts + ` ORDER BY h.hostname`,
		latest: ph(`SELECT ` + metaColumns + ` FROM hosts h JOIN snapshots s ON s.host_id = h.id
		WHERE h.hostname = ? ORDER BY s.captured_ms DESC, s.id DESC LIMIT 1`),
		snapshot: ph(`SELECT ` + metaColumns + ` FROM snapshots s JOIN hosts h ON h.id = s.host_id WHERE s.id = ?`),
		at: ph(`SELECT ` + metaColumns + ` FROM hosts h JOIN snapshots s ON s.host_id = h.id
		WHERE h.hostname = ? AND s.captured_ms <= ? ORDER BY s.captured_ms DESC, s.id DESC LIMIT 1`),
		between: ph(`SELECT ` + metaColumns + ` FROM hosts h JOIN snapshots s ON s.host_id = h.id
		WHERE h.hostname = ? AND s.captured_ms BETWEEN ? AND ? ORDER BY s.captured_ms, s.id LIMIT ?`),
		blobs:        ph(`SELECT base_id, procs, sys FROM snapshots WHERE id = ?`),
		sysBlob:      ph(`SELECT base_id, sys FROM snapshots WHERE id = ?`),
		events:       ph(events + order),
		eventsSearch: ph(events + search + order),
		addEvent: ph(`INSERT INTO events (host_id, ` + eventColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
		pruneEvents: `DELETE FROM events WHERE at_ms < coalesce(
		(SELECT min(captured_ms) FROM snapshots s WHERE s.host_id = events.host_id), 9223372036854775807)`,
		// Deltas before keyframes (retention.go).
		expired: ph(`SELECT id FROM snapshots WHERE captured_ms < ?
		ORDER BY base_id IS NULL, captured_ms LIMIT ?`),
		thin: ph(`SELECT id FROM (
		SELECT id, base_id IS NULL AS keyframe, row_number() OVER (
			PARTITION BY host_id, captured_ms / ? ORDER BY captured_ms, id) AS rn
		FROM snapshots WHERE captured_ms >= ? AND captured_ms < ?) c
		WHERE rn > 1 ORDER BY keyframe, id`),
		rebaseDeps:     ph(`SELECT id, procs, sys FROM snapshots WHERE base_id = ? ORDER BY captured_ms DESC, id DESC` + lock),
		rebaseUpdate:   ph(`UPDATE snapshots SET base_id = ?, procs = ?, sys = ? WHERE id = ?`),
		deleteSnapshot: ph(`DELETE FROM snapshots WHERE id = ?`),
	}
}

var (
	sqliteSQL = newDialect(func(q string) string { return q },
		`LEFT JOIN snapshots s ON s.id = (
			SELECT id FROM snapshots WHERE host_id = h.id
			ORDER BY captured_ms DESC, id DESC LIMIT 1)`,
		"LIKE", "")
	// ILIKE also folds non-ASCII case (SQLite's LIKE folds ASCII only).
	postgresSQL = newDialect(numbered,
		`LEFT JOIN LATERAL (
			SELECT id, captured_ms, base_id, sys FROM snapshots WHERE host_id = h.id
			ORDER BY captured_ms DESC, id DESC LIMIT 1) s ON true`,
		"ILIKE", " FOR UPDATE")
)

// numbered turns a query's ? placeholders into PostgreSQL's $1, $2, ...
// A ? inside a quoted literal stays.
func numbered(q string) string {
	var b strings.Builder
	n, quoted := 0, false
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}
