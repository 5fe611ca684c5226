// Command procscope-exporter collects a host's system details and whole
// process table once per interval, pushes each snapshot to the procscope
// aggregator through an on-disk queue, and serves Prometheus /metrics from
// the same walk. The work lives in exporter/internal/...; main wires it up,
// serves, waits for SIGTERM and stops the parts in reverse order.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/procscope/procscope/exporter/internal/collector"
	"github.com/procscope/procscope/exporter/internal/config"
	"github.com/procscope/procscope/exporter/internal/metrics"
	"github.com/procscope/procscope/exporter/internal/push"
	"github.com/procscope/procscope/internal/cli"
)

func main() {
	cli.FillVersion()
	// The live heap is small and allocation is slow (one walk per
	// interval, a scrape every few seconds), so collecting more often costs
	// little CPU and keeps RSS lower, which is what keeps the exporter
	// under its memory budget (measured with scrapebench: docs/performance.md,
	// "Choices the figures made"). GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// Exit codes: 2 for a bad command line or config file (the user's to fix),
// 1 for a failure at start or while running.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := config.Parse(args, getenv)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "procscope-exporter: %v\n", err)
		_, _ = fmt.Fprintln(stderr, "procscope-exporter: see --help")
		return exitUsage
	}
	cfg.Log.Writer = stderr
	logger := promslog.New(cfg.Log)
	if err := serve(cfg, logger); err != nil {
		logger.Error("exporter failed", "err", err)
		return exitFailed
	}
	return exitOK
}

func serve(cfg *config.Config, logger *slog.Logger) error {
	start := time.Now()
	// Before anything slow, so an early SIGTERM is a clean stop too.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	logger.Info("starting procscope-exporter", "version", version.Info(), "build_context", version.BuildContext())

	hostname, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	if err := push.CheckHostname(hostname); err != nil {
		return err
	}

	window := cfg.CollectSampleWindow
	if window == 0 {
		window = -1 // the user asked for no priming; the collector's 0 means "default"
	}
	coll, err := collector.New(collector.Options{
		ProcRoot: cfg.ProcRoot, SysRoot: cfg.SysRoot, RootFS: cfg.RootFS,
		SampleWindow: window, CollectCmdline: cfg.CollectCmdline, Logger: logger.With("component", "collector"),
		SkipAttribution: !cfg.CollectCgroup, SkipIO: !cfg.CollectProcessIO,
	})
	if err != nil {
		return fmt.Errorf("collector: %w", err)
	}

	groups := make([]metrics.Group, len(cfg.ProcessGroups))
	for i, g := range cfg.ProcessGroups {
		groups[i] = metrics.Group{Name: g.Name, Regexp: g.Regexp}
	}
	mc, err := metrics.New(cfg.MetricsTopN, groups)
	if err != nil {
		return err
	}
	mc.SetHostname(hostname)
	mc.SetMaxUnits(cfg.MetricsMaxUnits)
	reg, err := metrics.NewRegistry(mc)
	if err != nil {
		return err
	}

	var pusher *push.Pusher
	if cfg.PushURL == "" {
		logger.Info("pushing disabled (--push.url is empty); serving /metrics only")
	} else {
		key, source, err := cfg.ResolveKey()
		if err != nil {
			return err
		}
		token, tokenSource, err := cfg.ResolveEnrollmentToken()
		if err != nil {
			return err
		}
		queueDir := filepath.Join(cfg.StateDir, "queue")
		q, dropped, err := push.OpenQueue(queueDir, cfg.QueueSize())
		if err != nil {
			return err
		}
		pusher, err = push.New(push.Options{
			URLs: cfg.PushURLs, APIKey: key, EnrollmentToken: token, Hostname: hostname,
			Queue: q, Client: push.NewClient(cfg.PushTimeout),
			Logger: logger.With("component", "push"), Registerer: reg,
			UserAgent: "procscope-exporter/" + version.Version,
		})
		if err != nil {
			return err
		}
		pusher.NoteDropped(dropped)
		// The key and the token are never logged; where they came from is.
		if tokenSource == "" {
			tokenSource = "none"
		}
		logger.Info("pushing snapshots", "url", cfg.PushURL, "fallback_urls", cfg.PushURLs[1:], "hostname", hostname, "interval", cfg.PushInterval,
			"api_key_source", string(source), "enrollment_token_source", string(tokenSource),
			"queue_dir", queueDir, "queue_bound", cfg.QueueSize(),
			"queued_from_last_run", q.Len(), "dropped_over_bound", dropped)
		if source == config.KeyFromGenerated {
			logger.Info("generated a new API key; the aggregator binds this hostname to it on the first push",
				"file", filepath.Join(cfg.StateDir, config.KeyFileName))
		}
	}

	logWebConfig(logger, *cfg.Web.WebConfigFile, cfg.TelemetryPath)
	handler, err := newMux(cfg.TelemetryPath, metrics.Handler(reg, logger), mc.Ready)
	if err != nil {
		return err
	}
	srv := newHTTPServer(handler, logger, defaultWebTimeouts)
	serveErr := make(chan error, 1)
	go func() { serveErr <- web.ListenAndServe(srv, cfg.Web, logger) }()

	pushCtx, stopPush := context.WithCancel(context.Background())
	pushDone := make(chan struct{})
	if pusher != nil {
		go func() { pusher.Run(pushCtx); close(pushDone) }()
	} else {
		close(pushDone)
	}

	loopCtx, stopLoop := context.WithCancel(ctx)
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		s := &sink{mc: mc, pusher: pusher, hostname: hostname, topN: cfg.CollectTopN, logger: logger}
		walkLoop(loopCtx, cfg.PushInterval, coll.Walk, s.onWalk, logger)
	}()

	var runErr error
	select {
	case <-ctx.Done():
		// A second signal during the flush kills at once, as users expect.
		stop()
		logger.Info("received signal, shutting down")
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("web server: %w", err)
		}
	}

	// Reverse order: stop walking, then flush the queue, then stop serving
	// (so /metrics shows the flush's outcome until the very end).
	t := time.Now()
	stopLoop()
	<-loopDone
	logger.Info("stopped walking", "took", time.Since(t))
	stopPush()
	<-pushDone
	if pusher != nil {
		t = time.Now()
		fctx, cancel := context.WithTimeout(context.Background(), cfg.PushFlushTimeout)
		left := pusher.Flush(fctx)
		cancel()
		st := pusher.Stats()
		logger.Info("flushed push queue", "took", time.Since(t), "left_on_disk", left,
			"queued", st.Queued, "sent", st.Sent, "failed_attempts", st.Failed, "dropped", st.Dropped,
			"failovers", st.Failovers, "push_url", st.Target)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = srv.Shutdown(sctx)
	cancel()
	logger.Info("procscope-exporter stopped", "uptime", time.Since(start))
	return runErr
}

// sink takes each walk to /metrics and to the push queue.
type sink struct {
	mc       *metrics.Collector
	pusher   *push.Pusher // nil when pushing is disabled
	enc      push.Encoder
	hostname string
	topN     int
	logger   *slog.Logger
	// failing is set while snapshots cannot be queued (disk full, state
	// dir gone), so that the log says so once, not every interval.
	failing bool
}

// onWalk feeds one walk to /metrics and to the push queue. Encoding and
// queueing happen here, in the walk goroutine, but queueing is a local
// file write: sending is the pusher's goroutine's job.
func (s *sink) onWalk(w *collector.Walk, took time.Duration) {
	s.mc.Update(w, took)
	if s.pusher == nil {
		return
	}
	snap, err := push.FromWalk(w, collector.TopN(w.Processes, s.topN), s.hostname, "procscope-exporter "+version.Version)
	if err == nil {
		var gz []byte
		if gz, err = s.enc.Encode(snap); err == nil {
			err = s.pusher.Enqueue(w.Time, gz)
		}
	}
	switch {
	case err != nil && !s.failing:
		s.failing = true
		s.logger.Error("could not queue snapshot; counting them as dropped until this recovers", "err", err)
	case err != nil:
		s.logger.Debug("could not queue snapshot", "err", err)
	case s.failing:
		s.failing = false
		s.logger.Info("queueing snapshots again")
	}
}
