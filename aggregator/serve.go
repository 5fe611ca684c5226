package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/procscope/procscope/aggregator/internal/api"
	"github.com/procscope/procscope/aggregator/internal/events"
	"github.com/procscope/procscope/aggregator/internal/history"
	"github.com/procscope/procscope/aggregator/internal/httpapi"
	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/internal/cli"
	procweb "github.com/procscope/procscope/web"
)

// serveFlags are the server's settings (no package-level globals: tests
// run several commands in one process). They are top-level flags, as serve
// is the default command: `procscope-aggregator --help` lists them.
type serveFlags struct {
	web               *web.FlagConfig
	readHeaderTimeout *time.Duration
	readTimeout       *time.Duration
	writeTimeout      *time.Duration
	idleTimeout       *time.Duration
	retentionRaw      *model.Duration
	retention         *model.Duration
	commitInterval    *time.Duration
	maxWire           *units.Base2Bytes
	maxDecoded        *units.Base2Bytes
	maxProcesses      *int
	maxConcurrent     *int
	maxInflight       *units.Base2Bytes
	onlineWindow      *time.Duration
	bodyTimeout       *time.Duration
	maxClockSkew      *time.Duration
	shutdownTimeout   *time.Duration
	history           *bool
	historyTopK       *int
	remoteWriteURL    *string
	pprofAddress      *string
	enroll            *enrollFlags // enroll.go
	allowedHosts      *[]string
	trustedProxies    *[]string
	streamsPerClient  *int
	readsPerClient    *int // readlimit.go
	maxReads          *int
	historyURL        *historyURLFlags // historyurl.go
	restartWindow     *time.Duration   // events.restart-window (issue 15)
	postgresURL       string           // --storage.postgres-url, a shared flag (main.go)
	quickCheck        *bool
	minFree           *units.Base2Bytes
}

func addServeFlags(app *kingpin.Application) *serveFlags {
	return &serveFlags{
		web: kingpinflag.AddFlags(app, "127.0.0.1:8000"),
		readHeaderTimeout: cli.Duration(app.Flag("web.read-header-timeout", "Time to read request headers (at most 10s).").
			Default("10s")),
		readTimeout: cli.Duration(app.Flag("web.read-timeout", "Time to read a whole request, body included.").
			Default("1m")),
		writeTimeout: cli.Duration(app.Flag("web.write-timeout", "Time to write a response (the live stream extends its own); a read still running then is cancelled, as its answer could no longer be sent.").
			Default("1m")),
		idleTimeout: cli.Duration(app.Flag("web.idle-timeout", "How long an idle keep-alive connection stays open.").
			Default("2m")),
		restartWindow: cli.Duration(app.Flag("events.restart-window", "A process that exits and comes back (same name under the same parent or unit) within this window is recorded as restarted.").
			Default(events.DefaultRestartWindow.String())),
		retentionRaw: cli.LongDuration(app.Flag("storage.retention.raw", "Keep every snapshot this long; older ones are thinned.").
			Default("24h")),
		retention: cli.LongDuration(app.Flag("storage.retention", "Delete snapshots older than this.").
			Default("90d")),
		commitInterval: cli.Duration(app.Flag("storage.commit-interval", "Least time between two commits (fsyncs) of the snapshot store: under load, ingests arriving within it share one; a lone push is committed at once. 0 commits every batch at once.").
			Default("2ms")),
		maxWire: cli.Bytes(app.Flag("ingest.max-body-bytes", "Largest ingest body as sent (413 above).").
			Default("16MiB")),
		maxDecoded: cli.Bytes(app.Flag("ingest.max-decompressed-bytes", "Largest ingest body after gzip decompression (413 above); decompression stops there.").
			Default("64MiB")),
		maxProcesses: cli.Int(app.Flag("ingest.max-processes", "Most processes in one snapshot (413 above).").
			Default("100000")),
		maxInflight: cli.Bytes(app.Flag("ingest.max-inflight-bytes", "Bytes all ingest bodies being read may hold together, as sent and decompressed (at least --ingest.max-body-bytes plus --ingest.max-decompressed-bytes); past it, 429. Bounds what concurrent gzip bombs and slow bodies cost.").
			Default("128MiB")),
		bodyTimeout: cli.Duration(app.Flag("web.body-timeout", "Time an ingest body has to arrive once its headers did (408 after). Bodies are read before an ingest slot is taken, so slow clients never hold one.").
			Default("10s")),
		maxClockSkew: cli.Duration(app.Flag("ingest.max-clock-skew", "Refuse (400) a snapshot whose captured_at is this far ahead of the aggregator's clock: it would stay the host's latest until then.").
			Default("10m")),
		maxConcurrent: cli.Int(app.Flag("ingest.max-concurrent", "Ingest bodies decoded at once; more wait up to 5s, then get 429.").
			Default("32")),
		onlineWindow: cli.Duration(app.Flag("hosts.online-window", "A host is online when seen within this long, until its push interval is known (then 3 intervals).").
			Default("10s")),
		shutdownTimeout: cli.Duration(app.Flag("web.shutdown-timeout", "How long SIGTERM waits for requests in flight.").
			Default("15s")),
		history: cli.Bool(app.Flag("history", "Keep CPU/memory history in an embedded VictoriaMetrics store under <storage.path>/history (--no-history turns it off).").
			Default("true")),
		historyTopK: cli.Int(app.Flag("history.top-k", "Processes per snapshot that get CPU and memory history: the K busiest by CPU plus the K largest by memory.").
			Default("5")),
		remoteWriteURL: app.Flag("remote-write.url", "Also forward the history series to this Prometheus remote write URL (e.g. http://prometheus:9090/api/v1/write).").
			Default("").String(),
		// Hidden: for profiling the ingest path under load (loadgen
		// -cpuprofile). It serves net/http/pprof on its own listener, never
		// on the public one, only on loopback, and is off unless given.
		pprofAddress: app.Flag("debug.pprof-address", "Serve net/http/pprof on this loopback address, e.g. 127.0.0.1:6060 (off when empty).").
			Hidden().Default("").String(),
		enroll: addEnrollFlags(app),
		allowedHosts: app.Flag("web.allowed-hosts", "Without basic auth, the UI, read API and /metrics answer only Host headers that are IP addresses, localhost, or one of these names (against DNS rebinding); so does an open-enrollment push that creates a host. Repeatable or comma-separated; *.example.com allows subdomains.").PlaceHolder("HOST").
			Strings(),
		trustedProxies: app.Flag("web.trusted-proxies", "Reverse proxies (CIDRs or addresses) whose X-Forwarded-For or Forwarded (RFC 7239 for=) header names the client of per-client limits (new hostnames a minute, live streams, concurrent reads, failed logins): the right-most entry that is not itself a trusted proxy; with both headers, the client they agree on, else the proxy itself. From other peers both are ignored. Repeatable or comma-separated; none by default.").PlaceHolder("CIDR").
			Strings(),
		quickCheck: cli.Bool(app.Flag("storage.quick-check", "Check every page of the database at start (SQLite's quick_check) and refuse to start on damage, naming the file and the way out (--no-storage.quick-check skips it).").
			Default("true")),
		minFree: cli.Bytes(app.Flag("storage.min-free-disk-space", "Below this much free space under --storage.path, ingests get 503 (storage full; exporters keep their queue and send again) and the history store turns read-only, so that neither fails half-way on a full disk; history also refuses to open with less.").
			Default("64MiB")),
		streamsPerClient: cli.Int(app.Flag("web.max-streams-per-client", "Live streams (UI tabs) one client address may hold open at once; more get 429.").
			Default("16")),
		readsPerClient: cli.Int(app.Flag("web.max-reads-per-client", "Reads (every API route but ingest and the live stream, and /metrics) one client address runs at once; more wait for its slots up to 5s (a browser's burst), and past 4 times this many in flight get 429 at once, so that one client cannot take every read slot.").
			Default("8")),
		maxReads: cli.Int(app.Flag("web.max-concurrent-reads", "Reads the aggregator answers at once, from all clients (each is bounded in memory, so this bounds their total); more wait up to 5s for a slot, then get 429.").
			Default("64")),
		historyURL: addHistoryURLFlags(app),
	}
}

// commitInterval maps the flag's 0 (none) to store.Options' "none".
func commitInterval(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// check validates what each flag's type cannot: ranges and combinations.
// Every message names the flag and the value given, as a parse error does.
func (f *serveFlags) check() error {
	dur := func(name string, d time.Duration, ok bool, want string) error {
		if ok {
			return nil
		}
		return fmt.Errorf("--%s=%s: %s", name, d, want)
	}
	num := func(name string, n int64, ok bool, want string) error {
		if ok {
			return nil
		}
		return fmt.Errorf("--%s=%d: %s", name, n, want)
	}
	size := func(name string, b units.Base2Bytes, ok bool, want string) error {
		if ok {
			return nil
		}
		return fmt.Errorf("--%s=%s: %s", name, b, want)
	}
	retentionRaw, retention := time.Duration(*f.retentionRaw), time.Duration(*f.retention)
	errs := []error{
		dur("web.read-header-timeout", *f.readHeaderTimeout, *f.readHeaderTimeout > 0 && *f.readHeaderTimeout <= 10*time.Second, "must be more than 0 and at most 10s"),
		dur("web.read-timeout", *f.readTimeout, *f.readTimeout > 0, "must be positive"),
		dur("web.write-timeout", *f.writeTimeout, *f.writeTimeout > 0, "must be positive"),
		dur("web.idle-timeout", *f.idleTimeout, *f.idleTimeout > 0, "must be positive"),
		dur("web.body-timeout", *f.bodyTimeout, *f.bodyTimeout > 0, "must be positive"),
		dur("web.shutdown-timeout", *f.shutdownTimeout, *f.shutdownTimeout >= 0, "must not be negative"),
		dur("storage.commit-interval", *f.commitInterval, *f.commitInterval >= 0 && *f.commitInterval <= time.Second, "must be between 0 and 1s"),
		dur("storage.retention.raw", retentionRaw, retentionRaw > 0, "must be positive"),
		dur("storage.retention", retention, retention > 0, "must be positive"),
		dur("ingest.max-clock-skew", *f.maxClockSkew, *f.maxClockSkew > 0, "must be positive"),
		dur("hosts.online-window", *f.onlineWindow, *f.onlineWindow > 0, "must be positive"),
		size("ingest.max-body-bytes", *f.maxWire, *f.maxWire > 0, "must be positive"),
		size("ingest.max-decompressed-bytes", *f.maxDecoded, *f.maxDecoded > 0, "must be positive"),
		num("ingest.max-processes", int64(*f.maxProcesses), *f.maxProcesses > 0, "must be positive"),
		num("ingest.max-concurrent", int64(*f.maxConcurrent), *f.maxConcurrent > 0, "must be positive"),
		num("history.top-k", int64(*f.historyTopK), *f.historyTopK >= 0 && *f.historyTopK <= 1000, "must be between 0 and 1000"),
		dur("events.restart-window", *f.restartWindow, *f.restartWindow > 0 && *f.restartWindow <= 24*time.Hour, "must be more than 0 and at most 24h"),
		size("storage.min-free-disk-space", *f.minFree, *f.minFree > 0, "must be positive"),
		num("web.max-streams-per-client", int64(*f.streamsPerClient), *f.streamsPerClient > 0, "must be positive"),
		num("web.max-reads-per-client", int64(*f.readsPerClient), *f.readsPerClient > 0, "must be positive"),
		num("web.max-concurrent-reads", int64(*f.maxReads), *f.maxReads > 0, "must be positive"),
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	switch {
	case *f.maxInflight < *f.maxDecoded+*f.maxWire:
		return fmt.Errorf("--ingest.max-inflight-bytes=%s: must be at least --ingest.max-body-bytes plus --ingest.max-decompressed-bytes (%s), or no body of the limits could be read",
			*f.maxInflight, *f.maxDecoded+*f.maxWire)
	case *f.remoteWriteURL != "" && !*f.history:
		return errors.New("--remote-write.url needs history (drop --no-history)")
	}
	if _, err := api.NormalizeAllowedHosts(*f.allowedHosts); err != nil {
		return err
	}
	if _, err := api.ParseTrustedProxies(*f.trustedProxies); err != nil {
		return err
	}
	if err := f.historyURL.check(*f.history); err != nil {
		return err
	}
	if *f.pprofAddress != "" {
		if err := checkLoopback(*f.pprofAddress); err != nil {
			return fmt.Errorf("--debug.pprof-address=%s: %w", *f.pprofAddress, err)
		}
	}
	return nil
}

// checkLoopback refuses a listen address that is not loopback: pprof shows
// memory contents and its CPU profile stalls the process, so it is never
// served to the network (use an SSH tunnel to reach it from elsewhere).
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("not a host:port address: %w", err)
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return nil
	}
	return errors.New("pprof listens only on loopback: use 127.0.0.1:PORT, [::1]:PORT or localhost:PORT, and an SSH tunnel to reach it from another machine")
}

// serve runs the server until SIGINT/SIGTERM. The port opens first (a
// port in use is reported before the storage is touched) and answers 503
// (/-/ready, the API) while storage opens, which can take a while on a big
// database; then the parts stop in reverse order, each step timed.
func serve(stderr io.Writer, logger *slog.Logger, storagePath string, f *serveFlags) int {
	if err := f.check(); err != nil {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: %v (see --help)\n", err)
		return exitUsage
	}
	enroll, enrollMsg, enrollLevel, err := f.enroll.enrollment(*f.web.WebListenAddresses, *f.web.WebSystemdSocket)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: %v\n", err)
		if errors.As(err, new(usageError)) {
			return exitUsage
		}
		return exitFailed
	}
	if file := *f.web.WebConfigFile; file != "" {
		// As in the exporter: a broken TLS/auth file is the user's to fix
		// (exit 2), found before anything starts.
		if err := web.Validate(file); err != nil {
			_, _ = fmt.Fprintf(stderr, "procscope-aggregator: --web.config.file=%s: %v\n", file, err)
			return exitUsage
		}
	}
	logger.Info("starting procscope-aggregator", "version", version.Info(), "build_context", version.BuildContext())
	logger.Log(context.Background(), enrollLevel, enrollMsg, "mode", enroll.Mode)
	allowedHosts, _ := api.NormalizeAllowedHosts(*f.allowedHosts)   // checked above
	trustedProxies, _ := api.ParseTrustedProxies(*f.trustedProxies) // checked above
	if len(trustedProxies) > 0 {
		logger.Info("per-client limits take the client from X-Forwarded-For or Forwarded of these proxies", "trusted_proxies", trustedProxies)
	}

	webCfg, err := api.LoadWebConfig(*f.web.WebConfigFile, "")
	if err != nil {
		logger.Error("invalid web config", "err", err)
		return exitFailed
	}
	if webCfg != nil && webCfg.ToolkitFile != "" {
		defer func() { _ = os.Remove(webCfg.ToolkitFile) }()
	}
	toolkitFile := ""
	if webCfg != nil {
		toolkitFile = webCfg.ToolkitFile
	}
	if !webCfg.AuthEnabled() {
		logger.Info("no basic auth: the UI, read API and /metrics answer only Host headers that are IP addresses, localhost or listed in --web.allowed-hosts (DNS rebinding protection)",
			"allowed_hosts", allowedHosts)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector(api.Namespace),
	)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	lazy := new(api.LazyStore)
	// History routes are mounted now and answer once history opens below.
	hist := history.NewHandler(nil, lazy, logger.With("component", "history"))
	reg.MustRegister(hist) // history's written/dropped sample counters
	// Lifecycle events: derived on ingest once storage is open.
	evLazy := new(events.Lazy)
	evRoutes := events.NewHandler(evLazy.EventStore, httpapi.Adapter{Log: logger, NoStore: true})
	a, err := api.New(api.Options{
		OnIngest: func(ctx context.Context, req *store.IngestRequest, res store.IngestResult) {
			hist.OnIngest(ctx, req, res)
			evLazy.OnIngest(ctx, req, res)
		},
		Mount: func(r chi.Router) {
			hist.Mount(r)
			evRoutes.Mount(r)
		},
		Logger: logger,
		Store:  lazy,
		Limits: api.Limits{
			MaxWireBytes:     int64(*f.maxWire),
			MaxDecodedBytes:  int64(*f.maxDecoded),
			MaxProcesses:     *f.maxProcesses,
			MaxConcurrent:    *f.maxConcurrent,
			MaxInflightBytes: int64(*f.maxInflight),
			BodyTimeout:      *f.bodyTimeout,
			MaxClockSkew:     *f.maxClockSkew,
		},
		OnlineWindow:        *f.onlineWindow,
		Enrollment:          enroll,
		UI:                  procweb.Handler(),
		Auth:                webCfg.BasicAuth(),
		AllowedHosts:        allowedHosts,
		TrustedProxies:      trustedProxies,
		MaxStreamsPerClient: *f.streamsPerClient,
		MaxReadsPerClient:   *f.readsPerClient,
		MaxReads:            *f.maxReads,
		HandlerTimeout:      *f.writeTimeout,
		Registerer:          reg,
		Gatherer:            reg,
	})
	if err != nil {
		logger.Error("building the api", "err", err)
		return exitFailed
	}

	srv := f.httpServer(webCfg.RateLimit(a), logger)
	listeners, err := listen(f.web)
	if err != nil {
		logger.Error("cannot listen: "+listenHint(err), "err", err)
		return exitFailed
	}
	if *f.pprofAddress != "" {
		if err := servePprof(logger, *f.pprofAddress); err != nil {
			logger.Error("starting pprof listener", "address", *f.pprofAddress, "err", err)
			closeAll(listeners)
			return exitFailed
		}
	}
	serveErr := make(chan error, 1)
	go func() {
		cfg := &web.FlagConfig{
			WebListenAddresses: f.web.WebListenAddresses,
			WebSystemdSocket:   f.web.WebSystemdSocket,
			WebConfigFile:      &toolkitFile,
		}
		if listeners == nil {
			serveErr <- web.ListenAndServe(srv, cfg, logger)
			return
		}
		serveErr <- web.ServeMultiple(listeners, srv, cfg, logger)
	}()

	// Storage opens while the port already answers 503.
	openStart := time.Now()
	if f.postgresURL == "" || *f.history {
		if err := checkStorage(storagePath); err != nil {
			logger.Error("storage is not usable", "err", err)
			shutdownServer(logger, srv, a, *f.shutdownTimeout)
			return exitFailed
		}
	}
	st, pg, err := openStore(ctx, storagePath, f.postgresURL, store.Options{
		Logger:         logger.With("component", "store"),
		RetentionRaw:   time.Duration(*f.retentionRaw),
		Retention:      time.Duration(*f.retention),
		CommitInterval: commitInterval(*f.commitInterval),
		MinFreeBytes:   int64(*f.minFree),
	})
	if sq, ok := st.(*store.SQLite); ok && err == nil && *f.quickCheck { // PostgreSQL checks its own pages
		if err = sq.QuickCheck(ctx); err != nil {
			_ = st.Close()
		}
	}
	if err != nil {
		if store.IsCorrupt(err) { // admin_check.go
			logger.Error("the database is damaged: refusing to start: "+databaseRecovery(storagePath), "path", filepath.Join(storagePath, store.DBFile), "err", err)
		} else {
			logger.Error("opening storage", "path", storeName(storagePath, f.postgresURL), "err", err)
		}
		shutdownServer(logger, srv, a, *f.shutdownTimeout)
		return exitFailed
	}
	var h *history.History
	if *f.history {
		topK := *f.historyTopK
		if topK == 0 {
			topK = -1 // history.Options: 0 means the default, negative none
		}
		h, err = openHistory(f.historyURL, filepath.Join(storagePath, "history"), hist, history.Options{
			Retention:      time.Duration(*f.retention),
			TopK:           topK,
			RemoteWriteURL: *f.remoteWriteURL,
			MinFreeBytes:   int64(*f.minFree),
			Logger:         logger.With("component", "history"),
		}, logger.With("component", "history"))
		if errors.Is(err, history.ErrDamaged) {
			logger.Error("the history store is damaged: refusing to start: "+historyRecovery(storagePath), "path", filepath.Join(storagePath, "history"), "err", err)
			shutdownServer(logger, srv, a, *f.shutdownTimeout)
			_ = st.Close()
			return exitFailed
		}
		if err != nil {
			logger.Error("opening history", "path", filepath.Join(storagePath, "history"), "err", err)
			shutdownServer(logger, srv, a, *f.shutdownTimeout)
			_ = st.Close()
			return exitFailed
		}
	}
	tracker := events.New(st, st, events.Options{RestartWindow: *f.restartWindow, Logger: logger.With("component", "events")})
	evCtx, stopEvents := context.WithCancel(context.Background())
	evDone := make(chan struct{})
	go func() {
		defer close(evDone)
		tracker.Run(evCtx)
	}()
	evLazy.Set(tracker)
	lazy.Set(st)
	adminSock := startAdminSocket(storagePath, h, logger.With("component", "admin")) // admin_socket.go
	logger.Info("storage open, ready", "path", storeName(storagePath, f.postgresURL), "duration", time.Since(openStart))
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	listenDone := listenOthers(watchCtx, pg, a)
	go func() {
		defer close(watchDone)
		w := &deletionWatcher{st: st, forget: func(host string) { a.ForgetHost(host); tracker.Forget(host) }, hist: h, histDir: filepath.Join(storagePath, "history"),
			log: logger.With("component", "deletions")}
		w.run(watchCtx, deletionPoll)
	}()

	code := 0
	select {
	case <-ctx.Done():
		logger.Info("received signal, shutting down")
	case err := <-serveErr:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server failed", "err", err)
			code = exitFailed
		}
	}
	// Reverse order: stop taking requests, then close storage (which
	// flushes), so nothing acknowledged is lost.
	shutdownServer(logger, srv, a, *f.shutdownTimeout)
	stopWatch()
	<-watchDone
	stopEvents() // stores what is queued, before storage closes
	<-evDone
	<-listenDone
	adminSock.close() // before history: it releases backup snapshots
	if h != nil {
		// After the server: no ingest can add to it any more.
		if err := h.Close(); err != nil {
			logger.Error("closing history", "err", err)
			code = exitFailed
		}
	}
	t := time.Now()
	if err := st.Close(); err != nil {
		logger.Error("closing storage", "err", err)
		code = exitFailed
	}
	logger.Info("storage closed", "duration", time.Since(t))
	return code
}

// maxHeaderBytes bounds a request's headers (431 beyond): enough for
// long cookies and proxy headers, not for a client's junk.
const maxHeaderBytes = 64 << 10

// httpServer is the public listener's server: every request's headers
// within --web.read-header-timeout (slow-loris), the whole request within
// --web.read-timeout, the answer within --web.write-timeout.
func (f *serveFlags) httpServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: *f.readHeaderTimeout,
		ReadTimeout:       *f.readTimeout,
		WriteTimeout:      *f.writeTimeout,
		IdleTimeout:       *f.idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

func shutdownServer(logger *slog.Logger, srv *http.Server, a *api.API, timeout time.Duration) {
	t := time.Now()
	a.Close() // end live streams, which would hold Shutdown until its timeout
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		logger.Warn("http server shutdown", "err", err)
	}
	logger.Info("http server stopped", "duration", time.Since(t))
}

// servePprof serves net/http/pprof on its own listener, so the profiling
// endpoints are never reachable through the public address.
func servePprof(logger *slog.Logger, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// "localhost" could resolve to anything: judge what was bound.
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		_ = ln.Close()
		return fmt.Errorf("%s is not a loopback address", ln.Addr())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	logger.Info("serving pprof on loopback only", "address", ln.Addr().String())
	go func() {
		// Loopback is what DNS rebinding reaches: only an IP or localhost
		// as Host (an SSH tunnel's), like every route (api.HostGuard).
		srv := &http.Server{Handler: api.HostGuard(nil, mux), ReadHeaderTimeout: 10 * time.Second}
		if err := srv.Serve(ln); err != nil {
			logger.Error("pprof server stopped", "err", err)
		}
	}()
	return nil
}
