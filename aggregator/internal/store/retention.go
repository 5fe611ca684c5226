package store

// Retention in tiers keeps the database bounded:
//
//	age < RetentionRaw            every snapshot
//	age < RetentionMid            the first snapshot of each host and 5 minutes
//	age < Retention               the first snapshot of each host and hour
//	older                         deleted
//
// "First of its bucket" (buckets aligned to the epoch) is stable as time
// passes, and the first of an hour is also the first of its 5 minutes, so a
// snapshot kept by one tier is the one the next tier keeps.
//
// Finding what to delete is done on a read connection, which never blocks
// the writer (WAL); the deletions then go to the writer in transactions of
// at most PruneBatch rows with a pause between them, so ingests queue
// behind one short transaction at most. Reading stale candidates is safe:
// a snapshot that is not the first of its bucket stays so (only earlier
// snapshots arriving late could change the first, and that only adds
// candidates).
//
// A keyframe whose deltas outlive it is not simply deleted: one of its
// surviving deltas is rewritten as a keyframe and the others are re-encoded
// against it first (the foreign key on base_id would refuse the deletion
// otherwise).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
)

type tier struct {
	bucket time.Duration
	// chunk is how much time one candidate query covers, which bounds its
	// cost on a read connection.
	chunk time.Duration
}

var (
	tierMid  = tier{bucket: 5 * time.Minute, chunk: time.Hour}
	tierHour = tier{bucket: time.Hour, chunk: 24 * time.Hour}
)

// pruneState is the pruner's progress, guarded by SQLite.pruneMu.
type pruneState struct {
	// done[i] is the captured_ms below which tier i is already thinned.
	done [2]int64
}

func alignDown(ms int64, d time.Duration) int64 {
	b := d.Milliseconds()
	return ms - ((ms%b)+b)%b
}

// notePruneWork is called by the writer for every stored snapshot: one
// that arrives late, in time already thinned, must be looked at again.
func (s *SQLite) notePruneWork(captured int64) {
	for {
		cur := s.pruneLate.Load()
		if captured >= cur || s.pruneLate.CompareAndSwap(cur, captured) {
			return
		}
	}
}

func (s *SQLite) pruneLoop() {
	defer close(s.pruneDone)
	if s.opts.PruneInterval <= 0 {
		return
	}
	// The first pass runs soon after start: a store that was down for a
	// while has work waiting.
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
		case err != nil && ctx.Err() == nil && !isFull(err) && !errors.Is(err, ErrStorageFull):
			s.log.Error("retention pass failed", "deleted", n, "err", err)
		case n > 0:
			s.log.Info("retention pass", "deleted", n, "duration", time.Since(start))
		}
		t.Reset(s.opts.PruneInterval)
	}
}

// Prune runs one full retention pass now and returns how many snapshots it
// deleted. The background pruner calls it every PruneInterval.
func (s *SQLite) Prune(ctx context.Context) (int64, error) {
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()
	if s.closed.Load() {
		return 0, ErrClosed
	}
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
	// Expired snapshots, oldest first.
	for {
		// Deltas before keyframes (see the tiers below).
		ids, err := s.queryIDs(ctx, `SELECT id FROM snapshots WHERE captured_ms < ?
			ORDER BY base_id IS NULL, captured_ms LIMIT ?`,
			oldEdge, s.opts.PruneBatch)
		if err != nil {
			return total, err
		}
		n, err := s.deleteSnapshots(ctx, ids)
		total += n
		if err != nil || len(ids) < s.opts.PruneBatch {
			if err != nil {
				return total, err
			}
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
			// Deltas first, keyframes last: by the time a keyframe is
			// deleted, its deltas in this chunk are gone, and only the
			// few that survive thinning are re-encoded (not hundreds
			// that a later batch would delete anyway).
			ids, err := s.queryIDs(ctx, `SELECT id FROM (
				SELECT id, base_id IS NULL AS keyframe, row_number() OVER (
					PARTITION BY host_id, captured_ms / ? ORDER BY captured_ms, id) AS rn
				FROM snapshots WHERE captured_ms >= ? AND captured_ms < ?)
				WHERE rn > 1 ORDER BY keyframe, id`, tr.t.bucket.Milliseconds(), from, to)
			if err != nil {
				return total, err
			}
			for len(ids) > 0 {
				batch := ids[:min(len(ids), s.opts.PruneBatch)]
				ids = ids[len(batch):]
				n, err := s.deleteSnapshots(ctx, batch)
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
	// Also after a pass that deleted nothing: DeleteHost frees pages too.
	if err := s.vacuumSome(ctx); err != nil {
		return total, err
	}
	return total, nil
}

func (s *SQLite) prunePause(ctx context.Context) error {
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

func (s *SQLite) queryIDs(ctx context.Context, query string, args ...any) ([]int64, error) {
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("retention query: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("retention query: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("retention query: %w", err)
	}
	return ids, nil
}

// deleteSnapshots deletes ids in one writer transaction, re-encoding the
// surviving deltas of any keyframe among them.
func (s *SQLite) deleteSnapshots(ctx context.Context, ids []int64) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var deleted int64
	err := s.exec(ctx, func(ctx context.Context, tx *sql.Tx) error {
		deleted = 0
		type victim struct {
			id, host int64
			keyframe bool
		}
		vs := make([]victim, 0, len(ids))
		for _, id := range ids {
			var v victim
			var base sql.NullInt64
			err := tx.QueryRowContext(ctx, "SELECT host_id, base_id FROM snapshots WHERE id = ?", id).Scan(&v.host, &base)
			if errors.Is(err, sql.ErrNoRows) {
				continue // already gone (host deleted meanwhile)
			}
			if err != nil {
				return fmt.Errorf("retention: %w", err)
			}
			v.id, v.keyframe = id, !base.Valid
			vs = append(vs, v)
		}
		// Deltas first: a keyframe's deltas that die in the same batch then
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
				if st := s.w.hosts[v.host]; st != nil && st.keyID == v.id {
					s.dropState(v.host)
				}
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM snapshots WHERE id = ?", v.id); err != nil {
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
	s.pruned.Add(deleted)
	return deleted, nil
}

// rebase makes keyframe kf deletable: its newest surviving delta becomes a
// keyframe and the other deltas are re-encoded against it.
func (s *SQLite) rebase(ctx context.Context, tx *sql.Tx, kf int64) error {
	rows, err := tx.QueryContext(ctx, "SELECT id, procs, sys FROM snapshots WHERE base_id = ? ORDER BY captured_ms DESC, id DESC", kf)
	if err != nil {
		return err
	}
	var deps []rebaseDep
	for rows.Next() {
		var d rebaseDep
		if err := rows.Scan(&d.id, &d.procs, &d.sy); err != nil {
			_ = rows.Close()
			return err
		}
		deps = append(deps, d)
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
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
		_, err := tx.ExecContext(ctx, "UPDATE snapshots SET base_id = ?, procs = ?, sys = ? WHERE id = ?", base, procs, sys, id)
		return err
	})
}

// rebaseDep is a snapshot stored as a delta against a keyframe about to go.
type rebaseDep struct {
	id        int64
	procs, sy []byte
}

// rebaseDeps re-encodes the deltas of a keyframe about to go, newest first
// in deps: the newest becomes a keyframe, the others deltas against it.
// decode reads a delta against the old keyframe; update stores a
// snapshot's new base (nil: none) and blobs. Both stores use it with their
// own SQL.
func rebaseDeps(deps []rebaseDep, decode func(rebaseDep) ([]snapshot.Process, []byte, error),
	update func(id int64, base any, procs, sys []byte) error) error {
	newProcs, newSys, err := decode(deps[0])
	if err != nil {
		return fmt.Errorf("snapshot %d: %w", deps[0].id, err)
	}
	newID := deps[0].id
	if err := update(newID, nil, sealBlob(blobFull, encodeFull(newProcs)), sealBlob(blobFull, newSys)); err != nil {
		return err
	}
	idx := baseIndex(newProcs)
	toks := sysTokens(newSys)
	for _, d := range deps[1:] {
		procs, sys, err := decode(d)
		if err != nil {
			return fmt.Errorf("snapshot %d: %w", d.id, err)
		}
		sysBlob := sealBlob(blobFull, sys)
		if raw, ok := encodeSysDelta(toks, sys); ok {
			sysBlob = sealBlob(blobDelta, raw)
		}
		if err := update(d.id, newID, sealBlob(blobDelta, encodeDelta(procs, newProcs, idx)), sysBlob); err != nil {
			return err
		}
	}
	return nil
}

// decodeProcsAgainst decodes a process blob against its keyframe (nil for
// a keyframe's own blob).
func decodeProcsAgainst(blob []byte, base *frame) ([]snapshot.Process, error) {
	kind, raw, err := openBlob(blob)
	if err != nil {
		return nil, err
	}
	switch {
	case kind == blobFull:
		return decodeFull(raw)
	case kind == blobDelta && base != nil:
		return decodeDelta(raw, base.procs)
	default:
		return nil, errCorrupt
	}
}

// decodeSysAgainst decodes a system_info blob against its keyframe.
func decodeSysAgainst(blob []byte, base *frame) ([]byte, error) {
	kind, raw, err := openBlob(blob)
	if err != nil {
		return nil, err
	}
	switch {
	case kind == blobFull:
		return append([]byte(nil), raw...), nil
	case kind == blobDelta && base != nil:
		return decodeSysDelta(raw, base.sysTokens)
	default:
		return nil, errCorrupt
	}
}

// vacuumSome gives free pages back to the file system once more than a
// quarter of the file is free, keeping an eighth for reuse (new snapshots
// fill freed pages first, so the file does not grow while pruning keeps
// up; this returns the space after a burst or a deleted host).
func (s *SQLite) vacuumSome(ctx context.Context) error {
	return s.exec(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var pages, free int64
		if err := tx.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&free); err != nil {
			return err
		}
		if free*4 < pages {
			return nil
		}
		n := min(free-pages/8, 4096) // at most 16 MiB of 4 KiB pages per transaction
		// incremental_vacuum frees one page per step: iterate all its rows
		// (Exec would step once).
		rows, err := tx.QueryContext(ctx, fmt.Sprintf("PRAGMA incremental_vacuum(%d)", n))
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		_ = rows.Close()
		return rows.Err()
	})
}
