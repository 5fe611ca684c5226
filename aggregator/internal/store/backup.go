package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// BackupInfo describes a database copy made by Backup.
type BackupInfo struct {
	// At is when the copy's read transaction began: the copy holds every
	// snapshot committed before it and nothing committed after.
	At            time.Time
	SchemaVersion int
	Hosts         int
	Snapshots     int64
	Bytes         int64
}

// Backup copies the database in dir to the new file dst while the
// database may be in use, by this process or another one (a running
// server): VACUUM INTO reads it in one transaction, so the copy is the
// database as of that transaction's start, compacted. The source is only
// read (a read-only connection). progress, if set, is called about once a
// second with the bytes written so far and the estimated total. The copy
// is checked (PRAGMA quick_check) and fsynced before Backup returns.
func Backup(ctx context.Context, dir, dst string, progress func(written, total int64)) (BackupInfo, error) {
	path := filepath.Join(dir, DBFile)
	if _, err := os.Stat(path); err != nil {
		return BackupInfo{}, fmt.Errorf("no database to back up: %w", err)
	}
	if err := checkNotNewer(ctx, path); err != nil {
		return BackupInfo{}, err
	}
	if _, err := os.Lstat(dst); err == nil {
		return BackupInfo{}, fmt.Errorf("%s exists", dst)
	}
	src, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return BackupInfo{}, fmt.Errorf("open database: %w", err)
	}
	defer func() { _ = src.Close() }()
	src.SetMaxOpenConns(1)
	var pages, free, pageSize int64
	if err := src.QueryRowContext(ctx, "SELECT (SELECT page_count FROM pragma_page_count), (SELECT freelist_count FROM pragma_freelist_count), (SELECT page_size FROM pragma_page_size)").
		Scan(&pages, &free, &pageSize); err != nil {
		return BackupInfo{}, fmt.Errorf("read database size: %w", err)
	}
	total := (pages - free) * pageSize

	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if progress == nil {
			return
		}
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if fi, err := os.Stat(dst); err == nil {
					progress(fi.Size(), total)
				}
			}
		}
	}()
	at := time.Now()
	// VACUUM INTO takes a file name, not a bind parameter of a statement
	// that could be prepared ahead: quote it as an SQL string literal.
	_, err = src.ExecContext(ctx, "VACUUM INTO "+sqlString(dst))
	close(done)
	<-watched
	if err != nil {
		_ = os.Remove(dst)
		return BackupInfo{}, fmt.Errorf("copy database: %w", err)
	}
	info, err := inspectCopy(ctx, dst)
	if err != nil {
		return BackupInfo{}, err
	}
	info.At = at
	if progress != nil {
		progress(info.Bytes, info.Bytes)
	}
	return info, nil
}

// inspectCopy checks the new copy, counts what it holds and fsyncs it
// (VACUUM INTO does not).
func inspectCopy(ctx context.Context, path string) (BackupInfo, error) {
	var info BackupInfo
	db, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?mode=ro")
	if err != nil {
		return info, err
	}
	defer func() { _ = db.Close() }()
	var check string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&check); err != nil {
		return info, fmt.Errorf("check the copy: %w", err)
	}
	if check != "ok" {
		return info, fmt.Errorf("the copy fails its check: %s", check)
	}
	if err := db.QueryRowContext(ctx, "SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM hosts), (SELECT count(*) FROM snapshots)").
		Scan(&info.SchemaVersion, &info.Hosts, &info.Snapshots); err != nil {
		return info, fmt.Errorf("read the copy: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return info, err
	}
	err = f.Sync()
	if fi, serr := f.Stat(); serr == nil {
		info.Bytes = fi.Size()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return info, fmt.Errorf("fsync the copy: %w", err)
	}
	_ = os.Chmod(path, 0o600)
	return info, nil
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string {
	out := make([]byte, 0, len(s)+2)
	out = append(out, '\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}
