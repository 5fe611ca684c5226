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
// then lets that page read the aggregator's answers as same-origin, and a
// UI with no login shows it every process and command line. The request
// still says "Host: evil.example", so without basic auth the UI and the
// read API answer only Host headers that cannot be rebound: IP literals,
// localhost and *.localhost (browsers resolve those to loopback
// themselves, RFC 6761), and the names given with --web.allowed-hosts.
// With basic auth the page would need the password, so nothing is checked.
//
// Not checked: POST /api/v1/ingest (host keys authenticate it, and
// exporters push to whatever DNS name they were given), /-/healthy,
// /-/ready, and /metrics, which Prometheus scrapes by service or DNS name
// and which shows counts and durations, not process tables.

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

// hostGuard answers 403 to requests whose Host is not allowed.
func (l *hostAllowList) hostGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.allowed(r.Host) {
			name := httpapi.Clip(hostOnly(r.Host))
			httpapi.WriteError(w, httpapi.Errorf(httpapi.KindForbidden,
				"host %q is not allowed: without basic auth the UI and API answer only IP addresses, localhost and the names in --web.allowed-hosts "+
					"(start the aggregator with --web.allowed-hosts=%s, or set basic_auth_users in --web.config.file); this protects against DNS rebinding",
				name, name))
			return
		}
		next.ServeHTTP(w, r)
	})
}
