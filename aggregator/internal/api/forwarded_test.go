package api

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// clientOf is the client key resolveClient and clientKey give a request
// from remote with these headers.
func clientOf(trusted []netip.Prefix, remote string, hdr http.Header) string {
	a := &API{opts: Options{TrustedProxies: trusted}}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	r.Header = hdr
	var got string
	a.resolveClient(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = clientKey(r) })).
		ServeHTTP(httptest.NewRecorder(), r)
	return got
}

// TestClientKeyRFC7239: a trusted proxy's Forwarded header names the
// client as X-Forwarded-For does (the right-most for= node that is not a
// trusted proxy), with RFC 7239's syntax: quoted IPv6 with ports, unknown
// and obfuscated nodes, several elements and lines, any case. What a
// client writes left of its proxy's element, or in the header its proxy
// does not write, never picks its address.
func TestClientKeyRFC7239(t *testing.T) {
	proxies := mustProxies(t, "10.0.0.0/8", "2001:db8:ffff::/48")
	f := func(name, remote string, fwd []string, want string) {
		t.Helper()
		hdr := http.Header{}
		for _, v := range fwd {
			hdr.Add("Forwarded", v)
		}
		if got := clientOf(proxies, remote, hdr); got != want {
			t.Errorf("%s: Forwarded %q from %s: client %q, want %q", name, fwd, remote, got, want)
		}
	}
	f("untrusted peer: ignored", "198.51.100.1:1", []string{"for=203.0.113.7"}, "198.51.100.1")
	f("untrusted peer spoofing a trusted hop", "198.51.100.1:1", []string{"for=203.0.113.7, for=10.0.0.9"}, "198.51.100.1")
	f("plain", "10.0.0.1:1", []string{"for=203.0.113.7"}, "203.0.113.7")
	f("with other parameters", "10.0.0.1:1", []string{"for=203.0.113.7;proto=https;by=10.0.0.1;host=example.com"}, "203.0.113.7")
	f("parameters in any order and case", "10.0.0.1:1", []string{"Proto=http;FOR=203.0.113.7"}, "203.0.113.7")
	f("quoted IPv4 with port", "10.0.0.1:1", []string{`for="203.0.113.7:4711"`}, "203.0.113.7")
	f("quoted IPv6 with port", "10.0.0.1:1", []string{`for="[2001:db8:1:2::99]:443"`}, "2001:db8:1:2::/64")
	f("quoted IPv6 without port", "10.0.0.1:1", []string{`for="[2001:db8:1:2::99]"`}, "2001:db8:1:2::/64")
	f("bare IPv4 with port (lenient)", "10.0.0.1:1", []string{`for=203.0.113.7:80`}, "203.0.113.7")
	f("bare bracketed IPv6 (lenient)", "10.0.0.1:1", []string{`for=[2001:db8:1:2::99]:80`}, "2001:db8:1:2::/64")
	f("obfuscated port", "10.0.0.1:1", []string{`for="203.0.113.7:_p1"`}, "203.0.113.7")
	f("escaped quoted string", "10.0.0.1:1", []string{`for="\203.0.113.7"`}, "203.0.113.7")
	f("client-written elements on the left", "10.0.0.1:1", []string{"for=1.2.3.4, for=5.6.7.8,for=203.0.113.7"}, "203.0.113.7")
	f("two trusted proxies", "10.0.0.1:1", []string{`for=1.2.3.4, for=203.0.113.7, for="[2001:db8:ffff::5]"`}, "203.0.113.7")
	f("several header lines", "10.0.0.1:1", []string{"for=1.2.3.4", "for=203.0.113.7;proto=https, for=10.0.0.2"}, "203.0.113.7")
	f("empty elements skipped", "10.0.0.1:1", []string{"for=203.0.113.7, , ;,"}, "203.0.113.7")
	f("unknown: the last trusted hop", "10.0.0.1:1", []string{"for=203.0.113.7, for=unknown, for=10.0.0.2"}, "10.0.0.2")
	f("UNKNOWN in any case", "10.0.0.1:1", []string{"for=203.0.113.7, for=UnKnown"}, "10.0.0.1")
	f("obfuscated node: the proxy", "10.0.0.1:1", []string{"for=203.0.113.7, for=_hidden"}, "10.0.0.1")
	f("element without for: the proxy", "10.0.0.1:1", []string{"for=203.0.113.7, proto=https;by=10.0.0.1"}, "10.0.0.1")
	f("for twice in one element: junk", "10.0.0.1:1", []string{"for=203.0.113.7;for=198.51.100.9"}, "10.0.0.1")
	f("IPv4 in brackets: junk", "10.0.0.1:1", []string{`for="[203.0.113.7]"`}, "10.0.0.1")
	f("bad port: junk", "10.0.0.1:1", []string{`for="203.0.113.7:123456"`}, "10.0.0.1")
	f("bad obfuscated port: junk", "10.0.0.1:1", []string{`for="203.0.113.7:_p!"`}, "10.0.0.1")
	f("hostname: junk", "10.0.0.1:1", []string{`for=client.example.com`}, "10.0.0.1")
	f("only trusted hops: the left-most", "10.0.0.1:1", []string{"for=10.0.0.5, for=10.0.0.2"}, "10.0.0.5")
	// Spoofing: whatever the client writes, its proxy's element decides,
	// or the walk ends at the proxy.
	f("comma inside quotes is not a separator", "10.0.0.1:1", []string{`for="6.6.6.6, for=7.7.7.7", for=203.0.113.7`}, "203.0.113.7")
	f("unterminated quote swallows the proxy's element: the proxy", "10.0.0.1:1", []string{`for="6.6.6.6, for=203.0.113.7`}, "10.0.0.1")
	f("unterminated quote on the client's own line", "10.0.0.1:1", []string{`for="6.6.6.6`, "for=203.0.113.7"}, "203.0.113.7")
	f("parameter quote swallowing the proxy's element", "10.0.0.1:1", []string{`for=6.6.6.6;x=", for="[2001:db8:1:2::99]"`}, "10.0.0.1")
	f("junk then the proxy's element", "10.0.0.1:1", []string{`for=6.6.6.6 junk "x,y", for=203.0.113.7`}, "203.0.113.7")
	f("control character: junk", "10.0.0.1:1", []string{"for=\"203.0.113.7\x01\""}, "10.0.0.1")
	f("too long a trusted chain: the last looked at", "10.0.0.1:1",
		[]string{"for=203.0.113.7," + strings.Repeat(" for=10.0.0.3,", maxForwardedHops) + " for=10.0.0.2"}, "10.0.0.3")
}

// TestClientKeyBothHeaders: with X-Forwarded-For and Forwarded both
// present, a client is only what both say; when they differ, one of them
// was written by the client (its proxy writes the other), so the client
// is the proxy.
func TestClientKeyBothHeaders(t *testing.T) {
	proxies := mustProxies(t, "10.0.0.0/8")
	f := func(name, xff, fwd, want string) {
		t.Helper()
		hdr := http.Header{}
		if xff != "" {
			hdr.Set("X-Forwarded-For", xff)
		}
		if fwd != "" {
			hdr.Set("Forwarded", fwd)
		}
		if got := clientOf(proxies, "10.0.0.1:1", hdr); got != want {
			t.Errorf("%s: X-Forwarded-For %q, Forwarded %q: client %q, want %q", name, xff, fwd, got, want)
		}
	}
	f("only X-Forwarded-For", "203.0.113.7", "", "203.0.113.7")
	f("only Forwarded", "", "for=203.0.113.7", "203.0.113.7")
	f("both agree", "6.6.6.6, 203.0.113.7", `for=7.7.7.7, for="203.0.113.7:1234"`, "203.0.113.7")
	f("client forges Forwarded behind an X-Forwarded-For proxy", "203.0.113.7", "for=6.6.6.6", "10.0.0.1")
	f("client forges X-Forwarded-For behind a Forwarded proxy", "6.6.6.6", "for=203.0.113.7", "10.0.0.1")
	f("client forges a trusted hop in Forwarded", "203.0.113.7", "for=10.0.0.7", "10.0.0.1")
	f("empty Forwarded counts as absent", "203.0.113.7", " , ", "203.0.113.7")
}

// TestForwardedParseAllocs: parsing a Forwarded header of the largest
// size a server takes costs the same few allocations as a short one;
// memory does not grow with the list (only the last hops are kept).
func TestForwardedParseAllocs(t *testing.T) {
	proxies := mustProxies(t, "10.0.0.0/8")
	peer := netip.MustParseAddr("10.0.0.1")
	long := []string{strings.Repeat(`for="[2001:db8::1]:443";proto=https, `, (64<<10)/40) + "for=203.0.113.7"}
	short := []string{"for=203.0.113.7"}
	for name, v := range map[string][]string{"short": short, "64 KiB": long} {
		allocs := testing.AllocsPerRun(20, func() {
			if a, ok := rfc7239Client(proxies, peer, v); !ok || a.String() != "203.0.113.7" {
				t.Fatalf("client %v %v", a, ok)
			}
		})
		if allocs > 1 {
			t.Errorf("%s: %.0f allocations per parse, want at most 1", name, allocs)
		}
	}
}

// FuzzForwardedClient: no header text makes the parser panic, and text a
// client writes before its proxy's own entry never names the client: a
// proxy that adds its line names the client it saw; one that appends to
// the client's line names it or, when the client's text swallows the
// entry (an open quote), leaves the proxy as the client.
func FuzzForwardedClient(f *testing.F) {
	for _, s := range []string{"", "for=1.2.3.4", `for="[::1]:80", for=unknown;proto=http`, `for="`, `for=1.2.3.4;x="a\"b,c"`,
		`;;,,`, `for=_x;by=_y`, `FOR="[2001:db8::1"`, "for=\"\\", `for=10.0.0.3, for=10.0.0.4`} {
		f.Add(s, s)
	}
	proxies := mustProxies(f, "10.0.0.0/8")
	const client, proxy = "203.0.113.7", "10.0.0.1"
	f.Fuzz(func(t *testing.T, fwd, xff string) {
		got := func(hdr http.Header) string { return clientOf(proxies, proxy+":1", hdr) }
		// Whatever it holds, a header alone parses without panicking.
		_ = got(http.Header{"Forwarded": {fwd}, "X-Forwarded-For": {xff}})
		if c := got(http.Header{"Forwarded": {fwd, "for=" + client}}); c != client {
			t.Errorf("proxy's own line after %q: client %q", fwd, c)
		}
		if c := got(http.Header{"Forwarded": {fwd + ", for=" + client}}); c != client && c != proxy {
			t.Errorf("proxy's element appended to %q: client %q", fwd, c)
		}
		if c := got(http.Header{"X-Forwarded-For": {xff + ", " + client}}); c != client {
			t.Errorf("proxy's X-Forwarded-For entry appended to %q: client %q", xff, c)
		}
		// A proxy writing one header, a client forging the other.
		if c := got(http.Header{"Forwarded": {fwd}, "X-Forwarded-For": {client}}); c != client && c != proxy {
			t.Errorf("forged Forwarded %q: client %q", fwd, c)
		}
		if c := got(http.Header{"Forwarded": {"for=" + client}, "X-Forwarded-For": {xff}}); c != client && c != proxy {
			t.Errorf("forged X-Forwarded-For %q: client %q", xff, c)
		}
	})
}
