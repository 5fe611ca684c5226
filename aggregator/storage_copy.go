package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/procscope/procscope/aggregator/internal/store"
)

// storageCopy is `storage copy --to postgres://...`: the SQLite store
// under --storage.path copied into PostgreSQL, resumable, with a progress
// line. Run it with the server stopped for a copy of a still moment (or
// run it again after stopping the server: it copies only what is new).
func storageCopy(stdout, stderr io.Writer, logger *slog.Logger, dir, to string, toOnCommandLine bool) int {
	if to == "" {
		_, _ = fmt.Fprintln(stderr, "procscope-aggregator: storage copy needs --to=postgres://USER@HOST:PORT/DATABASE (see --help)")
		return exitUsage
	}
	if err := checkPostgresURL(to, toOnCommandLine); err != nil {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: %v\n", err)
		return exitUsage
	}
	src, code := openForAdmin(stderr, logger, dir)
	if src == nil {
		return code
	}
	defer func() { _ = src.Close() }()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dst, err := store.OpenPostgres(ctx, to, store.Options{Logger: logger, PruneInterval: -1})
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: opening %s: %v\n", storeName("", to), err)
		return exitFailed
	}
	defer func() { _ = dst.Close() }()
	start := time.Now()
	last := time.Time{}
	line := func(p store.CopyProgress) string {
		pct := 100.0
		if p.Total > 0 {
			pct = 100 * float64(p.Snapshots) / float64(p.Total)
		}
		return fmt.Sprintf("copied %d hosts, %d/%d snapshots (%.0f%%; %d new, %d there already), %s",
			p.Hosts, p.Snapshots, p.Total, pct, p.Copied, p.Skipped, time.Since(start).Round(time.Second))
	}
	p, err := store.CopyToPostgres(ctx, src, dst, func(p store.CopyProgress) {
		if time.Since(last) >= time.Second {
			last = time.Now()
			_, _ = fmt.Fprintln(stderr, line(p))
		}
	})
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: storage copy: %v (run it again to resume)\n", err)
		return exitFailed
	}
	_, _ = fmt.Fprintln(stdout, line(p))
	_, _ = fmt.Fprintf(stdout, "done: start the aggregators with --storage.postgres-url pointing at %s\n", storeName("", to))
	return exitOK
}
