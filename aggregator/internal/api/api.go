// Package api is the aggregator's HTTP layer: the chi router with the v1
// ingest and read endpoints of docs/api.md, the live stream (SSE), the web UI
// mount, health/readiness and the aggregator's own /metrics.
//
// Handlers talk to storage only through store.Store. The store may be set
// after the server starts (SetStore): until then every API call answers 503,
// so a slow database open never leaves the port closed or half-working.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/procscope/procscope/aggregator/internal/httpapi"
	"github.com/procscope/procscope/aggregator/internal/inflate"
	"github.com/procscope/procscope/aggregator/internal/store"
)

// Limits bound what one ingest request may cost.
type Limits struct {
	// MaxWireBytes is the largest body accepted as sent (413 above).
	MaxWireBytes int64
	// MaxDecodedBytes is the largest body after decompression (413 above);
	// decompression stops there, so a gzip bomb costs at most this much.
	MaxDecodedBytes int64
	// MaxProcesses is the largest process list in one snapshot (413 above).
	MaxProcesses int
	// MaxConcurrent bounds ingests decoded at the same time, and so the
	// memory they hold (each up to MaxDecodedBytes). Others wait up to
	// QueueTimeout, then get 429 with Retry-After.
	MaxConcurrent int
	QueueTimeout  time.Duration
	// MaxInflightBytes bounds what all bodies being read at once hold, as
	// sent and after decompression (at least MaxWireBytes+MaxDecodedBytes,
	// so one body of both limits always fits); past it an ingest gets 429
	// with Retry-After.
	MaxInflightBytes int64
	// BodyTimeout is how long a client has to send an ingest body once its
	// headers arrived (408 after). The body is read before an ingest slot
	// is taken, so slow clients never hold one.
	BodyTimeout time.Duration
	// MaxClockSkew is how far captured_at may be ahead of the aggregator's
	// clock (400 beyond): a snapshot from the future would stay a host's
	// latest until that time.
	MaxClockSkew time.Duration
}

// DefaultLimits are docs/api.md's limits.
func DefaultLimits() Limits {
	return Limits{
		MaxWireBytes:    16 << 20,
		MaxDecodedBytes: 64 << 20,
		MaxProcesses:    100000,
		MaxConcurrent:   32,
		QueueTimeout:    5 * time.Second,
		// Two bodies of the limit: a bomb and an honest big host at once.
		MaxInflightBytes: 128 << 20,
		BodyTimeout:      10 * time.Second,
		MaxClockSkew:     10 * time.Minute,
	}
}

// Options assemble an API.
type Options struct {
	Logger *slog.Logger
	// Store is where the API reads and writes; it may be filled after the
	// server starts (SetStore), and parts mounted with Mount can be handed
	// the same LazyStore before that. nil creates an empty one.
	Store  *LazyStore
	Limits Limits
	// OnlineWindow is how long after its last accepted snapshot a host
	// still counts as online when its push interval is not known yet; once
	// two pushes were seen, three observed intervals are used instead.
	OnlineWindow time.Duration
	// HeartbeatInterval is how often the stream sends a comment to keep
	// proxies from closing an idle connection.
	HeartbeatInterval time.Duration
	// MaxStreams bounds concurrent stream clients (429 above).
	MaxStreams int
	// MaxStreamsPerClient bounds the streams one client address (IPv6: its
	// /64) holds open at once (429 above; default 16), so that one client
	// cannot take all of MaxStreams.
	MaxStreamsPerClient int
	// OnIngest, when set, is called after every successful ingest (new or
	// repeated), from the request's goroutine: keep it quick, and keep
	// nothing of req.Processes after it returns (the slice is reused for
	// the next request). The history store feeds itself from here.
	OnIngest func(ctx context.Context, req *store.IngestRequest, res store.IngestResult)
	// Mount, when set, adds routes under the API router (after auth), e.g.
	// /api/v1/hosts/{hostname}/series.
	Mount func(r chi.Router)
	// UI serves everything outside /api, /metrics and /-/ (the embedded web
	// UI). Security headers are added around it.
	UI http.Handler
	// Auth, when set, wraps everything except POST /api/v1/ingest (which is
	// authenticated by host keys) and the health endpoints.
	Auth func(http.Handler) http.Handler
	// AllowedHosts (NormalizeAllowedHosts' result) are the Host names
	// answered besides IP literals and localhost by requests without
	// credentials (DNS rebinding, see allowedhosts.go).
	AllowedHosts []string
	// Registerer receives the API's metrics; Gatherer serves /metrics.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Now is the clock; nil means time.Now (tests pin it).
	Now func() time.Time
	// Enrollment decides who may create hosts and bounds new hosts
	// (enroll.go). The zero value is open enrolment without limits.
	Enrollment Enrollment
	// TrustedProxies are the reverse proxies whose X-Forwarded-For or
	// Forwarded header names the client of per-client limits
	// (clientkey.go); none by default.
	TrustedProxies []netip.Prefix
	// MaxReadsPerClient bounds the reads (every route but ingest, the
	// stream, health and the UI) one client runs at once (default 8); more
	// wait for its slots up to Limits.QueueTimeout, and past 4 times that
	// many in flight get 429 at once;
	// MaxReads bounds those the server answers at once (more wait up to
	// Limits.QueueTimeout, then 429; default 64, so that it takes 8
	// clients to fill it). See readlimit.go.
	MaxReadsPerClient int
	MaxReads          int
	// HandlerTimeout ends a read's context (default 1m, the server's write
	// timeout: an answer later than that cannot be sent).
	HandlerTimeout time.Duration
}

// API is the aggregator's HTTP handler.
type API struct {
	opts    Options
	log     *slog.Logger
	store   *LazyStore
	metrics *metrics
	stream  *broker
	// streamClients bounds the streams each client address holds.
	streamClients *clientSlots
	// readClients and readQ bound reads per client and in all
	// (readlimit.go).
	readClients *clientGate
	readQ       chan struct{}
	ingestQ     chan struct{}
	// inflight bounds the decompressed bytes of all bodies being read.
	inflight *byteBudget
	// fastGunzip: gzip bodies go through libdeflate first.
	fastGunzip bool
	seen       *intervals
	fleet      *fleet
	enroll     *enroller
	// hosts are the Host names that cannot be rebound (allowedhosts.go).
	allowHosts *hostAllowList
	// json answers the read routes (httpapi's one convention).
	json    httpapi.Adapter
	handler http.Handler
}

// positiveOr sets *v to def when it is zero or negative (unset).
func positiveOr[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// New builds the API. Zero limits take DefaultLimits' values.
func New(opts Options) (*API, error) {
	if opts.Logger == nil {
		return nil, errors.New("api: Logger is required")
	}
	def := DefaultLimits()
	positiveOr(&opts.Limits.MaxWireBytes, def.MaxWireBytes)
	positiveOr(&opts.Limits.MaxDecodedBytes, def.MaxDecodedBytes)
	positiveOr(&opts.Limits.MaxProcesses, def.MaxProcesses)
	positiveOr(&opts.Limits.MaxInflightBytes, 2*opts.Limits.MaxDecodedBytes)
	// A gzip body holds its wire bytes and its decompressed ones at once.
	opts.Limits.MaxInflightBytes = max(opts.Limits.MaxInflightBytes, opts.Limits.MaxDecodedBytes+opts.Limits.MaxWireBytes)
	positiveOr(&opts.Limits.BodyTimeout, def.BodyTimeout)
	positiveOr(&opts.Limits.MaxClockSkew, def.MaxClockSkew)
	positiveOr(&opts.Limits.MaxConcurrent, def.MaxConcurrent)
	positiveOr(&opts.Limits.QueueTimeout, def.QueueTimeout)
	positiveOr(&opts.OnlineWindow, 10*time.Second)
	positiveOr(&opts.HeartbeatInterval, 15*time.Second)
	positiveOr(&opts.MaxStreams, 1000)
	positiveOr(&opts.MaxStreamsPerClient, 16)
	positiveOr(&opts.MaxReadsPerClient, 8)
	positiveOr(&opts.MaxReads, 64)
	positiveOr(&opts.HandlerTimeout, time.Minute)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Registerer == nil {
		reg := prometheus.NewRegistry()
		opts.Registerer, opts.Gatherer = reg, reg
	}
	if opts.Gatherer == nil {
		return nil, errors.New("api: Gatherer is required with Registerer")
	}
	if opts.Store == nil {
		opts.Store = new(LazyStore)
	}
	var err error
	a := &API{
		store:         opts.Store,
		opts:          opts,
		log:           opts.Logger,
		stream:        newBroker(opts.MaxStreams),
		streamClients: newClientSlots(opts.MaxStreamsPerClient),
		readClients:   newClientGate(opts.MaxReadsPerClient),
		readQ:         make(chan struct{}, opts.MaxReads),
		ingestQ:       make(chan struct{}, opts.Limits.MaxConcurrent),
		inflight:      &byteBudget{max: opts.Limits.MaxInflightBytes},
		seen:          newIntervals(),
		fleet:         newFleet(),
		json:          httpapi.Adapter{Log: opts.Logger},
	}
	a.allowHosts = newHostAllowList(opts.AllowedHosts)
	if a.enroll, err = newEnroller(opts.Enrollment, opts.Now); err != nil {
		return nil, err
	}
	a.enroll.hosts = a.allowHosts
	if ok, err := inflate.Available(); ok {
		a.fastGunzip = true
		a.log.Debug("ingest decompresses gzip with libdeflate")
	} else if err != nil {
		a.log.Info("libdeflate not found, ingest decompresses gzip in Go (about 2.5x the CPU); install libdeflate0 for the fast path", "err", err)
	}
	m, err := newMetrics(opts.Registerer, a.currentStore)
	if err != nil {
		return nil, err
	}
	a.metrics = m
	a.handler = a.routes()
	return a, nil
}

// SetStore makes the API ready: from now on requests reach st.
func (a *API) SetStore(st store.Store) { a.store.Set(st) }

// Ready reports whether SetStore was called.
func (a *API) Ready() bool { return a.store.Get() != nil }

func (a *API) currentStore() store.Store { return a.store.Get() }

// Close ends every open stream so that a graceful shutdown does not wait
// for them.
func (a *API) Close() { a.stream.close() }

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// IngestPath is where exporters POST snapshots.
const IngestPath = "/api/v1/ingest"

func (a *API) routes() http.Handler {
	r := chi.NewRouter()
	// First: everything below keys per-client limits on it.
	r.Use(a.resolveClient)
	// One DNS rebinding rule for every route (allowedhosts.go).
	r.Use(a.hostRule)
	// Trailing slashes: "/api/v1/hosts/" routes like "/api/v1/hosts".
	r.Use(middleware.StripSlashes)
	// HEAD works wherever GET does (probes, curl -I).
	r.Use(middleware.GetHead)
	r.Use(a.recoverer)
	// Every route below names itself (httpapi.Route) and is counted.
	r.Use(httpapi.Observe(a.metrics.observe))

	r.NotFound(a.notFound)
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) { methodNotAllowed(r, w, req) })

	// Health endpoints answer probes without credentials: they reveal
	// nothing but liveness.
	r.Get("/-/healthy", healthy)
	r.Head("/-/healthy", healthy)
	r.Get("/-/ready", a.ready)
	r.Head("/-/ready", a.ready)

	// Ingest is authenticated by host keys, never by basic auth.
	r.With(httpapi.Route("ingest")).Post(IngestPath, a.ingest)

	r.Group(func(r chi.Router) {
		if a.opts.Auth != nil {
			r.Use(a.opts.Auth)
		}
		r.With(a.limitReads).Method(http.MethodGet, "/metrics", promhttp.HandlerFor(a.opts.Gatherer, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelError),
		}))
		r.Route("/api/v1", func(r chi.Router) {
			r.Use(a.requireStore)
			r.With(httpapi.Route("stream")).Get("/stream", a.streamHandler)
			// Every other route is a read, bounded per client and in all.
			r.Group(func(r chi.Router) {
				r.Use(a.limitReads)
				r.With(httpapi.Route("hosts")).Get("/hosts", a.json.Handle(a.hosts))
				r.With(httpapi.Route("fleet")).Get("/fleet", a.json.Handle(a.fleetHandler))
				r.With(httpapi.Route("latest")).Get("/snapshots/latest", a.json.Handle(a.latest))
				r.With(httpapi.Route("snapshot_at")).Get("/snapshots/at", a.json.Handle(a.snapshotAt))
				r.With(httpapi.Route("snapshot")).Get("/snapshots/{id}", a.json.Handle(a.snapshot))
				r.With(httpapi.Route("processes")).Get("/snapshots/{id}/processes", a.json.Handle(a.processes))
				r.With(httpapi.Route("host_snapshots")).Get("/hosts/{hostname}/snapshots", a.json.Handle(a.hostSnapshots))
				if a.opts.Mount != nil {
					a.opts.Mount(r)
				}
			})
		})
		// Unknown paths under /api are JSON 404s, never the UI's page.
		r.HandleFunc("/api", a.notFound)
		r.HandleFunc("/api/*", a.notFound)
		if a.opts.UI != nil {
			ui := uiHeaders(a.opts.UI)
			r.Handle("/", ui)
			r.Handle("/*", ui)
		}
	})
	return r
}

func healthy(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte("procscope aggregator is healthy.\n"))
	}
}

func (a *API) ready(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !a.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte("procscope aggregator is not ready: storage is opening.\n"))
		}
		return
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte("procscope aggregator is ready.\n"))
	}
}

// requireStore answers 503 until the store is open.
func (a *API) requireStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.Ready() {
			notReady(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// errNotReady answers every API call until the store is open.
var errNotReady = &httpapi.Error{Kind: httpapi.KindUnavailable, RetryAfter: time.Second,
	Msg: "the aggregator is starting: storage is not open yet"}

func notReady(w http.ResponseWriter) { httpapi.WriteError(w, errNotReady) }

func (a *API) notFound(w http.ResponseWriter, r *http.Request) {
	httpapi.WriteError(w, httpapi.New(httpapi.KindNotFound, "no such endpoint: "+httpapi.Clip(r.URL.Path)))
}

// methodNotAllowed answers 405 in the API's JSON shape, with the Allow
// header chi's own handler would have set (a custom handler loses it).
func methodNotAllowed(router chi.Routes, w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		if router.Match(chi.NewRouteContext(), m, r.URL.Path) {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
	}
	httpapi.WriteError(w, httpapi.New(httpapi.KindMethodNotAllowed, "method "+httpapi.Clip(r.Method)+" is not allowed here"))
}

// recoverer turns a panic into a logged 500 with a JSON body instead of a
// dropped connection, without stack traces for the client.
func (a *API) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.log.Error("panic in handler", "path", r.URL.Path, "err", v)
				httpapi.WriteError(w, httpapi.New(httpapi.KindInternal, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// uiHeaders adds the UI's security headers. The CSP forbids inline script,
// so hostile process names inserted as text can never run.
func uiHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// ContentSecurityPolicy is sent with every UI response.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
