// Package push delivers snapshots to the aggregator without ever blocking
// collection: each snapshot is written to an on-disk queue (Queue) and a
// single sender goroutine (Pusher.Run) posts them oldest first, with
// exponential backoff and jitter while the aggregator is down, honouring
// Retry-After, and dropping (and counting) only what the aggregator rejects
// for good or what falls out of the queue's bound. A refused key (401/403)
// is not a snapshot's fault: the queue is kept and retried once a minute
// until someone fixes the host's key at either end.
//
// The API key and the enrolment token go only to the configured URLs:
// redirects are never followed.
//
// Several URLs (aggregators sharing one PostgreSQL, or independent ones)
// are tried in order: a network error, a timeout or a 5xx moves the sender
// to the next one (a failover, see failover.go), and the first, preferred,
// URL is tried again every PreferredRetry. A 4xx never fails over: a refused
// key or a rejected snapshot is the host's problem, the same at every
// aggregator.
//
// A retried snapshot is sent byte for byte as first encoded, so its
// captured_at is unchanged and the aggregator's idempotency on
// (hostname, captured_at) turns a resend into a 200 instead of a duplicate.
package push

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// Defaults for Options.
const (
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
	// DefaultRefusedRetry spaces the attempts while the aggregator refuses
	// this host (401/403): fixing that takes a person, so one request a
	// minute is enough and keeps the aggregator's log quiet.
	DefaultRefusedRetry = time.Minute
	// DefaultSummaryInterval spaces the "pushes still failing" lines.
	DefaultSummaryInterval = time.Minute
	// clockSkewWarn is how far the aggregator's Date may be from our
	// clock before we say so; Date has 1 s resolution and a request takes
	// time, so anything much finer would be noise.
	clockSkewWarn = time.Minute
	// ingestPath is where the aggregator takes snapshots.
	ingestPath = "/api/v1/ingest"
	// maxRetryAfter caps a server's Retry-After so that a bogus "wait a
	// week" does not stall the queue until it overflows.
	maxRetryAfter = 5 * time.Minute
	// maxErrorBody bounds how much of an error response we read.
	maxErrorBody = 64 << 10
)

// Options configures a Pusher.
type Options struct {
	// URL is the one aggregator ingest URL; URLs, when given, replaces it
	// with several in order of preference.
	URL    string
	URLs   []string
	APIKey string
	// EnrollmentToken, if set, goes with every push as X-Enrollment-Token:
	// an aggregator in token mode needs it for a host it does not know.
	EnrollmentToken string
	// Hostname is only for the hints in log lines (hosts reset-key NAME).
	Hostname string
	Queue    *Queue
	// Client defaults to NewClient(10s). Whatever client is given, New
	// makes a copy that does not follow redirects.
	Client     *http.Client
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	UserAgent  string
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// RefusedRetry is the wait between attempts while the aggregator
	// answers 401/403 (DefaultRefusedRetry).
	RefusedRetry time.Duration
	// SummaryInterval spaces the log lines that sum up an outage
	// (DefaultSummaryInterval).
	SummaryInterval time.Duration
	// PreferredRetry is how long the sender stays on a fallback URL before
	// it tries the first URL again (DefaultPreferredRetry).
	PreferredRetry time.Duration
}

// Pusher owns the sending side of the queue.
type Pusher struct {
	o    Options
	q    *Queue
	log  *slog.Logger
	wake chan struct{}

	sent, failed, dropped, queued, failovers prometheus.Counter
	lastSuccess                              prometheus.Gauge
	targetActive                             *prometheus.GaugeVec

	// sendMu makes Run and Flush exclusive: one request in flight at most,
	// so snapshots arrive in order.
	sendMu sync.Mutex
	// logged remembers which rejection kinds were already logged, so a bad
	// key does not write a line every interval; a delivery clears it.
	logged  map[string]bool
	outage  outage
	attempt int
	// targets are the configured URLs in order of preference; cur is the
	// one being sent to. See failover.go.
	targets []target
	fo      failoverState
	// active mirrors fo.cur for Stats, which other goroutines call.
	active atomic.Int32
	// clockWarned: the clock warning was given for the current skew.
	clockWarned bool
}

// outage tracks a run of failed attempts, from the first failure to the
// next delivery, for the periodic summary and the recovery line.
type outage struct {
	since       time.Time // zero: not in an outage
	failures    int
	lastErr     string
	lastSummary time.Time
}

// NewClient is an HTTP client with every timeout set: a hung aggregator
// costs one request timeout, never a stuck sender. It never follows a
// redirect, which would carry the API key to another URL.
func NewClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:       timeout,
		CheckRedirect: noRedirect,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: min(timeout, 5*time.Second), KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   min(timeout, 5*time.Second),
			ResponseHeaderTimeout: timeout,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConns:          2,
			ForceAttemptHTTP2:     true,
		},
	}
}

// New builds a Pusher and registers its metrics.
func New(o Options) (*Pusher, error) {
	if len(o.URLs) == 0 && o.URL != "" {
		o.URLs = []string{o.URL}
	}
	if o.Queue == nil || len(o.URLs) == 0 {
		return nil, errors.New("push: queue and url are required")
	}
	if o.Client == nil {
		o.Client = NewClient(10 * time.Second)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.RefusedRetry <= 0 {
		o.RefusedRetry = DefaultRefusedRetry
	}
	if o.SummaryInterval <= 0 {
		o.SummaryInterval = DefaultSummaryInterval
	}
	if o.PreferredRetry <= 0 {
		o.PreferredRetry = DefaultPreferredRetry
	}
	// A copy, so the caller's client keeps its own policy; ours never
	// follows a redirect, whoever built the client.
	c := *o.Client
	c.CheckRedirect = noRedirect
	o.Client = &c
	targets, err := newTargets(o.URLs)
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		if t.plainRemote {
			o.Logger.Warn("pushing over plain http to a host that is not this machine: the API key and any enrolment token "+
				"travel in clear text; use an https:// --push.url (TLS at the aggregator with its --web.config.file, or a TLS proxy)",
				"url", t.url)
		}
	}
	o.URL = o.URLs[0]
	newCounter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	p := &Pusher{
		o: o, q: o.Queue, log: o.Logger, wake: make(chan struct{}, 1), logged: map[string]bool{}, targets: targets,
		sent: newCounter("procscope_push_snapshots_sent_total",
			"Snapshots the aggregator acknowledged (201 stored, or 200 already stored)."),
		failed: newCounter("procscope_push_snapshots_failed_total",
			"Failed send attempts (network error, timeout, redirect, 401, 403, 404, 405, 429, 5xx); the snapshot stays queued."),
		dropped: newCounter("procscope_push_snapshots_dropped_total",
			"Snapshots given up: over the queue bound, or rejected by the aggregator (400, 413, 415, 422)."),
		queued: newCounter("procscope_push_snapshots_queued_total",
			"Snapshots written to the on-disk queue."),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "procscope_push_last_success_timestamp_seconds",
			Help: "Unix time of the last snapshot the aggregator acknowledged.",
		}),
		failovers: newCounter("procscope_push_failovers_total",
			"Moves from one --push.url to the next after a network error, timeout or 5xx."),
		targetActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "procscope_push_target_active",
			Help: "1 for the --push.url snapshots are being sent to, 0 for the other configured ones.",
		}, []string{"url"}),
	}
	p.setActive(0)
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{p.sent, p.failed, p.dropped, p.queued, p.lastSuccess, p.failovers, p.targetActive,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "procscope_push_queue_snapshots",
				Help: "Snapshots waiting in the on-disk queue.",
			}, func() float64 { return float64(p.q.Len()) }),
		} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("push: register metrics: %w", err)
			}
		}
	}
	return p, nil
}

// Stats is a point-in-time view of the counters, for logs and tests.
type Stats struct {
	Queued, Sent, Failed, Dropped, Failovers float64
	Waiting                                  int
	// Target is the URL being sent to.
	Target string
}

// Stats reads the counters.
func (p *Pusher) Stats() Stats {
	return Stats{
		Queued: counterValue(p.queued), Sent: counterValue(p.sent),
		Failed: counterValue(p.failed), Dropped: counterValue(p.dropped),
		Failovers: counterValue(p.failovers),
		Waiting:   p.q.Len(), Target: p.targets[p.active.Load()].url,
	}
}

// NoteDropped counts snapshots dropped outside Enqueue (when the queue was
// opened over its bound).
func (p *Pusher) NoteDropped(n int) { p.dropped.Add(float64(n)) }

// Enqueue encodes nothing and sends nothing: it only writes the gzip'ed
// snapshot to disk and wakes the sender, so a slow or absent aggregator
// never delays the next walk.
func (p *Pusher) Enqueue(capturedAt time.Time, gz []byte) error {
	full := p.q.DiskFullDrops()
	dropped, err := p.q.Put(capturedAt, gz)
	n := p.q.DiskFullDrops() - full
	if n > 0 {
		p.logOnce("statedir-full", slog.LevelWarn, "push queue directory is full: dropping the oldest queued snapshots to make room for new ones",
			"dir", p.q.dir, "dropped", n)
	}
	if err != nil {
		p.dropped.Add(float64(1 + dropped))
		return err
	}
	p.queued.Inc()
	if dropped > 0 {
		p.dropped.Add(float64(dropped))
	}
	if dropped > int(n) {
		p.logOnce("overflow", slog.LevelWarn, "push queue full, dropping the oldest snapshots",
			"bound", p.q.max, "dropped", dropped)
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run sends queued snapshots until ctx is done. An interrupted request
// leaves its snapshot queued, to be sent by Flush or the next start.
func (p *Pusher) Run(ctx context.Context) {
	for ctx.Err() == nil {
		wait, empty := p.sendNext(ctx)
		switch {
		case empty:
			select {
			case <-ctx.Done():
			case <-p.wake:
			}
		case wait > 0:
			sleep(ctx, wait)
		}
	}
}

// Flush sends what it can until the queue is empty or ctx is done (the
// --push.flush-timeout on shutdown) and returns how many are left; those
// stay on disk for the next start.
func (p *Pusher) Flush(ctx context.Context) int {
	for ctx.Err() == nil {
		wait, empty := p.sendNext(ctx)
		if empty {
			break
		}
		if wait > 0 {
			if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
				// A refused key waits a minute: do not hold the shutdown
				// for a retry that cannot happen before the deadline.
				break
			}
			sleep(ctx, wait)
		}
	}
	return p.q.Len()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// sendNext posts the oldest snapshot once. It returns how long to wait
// before the next attempt (0: go on at once) or empty when nothing is queued.
func (p *Pusher) sendNext(ctx context.Context) (wait time.Duration, empty bool) {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	name, data, err := p.q.Next()
	if errors.Is(err, errEmpty) {
		return 0, true
	}
	if err != nil {
		p.dropped.Inc()
		p.log.Error("dropping unreadable queued snapshot", "err", err)
		return 0, false
	}
	p.maybeProbePreferred(time.Now())
	res := p.post(ctx, data)
	switch res.kind {
	case delivered:
		p.noteDelivered()
		// Counters first: whoever sees the queue empty sees them counted.
		p.sent.Inc()
		p.lastSuccess.SetToCurrentTime()
		p.q.Ack(name)
		if !p.outage.since.IsZero() {
			p.log.Info("pushes succeed again", "after", time.Since(p.outage.since).Round(time.Second),
				"failed_attempts", p.outage.failures, "waiting", p.q.Len())
		}
		p.outage, p.attempt = outage{}, 0
		clear(p.logged)
		return 0, false
	case rejected:
		p.dropped.Inc()
		p.q.Ack(name)
		if strings.Contains(res.msg, "ahead of the aggregator's clock") {
			// Every snapshot will be refused until the clock is fixed:
			// once, loudly, whatever skew each message quotes.
			p.logOnce("clock", slog.LevelError, "aggregator rejected a snapshot because this host's clock is ahead of its own, dropped it; "+
				"fix NTP on this host (or raise --ingest.max-clock-skew on the aggregator)", "status", res.status, "error", res.msg)
			return 0, false
		}
		p.logOnce(fmt.Sprint("status", res.status, res.msg), slog.LevelWarn,
			"aggregator rejected a snapshot, dropped it", "status", res.status, "error", res.msg)
		return 0, false
	}
	// The snapshot stays queued.
	p.q.Release(name)
	if ctx.Err() != nil {
		// Shutting down: not a failure of the aggregator.
		return 0, false
	}
	p.failed.Inc()
	if wait, ok := p.failover(res, time.Now()); ok {
		return wait, false
	}
	first := p.noteFailure(res)
	if res.kind == refused {
		p.logRefused(res)
		return p.o.RefusedRetry, false
	}
	hinted := false
	if res.status >= 300 && res.status < 400 {
		hinted = true
		p.logOnce("redirect "+res.location, slog.LevelError, "aggregator answered with a redirect, which is never followed "+
			"(it would send the API key to another URL); set --push.url to the final URL", "status", res.status,
			"location", res.location, "url", p.activeURL())
	}
	if hint := p.targets[p.fo.cur].hint; (res.status == http.StatusMethodNotAllowed || res.status == http.StatusNotFound) && hint != "" {
		hinted = true
		p.logOnce("url "+p.activeURL(), slog.LevelError, "aggregator does not take snapshots at --push.url; did you mean "+hint+"?",
			"status", res.status, "url", p.activeURL())
	}
	switch {
	case first && !hinted:
		p.log.Warn("push failed, will retry", "err", res.err, "status", res.status, "waiting", p.q.Len())
	case !first:
		p.log.Debug("push failed, will retry", "err", res.err, "status", res.status)
	}
	if res.retryAfter >= 0 {
		return res.retryAfter, false
	}
	d := backoff(p.o.MinBackoff, p.o.MaxBackoff, p.attempt)
	p.attempt++
	return d, false
}

// noteFailure counts a failed attempt into the outage and, at most once
// per SummaryInterval, logs where the outage stands, so a long outage is
// neither one line and then silence nor a line per attempt. It reports
// whether this failure started the outage.
func (p *Pusher) noteFailure(res result) (first bool) {
	now := time.Now()
	o := &p.outage
	first = o.since.IsZero()
	if first {
		o.since, o.lastSummary = now, now
	}
	o.failures++
	o.lastErr = res.describe()
	if !first && now.Sub(o.lastSummary) >= p.o.SummaryInterval {
		o.lastSummary = now
		args := []any{"failed_attempts", o.failures, "for", now.Sub(o.since).Round(time.Second),
			"waiting", p.q.Len(), "last_err", o.lastErr}
		if t, ok := p.q.Oldest(); ok {
			args = append(args, "oldest_queued_age", now.Sub(t).Round(time.Second))
		}
		p.log.Warn("pushes still failing; snapshots stay queued", args...)
	}
	return first
}

// logRefused says, once per outage and message, what to do about a 401 or
// 403: the aggregator's own message (which names its fix for a new host:
// `hosts add`, the enrolment token), and for a key mismatch the command to
// run there.
func (p *Pusher) logRefused(res result) {
	host := p.o.Hostname
	if host == "" {
		host = "<hostname>"
	}
	var fix string
	lower := strings.ToLower(res.msg)
	switch {
	case res.status == http.StatusForbidden && strings.Contains(lower, "does not match"):
		fix = "this exporter's API key is not the one the aggregator has for " + host + ": give this exporter the host's key " +
			"(--push.api-key-file or PROCSCOPE_API_KEY), e.g. the new one `procscope-aggregator hosts reset-key " + host + "` prints on the aggregator"
	case strings.Contains(lower, "enrol") && p.o.EnrollmentToken == "":
		fix = "this exporter sends no enrolment token: set --push.enrollment-token-file or PROCSCOPE_ENROLLMENT_TOKEN, " +
			"or create the host on the aggregator (procscope-aggregator hosts add " + host + ")"
	case strings.Contains(lower, "enrol"):
		fix = "the enrolment token this exporter sends was refused: check it against the aggregator's --hosts.enrollment-token-file"
	default:
		fix = "see the aggregator's message"
	}
	p.logOnce(fmt.Sprint("refused", res.status, res.msg), slog.LevelError,
		"aggregator refused this host's snapshots; they stay queued and are retried every "+p.o.RefusedRetry.String(),
		"status", res.status, "error", res.msg, "fix", fix)
}

func (p *Pusher) logOnce(key string, level slog.Level, msg string, args ...any) {
	if p.logged[key] {
		return
	}
	if len(p.logged) >= 64 {
		// Bounded: an aggregator answering a different message for every
		// snapshot must not grow this map without end.
		clear(p.logged)
	}
	p.logged[key] = true
	p.log.Log(context.Background(), level, msg, args...)
}

// backoff is exponential with "equal jitter": half the step is fixed so
// the wait still grows, half random so many exporters restarted by one
// aggregator outage do not retry in lockstep.
func backoff(minD, maxD time.Duration, attempt int) time.Duration {
	d := maxD
	if attempt < 30 {
		d = min(minD<<attempt, maxD)
	}
	half := d / 2
	return half + rand.N(half+1)
}

type resultKind int

const (
	retry     resultKind = iota // keep, back off, try again
	delivered                   // stored (201) or already stored (200)
	rejected                    // this snapshot can never succeed: drop it
	refused                     // 401/403: the host is refused, not the snapshot
)

type result struct {
	kind       resultKind
	status     int
	msg        string
	err        error
	location   string        // a redirect's Location
	retryAfter time.Duration // -1: none
}

// describe is the failure for the outage summary.
func (r result) describe() string {
	switch {
	case r.err != nil:
		return r.err.Error()
	case r.status != 0:
		return fmt.Sprintf("aggregator answered %d: %s", r.status, r.msg)
	}
	return "unknown"
}

// noRedirect is every push client's CheckRedirect: the 3xx itself comes
// back to post, which treats it as a failure.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// isLoopback says whether host (no port) is this machine: a loopback IP
// (127.0.0.0/8, ::1) or the name localhost.
func isLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ingestURLHint is the URL the user probably meant when u lacks the ingest
// path (a bare http://aggregator:8000 gets 405 forever), "" otherwise.
func ingestURLHint(u *url.URL) string {
	if strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), ingestPath) {
		return ""
	}
	v := *u
	v.Path = strings.TrimSuffix(u.Path, "/") + ingestPath
	v.RawPath = ""
	return v.String()
}

// checkClock warns once when the aggregator's Date is more than
// clockSkewWarn away from our clock: the aggregator refuses snapshots
// too far in its future, and a clock far behind makes every chart lie.
func (p *Pusher) checkClock(date string, now time.Time) {
	t, err := http.ParseTime(date)
	if err != nil {
		return
	}
	// Date is truncated to the second: compare at the same resolution.
	skew := now.Truncate(time.Second).Sub(t)
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	switch {
	case abs > clockSkewWarn && !p.clockWarned:
		p.clockWarned = true
		dir := "ahead of"
		if skew < 0 {
			dir = "behind"
		}
		p.log.Warn(fmt.Sprintf("this host's clock is %s %s the aggregator's; fix NTP", abs.Round(time.Second), dir),
			"local_time", now.UTC().Format(time.RFC3339), "aggregator_date", date)
	case abs < clockSkewWarn/2:
		// Fixed (with some margin, so a skew at the threshold does not
		// warn every other push): warn again if it drifts off again.
		p.clockWarned = false
	}
}

func (p *Pusher) post(ctx context.Context, gz []byte) result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.activeURL(), bytes.NewReader(gz))
	if err != nil {
		return result{kind: retry, err: err, retryAfter: -1}
	}
	req.Header.Set("X-API-KEY", p.o.APIKey)
	if p.o.EnrollmentToken != "" {
		req.Header.Set("X-Enrollment-Token", p.o.EnrollmentToken)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	if p.o.UserAgent != "" {
		req.Header.Set("User-Agent", p.o.UserAgent)
	}
	resp, err := p.o.Client.Do(req)
	if err != nil {
		return result{kind: retry, err: redact(err), retryAfter: -1}
	}
	defer func() { _ = resp.Body.Close() }()
	p.checkClock(resp.Header.Get("Date"), time.Now())
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	r := result{status: resp.StatusCode, retryAfter: -1}
	switch s := resp.StatusCode; {
	case s == http.StatusOK || s == http.StatusCreated:
		r.kind = delivered
	case s >= 300 && s < 400:
		// Not followed (noRedirect). Kept and retried: a redirect is a
		// configuration (a proxy, an http->https rule) someone can fix.
		r.kind = retry
		r.location = truncate(resp.Header.Get("Location"), 512)
		r.err = fmt.Errorf("aggregator answered %d redirecting to %q; redirects are not followed", s, r.location)
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		// The host or its key is refused, not this snapshot: keep the
		// queue until someone fixes the key at either end.
		r.kind = refused
		r.msg = errorMessage(body)
	case s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable:
		r.kind = retry
		r.err = fmt.Errorf("aggregator answered %d: %s", s, errorMessage(body))
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			r.retryAfter = d
		}
	case s == http.StatusBadRequest || s == http.StatusRequestEntityTooLarge || s == http.StatusUnsupportedMediaType ||
		s == http.StatusUnprocessableEntity:
		// Sending the same bytes again cannot succeed.
		r.kind = rejected
		r.msg = errorMessage(body)
	default:
		// 5xx, and 404/405 (a wrong URL or an aggregator mid-upgrade):
		// keep the data and retry; the log says what went wrong.
		r.kind = retry
		r.err = fmt.Errorf("aggregator answered %d: %s", s, errorMessage(body))
	}
	return r
}

// redact drops the URL from a client error: it is the configured push URL,
// already logged at start, and would be noise on every retry line.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// errorMessage extracts docs/api.md's {"error": "..."}; anything else (a proxy's
// HTML page) is quoted, shortened, so the log shows what came back.
func errorMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return truncate(e.Error, 512)
	}
	return strconv.Quote(truncate(strings.TrimSpace(string(body)), 200))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}

// parseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 10.2.3).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return min(time.Duration(min(n, int64(maxRetryAfter/time.Second)))*time.Second, maxRetryAfter), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), maxRetryAfter), true
}

// Encode gzips a snapshot's JSON: the exact bytes queued and sent.
func Encode(s *snapshot.Snapshot) ([]byte, error) {
	var e Encoder
	return e.Encode(s)
}

// Encoder gzips snapshots reusing one compressor. A fresh gzip.Writer
// allocates several hundred KiB of tables; once per walk that churn alone
// grew the exporter's heap by megabytes. BestSpeed because snapshots are
// repetitive JSON that compresses well even so, and the walk goroutine
// should be done quickly. Not safe for concurrent use.
type Encoder struct {
	buf bytes.Buffer
	zw  *gzip.Writer
}

// Encode returns the gzip'ed JSON of s; the slice is the caller's.
func (e *Encoder) Encode(s *snapshot.Snapshot) ([]byte, error) {
	e.buf.Reset()
	if e.zw == nil {
		zw, err := gzip.NewWriterLevel(&e.buf, gzip.BestSpeed)
		if err != nil {
			return nil, err
		}
		e.zw = zw
	} else {
		e.zw.Reset(&e.buf)
	}
	if err := json.NewEncoder(e.zw).Encode(s); err != nil {
		return nil, err
	}
	if err := e.zw.Close(); err != nil {
		return nil, err
	}
	return bytes.Clone(e.buf.Bytes()), nil
}
