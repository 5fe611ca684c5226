package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrCorrupt marks a database that fails its check: SQLite found a damaged
// page, or a snapshot's blobs do not decode (their CRC-32C, a length).
var ErrCorrupt = errors.New("database is damaged")

// QuickCheck runs PRAGMA quick_check (every page and b-tree, without
// matching indexes to tables): the server runs it at start so that a
// damaged page stops it with the file named, instead of failing requests
// later.
func (s *SQLite) QuickCheck(ctx context.Context) error {
	problems, err := pragmaCheck(ctx, s.rdb, "quick_check", 5)
	if err == nil && len(problems) > 0 {
		err = fmt.Errorf("%w: %s", ErrCorrupt, problems[0])
	}
	if err != nil {
		return fmt.Errorf("%s fails its check: %w", s.path, err)
	}
	return nil
}

// pragmaCheck runs quick_check or integrity_check and returns the
// problems found (none: "ok").
func pragmaCheck(ctx context.Context, db *sql.DB, pragma string, max int) ([]string, error) {
	rows, err := db.QueryContext(ctx, fmt.Sprintf("PRAGMA %s(%d)", pragma, max))
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, err
		}
		if line == "ok" {
			continue
		}
		for _, l := range strings.Split(line, "\n") {
			if l = strings.TrimSpace(l); l != "" && len(problems) < max {
				problems = append(problems, l)
			}
		}
	}
	return problems, rows.Err()
}

// CheckReport is what Check found.
type CheckReport struct {
	SchemaVersion int
	Hosts         int
	Snapshots     int64
	// Problems lists the damage found, at most maxProblems of them;
	// Damaged counts every damaged snapshot.
	Problems []string
	Damaged  int64
}

const maxProblems = 20

func (r *CheckReport) problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// Check verifies the database in dir offline, reading it only: PRAGMA
// integrity_check, the foreign keys, and every snapshot's blobs decoded
// (keyframes and deltas against their keyframe, each compressed blob's
// CRC-32C checked), their process count and system_info JSON. progress,
// if set, is called with the snapshots checked so far. The error is for
// what prevented the check; damage is in the report.
func Check(ctx context.Context, dir string, progress func(done, total int64)) (CheckReport, error) {
	var rep CheckReport
	path := filepath.Join(dir, DBFile)
	if _, err := os.Stat(path); err != nil {
		return rep, fmt.Errorf("no database: %w", err)
	}
	if err := checkNotNewer(ctx, path); err != nil {
		return rep, err
	}
	db, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return rep, err
	}
	defer func() { _ = db.Close() }()
	db.SetMaxOpenConns(2)
	problems, err := pragmaCheck(ctx, db, "integrity_check", maxProblems)
	if err != nil {
		if IsCorrupt(err) {
			rep.problem("integrity_check: %v", err)
			rep.Damaged++
			return rep, nil
		}
		return rep, err
	}
	for _, p := range problems {
		rep.problem("integrity_check: %s", p)
	}
	if len(problems) > 0 {
		rep.Damaged++
	}
	err = db.QueryRowContext(ctx, "SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM hosts), (SELECT count(*) FROM snapshots)").
		Scan(&rep.SchemaVersion, &rep.Hosts, &rep.Snapshots)
	if err != nil {
		rep.problem("counting hosts and snapshots: %v", err)
		rep.Damaged++
		return rep, nil
	}
	if fk, err := db.QueryContext(ctx, "PRAGMA foreign_key_check"); err == nil {
		for fk.Next() {
			var table, parent string
			var rowid sql.NullInt64
			var fkid int
			if fk.Scan(&table, &rowid, &parent, &fkid) == nil {
				rep.problem("%s row %d refers to a missing %s row", table, rowid.Int64, parent)
				rep.Damaged++
			}
		}
		_ = fk.Close()
	}
	checkSnapshots(ctx, db, &rep, progress)
	return rep, nil
}

// checkSnapshots decodes every snapshot, in id order, keeping the
// keyframes their deltas need.
func checkSnapshots(ctx context.Context, db *sql.DB, rep *CheckReport, progress func(done, total int64)) {
	rows, err := db.QueryContext(ctx, `SELECT s.id, h.hostname, s.captured_ms, s.process_count, s.base_id, s.sys, s.procs
		FROM snapshots s JOIN hosts h ON h.id = s.host_id ORDER BY s.id`)
	if err != nil {
		rep.problem("reading snapshots: %v", err)
		rep.Damaged++
		return
	}
	defer func() { _ = rows.Close() }()
	frames := map[int64]*frame{} // keyframes by id, bounded below
	var done int64
	last := time.Now()
	for rows.Next() {
		var id, ms int64
		var host string
		var count int
		var base sql.NullInt64
		var sys, procs []byte
		if err := rows.Scan(&id, &host, &ms, &count, &base, &sys, &procs); err != nil {
			rep.problem("reading snapshots: %v", err)
			rep.Damaged++
			return
		}
		done++
		if progress != nil && time.Since(last) >= time.Second {
			last = time.Now()
			progress(done, rep.Snapshots)
		}
		where := fmt.Sprintf("snapshot %d (host %q, captured %s)", id, host, time.UnixMilli(ms).UTC().Format(time.RFC3339Nano))
		if !base.Valid {
			f, err := decodeKeyframe(procs, sys)
			if err == nil && len(f.procs) != count {
				err = fmt.Errorf("%d processes, its row says %d", len(f.procs), count)
			}
			if err == nil && !json.Valid(f.sys) {
				err = errors.New("system_info is not valid JSON")
			}
			if err != nil {
				rep.problem("%s: %v", where, err)
				rep.Damaged++
				continue
			}
			if len(frames) >= 1024 {
				clear(frames)
			}
			frames[id] = f
			continue
		}
		f := frames[base.Int64]
		if f == nil {
			var bp, bs []byte
			err := db.QueryRowContext(ctx, "SELECT procs, sys FROM snapshots WHERE id = ? AND base_id IS NULL", base.Int64).Scan(&bp, &bs)
			if err == nil {
				f, err = decodeKeyframe(bp, bs)
			}
			if err != nil {
				rep.problem("%s: its keyframe %d: %v", where, base.Int64, err)
				rep.Damaged++
				continue
			}
			frames[base.Int64] = f
		}
		if err := checkDelta(f, procs, sys, count); err != nil {
			rep.problem("%s: %v", where, err)
			rep.Damaged++
		}
	}
	if err := rows.Err(); err != nil {
		rep.problem("reading snapshots: %v", err)
		rep.Damaged++
	}
	if progress != nil {
		progress(done, rep.Snapshots)
	}
}

func checkDelta(f *frame, procsBlob, sysBlob []byte, count int) error {
	kind, raw, err := openBlob(procsBlob)
	if err != nil {
		return err
	}
	var n int
	switch kind {
	case blobDelta:
		procs, err := decodeDelta(raw, f.procs)
		if err != nil {
			return err
		}
		n = len(procs)
	case blobFull:
		procs, err := decodeFull(raw)
		if err != nil {
			return err
		}
		n = len(procs)
	default:
		return errCorrupt
	}
	if n != count {
		return fmt.Errorf("%d processes, its row says %d", n, count)
	}
	kind, raw, err = openBlob(sysBlob)
	if err != nil {
		return err
	}
	if kind == blobDelta {
		if raw, err = decodeSysDelta(raw, f.sysTokens); err != nil {
			return err
		}
	}
	if !json.Valid(raw) {
		return errors.New("system_info is not valid JSON")
	}
	return nil
}
