package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
)

func TestHostAllowList(t *testing.T) {
	l := newHostAllowList([]string{"procscope.example.com", "*.corp.example"})
	f := func(host string, want bool) {
		t.Helper()
		if got := l.allowed(host); got != want {
			t.Errorf("allowed(%q) = %v, want %v", host, got, want)
		}
	}
	f("127.0.0.1", true)
	f("127.0.0.1:8000", true)
	f("10.1.2.3:8000", true)
	f("[::1]:8000", true)
	f("[::1]", true)
	f("[fe80::1%25eth0]:8000", true)
	f("localhost", true)
	f("LOCALHOST:8000", true)
	f("localhost.:8000", true)
	f("app.localhost:8000", true)
	f("", true) // HTTP/1.0 without Host: not a browser
	f("procscope.example.com", true)
	f("Procscope.Example.COM:443", true)
	f("procscope.example.com.", true)
	f("a.corp.example", true)
	f("b.a.corp.example:8000", true)

	f("evil.example", false)
	f("evil.example:8000", false)
	f("corp.example", false) // *.corp.example is subdomains only
	f("evilprocscope.example.com", false)
	f("procscope.example.com.evil.example", false)
	f("localhost.evil.example", false)
	f("127.0.0.1.nip.io", false)
	f("xcorp.example", false)
}

func TestNormalizeAllowedHosts(t *testing.T) {
	f := func(in []string, want []string) {
		t.Helper()
		got, err := NormalizeAllowedHosts(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("NormalizeAllowedHosts(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	f(nil, nil)
	f([]string{"a.example.com"}, []string{"a.example.com"})
	f([]string{"a.example.com,B.Example.com:8000", " c.example. ", ""}, []string{"a.example.com", "b.example.com", "c.example"})
	f([]string{"*.Corp.example"}, []string{"*.corp.example"})
	bad := func(in string) {
		t.Helper()
		if got, err := NormalizeAllowedHosts([]string{in}); err == nil || !strings.Contains(err.Error(), "--web.allowed-hosts") {
			t.Errorf("NormalizeAllowedHosts(%q) = %q, %v; want an error naming the flag", in, got, err)
		}
	}
	bad("http://a.example.com/")
	bad("*.")
	bad("a b")
	bad("*")
	bad("a.*.example")
}

// TestHostGuard: without basic auth the UI and the read API refuse a Host
// that could be rebound (403 naming --web.allowed-hosts); ingest, health
// and /metrics answer any Host; --web.allowed-hosts and basic auth lift it.
func TestHostGuard(t *testing.T) {
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ui")) })
	// req sends with the given Host; a 200 body is not read (the stream's
	// never ends), an error body is.
	req := func(e *env, method, path, host string, hdr map[string]string, body []byte) resp {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rq, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		rq.Host = host
		for k, v := range hdr {
			rq.Header.Set(k, v)
		}
		res, err := e.srv.Client().Do(rq)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = res.Body.Close() }()
		var b []byte
		if res.StatusCode != 200 {
			b, _ = io.ReadAll(res.Body)
		}
		return resp{res.StatusCode, res.Header, string(b)}
	}
	e := newEnv(t, func(o *Options) { o.UI = ui })
	ingestHdr := map[string]string{"X-API-KEY": "k", "Content-Type": "application/json"}
	// Open enrolment: a push that binds a key has no credential, so a name
	// a web page could rebind is refused; an IP binds, and the host's key
	// is then a credential by any name.
	r := req(e, http.MethodPost, "/api/v1/ingest", "evil.example:8000", ingestHdr, snap("h", "2026-11-25T17:00:00Z", proc1))
	mustStatus(t, r, http.StatusForbidden)
	if msg := mustJSONError(t, r); !strings.Contains(msg, "--web.allowed-hosts") || !strings.Contains(msg, "DNS rebinding") {
		t.Errorf("enrolment by a rebindable name: %q", msg)
	}
	mustStatus(t, req(e, http.MethodPost, "/api/v1/ingest", "127.0.0.1:8000", ingestHdr, snap("h", "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)
	mustStatus(t, req(e, http.MethodPost, "/api/v1/ingest", "evil.example:8000", ingestHdr, snap("h", "2026-11-25T17:00:01Z", proc1)), http.StatusCreated)
	for _, p := range []string{"/", "/index.html", "/api/v1/hosts", "/api/v1/snapshots/latest?hostname=h",
		"/api/v1/snapshots/1/processes", "/api/v1/stream?hostname=h", "/api/v1/nope"} {
		for _, host := range []string{"evil.example", "EVIL.example:8000", "localhost.evil.example"} {
			r := req(e, http.MethodGet, p, host, nil, nil)
			if r.code != http.StatusForbidden {
				t.Errorf("GET %s with Host %s: %d, want 403", p, host, r.code)
				continue
			}
			if msg := mustJSONError(t, r); !strings.Contains(msg, "--web.allowed-hosts") {
				t.Errorf("the refusal does not name the flag: %q", msg)
			}
		}
		for _, host := range []string{"127.0.0.1:8000", "[::1]:8000", "LOCALHOST:8000", "procscope.localhost"} {
			if r := req(e, http.MethodGet, p, host, nil, nil); r.code == http.StatusForbidden {
				t.Errorf("GET %s with Host %s: 403: %s", p, host, r.body)
			}
		}
	}
	for _, p := range []string{"/-/healthy", "/-/ready"} {
		mustStatus(t, req(e, http.MethodGet, p, "prometheus-scrape.example", nil, nil), 200)
	}
	// /metrics names every host: like the read API.
	mustStatus(t, req(e, http.MethodGet, "/metrics", "prometheus-scrape.example", nil, nil), http.StatusForbidden)
	mustStatus(t, req(e, http.MethodGet, "/metrics", "10.0.0.1:8000", nil, nil), 200)

	allowed := newEnv(t, func(o *Options) { o.UI = ui; o.AllowedHosts = []string{"procscope.example.com"} })
	mustStatus(t, req(allowed, http.MethodGet, "/metrics", "procscope.example.com", nil, nil), 200)
	mustStatus(t, req(allowed, http.MethodPost, "/api/v1/ingest", "procscope.example.com", ingestHdr, snap("h2", "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)
	mustStatus(t, req(allowed, http.MethodGet, "/api/v1/hosts", "Procscope.example.com:8000", nil, nil), 200)
	mustStatus(t, req(allowed, http.MethodGet, "/", "procscope.example.com", nil, nil), 200)
	mustStatus(t, req(allowed, http.MethodGet, "/", "other.example.com", nil, nil), http.StatusForbidden)

	wc := authConfig(t, "admin", "s3cret")
	authed := newEnv(t, func(o *Options) { o.UI = ui; o.Auth = wc.BasicAuth() })
	mustStatus(t, req(authed, http.MethodGet, "/api/v1/hosts", "aggregator.example", nil, nil), http.StatusUnauthorized)
	cred := map[string]string{"Authorization": "Basic YWRtaW46czNjcmV0"} // admin:s3cret
	mustStatus(t, req(authed, http.MethodGet, "/api/v1/hosts", "aggregator.example", cred, nil), 200)
	mustStatus(t, req(authed, http.MethodGet, "/", "aggregator.example", map[string]string{"Authorization": cred["Authorization"]}, nil), 200)
	mustStatus(t, req(authed, http.MethodGet, "/metrics", "aggregator.example", nil, nil), http.StatusUnauthorized)
	mustStatus(t, req(authed, http.MethodGet, "/metrics", "aggregator.example", cred, nil), 200)
	// Basic auth does not cover ingest: an open enrolment by a rebindable
	// name stays refused.
	mustStatus(t, req(authed, http.MethodPost, "/api/v1/ingest", "aggregator.example", ingestHdr, snap("h", "2026-11-25T17:00:00Z", proc1)), http.StatusForbidden)

	// Token mode: the token is a credential, so any name enrols.
	const token = "0123456789abcdef0123456789abcdef"
	tok := newEnv(t, func(o *Options) { o.Enrollment = Enrollment{Mode: EnrollToken, Token: token} })
	mustStatus(t, req(tok, http.MethodPost, "/api/v1/ingest", "aggregator.example", map[string]string{
		"X-API-KEY": "k", "Content-Type": "application/json", EnrollmentTokenHeader: token}, snap("h", "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)
}

// TestHostRuleEveryRoute walks every route the router has (UI and mounted
// ones included) and sends it a rebindable Host without credentials: each
// gets the 403 of the DNS rebinding rule, except the health probes and
// ingest, whose credentials are checked by its handler.
func TestHostRuleEveryRoute(t *testing.T) {
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ui")) })
	e := newEnv(t, func(o *Options) {
		o.UI = ui
		o.Mount = func(r chi.Router) {
			r.Get("/hosts/{hostname}/series", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("series")) })
		}
	})
	send := func(method, path, host string) resp {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rq, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		rq.Host = host
		res, err := e.srv.Client().Do(rq)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = res.Body.Close() }()
		b, _ := io.ReadAll(res.Body)
		return resp{res.StatusCode, res.Header, string(b)}
	}
	fill := strings.NewReplacer("{id}", "1", "{hostname}", "h", "*", "x")
	routes := 0
	err := chi.Walk(e.a.handler.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes++
		path := fill.Replace(strings.TrimSuffix(route, "/*") + "/*")
		if !strings.HasSuffix(route, "/*") {
			path = fill.Replace(route)
		}
		r := send(method, path, "evil.example")
		switch {
		case isProbe(path):
			if r.code == http.StatusForbidden {
				t.Errorf("%s %s: a probe refused: %s", method, path, r.body)
			}
		case path == IngestPath:
			if r.code != http.StatusUnauthorized {
				t.Errorf("%s %s without a key: %d, want 401 (the key is its credential)", method, path, r.code)
			}
		default:
			if r.code != http.StatusForbidden || (method != http.MethodHead && !strings.Contains(r.body, "DNS rebinding")) {
				t.Errorf("%s %s with Host evil.example: %d %s, want the rebinding 403", method, path, r.code, r.body)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if routes < 15 {
		t.Fatalf("walked only %d routes", routes)
	}
	// Paths no route has, and wrong methods, follow the rule too.
	for _, mp := range [][2]string{{http.MethodGet, "/nope"}, {http.MethodDelete, "/api/v1/hosts"}, {http.MethodGet, "/metrics/"}} {
		if r := send(mp[0], mp[1], "evil.example"); r.code != http.StatusForbidden {
			t.Errorf("%s %s: %d, want 403", mp[0], mp[1], r.code)
		}
	}
}
