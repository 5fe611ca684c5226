package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
)

// checkNotNewer refuses a database written by a newer binary before
// anything opens it for writing: the writer's connection would already
// switch it to WAL, a change an older binary has no business making.
// A missing or empty file is version 0.
func checkNotNewer(ctx context.Context, path string) error {
	files, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer func() { _ = db.Close() }()
	var current int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		// Not readable as a database: migrate reports it with the
		// writer's connection, which also creates a new file.
		return nil
	}
	if current > len(files) {
		return fmt.Errorf("%w: database schema version %d is newer than this program's (%d), no downgrade: run a procscope-aggregator of that version or newer, or restore a backup this version made (docs/operations.md, \"Upgrades\")",
			ErrNewerSchema, current, len(files))
	}
	return nil
}
