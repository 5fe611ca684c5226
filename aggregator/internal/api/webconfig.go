package api

import (
	"crypto/sha256"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"
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
//     enumeration, one bcrypt at a time, a small cache of results) on
//     everything but ingest and the health endpoints, and applies rate_limit
//     with a JSON 429 and Retry-After, which the toolkit's plain-text 429
//     lacks.
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
	retryAfter  string

	bcryptMu sync.Mutex
	cacheMu  sync.Mutex
	cache    map[[32]byte]bool
}

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
	wc := &WebConfig{users: map[string][]byte{}, cache: map[[32]byte]bool{}}
	for u, h := range parsed.Users {
		wc.users[u] = []byte(h)
	}
	if parsed.RateLimit.Interval > 0 {
		wc.limiter = rate.NewLimiter(rate.Every(parsed.RateLimit.Interval), parsed.RateLimit.Burst)
		wc.retryAfter = strconv.Itoa(int(math.Ceil(parsed.RateLimit.Interval.Seconds())))
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
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	if err := web.Validate(f.Name()); err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("web config %s (split copy): %w", path, err)
	}
	wc.ToolkitFile = f.Name()
	return wc, nil
}

// AuthEnabled reports whether basic auth users are configured.
func (wc *WebConfig) AuthEnabled() bool { return wc != nil && len(wc.users) > 0 }

// BasicAuth is the Options.Auth middleware (nil when no users are set).
func (wc *WebConfig) BasicAuth() func(http.Handler) http.Handler {
	if !wc.AuthEnabled() {
		return nil
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, pass, ok := r.BasicAuth()
			if ok && wc.check(user, pass) {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="procscope", charset="UTF-8"`)
			writeError(w, http.StatusUnauthorized, "authentication required")
		})
	}
}

func (wc *WebConfig) check(user, pass string) bool {
	hash, known := wc.users[user]
	if !known {
		hash = []byte(dummyHash)
	}
	// The cache key covers user, hash and password, hashed so the
	// password is not kept in memory in clear.
	h := sha256.New()
	for _, part := range [][]byte{[]byte(user), hash, []byte(pass)} {
		h.Write([]byte(strconv.Itoa(len(part))))
		h.Write([]byte{0})
		h.Write(part)
	}
	var key [32]byte
	copy(key[:], h.Sum(nil))
	wc.cacheMu.Lock()
	res, cached := wc.cache[key]
	wc.cacheMu.Unlock()
	if !cached {
		// bcrypt is deliberately slow: one at a time keeps a flood of
		// wrong passwords from eating every core.
		wc.bcryptMu.Lock()
		err := bcrypt.CompareHashAndPassword(hash, []byte(pass))
		wc.bcryptMu.Unlock()
		res = err == nil
		wc.cacheMu.Lock()
		if len(wc.cache) >= 256 {
			clear(wc.cache)
		}
		wc.cache[key] = res
		wc.cacheMu.Unlock()
	}
	// Unknown users compared against the dummy hash, which never matches
	// a real password's result anyway; known is checked last so both
	// paths did the same work.
	return res && known
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
				w.Header().Set("Retry-After", wc.retryAfter)
				writeError(w, http.StatusTooManyRequests, "rate limited, retry later")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
