package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// Retention on PostgreSQL: the same tiers and the same candidate queries
// as SQLite's (retention.go), run by one aggregator at a time: a pass
// starts only when pg_try_advisory_lock wins, the others skip it. The
// lock is a session's, so an aggregator that dies mid-pass frees it.
// PostgreSQL's autovacuum gives the space back; nothing here vacuums.

func (s *Postgres) pruneLoop() {
	defer close(s.pruneDone)
	if s.opts.PruneInterval <= 0 {
		return
	}
	t := time.NewTimer(min(s.opts.PruneInterval, 5*time.Second))
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.quit
		cancel()
	}()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		start := time.Now()
		n, err := s.Prune(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("retention pass failed", "deleted", n, "err", err)
		case n > 0:
			s.log.Info("retention pass", "deleted", n, "duration", time.Since(start))
		}
		t.Reset(s.opts.PruneInterval)
	}
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
	return s.prunePass(ctx, conn)
}

func (s *Postgres) prunePass(ctx context.Context, conn *pgxpool.Conn) (int64, error) {
	now := s.opts.Now().UnixMilli()
	rawEdge := now - s.opts.RetentionRaw.Milliseconds()
	midEdge := now - s.opts.RetentionMid.Milliseconds()
	oldEdge := now - s.opts.Retention.Milliseconds()
	if late := s.pruneLate.Swap(math.MaxInt64); late != math.MaxInt64 {
		for i := range s.prune.done {
			s.prune.done[i] = min(s.prune.done[i], late)
		}
	}
	var total int64
	for {
		ids, err := pgIDs(ctx, conn, `SELECT id FROM snapshots WHERE captured_ms < $1
			ORDER BY base_id IS NULL, captured_ms LIMIT $2`, oldEdge, s.opts.PruneBatch)
		if err != nil {
			return total, err
		}
		n, err := s.deleteSnapshots(ctx, conn, ids)
		total += n
		if err != nil {
			return total, err
		}
		if len(ids) < s.opts.PruneBatch {
			break
		}
		if err := s.prunePause(ctx); err != nil {
			return total, err
		}
	}
	tiers := []struct {
		t        tier
		lo, hi   int64
		progress *int64
	}{
		{tierHour, oldEdge, midEdge, &s.prune.done[1]},
		{tierMid, midEdge, rawEdge, &s.prune.done[0]},
	}
	for _, tr := range tiers {
		from := alignDown(max(*tr.progress, tr.lo), tr.t.bucket)
		for from < tr.hi {
			to := min(tr.hi, from+tr.t.chunk.Milliseconds())
			ids, err := pgIDs(ctx, conn, `SELECT id FROM (
				SELECT id, base_id IS NULL AS keyframe, row_number() OVER (
					PARTITION BY host_id, captured_ms / $1 ORDER BY captured_ms, id) AS rn
				FROM snapshots WHERE captured_ms >= $2 AND captured_ms < $3) c
				WHERE rn > 1 ORDER BY keyframe, id`, tr.t.bucket.Milliseconds(), from, to)
			if err != nil {
				return total, err
			}
			for len(ids) > 0 {
				batch := ids[:min(len(ids), s.opts.PruneBatch)]
				ids = ids[len(batch):]
				n, err := s.deleteSnapshots(ctx, conn, batch)
				total += n
				if err != nil {
					return total, err
				}
				if err := s.prunePause(ctx); err != nil {
					return total, err
				}
			}
			*tr.progress = to
			from = to
		}
	}
	return total, nil
}

func (s *Postgres) prunePause(ctx context.Context) error {
	if s.opts.PrunePause <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(s.opts.PrunePause)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func pgIDs(ctx context.Context, q pgQuerier, query string, args ...any) ([]int64, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("retention query: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("retention query: %w", err)
	}
	return ids, nil
}

// deleteSnapshots deletes ids in one transaction, re-encoding the
// surviving deltas of any keyframe among them. The victims are locked
// first (FOR UPDATE): an ingest that wants one of them as its delta base
// waits, then finds it gone and stores a keyframe (no_base).
func (s *Postgres) deleteSnapshots(ctx context.Context, conn *pgxpool.Conn, ids []int64) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var deleted int64
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		deleted = 0
		rows, err := tx.Query(ctx, "SELECT id, base_id IS NULL FROM snapshots WHERE id = ANY($1) ORDER BY id FOR UPDATE", ids)
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		type victim struct {
			id       int64
			keyframe bool
		}
		vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (victim, error) {
			var v victim
			err := r.Scan(&v.id, &v.keyframe)
			return v, err
		})
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		// Deltas first: a keyframe's deltas dying in the same batch then
		// need no re-encoding.
		slices.SortStableFunc(vs, func(a, b victim) int {
			switch {
			case a.keyframe == b.keyframe:
				return 0
			case a.keyframe:
				return 1
			default:
				return -1
			}
		})
		for _, v := range vs {
			if v.keyframe {
				if err := s.rebase(ctx, tx, v.id); err != nil {
					return fmt.Errorf("retention: re-encode deltas of keyframe %d: %w", v.id, err)
				}
			}
			if _, err := tx.Exec(ctx, "DELETE FROM snapshots WHERE id = $1", v.id); err != nil {
				return fmt.Errorf("retention: delete snapshot %d: %w", v.id, err)
			}
			deleted++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		s.cache.forget(id)
		s.sysCache.forget(id)
	}
	// A base that was deleted is found gone by the next ingest (no_base).
	s.pruned.Add(deleted)
	return deleted, nil
}

// rebase makes keyframe kf deletable, as SQLite.rebase does.
func (s *Postgres) rebase(ctx context.Context, tx pgx.Tx, kf int64) error {
	rows, err := tx.Query(ctx, "SELECT id, procs, sys FROM snapshots WHERE base_id = $1 ORDER BY captured_ms DESC, id DESC FOR UPDATE", kf)
	if err != nil {
		return err
	}
	deps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rebaseDep, error) {
		var d rebaseDep
		err := r.Scan(&d.id, &d.procs, &d.sy)
		return d, err
	})
	if err != nil {
		return err
	}
	if len(deps) == 0 {
		return nil
	}
	old, err := s.keyframe(ctx, tx, kf, nil, nil)
	if err != nil {
		return err
	}
	decode := func(d rebaseDep) ([]snapshot.Process, []byte, error) {
		procs, err := decodeProcsAgainst(d.procs, old)
		if err != nil {
			return nil, nil, err
		}
		sys, err := decodeSysAgainst(d.sy, old)
		return procs, sys, err
	}
	return rebaseDeps(deps, decode, func(id int64, base any, procs, sys []byte) error {
		_, err := tx.Exec(ctx, "UPDATE snapshots SET base_id = $1, procs = $2, sys = $3 WHERE id = $4", base, procs, sys, id)
		return err
	})
}
