package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/procscope/procscope/aggregator/internal/history"
	"github.com/procscope/procscope/aggregator/internal/store"
)

// Recovery steps, the same in the server's refusal to start and in
// `storage check`'s report.
func databaseRecovery(dir string) string {
	return fmt.Sprintf("stop the server and restore %s from your latest backup (docs/operations.md, \"Backup and restore\"); "+
		"`procscope-aggregator storage check --storage.path=%s` lists all the damage", dir, dir)
}

func historyRecovery(dir string) string {
	hist := filepath.Join(dir, "history")
	return fmt.Sprintf("restore %s from your latest backup, or move it aside to start with an empty history (the snapshots are in the database); "+
		"`procscope-aggregator storage check --storage.path=%s` lists all the damage", hist, dir)
}

// storageCheck verifies a store offline: the database (integrity_check,
// every snapshot decoded) and the history store (every sample read).
func storageCheck(stdout, stderr io.Writer, _ *slog.Logger, dir string) int {
	fail := func(format string, args ...any) int {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: storage check: "+format+"\n", args...)
		return exitFailed
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fail("no storage directory at %s (set --storage.path)", dir)
	}
	histDir := filepath.Join(dir, "history")
	if used, _ := history.InUse(histDir); used {
		return fail("a running server holds %s: the check runs offline; stop the server, or check a backup directory", dir)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, _ = fmt.Fprintf(stdout, "storage check: %s\n", dir)
	damaged := false

	rep, err := store.Check(ctx, dir, func(done, total int64) {
		_, _ = fmt.Fprintf(stdout, "database: %d of %d snapshots checked\n", done, total)
	})
	switch {
	case err != nil:
		_, _ = fmt.Fprintf(stdout, "database %s: cannot be checked: %v\n", filepath.Join(dir, store.DBFile), err)
		damaged = true
	case len(rep.Problems) > 0 || rep.Damaged > 0:
		damaged = true
		_, _ = fmt.Fprintf(stdout, "database %s: DAMAGED (%d problems; the first %d):\n", filepath.Join(dir, store.DBFile), rep.Damaged, len(rep.Problems))
		for _, p := range rep.Problems {
			_, _ = fmt.Fprintf(stdout, "  %s\n", printable(p))
		}
		_, _ = fmt.Fprintf(stdout, "  recovery: %s\n", databaseRecovery(dir))
	default:
		_, _ = fmt.Fprintf(stdout, "database %s: ok: schema version %d, %d hosts, %d snapshots, every one decoded\n",
			filepath.Join(dir, store.DBFile), rep.SchemaVersion, rep.Hosts, rep.Snapshots)
	}

	if _, err := os.Stat(histDir); err != nil {
		_, _ = fmt.Fprintln(stdout, "history: none")
	} else if hr, err := checkHistory(histDir); err != nil {
		damaged = true
		_, _ = fmt.Fprintf(stdout, "history %s: DAMAGED: %s\n  recovery: %s\n", histDir, printable(err.Error()), historyRecovery(dir))
	} else {
		_, _ = fmt.Fprintf(stdout, "history %s: ok: %d series, %d samples read\n", histDir, hr.Series, hr.Samples)
	}
	if damaged {
		_, _ = fmt.Fprintln(stdout, "storage check: DAMAGED")
		return exitFailed
	}
	_, _ = fmt.Fprintln(stdout, "storage check: ok")
	return exitOK
}

func checkHistory(dir string) (history.CheckReport, error) {
	// Its open and close lines would only add noise to the report.
	// MinFreeBytes 1: reading needs no free space, and a store on a
	// full disk is what may need checking.
	h, err := history.Open(dir, history.Options{Logger: slog.New(slog.DiscardHandler), MinFreeBytes: 1})
	if err != nil {
		return history.CheckReport{}, err
	}
	rep, err := h.Check()
	if cerr := h.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return rep, err
}
