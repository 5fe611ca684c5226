package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/procscope/procscope/exporter/internal/collector"
)

// walkLoop walks once at once and then once per interval, in this one
// goroutine only, so two walks never overlap (each walk's CPU% is computed
// against the previous one). A walk slower than the interval makes the
// ticker drop ticks rather than queue them up.
func walkLoop(ctx context.Context, interval time.Duration,
	walk func(context.Context) (*collector.Walk, error),
	onWalk func(*collector.Walk, time.Duration), logger *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		start := time.Now()
		w, err := walk(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			// The previous walk keeps being served; the next tick retries.
			logger.Warn("walk failed", "err", err)
		default:
			onWalk(w, time.Since(start))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			// select picks at random when both are ready: a tick left in
			// the ticker's buffer by a slow walk must not start another
			// walk after SIGTERM.
			if ctx.Err() != nil {
				return
			}
		}
	}
}
