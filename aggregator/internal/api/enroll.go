package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/procscope/procscope/aggregator/internal/httpapi"
	"github.com/procscope/procscope/aggregator/internal/store"
)

// Host enrolment: who may create a host (issue 11).
//
// A host is created by the first ingest of its hostname, which binds the
// key it carries. On a network that lets anyone who reaches the aggregator
// claim any hostname before its real exporter does, so Enrollment.Mode
// decides who may create hosts, and three limits hold in every mode: at
// most MaxHosts hosts, at most RatePerMinute new hostnames per minute per
// client address, and a new host's key of at least MinKeyLen characters.
//
// The checks run when the decoder hands over the hostname (the early 403,
// before the body is judged), and the store decides again in its writer
// (IngestRequest.NoCreate and MaxHosts), so a host deleted or a count
// reached between the two cannot slip through.

// EnrollMode says who may create a host.
type EnrollMode string

const (
	// EnrollOpen: the first ingest of a hostname creates it and binds its
	// key (the original agent's behaviour).
	EnrollOpen EnrollMode = "open"
	// EnrollToken: a new hostname needs the X-Enrollment-Token header
	// equal to the aggregator's token; known hosts need only their key.
	EnrollToken EnrollMode = "token"
	// EnrollClosed: only `procscope-aggregator hosts add` creates hosts.
	EnrollClosed EnrollMode = "closed"
)

// EnrollmentTokenHeader carries the enrolment token of a new host.
const EnrollmentTokenHeader = "X-Enrollment-Token"

// Enrollment configures host enrolment. The zero value is open enrolment
// without limits, the behaviour before enrolment existed (tests and the
// load generator rely on it); the server sets every field from its flags.
type Enrollment struct {
	Mode EnrollMode // "" means EnrollOpen
	// Token is the enrolment token (EnrollToken only, required there).
	Token string
	// MaxHosts bounds the number of hosts (0: none).
	MaxHosts int
	// RatePerMinute bounds new hostnames per minute per client address
	// (0: none); up to that many may come at once.
	RatePerMinute int
	// MinKeyLen is the shortest key a new host may bind (0: any).
	MinKeyLen int
	// MaxClients bounds the client addresses the rate limit remembers
	// (default 16384).
	MaxClients int
}

// enroller applies an Enrollment to ingests.
type enroller struct {
	cfg       Enrollment
	tokenHash [32]byte
	limits    *enrollLimiter // nil without RatePerMinute
	// hosts are the Host names a keyless push may enrol through in open
	// mode (DNS rebinding, allowedhosts.go); by default only IP literals
	// and localhost.
	hosts *hostAllowList
}

func newEnroller(cfg Enrollment, now func() time.Time) (*enroller, error) {
	if cfg.Mode == "" {
		cfg.Mode = EnrollOpen
	}
	switch cfg.Mode {
	case EnrollOpen, EnrollClosed:
	case EnrollToken:
		if cfg.Token == "" {
			return nil, errors.New("api: token enrolment needs a token")
		}
	default:
		return nil, fmt.Errorf("api: unknown enrolment mode %q", cfg.Mode)
	}
	if cfg.MaxHosts < 0 || cfg.RatePerMinute < 0 || cfg.MinKeyLen < 0 || cfg.MaxClients < 0 {
		return nil, errors.New("api: negative enrolment limit")
	}
	if cfg.MaxClients == 0 {
		cfg.MaxClients = 16384
	}
	e := &enroller{cfg: cfg, tokenHash: sha256.Sum256([]byte(cfg.Token)), hosts: newHostAllowList(nil)}
	if cfg.RatePerMinute > 0 {
		e.limits = newEnrollLimiter(cfg.RatePerMinute, cfg.MaxClients, now)
	}
	return e, nil
}

// tokenOK compares the request's enrolment token with ours in constant
// time (hashes of both, so the length leaks nothing either).
func (e *enroller) tokenOK(r *http.Request) bool {
	got := r.Header.Get(EnrollmentTokenHeader)
	if got == "" || e.cfg.Mode != EnrollToken {
		return false
	}
	h := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(h[:], e.tokenHash[:]) == 1
}

// mayCreate reports whether this request may create its host, whatever
// the host's state: what the store is told (IngestRequest.NoCreate).
func (e *enroller) mayCreate(r *http.Request) bool {
	switch e.cfg.Mode {
	case EnrollOpen:
		return true
	case EnrollToken:
		return e.tokenOK(r)
	}
	return false
}

// admit decides, once the hostname is known, whether the ingest may go on:
// nil, an *httpapi.Error (a refusal), or another error.
func (e *enroller) admit(r *http.Request, st store.Store, host, key string, keyHash [32]byte) error {
	state, err := st.CheckKey(r.Context(), host, keyHash)
	if errors.Is(err, store.ErrKeyMismatch) {
		return keyMismatch(host)
	}
	if err != nil {
		return err
	}
	switch state {
	case store.KeyMatches:
		return nil
	case store.KeyUnbound:
		// `hosts reset-key --unbind`, or a database from before reset-key
		// rotated keys. Binding a key to a host is enrolment, admitted as
		// for a new host: otherwise whoever pushes first takes it over,
		// in closed and token mode too.
		return e.enrol(r, host, key, true)
	}
	return e.enrol(r, host, key, false)
}

// enrol decides whether this request may bind a key to host: create it,
// or (unbound) bind the host left without a key.
func (e *enroller) enrol(r *http.Request, host, key string, unbound bool) error {
	name := strconv.Quote(host)
	what, fix := "is not enrolled", fmt.Sprintf("run `procscope-aggregator hosts add %s`", shellWord(host))
	if unbound {
		what, fix = "has no key (`hosts reset-key --unbind`)", fmt.Sprintf("run `procscope-aggregator hosts reset-key %s`", shellWord(host))
	}
	switch e.cfg.Mode {
	case EnrollClosed:
		return httpapi.Errorf(httpapi.KindForbidden,
			"host %s %s and enrollment is closed: on the aggregator, %s and give this exporter the key it prints (--push.api-key-file), or start the aggregator with --hosts.enrollment=token (new hosts then need its enrollment token) or --hosts.enrollment=open",
			name, what, fix)
	case EnrollOpen:
		// No credential binds the key: a web page that rebound its name
		// to the aggregator could claim hosts. Its Host gives it away.
		if !e.hosts.allowed(r.Host) {
			return httpapi.Errorf(httpapi.KindForbidden,
				"host %s %s and enrollment is open, but this push came by the name %q, which a web page could use against the aggregator (DNS rebinding): push to an IP address or localhost, add the name to the aggregator's --web.allowed-hosts, or use --hosts.enrollment=token",
				name, what, httpapi.Clip(hostOnly(r.Host)))
		}
	case EnrollToken:
		if r.Header.Get(EnrollmentTokenHeader) == "" {
			return httpapi.Errorf(httpapi.KindForbidden,
				"host %s %s and this aggregator enrolls hosts only with its enrollment token: give the exporter the token file (--push.enrollment-token-file, the file of the aggregator's --hosts.enrollment-token-file), or %s on the aggregator",
				name, what, fix)
		}
		if !e.tokenOK(r) {
			return httpapi.Errorf(httpapi.KindForbidden,
				"host %s %s and the %s header does not match the aggregator's enrollment token: copy the file of its --hosts.enrollment-token-file to the exporter's --push.enrollment-token-file",
				name, what, EnrollmentTokenHeader)
		}
	}
	if rf := e.keyLongEnough(host, key); rf != nil {
		return rf
	}
	if e.limits != nil {
		if ok, retry, full := e.limits.allow(clientKey(r)); !ok {
			msg := fmt.Sprintf("too many new hosts from this address: at most %d new hostnames a minute per client (--hosts.enroll-rate); retry later", e.cfg.RatePerMinute)
			if full {
				msg = "too many clients are enrolling new hosts at once; retry later"
			}
			return &httpapi.Error{Kind: httpapi.KindTooMany, Msg: msg, RetryAfter: retry}
		}
	}
	return nil
}

// keyMismatch is the refusal of a key another one is bound in place of.
// It begins as it always did: exporters recognise it.
func keyMismatch(host string) *httpapi.Error {
	return httpapi.Errorf(httpapi.KindForbidden,
		"the API key does not match this host: host %s is bound to another key (`hosts reset-key` replaced it, or a reinstalled exporter made a new one); give this exporter the host's key (--push.api-key-file), e.g. the one `procscope-aggregator hosts reset-key %s` prints on the aggregator",
		strconv.Quote(host), shellWord(host))
}

func (e *enroller) keyLongEnough(host, key string) error {
	if len(key) >= e.cfg.MinKeyLen {
		return nil
	}
	return httpapi.Errorf(httpapi.KindForbidden,
		"host %s has no key yet and this API key is %d characters long: the key that binds a host must have at least %d (exporters generate 64 by default; see --push.api-key-file)",
		strconv.Quote(host), len(key), e.cfg.MinKeyLen)
}

// storeRefusal maps the store's enrolment errors to refusals; nil for
// any other error.
func (e *enroller) storeRefusal(err error, host string) *httpapi.Error {
	switch {
	case errors.Is(err, store.ErrUnknownHost):
		// Refused by the writer: the host vanished (deleted) after the
		// early check found it, and this request may not create it.
		return httpapi.Errorf(httpapi.KindForbidden,
			"host %s is not enrolled (it was deleted): run `procscope-aggregator hosts add %s` on the aggregator, or send its enrollment token",
			strconv.Quote(host), shellWord(host))
	case errors.Is(err, store.ErrKeyMismatch):
		// The writer's check: a key replaced after the early one passed,
		// or a race for a new hostname lost to another key.
		return keyMismatch(host)
	case errors.Is(err, store.ErrTooManyHosts):
		return httpapi.Errorf(httpapi.KindForbidden,
			"the aggregator holds its maximum of %d hosts (--hosts.max): delete unused ones with `procscope-aggregator hosts delete NAME`, or raise --hosts.max",
			e.cfg.MaxHosts)
	}
	return nil
}

// shellWord quotes a hostname for a command line in a message when it is
// not a plain word (hostnames come from the client).
func shellWord(s string) string {
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '.' && r != '-' && r != '_' {
			return strconv.Quote(s)
		}
	}
	return s
}

// enrollLimiter is a token bucket per client address, in a map of bounded
// size: when it is full, buckets that have refilled completely (so hold
// nothing a new bucket would not) are dropped; when none has, new clients
// are refused until some refill, so a flood of addresses can neither grow
// the map nor reset the buckets of the addresses already in it.
type enrollLimiter struct {
	mu        sync.Mutex
	limit     rate.Limit
	burst     int
	max       int
	clients   map[string]*rate.Limiter
	lastSweep time.Time
	now       func() time.Time
}

func newEnrollLimiter(perMinute, maxClients int, now func() time.Time) *enrollLimiter {
	return &enrollLimiter{
		limit:   rate.Limit(float64(perMinute) / 60),
		burst:   perMinute,
		max:     maxClients,
		clients: make(map[string]*rate.Limiter),
		now:     now,
	}
}

// enrollSweepEvery spaces the sweeps of a full map, so a flood does not
// make every request walk it.
const enrollSweepEvery = time.Second

// allow takes a token of client's bucket. When there is none it returns
// how long until there is one; full reports that the map of clients was
// full instead.
func (l *enrollLimiter) allow(client string) (ok bool, retry time.Duration, full bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	lim := l.clients[client]
	if lim == nil {
		if len(l.clients) >= l.max && now.Sub(l.lastSweep) >= enrollSweepEvery {
			l.lastSweep = now
			for c, b := range l.clients {
				if b.TokensAt(now) >= float64(l.burst) {
					delete(l.clients, c)
				}
			}
		}
		if len(l.clients) >= l.max {
			// A bucket refills within a minute at most.
			return false, time.Duration(float64(time.Second) / float64(l.limit)), true
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.clients[client] = lim
	}
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d, false
	}
	return true, 0, false
}

// size is the number of clients remembered (tests).
func (l *enrollLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}
