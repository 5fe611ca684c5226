package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustProxies(t testing.TB, entries ...string) []netip.Prefix {
	t.Helper()
	p, err := ParseTrustedProxies(entries)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClientKeyForwarded: the client of a per-client limit is the TCP
// peer unless the peer is a trusted proxy; then it is the right-most
// X-Forwarded-For entry that is not a trusted proxy, so what a client
// writes into the header itself (left of it) changes nothing.
func TestClientKeyForwarded(t *testing.T) {
	proxies := mustProxies(t, "10.0.0.0/8", "2001:db8:ffff::/48,192.0.2.250")
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     []string
		want    string
	}{
		{"no trusted proxies: header ignored", nil, "198.51.100.1:1", []string{"203.0.113.7"}, "198.51.100.1"},
		{"untrusted peer: header ignored", proxies, "198.51.100.1:1", []string{"203.0.113.7"}, "198.51.100.1"},
		{"untrusted peer spoofing a trusted hop", proxies, "198.51.100.1:1", []string{"203.0.113.7, 10.0.0.9"}, "198.51.100.1"},
		{"trusted peer, no header", proxies, "10.0.0.1:1", nil, "10.0.0.1"},
		{"trusted peer", proxies, "10.0.0.1:1", []string{"203.0.113.7"}, "203.0.113.7"},
		{"client-written entries on the left", proxies, "10.0.0.1:1", []string{"1.2.3.4, 5.6.7.8 , 203.0.113.7"}, "203.0.113.7"},
		{"two trusted proxies", proxies, "10.0.0.1:1", []string{"1.2.3.4, 203.0.113.7, 10.0.0.2"}, "203.0.113.7"},
		{"several header lines", proxies, "10.0.0.1:1", []string{"1.2.3.4", "203.0.113.7, 192.0.2.250"}, "203.0.113.7"},
		{"single trusted address", proxies, "192.0.2.250:1", []string{"203.0.113.7"}, "203.0.113.7"},
		{"entries with ports", proxies, "10.0.0.1:1", []string{"203.0.113.7:5555"}, "203.0.113.7"},
		{"IPv6 client by its /64", proxies, "[2001:db8:ffff::1]:1", []string{"[2001:db8:1:2::99]:80"}, "2001:db8:1:2::/64"},
		{"mapped IPv4 peer", proxies, "[::ffff:10.0.0.1]:1", []string{"203.0.113.7"}, "203.0.113.7"},
		{"junk from a trusted proxy: that proxy", proxies, "10.0.0.1:1", []string{"203.0.113.7, junk, 10.0.0.2"}, "10.0.0.2"},
		{"only trusted hops: the left-most", proxies, "10.0.0.1:1", []string{"10.0.0.5, 10.0.0.2"}, "10.0.0.5"},
		{"empty entries skipped", proxies, "10.0.0.1:1", []string{"203.0.113.7, ,"}, "203.0.113.7"},
		{"too long a trusted chain: the last looked at", proxies, "10.0.0.1:1",
			[]string{"203.0.113.7," + strings.Repeat(" 10.0.0.3,", maxForwardedHops) + " 10.0.0.2"}, "10.0.0.3"},
		{"a Unix socket peer", proxies, "@", []string{"203.0.113.7"}, "@"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &API{opts: Options{TrustedProxies: tc.trusted}}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			var got string
			a.resolveClient(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = clientKey(r) })).
				ServeHTTP(httptest.NewRecorder(), r)
			if got != tc.want {
				t.Errorf("client %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies([]string{"10.1.2.3/8, 192.0.2.7", "::1", "::ffff:192.0.2.0/120"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[10.0.0.0/8 192.0.2.7/32 ::1/128 192.0.2.0/24]" {
		t.Fatalf("parsed %v", got)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example.com", "fe80::1%eth0", "10.0.0.1:80"} {
		if _, err := ParseTrustedProxies([]string{bad}); err == nil || !strings.Contains(err.Error(), "--web.trusted-proxies") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestEnrollRateBehindProxy: behind a trusted proxy every client has its
// own budget of new hostnames; a client talking to the aggregator
// directly cannot escape its budget by writing X-Forwarded-For.
func TestEnrollRateBehindProxy(t *testing.T) {
	newHosts := func(e *env, xff string, n int) (created int) {
		for i := range n {
			hdr := map[string]string{}
			if xff != "" {
				hdr["X-Forwarded-For"] = xff
			}
			r := e.ingestHdr("key-0123456789", hdr, snap(fmt.Sprintf("h-%s-%d", xff, i), "2026-11-25T17:00:00Z", proc1))
			if r.code == http.StatusCreated {
				created++
			} else if r.code != http.StatusTooManyRequests {
				t.Fatalf("new host: %d %s", r.code, r.body)
			}
		}
		return created
	}
	limited := func(mod func(*Options)) *env {
		return newEnv(t, func(o *Options) {
			o.Enrollment = Enrollment{RatePerMinute: 2}
			if mod != nil {
				mod(o)
			}
		})
	}
	// The test server's peer is 127.0.0.1.
	e := limited(func(o *Options) { o.TrustedProxies = mustProxies(t, "127.0.0.0/8") })
	if got := newHosts(e, "203.0.113.1", 3); got != 2 {
		t.Fatalf("client A behind the proxy created %d hosts, want 2", got)
	}
	if got := newHosts(e, "6.6.6.6, 203.0.113.2", 3); got != 2 {
		t.Fatalf("client B behind the proxy created %d hosts, want its own 2", got)
	}
	for name, mod := range map[string]func(*Options){
		"no trusted proxies":  nil,
		"peer is not a proxy": func(o *Options) { o.TrustedProxies = mustProxies(t, "10.0.0.0/8") },
	} {
		e := limited(mod)
		total := 0
		for i := range 3 {
			total += newHosts(e, fmt.Sprintf("203.0.113.%d", i+1), 2)
		}
		if total != 2 {
			t.Errorf("%s: spoofed X-Forwarded-For created %d hosts, want 2 (one budget)", name, total)
		}
	}
}
