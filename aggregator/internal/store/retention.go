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
	"log/slog"
	"math"
	"slices"
	"sync/atomic"
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
	runPruner(&s.opts, s.log, s.quit, s.pruneDone, s.Prune, func(err error) bool {
		return isFull(err) || errors.Is(err, ErrStorageFull) // logged once by noteFull
	})
}

// runPruner calls prune every PruneInterval until quit closes, then closes
// done; quiet says which errors are not worth a log line.
func runPruner(o *Options, log *slog.Logger, quit <-chan struct{}, done chan<- struct{},
	prune func(context.Context) (int64, error), quiet func(error) bool) {
	defer close(done)
	if o.PruneInterval <= 0 {
		return
	}
	// The first pass runs soon after start: a store that was down for a
	// while has work waiting.
	t := time.NewTimer(min(o.PruneInterval, 5*time.Second))
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-quit
		cancel()
	}()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		start := time.Now()
		n, err := prune(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !quiet(err):
			log.Error("retention pass failed", "deleted", n, "err", err)
		case n > 0:
			log.Info("retention pass", "deleted", n, "duration", time.Since(start))
		}
		t.Reset(o.PruneInterval)
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
	total, err := s.prune.pass(ctx, &s.opts, &s.pruneLate, s.sql, s.db, s.deleteSnapshots)
	if err != nil {
		return total, err
	}
	// Also after a pass that deleted nothing: DeleteHost frees pages too.
	return total, s.vacuumSome(ctx)
}

// pass runs one retention pass: the candidates are read with q, and del
// deletes them (at most PruneBatch at a time, PrunePause apart). late is
// the earliest snapshot stored since the last pass (notePruneWork).
func (p *pruneState) pass(ctx context.Context, o *Options, late *atomic.Int64, d *dialect, q querier,
	del func(context.Context, []int64) (int64, error)) (int64, error) {
	now := o.Now().UnixMilli()
	rawEdge := now - o.RetentionRaw.Milliseconds()
	midEdge := now - o.RetentionMid.Milliseconds()
	oldEdge := now - o.Retention.Milliseconds()
	if l := late.Swap(math.MaxInt64); l != math.MaxInt64 {
		for i := range p.done {
			p.done[i] = min(p.done[i], l)
		}
	}

	var total int64
	// Expired snapshots, oldest first.
	for {
		ids, err := queryIDs(ctx, q, d.expired, oldEdge, o.PruneBatch)
		if err != nil {
			return total, err
		}
		n, err := del(ctx, ids)
		total += n
		if err != nil {
			return total, err
		}
		if len(ids) < o.PruneBatch {
			break
		}
		if err := prunePause(ctx, o.PrunePause); err != nil {
			return total, err
		}
	}

	tiers := []struct {
		t        tier
		lo, hi   int64
		progress *int64
	}{
		{tierHour, oldEdge, midEdge, &p.done[1]},
		{tierMid, midEdge, rawEdge, &p.done[0]},
	}
	for _, tr := range tiers {
		from := alignDown(max(*tr.progress, tr.lo), tr.t.bucket)
		for from < tr.hi {
			to := min(tr.hi, from+tr.t.chunk.Milliseconds())
			// Deltas first, keyframes last: by the time a keyframe is
			// deleted, its deltas in this chunk are gone, and only the
			// few that survive thinning are re-encoded (not hundreds
			// that a later batch would delete anyway).
			ids, err := queryIDs(ctx, q, d.thin, tr.t.bucket.Milliseconds(), from, to)
			if err != nil {
				return total, err
			}
			for len(ids) > 0 {
				batch := ids[:min(len(ids), o.PruneBatch)]
				ids = ids[len(batch):]
				n, err := del(ctx, batch)
				total += n
				if err != nil {
					return total, err
				}
				if err := prunePause(ctx, o.PrunePause); err != nil {
					return total, err
				}
			}
			*tr.progress = to
			from = to
		}
	}
	return total, nil
}

func prunePause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func queryIDs(ctx context.Context, q querier, query string, args ...any) ([]int64, error) {
	rs, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("retention query: %w", err)
	}
	defer rs.Close()
	var ids []int64
	var id int64 // one destination for every row (see metaScanner)
	for rs.Next() {
		if err := rs.Scan(&id); err != nil {
			return nil, fmt.Errorf("retention query: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rs.Err(); err != nil {
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
		vs := make([]victim, 0, len(ids))
		for _, id := range ids {
			v := victim{id: id}
			var base sql.NullInt64
			err := tx.QueryRowContext(ctx, "SELECT host_id, base_id FROM snapshots WHERE id = ?", id).Scan(&v.host, &base)
			if errors.Is(err, sql.ErrNoRows) {
				continue // already gone (host deleted meanwhile)
			}
			if err != nil {
				return fmt.Errorf("retention: %w", err)
			}
			v.keyframe = !base.Valid
			vs = append(vs, v)
		}
		var err error
		deleted, err = s.deleteVictims(ctx, onSQL[*sql.Tx]{tx}, vs, func(v victim) {
			if st := s.w.hosts[v.host]; st != nil && st.keyID == v.id {
				s.dropState(v.host)
			}
		})
		return err
	})
	if err != nil {
		return 0, err
	}
	s.deleted(ids, deleted)
	return deleted, nil
}

// victim is a snapshot retention deletes.
type victim struct {
	id, host int64
	keyframe bool
}

// deleteVictims deletes vs in transaction tx, deltas first: a keyframe's
// deltas that die in the same batch then need no re-encoding, and those
// that survive are re-encoded (rebase) before the keyframe goes, and gone
// is told.
func (c *core) deleteVictims(ctx context.Context, tx querier, vs []victim, gone func(victim)) (int64, error) {
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
	var deleted int64
	for _, v := range vs {
		if v.keyframe {
			if err := c.rebase(ctx, tx, v.id); err != nil {
				return 0, fmt.Errorf("retention: re-encode deltas of keyframe %d: %w", v.id, err)
			}
			gone(v)
		}
		if err := tx.Exec(ctx, c.sql.deleteSnapshot, v.id); err != nil {
			return 0, fmt.Errorf("retention: delete snapshot %d: %w", v.id, err)
		}
		deleted++
	}
	return deleted, nil
}

// rebase makes keyframe kf deletable: its newest surviving delta becomes a
// keyframe and the other deltas are re-encoded against it.
func (c *core) rebase(ctx context.Context, tx querier, kf int64) error {
	rs, err := tx.Query(ctx, c.sql.rebaseDeps, kf)
	if err != nil {
		return err
	}
	var deps []rebaseDep
	for rs.Next() {
		var d rebaseDep
		if err := rs.Scan(&d.id, &d.procs, &d.sy); err != nil {
			rs.Close()
			return err
		}
		deps = append(deps, d)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return err
	}
	if len(deps) == 0 {
		return nil
	}
	old, err := c.keyframe(ctx, tx, kf, nil, nil)
	if err != nil {
		return err
	}
	return rebaseDeps(deps, old, func(id int64, base any, procs, sys []byte) error {
		return tx.Exec(ctx, c.sql.rebaseUpdate, base, procs, sys, id)
	})
}

// rebaseDep is a snapshot stored as a delta against a keyframe about to go.
type rebaseDep struct {
	id        int64
	procs, sy []byte
}

// rebaseDeps re-encodes the deltas of a keyframe about to go, newest first
// in deps: the newest becomes a keyframe, the others deltas against it.
// old is the keyframe; update stores a snapshot's new base (nil: none) and
// blobs.
func rebaseDeps(deps []rebaseDep, old *frame, update func(id int64, base any, procs, sys []byte) error) error {
	decode := func(d rebaseDep) ([]snapshot.Process, []byte, error) {
		procs, err := decodeProcsAgainst(d.procs, old)
		if err != nil {
			return nil, nil, err
		}
		sys, err := decodeSysAgainst(d.sy, old)
		return procs, sys, err
	}
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
