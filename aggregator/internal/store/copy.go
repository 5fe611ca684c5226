package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
)

// CopyProgress is how far CopyToPostgres got.
type CopyProgress struct {
	Hosts            int
	Snapshots, Total int64
	Copied, Skipped  int64 // snapshots written now / found there already
	KeyframesDone    bool
}

// copyBatch is how many snapshots one INSERT carries.
const copyBatch = 500

// CopyToPostgres copies everything src holds into dst: hosts with their
// key hashes, recorded host deletions, and every snapshot with its id and
// its encoded blobs as they are (nothing is decoded, so the API answers
// the same from either). It is resumable: rows already in dst are skipped
// (ON CONFLICT DO NOTHING), and each pass starts after the highest id it
// finds copied. Keyframes go first, so that every delta finds its base.
// dst must be empty or filled only by earlier copies of src: ids are kept.
// progress, when set, is called after every batch.
func CopyToPostgres(ctx context.Context, src *SQLite, dst *Postgres, progress func(CopyProgress)) (CopyProgress, error) {
	var p CopyProgress
	if src.closed.Load() || dst.closed.Load() {
		return p, ErrClosed
	}
	report := func() {
		if progress != nil {
			progress(p)
		}
	}
	if err := src.rdb.QueryRowContext(ctx, "SELECT count(*) FROM snapshots").Scan(&p.Total); err != nil {
		return p, fmt.Errorf("count snapshots: %w", err)
	}

	// Hosts, by id: the snapshots' host_id stays valid.
	rows, err := src.rdb.QueryContext(ctx, "SELECT id, hostname, key_hash, created_ms, last_seen_ms FROM hosts ORDER BY id")
	if err != nil {
		return p, fmt.Errorf("read hosts: %w", err)
	}
	for rows.Next() {
		var id, created, seen int64
		var name string
		var key []byte
		if err := rows.Scan(&id, &name, &key, &created, &seen); err != nil {
			_ = rows.Close()
			return p, fmt.Errorf("read hosts: %w", err)
		}
		// A host already there (an earlier run) keeps its row; last_seen
		// moves forward if the source saw it later.
		if _, err := dst.pool.Exec(ctx, `INSERT INTO hosts (id, hostname, key_hash, created_ms, last_seen_ms)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (id) DO UPDATE SET last_seen_ms = greatest(hosts.last_seen_ms, excluded.last_seen_ms)
			WHERE hosts.hostname = excluded.hostname`, id, name, key, created, seen); err != nil {
			_ = rows.Close()
			return p, fmt.Errorf("copy host %q: %w", name, err)
		}
		var got string
		if err := dst.pool.QueryRow(ctx, "SELECT hostname FROM hosts WHERE id = $1", id).Scan(&got); err != nil || got != name {
			_ = rows.Close()
			return p, fmt.Errorf("host id %d is %q in the destination, not %q: copy into an empty database", id, got, name)
		}
		p.Hosts++
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return p, fmt.Errorf("read hosts: %w", err)
	}
	if err := copyDeletions(ctx, src, dst); err != nil {
		return p, err
	}
	if err := copyEvents(ctx, src, dst); err != nil {
		return p, err
	}

	for _, keyframes := range []bool{true, false} {
		cond := "base_id IS NULL"
		if !keyframes {
			cond = "base_id IS NOT NULL"
		}
		var after int64
		if err := dst.pool.QueryRow(ctx, "SELECT coalesce(max(id), 0) FROM snapshots WHERE "+cond).Scan(&after); err != nil {
			return p, fmt.Errorf("resume point: %w", err)
		}
		if after > 0 {
			// Resuming: what is below the resume point was copied.
			var done int64
			if err := src.rdb.QueryRowContext(ctx, "SELECT count(*) FROM snapshots WHERE "+cond+" AND id <= ?", after).Scan(&done); err != nil {
				return p, fmt.Errorf("resume point: %w", err)
			}
			p.Snapshots += done
			p.Skipped += done
		}
		for {
			n, last, skipped, err := copySnapshots(ctx, src, dst, cond, after)
			if err != nil {
				return p, err
			}
			p.Snapshots += int64(n)
			p.Copied += int64(n - skipped)
			p.Skipped += int64(skipped)
			if n == 0 {
				break
			}
			after = last
			report()
		}
		p.KeyframesDone = true
	}
	// Ids never reused: new snapshots in PostgreSQL number on from the
	// highest id SQLite ever gave (sqlite_sequence remembers deleted ones).
	var seq sql.NullInt64
	err = src.rdb.QueryRowContext(ctx, "SELECT seq FROM sqlite_sequence WHERE name = 'snapshots'").Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("read id sequence: %w", err)
	}
	for _, t := range []struct {
		table string
		least int64
	}{{"snapshots", seq.Int64}, {"hosts", 0}, {"deleted_hosts", 0}} {
		if _, err := dst.pool.Exec(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%[1]s', 'id'),
			greatest((SELECT max(id) FROM %[1]s), $1, 1))`, t.table), t.least); err != nil {
			return p, fmt.Errorf("advance the id sequence of %s: %w", t.table, err)
		}
	}
	report()
	return p, nil
}

func copyDeletions(ctx context.Context, src *SQLite, dst *Postgres) error {
	rows, err := src.rdb.QueryContext(ctx, "SELECT id, hostname, deleted_ms FROM deleted_hosts ORDER BY id")
	if err != nil {
		return fmt.Errorf("read host deletions: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var id, ms int64
		var name string
		if err := rows.Scan(&id, &name, &ms); err != nil {
			return fmt.Errorf("read host deletions: %w", err)
		}
		if _, err := dst.pool.Exec(ctx, `INSERT INTO deleted_hosts (id, hostname, deleted_ms) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, id, name, ms); err != nil {
			return fmt.Errorf("copy host deletion: %w", err)
		}
	}
	return rows.Err()
}

// copySnapshots copies the next batch of snapshots matching cond with an
// id above after; it returns how many it read, the last id, and how many
// of them dst had already.
func copySnapshots(ctx context.Context, src *SQLite, dst *Postgres, cond string, after int64) (n int, last int64, skipped int, err error) {
	rows, err := src.rdb.QueryContext(ctx, `SELECT id, host_id, captured_ms, process_count, base_id, sys, procs
		FROM snapshots WHERE `+cond+` AND id > ? ORDER BY id LIMIT ?`, after, copyBatch)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("read snapshots: %w", err)
	}
	var (
		ids, hosts, captured, bases []int64
		baseValid                   []bool
		counts                      []int32
		sys, procs                  [][]byte
	)
	for rows.Next() {
		var id, host, at int64
		var count int32
		var base sql.NullInt64
		var s, pr []byte
		if err := rows.Scan(&id, &host, &at, &count, &base, &s, &pr); err != nil {
			_ = rows.Close()
			return 0, 0, 0, fmt.Errorf("read snapshots: %w", err)
		}
		ids, hosts, captured, counts = append(ids, id), append(hosts, host), append(captured, at), append(counts, count)
		bases, baseValid = append(bases, base.Int64), append(baseValid, base.Valid)
		sys, procs = append(sys, s), append(procs, pr)
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, 0, fmt.Errorf("read snapshots: %w", err)
	}
	if len(ids) == 0 {
		return 0, after, 0, nil
	}
	baseArg := make([]*int64, len(bases))
	for i := range bases {
		if baseValid[i] {
			baseArg[i] = &bases[i]
		}
	}
	tag, err := dst.pool.Exec(ctx, `INSERT INTO snapshots (id, host_id, captured_ms, process_count, base_id, sys, procs)
		SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::integer[], $5::bigint[], $6::bytea[], $7::bytea[])
		ON CONFLICT DO NOTHING`, ids, hosts, captured, counts, baseArg, sys, procs)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("copy snapshots %d..%d: %w", ids[0], ids[len(ids)-1], err)
	}
	return len(ids), ids[len(ids)-1], len(ids) - int(tag.RowsAffected()), nil
}

// copyEvents copies every host's lifecycle events, newest first, a page at
// a time. dst ignores events it holds already, so a second run copies
// nothing twice.
func copyEvents(ctx context.Context, src *SQLite, dst *Postgres) error {
	hosts, err := src.Hosts(ctx)
	if err != nil {
		return fmt.Errorf("copy events: %w", err)
	}
	for _, h := range hosts {
		to := time.UnixMilli(math.MaxInt64 / 2)
		for {
			evs, err := src.Events(ctx, h.Hostname, EventQuery{From: time.UnixMilli(0), To: to, Limit: maxEventsLimit})
			if err != nil {
				return fmt.Errorf("copy events of %q: %w", h.Hostname, err)
			}
			if err := dst.AddEvents(ctx, h.Hostname, evs); err != nil {
				return fmt.Errorf("copy events of %q: %w", h.Hostname, err)
			}
			if len(evs) < maxEventsLimit {
				break
			}
			// The next page ends at the oldest moment of this one (its
			// other events there come again and are ignored), or just
			// before it when a whole page shares that millisecond.
			next := evs[len(evs)-1].At
			if !next.Before(to) {
				next = next.Add(-time.Millisecond)
			}
			to = next
		}
	}
	return nil
}
