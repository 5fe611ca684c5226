package api

import (
	"net"
	"net/http"
	"net/netip"
)

// clientKey names the client a per-client limit applies to: the peer's IP
// address as the connection shows it, or its /64 for IPv6, since one IPv6
// host usually holds a whole /64 and would otherwise get 2^64 budgets.
// X-Forwarded-For is not trusted: behind a reverse proxy every client shares
// the proxy's budget, which errs on the safe side.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}
