package api

import (
	cryptorand "crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/procscope/procscope/aggregator/internal/httpapi"
)

// Why the web config file is split (--web.config.file).
//
// exporter-toolkit's web.Serve applies the file's basic_auth_users to every
// request of the server. The aggregator must not do that: exporters
// authenticate to POST /api/v1/ingest with their host key only (docs/api.md), and
// old agents know nothing of basic auth. The toolkit offers no per-path
// exemption, so the file is split at startup:
//
//   - The toolkit gets a copy without basic_auth_users and rate_limit (TLS,
//     HTTP/2 and header settings stay, relative certificate paths made
//     absolute), so it keeps doing TLS, certificate reloads and the
//     "Listening on" log line exactly as in every Prometheus exporter.
//   - The aggregator checks basic_auth_users itself (bcrypt, the toolkit's
//     scheme: a fixed dummy hash for unknown users against timing
//     enumeration) on everything but ingest and the health endpoints, and
//     applies rate_limit with a JSON 429 and Retry-After, which the
//     toolkit's plain-text 429 lacks. How it stays cheap under a flood of
//     wrong passwords is told at BasicAuth.
//
// The whole file is first checked with web.Validate, so it accepts and
// rejects exactly what the toolkit does. Changes to the users need a
// restart (the toolkit re-reads them per request; we read them once).

// WebConfig is the split --web.config.file.
type WebConfig struct {
	// ToolkitFile is the file to give exporter-toolkit ("" when the
	// original has nothing left for it).
	ToolkitFile string
	users       map[string][]byte
	limiter     *rate.Limiter
	retryAfter  time.Duration // the rate limit's interval

	// ok holds the credentials bcrypt accepted (keys from credKey), so a
	// logged-in browser costs a hash lookup per request, not a bcrypt.
	ok *lru.Cache[[32]byte, struct{}]
	// salt makes credKey's hashes useless outside this process.
	salt [16]byte
	// failures is a token bucket of bcrypt attempts per client (see
	// clientKey); bounded, least recently seen clients forgotten first.
	failures *lru.Cache[string, *rate.Limiter]
	// failEvery refills a failure budget (authFailEvery; tests stretch it).
	failEvery time.Duration
	// bcryptSlots bounds the bcrypt comparisons running at once.
	bcryptSlots chan struct{}
	// bcrypts counts comparisons made (tests check the limiter spares them).
	bcrypts atomic.Int64
}

// Limits of the basic auth check (see BasicAuth).
const (
	// authCacheSize is how many distinct accepted credentials are kept.
	authCacheSize = 1024
	// authClients is how many clients' failure budgets are remembered.
	authClients = 10_000
	// authFailBurst failed logins per client, then one per authFailEvery.
	authFailBurst = 10
	authFailEvery = 6 * time.Second
	// authSlotWait is how long a login waits for a free bcrypt slot
	// before 503.
	authSlotWait = 10 * time.Second
)

// dummyHash is bcrypt("fakepassword"), compared for unknown users so that
// they take as long as known ones.
const dummyHash = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"

// LoadWebConfig validates and splits the web config file at path; tmpDir
// receives the toolkit's copy when one is needed (the caller removes
// ToolkitFile at exit). An empty path returns nil: no TLS, no auth.
func LoadWebConfig(path, tmpDir string) (*WebConfig, error) {
	if path == "" {
		return nil, nil
	}
	if err := web.Validate(path); err != nil {
		return nil, fmt.Errorf("web config %s: %w", path, err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var parsed struct {
		Users     map[string]string `yaml:"basic_auth_users"`
		RateLimit struct {
			Burst    int           `yaml:"burst"`
			Interval time.Duration `yaml:"interval"`
		} `yaml:"rate_limit"`
	}
	if err := yaml.Unmarshal(raw, &parsed); err != nil {
		return nil, fmt.Errorf("web config %s: %w", path, err)
	}
	wc, err := newWebConfig()
	if err != nil {
		return nil, err
	}
	for u, h := range parsed.Users {
		wc.users[u] = []byte(h)
	}
	if parsed.RateLimit.Interval > 0 {
		wc.limiter = rate.NewLimiter(rate.Every(parsed.RateLimit.Interval), parsed.RateLimit.Burst)
		wc.retryAfter = parsed.RateLimit.Interval
	}

	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("web config %s: %w", path, err)
	}
	delete(doc, "basic_auth_users")
	delete(doc, "rate_limit")
	if len(doc) == 0 {
		return wc, nil
	}
	if tls, ok := doc["tls_server_config"].(map[any]any); ok {
		dir, err := filepath.Abs(filepath.Dir(path))
		if err != nil {
			return nil, err
		}
		for _, k := range []string{"cert_file", "key_file", "client_ca_file"} {
			if p, ok := tls[k].(string); ok && p != "" && !filepath.IsAbs(p) {
				tls[k] = filepath.Join(dir, p)
			}
		}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(tmpDir, "procscope-web-config-*.yml")
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(out); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, err
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(f.Name())
		return nil, err
	}
	if err := web.Validate(f.Name()); err != nil {
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("web config %s (split copy): %w", path, err)
	}
	wc.ToolkitFile = f.Name()
	return wc, nil
}

func newWebConfig() (*WebConfig, error) {
	ok, err := lru.New[[32]byte, struct{}](authCacheSize)
	if err != nil {
		return nil, err
	}
	failures, err := lru.New[string, *rate.Limiter](authClients)
	if err != nil {
		return nil, err
	}
	wc := &WebConfig{
		users:       map[string][]byte{},
		ok:          ok,
		failures:    failures,
		failEvery:   authFailEvery,
		bcryptSlots: make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
	}
	if _, err := cryptorand.Read(wc.salt[:]); err != nil {
		return nil, err
	}
	return wc, nil
}

// AuthEnabled reports whether basic auth users are configured.
func (wc *WebConfig) AuthEnabled() bool { return wc != nil && len(wc.users) > 0 }

// BasicAuth is the Options.Auth middleware (nil when no users are set).
//
// bcrypt is slow by design, so the check is ordered to spend it
// only where it can pay off (issue 11: a global bcrypt lock let 200 clients
// sending wrong passwords keep the admin out for seconds):
//
//  1. Credentials bcrypt already accepted are found in a bounded LRU and
//     pass at once: a logged-in user never waits behind an attack. Only
//     successes are cached; a failure cache would be a map an attacker
//     fills at will.
//  2. Otherwise the client (its IP, or its IPv6 /64) spends a token of its
//     failure budget before bcrypt runs; a success gives it back. An empty
//     budget answers 429 with Retry-After without running bcrypt, so a
//     flood from one address costs a map lookup per request.
//  3. At most max(2, GOMAXPROCS) comparisons run at once: a flood from many
//     addresses queues there instead of starving ingest of CPU.
func (wc *WebConfig) BasicAuth() func(http.Handler) http.Handler {
	if !wc.AuthEnabled() {
		return nil
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, pass, ok := r.BasicAuth()
			if !ok {
				unauthorized(w)
				return
			}
			key := wc.credKey(user, pass)
			if wc.ok.Contains(key) {
				next.ServeHTTP(w, r)
				return
			}
			now := time.Now()
			res := wc.clientBudget(clientKey(r)).ReserveN(now, 1)
			if d := res.DelayFrom(now); d > 0 {
				res.CancelAt(now)
				httpapi.WriteError(w, &httpapi.Error{Kind: httpapi.KindTooMany, RetryAfter: d, Msg: fmt.Sprintf(
					"too many failed logins from your address: retry in %s", d.Round(time.Second))})
				return
			}
			timer := time.NewTimer(authSlotWait)
			select {
			case wc.bcryptSlots <- struct{}{}:
				timer.Stop()
			case <-r.Context().Done():
				timer.Stop()
				res.Cancel()
				return
			case <-timer.C:
				res.Cancel()
				httpapi.WriteError(w, &httpapi.Error{Kind: httpapi.KindUnavailable, RetryAfter: 5 * time.Second,
					Msg: "too many logins being checked at once, retry later"})
				return
			}
			valid := wc.compare(user, pass)
			<-wc.bcryptSlots
			if !valid {
				unauthorized(w)
				return
			}
			res.Cancel() // a success is not a failure: give the token back
			wc.ok.Add(key, struct{}{})
			next.ServeHTTP(w, r)
		})
	}
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="procscope", charset="UTF-8"`)
	httpapi.WriteError(w, httpapi.New(httpapi.KindUnauthorized, "authentication required"))
}

// credKey identifies user and password without keeping the password in
// memory in clear: a salted SHA-256, lengths included so that no two
// (user, password) pairs share an input.
func (wc *WebConfig) credKey(user, pass string) [32]byte {
	h := sha256.New()
	h.Write(wc.salt[:])
	for _, part := range []string{user, pass} {
		h.Write([]byte(strconv.Itoa(len(part))))
		h.Write([]byte{0})
		h.Write([]byte(part))
	}
	var key [32]byte
	copy(key[:], h.Sum(nil))
	return key
}

// clientBudget returns the client's failure bucket, creating it full.
func (wc *WebConfig) clientBudget(client string) *rate.Limiter {
	if lim, ok := wc.failures.Get(client); ok {
		return lim
	}
	fresh := rate.NewLimiter(rate.Every(wc.failEvery), authFailBurst)
	if prev, found, _ := wc.failures.PeekOrAdd(client, fresh); found {
		return prev // another request added it first
	}
	return fresh
}

// compare runs bcrypt: unknown users against a dummy hash, so that they
// take as long as known ones and cannot be told apart by timing.
func (wc *WebConfig) compare(user, pass string) bool {
	wc.bcrypts.Add(1)
	hash, known := wc.users[user]
	if !known {
		hash = []byte(dummyHash)
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(pass))
	// known is checked last so both paths did the same work.
	return err == nil && known
}

// RateLimit applies the file's rate_limit to every request but the health
// endpoints, answering 429 with Retry-After. Without a limit it returns
// next unchanged.
func (wc *WebConfig) RateLimit(next http.Handler) http.Handler {
	if wc == nil || wc.limiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/-/healthy", "/-/ready":
		default:
			if !wc.limiter.Allow() {
				httpapi.WriteError(w, &httpapi.Error{Kind: httpapi.KindTooMany, RetryAfter: wc.retryAfter,
					Msg: "rate limited, retry later"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
