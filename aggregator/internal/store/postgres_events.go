package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Lifecycle events on PostgreSQL: SQLite's events.go with the same
// answers. The name search is ILIKE, which also folds non-ASCII case
// (SQLite's LIKE folds ASCII only).

var _ EventStore = (*Postgres)(nil)

// AddEvents implements EventStore.
func (s *Postgres) AddEvents(ctx context.Context, hostname string, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, "SELECT id FROM hosts WHERE hostname = $1", hostname).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("add events: %w", err)
		}
		b := &pgx.Batch{}
		for _, e := range evs {
			exited := e.Kind == EventExited
			var cpu, mem any
			if exited {
				cpu, mem = e.CPUPercent, e.MemoryMB
			}
			b.Queue(`INSERT INTO events (host_id, at_ms, kind, pid, ppid, name, unit, container_id,
				prev_pid, started_ms, cpu_percent, memory_mb) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
				ON CONFLICT DO NOTHING`, id, e.At.UnixMilli(), int16(e.Kind), e.PID, e.PPID, e.Name,
				nullStr(e.Unit), nullStr(e.ContainerID), nullInt(e.PrevPID, e.Kind == EventRestarted),
				nullInt(e.Started.UnixMilli(), exited && !e.Started.IsZero()), cpu, mem)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("add events: %w", err)
		}
		return nil
	})
}

// Events implements EventStore.
func (s *Postgres) Events(ctx context.Context, hostname string, q EventQuery) ([]Event, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	var id int64
	err := s.pool.QueryRow(ctx, "SELECT id FROM hosts WHERE hostname = $1", hostname).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
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
		FROM events WHERE host_id = $1 AND at_ms BETWEEN $2 AND $3`
	args := []any{id, q.From.UnixMilli(), q.To.UnixMilli()}
	if q.Q != "" {
		query += ` AND (name ILIKE $4 OR unit ILIKE $4 OR container_id ILIKE $4)`
		args = append(args, "%"+strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q.Q)+"%")
	}
	query += fmt.Sprintf(` ORDER BY at_ms DESC, pid DESC, kind DESC LIMIT %d`, limit)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var e Event
		var at int64
		var kind int16
		var unit, ctr *string
		var prev, started *int64
		var cpu, mem *float64
		if err := rows.Scan(&at, &kind, &e.PID, &e.PPID, &e.Name, &unit, &ctr, &prev, &started, &cpu, &mem); err != nil {
			return nil, fmt.Errorf("events: %w", err)
		}
		e.At, e.Kind = time.UnixMilli(at).UTC(), EventKind(kind)
		if unit != nil {
			e.Unit = *unit
		}
		if ctr != nil {
			e.ContainerID = *ctr
		}
		if prev != nil {
			e.PrevPID = *prev
		}
		if started != nil {
			e.Started = time.UnixMilli(*started).UTC()
		}
		if cpu != nil {
			e.CPUPercent = *cpu
		}
		if mem != nil {
			e.MemoryMB = *mem
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return out, nil
}

// PruneEvents implements EventStore.
func (s *Postgres) PruneEvents(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM events e WHERE e.at_ms < coalesce(
		(SELECT min(captured_ms) FROM snapshots s WHERE s.host_id = e.host_id), 9223372036854775807)`)
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return tag.RowsAffected(), nil
}
