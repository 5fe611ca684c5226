package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/procscope/procscope/aggregator/internal/history"
	"github.com/procscope/procscope/aggregator/internal/store"
)

// Host deletions reach the server from `hosts delete`, another process,
// through the store: the deletion is recorded (store.HostDeletions) in the
// transaction that deletes the host. The server polls the record and, for
// each deleted host, drops what it keeps in memory about it and deletes
// its history series, which only the process holding the history store
// can do; the admin command does that itself when no server runs.
//
// A host created again under the same name before the server handled its
// deletion (within deletionPoll) loses its first samples with the old
// ones: history series are named by hostname, not by host row.

// deletionPoll is how often the server looks for host deletions: a small
// indexed read of a table that is almost always empty.
const deletionPoll = 2 * time.Second

type deletionWatcher struct {
	st     deletionStore
	forget func(hostname string) // the API's per-host memory
	hist   *history.History      // nil without history
	// histDir is where history lives; without hist, a deletion is kept
	// for a later start with history when this directory exists.
	histDir string
	log     *slog.Logger
	// forgotten is the highest deletion id whose host was dropped from
	// memory; with history each deletion is forgotten once handled.
	forgotten int64
}

// run polls until ctx ends.
func (w *deletionWatcher) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := w.pass(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrClosed) {
			w.log.Error("handling host deletions", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pass handles the deletions recorded so far.
func (w *deletionWatcher) pass(ctx context.Context) error {
	after := w.forgotten
	if w.hist != nil {
		after = 0 // every recorded deletion still needs its series deleted
	}
	dels, err := w.st.HostDeletions(ctx, after)
	if err != nil {
		return err
	}
	keep := false
	if w.hist == nil {
		_, err := os.Stat(w.histDir)
		keep = err == nil
	}
	for _, d := range dels {
		if d.ID > w.forgotten {
			w.forget(d.Hostname)
			w.forgotten = d.ID
		}
		if w.hist != nil {
			n, err := w.hist.DeleteHost(d.Hostname)
			if err != nil {
				return err
			}
			w.log.Info("deleted the history of a deleted host", "hostname", d.Hostname, "series", n)
		} else if keep {
			continue // history is off now, but its series are on disk
		}
		if err := w.st.ForgetHostDeletion(ctx, d.ID); err != nil {
			return err
		}
	}
	return nil
}
