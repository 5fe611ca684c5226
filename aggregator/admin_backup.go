package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/common/version"

	"github.com/procscope/procscope/aggregator/internal/history"
	"github.com/procscope/procscope/aggregator/internal/store"
)

// Backups (`procscope-aggregator backup --to DIR`), online or offline.
//
// The moment: the database copy is one read transaction (VACUUM INTO),
// begun right after the command starts; it holds every snapshot
// acknowledged before the command started. The history snapshot is taken
// right after the database copy, once every history sample queued so far
// is written, so it holds the history of every snapshot in the database
// copy, plus whatever arrived during the copy: history may run a few
// seconds ahead of the database, never behind it.
//
// Everything is written into a temporary directory beside DIR
// (.procscope-backup-*), fsynced, marked complete (BACKUP_COMPLETE, written
// last) and renamed to DIR at the end: an interrupted backup (kill -9, a
// full disk) leaves at most that temporary directory, never a DIR that
// looks complete, and the source is only ever read.

// backupMarker is written last into a backup: a directory without it is
// not a complete backup.
const backupMarker = "BACKUP_COMPLETE"

// backupTempPrefix names the temporary directory a backup is built in.
const backupTempPrefix = ".procscope-backup-"

// backupRecord is the content of the marker file.
type backupRecord struct {
	Version       string    `json:"version"`
	Source        string    `json:"source"`
	StartedAt     time.Time `json:"started_at"`
	DatabaseAt    time.Time `json:"database_at"`
	HistoryAt     time.Time `json:"history_at,omitzero"`
	SchemaVersion int       `json:"schema_version"`
	Hosts         int       `json:"hosts"`
	Snapshots     int64     `json:"snapshots"`
	DatabaseBytes int64     `json:"database_bytes"`
	HistoryFiles  int       `json:"history_files"`
	HistoryBytes  int64     `json:"history_bytes"`
	CompletedAt   time.Time `json:"completed_at"`
}

func backupCmd(stdout, stderr io.Writer, logger *slog.Logger, storage, to string) int {
	fail := func(format string, args ...any) int {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: backup: "+format+"\n", args...)
		return exitFailed
	}
	if to == "" {
		_, _ = fmt.Fprintln(stderr, "procscope-aggregator: backup needs --to DIR (see --help)")
		return exitUsage
	}
	dest, err := filepath.Abs(to)
	if err != nil {
		return fail("%v", err)
	}
	src, err := filepath.Abs(storage)
	if err != nil {
		return fail("%v", err)
	}
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return fail("no storage directory at %s (set --storage.path)", src)
	}
	if _, err := os.Lstat(dest); err == nil {
		return fail("%s exists: a backup is never written over anything; choose a new directory", dest)
	}
	if rel, err := filepath.Rel(src, dest); err == nil && !strings.HasPrefix(rel, "..") {
		return fail("%s is inside the storage directory %s: choose a directory outside it", dest, src)
	}
	parent := filepath.Dir(dest)
	if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
		return fail("the parent directory of --to, %s, does not exist", parent)
	}
	leftovers, _ := filepath.Glob(filepath.Join(parent, backupTempPrefix+"*"))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tmp, err := os.MkdirTemp(parent, backupTempPrefix+"*")
	if err != nil {
		return fail("%v", err)
	}
	done := false
	defer func() {
		if !done {
			_ = os.RemoveAll(tmp)
		}
	}()
	for _, l := range leftovers {
		_, _ = fmt.Fprintf(stdout, "backup: note: %s is an unfinished backup left by an interrupted run (it has no %s); delete it\n", l, backupMarker)
	}
	rec := backupRecord{Version: version.Version, Source: src, StartedAt: time.Now().UTC()}
	_, _ = fmt.Fprintf(stdout, "backup: %s to %s, started %s\n", src, dest, rec.StartedAt.Format(time.RFC3339))

	// The database: one read transaction, side by side with a server.
	lastLine := time.Time{}
	info, err := store.Backup(ctx, src, filepath.Join(tmp, store.DBFile), func(written, total int64) {
		if time.Since(lastLine) < time.Second {
			return
		}
		lastLine = time.Now()
		_, _ = fmt.Fprintf(stdout, "backup: database %s of about %s written\n", mib(written), mib(total))
	})
	if err != nil {
		return fail("%v", err)
	}
	rec.DatabaseAt, rec.SchemaVersion, rec.Hosts, rec.Snapshots, rec.DatabaseBytes =
		info.At.UTC(), info.SchemaVersion, info.Hosts, info.Snapshots, info.Bytes
	_, _ = fmt.Fprintf(stdout, "backup: database copied: %d hosts, %d snapshots as of %s (%s, schema version %d)\n",
		info.Hosts, info.Snapshots, rec.DatabaseAt.Format(time.RFC3339Nano), mib(info.Bytes), info.SchemaVersion)

	// History: a snapshot by whoever holds the store.
	if err := backupHistory(ctx, stdout, logger, src, tmp, &rec); err != nil {
		return fail("%v", err)
	}
	if ctx.Err() != nil {
		return fail("interrupted")
	}

	rec.CompletedAt = time.Now().UTC()
	body, _ := json.MarshalIndent(rec, "", "  ")
	if err := writeSynced(filepath.Join(tmp, backupMarker), append(body, '\n')); err != nil {
		return fail("%v", err)
	}
	if err := syncDir(tmp); err != nil {
		return fail("%v", err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return fail("%v", err)
	}
	done = true
	if err := syncDir(parent); err != nil {
		return fail("%v", err)
	}
	_, _ = fmt.Fprintf(stdout, "backup: complete: %s; to restore, start procscope-aggregator with --storage.path=%s (or copy it in place of the storage directory)\n", dest, dest)
	return exitOK
}

// backupHistory copies a snapshot of src/history into tmp/history: taken
// by the running server through its admin socket, or by this command when
// no server holds the store.
func backupHistory(ctx context.Context, stdout io.Writer, logger *slog.Logger, src, tmp string, rec *backupRecord) error {
	histDir := filepath.Join(src, "history")
	if _, err := os.Stat(histDir); err != nil {
		_, _ = fmt.Fprintln(stdout, "backup: no history store, nothing more to copy")
		return nil
	}
	snapDir, conn, noHistory, err := askHistorySnapshot(src)
	if err != nil {
		return err
	}
	var release func() error
	switch {
	case conn != nil:
		release = conn.Close // the server deletes the snapshot when we hang up
		_, _ = fmt.Fprintln(stdout, "backup: the running server took a history snapshot")
	default:
		if used, err := history.InUse(histDir); err != nil || used {
			why := "it does not answer on its admin socket " + filepath.Join(src, adminSocketFile)
			if noHistory {
				why = "it runs with --no-history"
			}
			return fmt.Errorf("a process holds the history store %s but %s: stop it and run backup again", histDir, why)
		}
		// MinFreeBytes 1: a snapshot is hard links, and the disk of a
		// store that needs a backup may well be nearly full.
		h, err := history.Open(histDir, history.Options{Logger: logger, MinFreeBytes: 1})
		if err != nil {
			return err
		}
		defer func() { _ = h.Close() }()
		dir, rel, err := h.Snapshot(time.Minute)
		if err != nil {
			return err
		}
		snapDir, release = dir, rel
		_, _ = fmt.Fprintln(stdout, "backup: no server holds the history store: took its snapshot directly")
	}
	rec.HistoryAt = time.Now().UTC()
	lastLine := time.Now()
	err = history.CopySnapshot(snapDir, filepath.Join(tmp, "history"), func(files int, bytes int64) {
		rec.HistoryFiles, rec.HistoryBytes = files, bytes
		if time.Since(lastLine) >= time.Second {
			lastLine = time.Now()
			_, _ = fmt.Fprintf(stdout, "backup: history %d files, %s copied\n", files, mib(bytes))
		}
	}, func() bool { return ctx.Err() != nil })
	if rerr := release(); err == nil && rerr != nil && !errors.Is(rerr, os.ErrClosed) {
		err = rerr
	}
	if err != nil {
		return err
	}
	_, _ = fmt.Fprintf(stdout, "backup: history copied: %d files, %s, snapshot of %s\n",
		rec.HistoryFiles, mib(rec.HistoryBytes), rec.HistoryAt.Format(time.RFC3339Nano))
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
