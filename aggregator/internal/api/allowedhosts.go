package api

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/procscope/procscope/aggregator/internal/httpapi"
)

// Why the Host header is checked (DNS rebinding).
//
// A web page on evil.example can make its own name resolve to 127.0.0.1 (or
// to the aggregator's LAN address) after the page has loaded; the browser
// then lets that page read the aggregator's answers as same-origin, and
// send it requests (same-origin: no CORS preflight), with any headers. The
// request still says "Host: evil.example". A name such a page cannot use:
// IP literals, localhost and *.localhost (browsers resolve those to
// loopback themselves, RFC 6761), and the names given with
// --web.allowed-hosts.
//
// One rule for every route, on the main listener and the pprof one: a
// request is answered only if its Host is such a name, or it carries a
// credential the page cannot have. Those are basic auth when it is
// configured (everything but ingest and the probes sits behind it), and
// for ingest the host's key, or the enrolment token in token mode. So:
//
//   - UI, read API, live stream, /metrics (host names, counts), unknown
//     paths: a Host allowed, or basic auth (hostRule);
//   - POST /api/v1/ingest to a known host: its key is the credential. A
//     push that would bind a key (a new or unbound host) in open mode has
//     none, so there it needs an allowed Host (enroller.enrol); in token
//     mode the token is one; in closed mode nothing binds;
//   - /-/healthy and /-/ready: exempt, they say nothing but "up", and
//     probes use whatever name they were given;
//   - pprof (its own loopback listener, never authenticated): a Host
//     allowed (HostGuard).

// hostAllowList holds the normalized --web.allowed-hosts entries.
type hostAllowList struct {
	names    map[string]bool
	suffixes []string // from "*.example.com": ".example.com"
}

// NormalizeAllowedHosts splits comma lists, lowercases, drops ports and
// trailing dots, and refuses what cannot be a host name, so that a typo is
// reported at startup instead of as 403s.
func NormalizeAllowedHosts(entries []string) ([]string, error) {
	var out []string
	for _, e := range entries {
		for _, raw := range strings.Split(e, ",") {
			h := strings.TrimSpace(raw)
			if h == "" {
				continue
			}
			n := hostOnly(h)
			name := strings.TrimPrefix(n, "*.")
			if name == "" || strings.ContainsAny(name, "*") || strings.ContainsAny(h, "/ @?#\\") {
				return nil, fmt.Errorf("--web.allowed-hosts: %q is not a host name (want a name like procscope.example.com, optionally *.example.com)", raw)
			}
			out = append(out, n)
		}
	}
	return out, nil
}

func newHostAllowList(normalized []string) *hostAllowList {
	l := &hostAllowList{names: map[string]bool{}}
	for _, n := range normalized {
		if s, ok := strings.CutPrefix(n, "*."); ok {
			l.suffixes = append(l.suffixes, "."+s)
		} else {
			l.names[n] = true
		}
	}
	return l
}

// hostOnly is a Host header's name: port, IPv6 brackets and a trailing dot
// removed, lowercased (host names are case-insensitive).
func hostOnly(host string) string {
	h := host
	if name, _, err := net.SplitHostPort(h); err == nil {
		h = name
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

func (l *hostAllowList) allowed(host string) bool {
	h := hostOnly(host)
	switch {
	case h == "":
		// No Host at all: HTTP/1.0 tools. Browsers always send one, and
		// rebinding needs a browser.
		return true
	case h == "localhost" || strings.HasSuffix(h, ".localhost"):
		return true
	case l.names[h]:
		return true
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	for _, s := range l.suffixes {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// refuse answers 403 naming the ways out, for a request whose Host is not
// allowed.
func refuseHost(w http.ResponseWriter, r *http.Request) {
	name := httpapi.Clip(hostOnly(r.Host))
	httpapi.WriteError(w, httpapi.Errorf(httpapi.KindForbidden,
		"host %q is not allowed: without basic auth the aggregator answers only IP addresses, localhost and the names in --web.allowed-hosts "+
			"(start the aggregator with --web.allowed-hosts=%s, or set basic_auth_users in --web.config.file); this protects against DNS rebinding",
		name, name))
}

// hostGuard answers 403 to requests whose Host is not allowed.
func (l *hostAllowList) hostGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.allowed(r.Host) {
			refuseHost(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// HostGuard applies the rule to a handler with no credentials of its own
// (pprof): only allowed Host headers (NormalizeAllowedHosts' result).
func HostGuard(allowed []string, next http.Handler) http.Handler {
	return newHostAllowList(allowed).hostGuard(next)
}

// isProbe reports the health endpoints, which answer any Host.
func isProbe(path string) bool {
	switch strings.TrimSuffix(path, "/") {
	case "/-/healthy", "/-/ready":
		return true
	}
	return false
}

// hostRule applies the rule to every route of the API (see above).
func (a *API) hostRule(next http.Handler) http.Handler {
	allow := a.allowHosts
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case allow.allowed(r.Host), isProbe(r.URL.Path):
		case strings.TrimSuffix(r.URL.Path, "/") == IngestPath:
			// Host keys and the enrolment token are credentials; a push
			// that binds a key without either checks the Host itself.
		case a.opts.Auth != nil:
			// Basic auth guards every other route that says anything.
		default:
			refuseHost(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
