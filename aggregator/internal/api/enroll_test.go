package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// serverLimits are the limits the server sets from its flags' defaults.
func serverLimits(e Enrollment) Enrollment {
	e.MaxHosts, e.RatePerMinute, e.MinKeyLen = 10000, 60, 8
	return e
}

func (e *env) ingestHdr(key string, hdr map[string]string, body []byte) resp {
	h := map[string]string{"X-API-KEY": key, "Content-Type": "application/json"}
	for k, v := range hdr {
		h[k] = v
	}
	return e.do(http.MethodPost, "/api/v1/ingest", h, body)
}

// TestEnrollOpen: open enrolment, explicit or the zero value, binds the
// first key a hostname is seen with, and refuses others for it.
func TestEnrollOpen(t *testing.T) {
	for _, mode := range []EnrollMode{"", EnrollOpen} {
		e := newEnv(t, func(o *Options) { o.Enrollment = serverLimits(Enrollment{Mode: mode}) })
		mustStatus(t, e.ingest("key-web-1", snap("web-1", "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)
		r := e.ingest("key-other", snap("web-1", "2026-11-25T17:00:01Z", proc1))
		mustStatus(t, r, http.StatusForbidden)
		mustJSONError(t, r)
	}
}

// TestEnrollToken: a new hostname needs the enrolment token; a missing or
// wrong one is a 403 saying what to do, and stores nothing; a known host
// needs only its key.
func TestEnrollToken(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	e := newEnv(t, func(o *Options) { o.Enrollment = serverLimits(Enrollment{Mode: EnrollToken, Token: token}) })
	before := e.state()

	r := e.ingest("key-web-1", snap("web-1", "2026-11-25T17:00:00Z", proc1))
	mustStatus(t, r, http.StatusForbidden)
	if msg := mustJSONError(t, r); !strings.Contains(msg, "--push.enrollment-token-file") || !strings.Contains(msg, "hosts add web-1") {
		t.Errorf("missing token: the message does not name the fix: %s", msg)
	}
	for _, wrong := range []string{"wrong", token + "x", token[:31], strings.ToUpper(token)} {
		r = e.ingestHdr("key-web-1", map[string]string{"X-Enrollment-Token": wrong}, snap("web-1", "2026-11-25T17:00:00Z", proc1))
		mustStatus(t, r, http.StatusForbidden)
		if msg := mustJSONError(t, r); !strings.Contains(msg, "does not match") {
			t.Errorf("wrong token %q: %s", wrong, msg)
		}
	}
	if e.state() != before {
		t.Fatal("a refused enrolment changed the store")
	}

	mustStatus(t, e.ingestHdr("key-web-1", map[string]string{"X-Enrollment-Token": token}, snap("web-1", "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)
	// Known now: the key alone is enough, and the token does not let
	// another key in.
	mustStatus(t, e.ingest("key-web-1", snap("web-1", "2026-11-25T17:00:10Z", proc1)), http.StatusCreated)
	mustStatus(t, e.ingestHdr("key-other", map[string]string{"X-Enrollment-Token": token}, snap("web-1", "2026-11-25T17:00:20Z", proc1)), http.StatusForbidden)
}

// TestEnrollClosed: a new hostname gets 403 naming `hosts add` and the
// flag; a host created by the admin command ingests with its key.
func TestEnrollClosed(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Enrollment = serverLimits(Enrollment{Mode: EnrollClosed}) })
	before := e.state()
	r := e.ingestHdr("key-web-1", map[string]string{"X-Enrollment-Token": "anything"}, snap("web-1", "2026-11-25T17:00:00Z", proc1))
	mustStatus(t, r, http.StatusForbidden)
	msg := mustJSONError(t, r)
	for _, want := range []string{"procscope-aggregator hosts add web-1", "--hosts.enrollment=token", "--hosts.enrollment=open", "--push.api-key-file"} {
		if !strings.Contains(msg, want) {
			t.Errorf("closed: the message lacks %q: %s", want, msg)
		}
	}
	// A hostname that is not a plain word is quoted in the command.
	r = e.ingest("key-web-1", snap("web 1;rm", "2026-11-25T17:00:00Z", proc1))
	if msg := mustJSONError(t, r); !strings.Contains(msg, `hosts add "web 1;rm"`) {
		t.Errorf("unquoted hostname in the command: %s", msg)
	}
	if e.state() != before {
		t.Fatal("a refused enrolment changed the store")
	}
	if err := e.st.AddHost(context.Background(), "web-1", sha256.Sum256([]byte("key-web-1"))); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, e.ingest("key-web-1", snap("web-1", "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)
	mustStatus(t, e.ingest("key-other", snap("web-1", "2026-11-25T17:00:01Z", proc1)), http.StatusForbidden)
}

// TestEnrollMaxHosts: a new hostname beyond MaxHosts gets 403 naming the
// flag; known hosts keep ingesting; deleting one frees a place.
func TestEnrollMaxHosts(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Enrollment = serverLimits(Enrollment{})
		o.Enrollment.MaxHosts = 2
	})
	for _, h := range []string{"a", "b"} {
		mustStatus(t, e.ingest("key-host-"+h, snap(h, "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)
	}
	before := e.state()
	r := e.ingest("key-host-c", snap("c", "2026-11-25T17:00:00Z", proc1))
	mustStatus(t, r, http.StatusForbidden)
	if msg := mustJSONError(t, r); !strings.Contains(msg, "--hosts.max") || !strings.Contains(msg, "hosts delete") {
		t.Errorf("the message does not name the fix: %s", msg)
	}
	if e.state() != before {
		t.Fatal("a refused host changed the store")
	}
	mustStatus(t, e.ingest("key-host-a", snap("a", "2026-11-25T17:00:10Z", proc1)), http.StatusCreated)
	if err := e.st.DeleteHost(context.Background(), "b"); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, e.ingest("key-host-c", snap("c", "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)
}

// TestEnrollMaxHostsConcurrent: many new hosts at once never pass
// MaxHosts (the store's writer counts).
func TestEnrollMaxHostsConcurrent(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Enrollment = serverLimits(Enrollment{})
		o.Enrollment.MaxHosts = 3
		o.Enrollment.RatePerMinute = 0
	})
	codes := make([]int, 30)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() {
			h := fmt.Sprint("host-", i)
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+IngestPath, bytes.NewReader(snap(h, "2026-11-25T17:00:00Z", proc1)))
			req.Header.Set("X-API-KEY", "key-"+h)
			res, err := e.srv.Client().Do(req)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			codes[i] = res.StatusCode
		})
	}
	wg.Wait()
	created := 0
	for _, c := range codes {
		switch c {
		case http.StatusCreated:
			created++
		case http.StatusForbidden:
		default:
			t.Fatalf("status %d", c)
		}
	}
	hosts, _ := e.st.Hosts(context.Background())
	if created != 3 || len(hosts) != 3 {
		t.Fatalf("%d created, %d hosts, want 3", created, len(hosts))
	}
}

// TestEnrollRatePerClient: at most RatePerMinute new hostnames per client
// address, then 429 with Retry-After; other addresses are independent, an
// IPv6 /64 is one client, and known hosts are not counted.
func TestEnrollRatePerClient(t *testing.T) {
	now := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnv(t, func(o *Options) {
		o.Now = clock
		o.Enrollment = serverLimits(Enrollment{})
		o.Enrollment.RatePerMinute = 3
	})
	n := 0
	post := func(remote, host string) *httptest.ResponseRecorder {
		t.Helper()
		n++
		req := httptest.NewRequest(http.MethodPost, IngestPath, bytes.NewReader(snap(host, fmt.Sprintf("2026-11-25T17:00:%02dZ", n%60), proc1)))
		req.Header.Set("X-API-KEY", "key-host-"+host)
		req.RemoteAddr = remote
		req.Host = "127.0.0.1:8000" // example.com would be a rebindable name
		rec := httptest.NewRecorder()
		e.a.ServeHTTP(rec, req)
		return rec
	}
	want := func(rec *httptest.ResponseRecorder, code int) {
		t.Helper()
		if rec.Code != code {
			t.Fatalf("status %d, want %d: %s", rec.Code, code, rec.Body)
		}
	}
	for i := range 3 {
		want(post("192.0.2.1:40000", fmt.Sprint("a-", i)), http.StatusCreated)
	}
	rec := post("192.0.2.1:40001", "a-3")
	want(rec, http.StatusTooManyRequests)
	if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %q", rec.Header().Get("Retry-After"))
	}
	if !strings.Contains(rec.Body.String(), "--hosts.enroll-rate") {
		t.Errorf("429 without the flag: %s", rec.Body)
	}
	// Known hosts from the same address: not new, not limited.
	want(post("192.0.2.1:40002", "a-0"), http.StatusCreated)
	// Another address has its own bucket; IPv4-mapped IPv6 is the same
	// client as IPv4.
	want(post("192.0.2.2:1", "b-0"), http.StatusCreated)
	want(post("[::ffff:192.0.2.1]:1", "a-4"), http.StatusTooManyRequests)
	// One /64 is one client.
	for i := range 3 {
		want(post(fmt.Sprintf("[2001:db8::%x]:1", i+1), fmt.Sprint("v6-", i)), http.StatusCreated)
	}
	want(post("[2001:db8::ffff:1]:1", "v6-3"), http.StatusTooManyRequests)
	want(post("[2001:db8:0:1::1]:1", "v6-3"), http.StatusCreated)

	// A minute later the bucket is full again.
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	want(post("192.0.2.1:40000", "a-3"), http.StatusCreated)
}

// TestEnrollLimiterBounded: the map of clients never grows past its
// bound; a full map refuses new clients instead of evicting buckets
// that still hold state, and drops refilled ones when it needs room.
func TestEnrollLimiterBounded(t *testing.T) {
	now := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	l := newEnrollLimiter(2, 4, func() time.Time { return now })
	for i := range 4 {
		if ok, _, _ := l.allow(fmt.Sprint("10.0.0.", i)); !ok {
			t.Fatalf("client %d refused", i)
		}
	}
	for i := range 1000 {
		if ok, retry, full := l.allow(fmt.Sprint("10.1.", i/256, ".", i%256)); ok || !full || retry <= 0 {
			t.Fatalf("spoofed client %d: ok %v full %v retry %v", i, ok, full, retry)
		}
		now = now.Add(time.Millisecond)
	}
	if n := l.size(); n != 4 {
		t.Fatalf("%d clients remembered, bound 4", n)
	}
	// The first clients' buckets still hold their use: not reset.
	if ok, _, _ := l.allow("10.0.0.0"); !ok {
		t.Fatal("second token refused")
	}
	if ok, _, full := l.allow("10.0.0.0"); ok || full {
		t.Fatal("a bucket was reset by the flood")
	}
	now = now.Add(2 * time.Minute) // every bucket refilled
	if ok, _, _ := l.allow("10.2.0.1"); !ok {
		t.Fatal("a new client refused after the buckets refilled")
	}
	if n := l.size(); n > 4 {
		t.Fatalf("%d clients remembered, bound 4", n)
	}
}

// TestEnrollShortKey: a new host's key needs MinKeyLen characters (the
// original agent's TESTKEY123 has 10); a host bound before keeps its key.
func TestEnrollShortKey(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Enrollment = serverLimits(Enrollment{}) })
	if err := e.st.AddHost(context.Background(), "old", sha256.Sum256([]byte("k"))); err != nil {
		t.Fatal(err)
	}
	before := e.state()
	r := e.ingest("short", snap("web-1", "2026-11-25T17:00:00Z", proc1))
	mustStatus(t, r, http.StatusForbidden)
	if msg := mustJSONError(t, r); !strings.Contains(msg, "at least 8") {
		t.Errorf("short key: %s", msg)
	}
	if e.state() != before {
		t.Fatal("a refused key changed the store")
	}
	mustStatus(t, e.ingest("TESTKEY123", snap("web-1", "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)
	mustStatus(t, e.ingest("k", snap("old", "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)
	// After `hosts reset-key` the key that binds must be long enough too.
	if err := e.st.ResetKey(context.Background(), "old", nil); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, e.ingest("k", snap("old", "2026-11-25T17:00:01Z", proc1)), http.StatusForbidden)
	mustStatus(t, e.ingest("key-old-new", snap("old", "2026-11-25T17:00:01Z", proc1)), http.StatusCreated)
}

// TestForgetHost: a deleted host's push interval and stream state go.
func TestForgetHost(t *testing.T) {
	e := newEnv(t, nil)
	for _, h := range []string{"web-1", "web-2"} {
		mustStatus(t, e.ingest("key-"+h, snap(h, "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)
		mustStatus(t, e.ingest("key-"+h, snap(h, "2026-11-25T17:00:10Z", proc1)), http.StatusCreated)
	}
	if e.a.seen.len() != 2 || e.a.stream.newestLen() != 2 {
		t.Fatalf("before: %d intervals, %d stream hosts", e.a.seen.len(), e.a.stream.newestLen())
	}
	e.a.ForgetHost("web-2")
	if e.a.seen.len() != 1 || e.a.stream.newestLen() != 1 {
		t.Fatalf("after: %d intervals, %d stream hosts", e.a.seen.len(), e.a.stream.newestLen())
	}
	if e.a.seen.window("web-2", 42*time.Second) != 42*time.Second {
		t.Fatal("web-2's interval survived")
	}
}

func TestNewEnrollerChecks(t *testing.T) {
	bad := []Enrollment{{Mode: EnrollToken}, {Mode: "sometimes"}, {MaxHosts: -1}, {RatePerMinute: -1}}
	for _, b := range bad {
		if _, err := newEnroller(b, time.Now); err == nil {
			t.Errorf("%+v accepted", b)
		}
	}
}
