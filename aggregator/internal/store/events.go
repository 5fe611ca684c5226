package store

// Process lifecycle events (issue 15): what the aggregator derived from
// consecutive snapshots of a host (aggregator/internal/events), stored
// next to the snapshots and pruned with them.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// EventKind says what happened to a process.
type EventKind uint8

// The kinds, as stored (events.kind).
const (
	EventStarted   EventKind = 1
	EventExited    EventKind = 2
	EventRestarted EventKind = 3
)

// String is the kind's name in the API.
func (k EventKind) String() string {
	switch k {
	case EventStarted:
		return "started"
	case EventExited:
		return "exited"
	case EventRestarted:
		return "restarted"
	}
	return "unknown"
}

// Event is one start, exit or restart of a process on a host.
type Event struct {
	At          time.Time // the snapshot that showed it (ms precision)
	Kind        EventKind
	PID, PPID   int64
	Name        string
	Unit        string // "" when unknown
	ContainerID string
	// PrevPID is the pid that exited, for EventRestarted.
	PrevPID int64
	// Started is when the process started (zero when unknown), for
	// EventExited: its lifetime is At - Started.
	Started time.Time
	// CPUPercent and MemoryMB are the last seen, for EventExited.
	CPUPercent, MemoryMB float64
}

// EventQuery selects a host's events with From <= At <= To whose name,
// unit or container id contains Q (all when Q is ""), newest first, at
// most Limit of them.
type EventQuery struct {
	From, To time.Time
	Q        string
	Limit    int
}

// EventStore keeps lifecycle events. It is separate from Store so that a
// backend can add it on its own; the SQLite store implements both.
type EventStore interface {
	// AddEvents stores events of a known host in one transaction;
	// ErrNotFound when the host is unknown (deleted meanwhile).
	AddEvents(ctx context.Context, hostname string, evs []Event) error
	// Events answers q for a host; ErrNotFound for an unknown host.
	Events(ctx context.Context, hostname string, q EventQuery) ([]Event, error)
	// PruneEvents deletes every event older than its host's oldest
	// snapshot (or of a host without snapshots) and says how many went.
	PruneEvents(ctx context.Context) (int64, error)
}

var _ EventStore = (*SQLite)(nil)

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(v int64, ok bool) any {
	if !ok {
		return nil
	}
	return v
}

// AddEvents implements EventStore, through the writer like every write.
func (s *SQLite) AddEvents(ctx context.Context, hostname string, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	return s.exec(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, "SELECT id FROM hosts WHERE hostname = ?", hostname).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("add events: %w", err)
		}
		st, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO events (host_id, at_ms, kind, pid, ppid, name, unit, container_id,
			prev_pid, started_ms, cpu_percent, memory_mb) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("add events: %w", err)
		}
		defer func() { _ = st.Close() }()
		for _, e := range evs {
			exited := e.Kind == EventExited
			var cpu, mem any
			if exited {
				cpu, mem = e.CPUPercent, e.MemoryMB
			}
			if _, err := st.ExecContext(ctx, id, e.At.UnixMilli(), int64(e.Kind), e.PID, e.PPID, e.Name,
				nullStr(e.Unit), nullStr(e.ContainerID), nullInt(e.PrevPID, e.Kind == EventRestarted),
				nullInt(e.Started.UnixMilli(), exited && !e.Started.IsZero()), cpu, mem); err != nil {
				return fmt.Errorf("add events: %w", err)
			}
		}
		return nil
	})
}

// maxEventsLimit bounds one answer whatever the caller asks.
const maxEventsLimit = 10000

// Events implements EventStore.
func (s *SQLite) Events(ctx context.Context, hostname string, q EventQuery) ([]Event, error) {
	var id int64
	err := s.rdb.QueryRowContext(ctx, "SELECT id FROM hosts WHERE hostname = ?", hostname).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	limit := q.Limit
	if limit <= 0 || limit > maxEventsLimit {
		limit = maxEventsLimit
	}
	query := `SELECT at_ms, kind, pid, ppid, name, unit, container_id, prev_pid, started_ms, cpu_percent, memory_mb
		FROM events WHERE host_id = ? AND at_ms BETWEEN ? AND ?`
	args := []any{id, q.From.UnixMilli(), q.To.UnixMilli()}
	if q.Q != "" {
		// LIKE with its wildcards escaped is a substring test that
		// ignores ASCII case without lower() on every row; q is a
		// parameter, never SQL text.
		query += ` AND (name LIKE ? ESCAPE '\' OR unit LIKE ? ESCAPE '\' OR container_id LIKE ? ESCAPE '\')`
		like := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q.Q) + "%"
		args = append(args, like, like, like)
	}
	query += ` ORDER BY at_ms DESC, pid DESC, kind DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := []Event{}
	for rows.Next() {
		var e Event
		var at int64
		var kind uint8
		var unit, ctr sql.NullString
		var prev, started sql.NullInt64
		var cpu, mem sql.NullFloat64
		if err := rows.Scan(&at, &kind, &e.PID, &e.PPID, &e.Name, &unit, &ctr, &prev, &started, &cpu, &mem); err != nil {
			return nil, fmt.Errorf("events: %w", err)
		}
		e.At, e.Kind = time.UnixMilli(at).UTC(), EventKind(kind)
		e.Unit, e.ContainerID, e.PrevPID = unit.String, ctr.String, prev.Int64
		if started.Valid {
			e.Started = time.UnixMilli(started.Int64).UTC()
		}
		e.CPUPercent, e.MemoryMB = cpu.Float64, mem.Float64
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return out, nil
}

// PruneEvents implements EventStore.
func (s *SQLite) PruneEvents(ctx context.Context) (int64, error) {
	var n int64
	err := s.exec(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE at_ms < coalesce(
			(SELECT min(captured_ms) FROM snapshots s WHERE s.host_id = events.host_id), 9223372036854775807)`)
		if err != nil {
			return fmt.Errorf("prune events: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
