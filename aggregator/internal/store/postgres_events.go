package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Lifecycle events on PostgreSQL: the writes of SQLite's events.go, in one
// round trip (a batch); Events is core's (read.go).

var _ EventStore = (*Postgres)(nil)

// AddEvents implements EventStore.
func (s *Postgres) AddEvents(ctx context.Context, hostname string, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		id, err := s.hostID(ctx, onPG[pgx.Tx]{tx}, hostname)
		if err != nil {
			return fmt.Errorf("add events: %w", err)
		}
		b := &pgx.Batch{}
		for _, e := range evs {
			b.Queue(s.sql.addEvent, eventArgs(id, e)...)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("add events: %w", err)
		}
		return nil
	})
}

// PruneEvents implements EventStore.
func (s *Postgres) PruneEvents(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	tag, err := s.pool.Exec(ctx, s.sql.pruneEvents)
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return tag.RowsAffected(), nil
}
