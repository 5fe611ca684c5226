package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Retention on PostgreSQL: the same tiers and the same candidate queries
// as SQLite's (retention.go), run by one aggregator at a time: a pass
// starts only when pg_try_advisory_lock wins, the others skip it. The
// lock is a session's, so an aggregator that dies mid-pass frees it.
// PostgreSQL's autovacuum gives the space back; nothing here vacuums.

func (s *Postgres) pruneLoop() {
	runPruner(&s.opts, s.log, s.quit, s.pruneDone, s.Prune, func(error) bool { return false })
}

// errPruneBusy: another aggregator holds the retention lock.
var errPruneBusy = errors.New("another aggregator is running retention")

// Prune runs one retention pass now, unless another aggregator is running
// one (then it deletes nothing and returns no error).
func (s *Postgres) Prune(ctx context.Context) (int64, error) {
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()
	if s.closed.Load() {
		return 0, ErrClosed
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("retention: %w", err)
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", int64(pgPruneLock)).Scan(&got); err != nil {
		return 0, fmt.Errorf("retention: %w", err)
	}
	if !got {
		s.log.Debug("retention pass skipped", "reason", errPruneBusy)
		return 0, nil
	}
	defer func() {
		_, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(pgPruneLock))
	}()
	return s.prune.pass(ctx, &s.opts, &s.pruneLate, s.sql, onPG[*pgxpool.Conn]{conn},
		func(ctx context.Context, ids []int64) (int64, error) { return s.deleteSnapshots(ctx, conn, ids) })
}

// deleteSnapshots deletes ids in one transaction, re-encoding the
// surviving deltas of any keyframe among them. The victims are locked
// first (FOR UPDATE, as rebase locks their deltas): an ingest that wants
// one of them as its delta base waits, then finds it gone and stores a
// keyframe (no_base).
func (s *Postgres) deleteSnapshots(ctx context.Context, conn *pgxpool.Conn, ids []int64) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var deleted int64
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT id, base_id IS NULL FROM snapshots WHERE id = ANY($1) ORDER BY id FOR UPDATE", ids)
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (victim, error) {
			var v victim
			err := r.Scan(&v.id, &v.keyframe)
			return v, err
		})
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		// A base that was deleted is found gone by the next ingest (no_base).
		deleted, err = s.deleteVictims(ctx, onPG[pgx.Tx]{tx}, vs, func(victim) {})
		return err
	})
	if err != nil {
		return 0, err
	}
	s.deleted(ids, deleted)
	return deleted, nil
}
