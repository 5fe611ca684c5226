package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Who is the client of a per-client limit (new hostnames a minute, live
// streams, reads, failed logins)?
//
// The TCP peer, unless the peer is a reverse proxy in --web.trusted-proxies
// (Options.TrustedProxies): behind a proxy every client would otherwise
// share the proxy's budgets. Then the client is the right-most
// X-Forwarded-For entry (or RFC 7239 Forwarded for= node, forwarded.go)
// that is not itself a trusted proxy: each proxy appends the address it
// got the request from, so entries to the left of that one were written
// by the client and prove nothing. From any other peer the headers are
// ignored, so they cannot be used to spoof addresses.

// maxForwardedHops bounds the X-Forwarded-For entries (Forwarded
// elements) looked at: the walk stops at the first untrusted one, so only
// a chain of trusted proxies goes deeper than one or two.
const maxForwardedHops = 32

// ParseTrustedProxies reads --web.trusted-proxies: CIDRs or single
// addresses, repeated or comma-separated.
func ParseTrustedProxies(entries []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, e := range entries {
		for _, raw := range strings.Split(e, ",") {
			s := strings.TrimSpace(raw)
			if s == "" {
				continue
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil || a.Zone() != "" {
					return nil, fmt.Errorf("--web.trusted-proxies: %q is not a CIDR or an IP address (want e.g. 10.0.0.0/8 or 192.0.2.7)", raw)
				}
				a = a.Unmap()
				p = netip.PrefixFrom(a, a.BitLen())
			}
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
			}
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

type clientCtxKey struct{}

// resolveClient records the client of a request from a trusted proxy for
// clientKey; without trusted proxies it does nothing.
func (a *API) resolveClient(next http.Handler) http.Handler {
	trusted := a.opts.TrustedProxies
	if len(trusted) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := forwardedClient(trusted, r); ok {
			r = r.WithContext(context.WithValue(r.Context(), clientCtxKey{}, c))
		}
		next.ServeHTTP(w, r)
	})
}

// forwardedClient is the client a trusted proxy forwarded r for; false
// when the peer is not a trusted proxy or sent neither X-Forwarded-For nor
// Forwarded.
//
// With both headers, a proxy usually writes only one of them and passes
// the other on as the client sent it, so neither may simply win: the
// client could then name any address in the header its proxy leaves
// alone. When both name the same client it is that client; when they
// differ, it is the peer (the proxy), which a client cannot choose.
func forwardedClient(trusted []netip.Prefix, r *http.Request) (netip.Addr, bool) {
	peer, ok := parseAddr(r.RemoteAddr)
	if !ok || !isTrusted(trusted, peer) {
		return netip.Addr{}, false
	}
	x, xok := xffClient(trusted, peer, r.Header.Values("X-Forwarded-For"))
	f, fok := rfc7239Client(trusted, peer, r.Header.Values("Forwarded"))
	switch {
	case xok && fok:
		if x == f {
			return x, true
		}
		return peer, true
	case xok:
		return x, true
	case fok:
		return f, true
	}
	return netip.Addr{}, false
}

// hopWalk goes through the hops a chain of proxies recorded, right to
// left, from the TCP peer (a trusted proxy).
type hopWalk struct {
	trusted []netip.Prefix
	last    netip.Addr // the left-most trusted hop so far
	hops    int
	client  netip.Addr
	done    bool
}

// step looks at the next hop to the left (ok false: not an address) and
// says whether the walk is over.
func (w *hopWalk) step(addr netip.Addr, ok bool) bool {
	switch w.hops++; {
	case w.hops > maxForwardedHops, !ok:
		// Too long a chain, or a trusted proxy handed over something that
		// is no address: the client is the last hop we know.
		w.client = w.last
	case !isTrusted(w.trusted, addr):
		w.client = addr
	default:
		w.last = addr
		return false
	}
	w.done = true
	return true
}

// result is the client, and false when there was no hop at all.
func (w *hopWalk) result() (netip.Addr, bool) {
	if w.done {
		return w.client, true
	}
	// Every entry is a trusted proxy: the left-most one is the client.
	return w.last, w.hops > 0
}

func xffClient(trusted []netip.Prefix, peer netip.Addr, values []string) (netip.Addr, bool) {
	w := hopWalk{trusted: trusted, last: peer}
	for i := len(values) - 1; i >= 0 && !w.done; i-- {
		rest := values[i]
		for rest != "" && !w.done {
			entry := rest
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				entry, rest = rest[j+1:], rest[:j]
			} else {
				rest = ""
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			w.step(parseAddr(entry))
		}
	}
	return w.result()
}

// rfc7239Client walks the Forwarded header (forwarded.go).
func rfc7239Client(trusted []netip.Prefix, peer netip.Addr, values []string) (netip.Addr, bool) {
	var ring fwdRing
	for _, v := range values {
		ring.parseForwarded(v)
	}
	w := hopWalk{trusted: trusted, last: peer}
	ring.walk(func(n fwdNode) bool { return w.step(n.addr, n.ok) })
	return w.result()
}

func isTrusted(trusted []netip.Prefix, a netip.Addr) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseAddr reads an address with or without a port (RemoteAddr, or an
// X-Forwarded-For entry from a proxy that adds ports), unmapped and
// without a zone.
func parseAddr(s string) (netip.Addr, bool) {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// clientKey names the client a per-client limit applies to: its IP
// address, or its /64 for IPv6, since one IPv6 host usually holds a whole
// /64 and would otherwise get 2^64 budgets. The client is the TCP peer
// unless a trusted proxy forwarded the request (resolveClient).
func clientKey(r *http.Request) string {
	addr, ok := r.Context().Value(clientCtxKey{}).(netip.Addr)
	if !ok {
		if addr, ok = parseAddr(r.RemoteAddr); !ok {
			return r.RemoteAddr // a Unix socket (systemd): one client
		}
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}
