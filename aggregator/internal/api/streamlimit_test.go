package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestStreamsPerClient: one address holds at most 16 live streams (the
// default of --web.max-streams-per-client); the 17th gets a JSON 429 naming
// the flag, a closed stream frees its slot, and other addresses are not
// affected.
func TestStreamsPerClient(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func() (*http.Response, context.CancelFunc) {
		t.Helper()
		sctx, scancel := context.WithCancel(ctx)
		req, _ := http.NewRequestWithContext(sctx, http.MethodGet, e.srv.URL+"/api/v1/stream", nil)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			scancel()
			t.Fatal(err)
		}
		return res, func() { scancel(); _ = res.Body.Close() }
	}
	var closers []context.CancelFunc
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for i := range 16 {
		res, closeIt := open()
		closers = append(closers, closeIt)
		if res.StatusCode != 200 {
			t.Fatalf("stream %d: %d", i+1, res.StatusCode)
		}
	}
	res, closeIt := open()
	b, _ := io.ReadAll(res.Body)
	closeIt()
	r := resp{res.StatusCode, res.Header, string(b)}
	mustStatus(t, r, http.StatusTooManyRequests)
	if msg := mustJSONError(t, r); !strings.Contains(msg, "--web.max-streams-per-client") {
		t.Errorf("the refusal does not name the flag: %q", msg)
	}
	if r.hdr.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}

	// Another address still gets a stream (its request is cancelled, so
	// the handler returns after the first bytes).
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/api/v1/stream", nil)
	req.RemoteAddr = "192.0.2.9:1234"
	rctx, rcancel := context.WithCancel(ctx)
	rcancel()
	rec := httptest.NewRecorder()
	e.a.ServeHTTP(rec, req.WithContext(rctx))
	if rec.Code != 200 {
		t.Errorf("another address while 127.0.0.1 holds 16 streams: %d %s", rec.Code, rec.Body)
	}

	// Closing one frees its slot (once the handler has seen it go).
	closers[0]()
	closers = closers[1:]
	for deadline := time.Now().Add(10 * time.Second); ; {
		res, closeIt := open()
		code := res.StatusCode
		if code == 200 {
			closers = append(closers, closeIt)
			break
		}
		closeIt()
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream's slot was not freed: %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
