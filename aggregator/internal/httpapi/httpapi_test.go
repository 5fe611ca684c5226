package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAdapter: what the adapter sends for each kind of answer a Func
// gives, status, body and headers, and what it logs.
func TestAdapter(t *testing.T) {
	t.Parallel()
	f := func(v any, err error, noStore bool, wantStatus int, wantBody string, wantHeaders map[string]string, wantLog string) {
		t.Helper()
		var logs bytes.Buffer
		ad := Adapter{Log: slog.New(slog.NewTextHandler(&logs, nil)), NoStore: noStore}
		rec := httptest.NewRecorder()
		ad.Handle(func(*http.Request) (any, error) { return v, err }).
			ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/x", nil))
		if rec.Code != wantStatus || rec.Body.String() != wantBody {
			t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Body, wantStatus, wantBody)
		}
		for k, want := range wantHeaders {
			if got := rec.Header().Get(k); got != want {
				t.Errorf("%d %q: header %s %q, want %q", wantStatus, wantBody, k, got, want)
			}
		}
		if (wantLog == "") != (logs.Len() == 0) || !strings.Contains(logs.String(), wantLog) {
			t.Errorf("%d %q: logged %q, want %q", wantStatus, wantBody, logs.String(), wantLog)
		}
	}
	ok := map[string]string{
		"Content-Type":           "application/json; charset=utf-8",
		"X-Content-Type-Options": "nosniff",
		"Cache-Control":          "",
	}
	refused := func(retryAfter string) map[string]string {
		return map[string]string{
			"Content-Type":           "application/json; charset=utf-8",
			"X-Content-Type-Options": "nosniff",
			"Cache-Control":          "no-store",
			"Content-Length":         "",
			"Retry-After":            retryAfter,
		}
	}

	// Values: 200 with their JSON and its length.
	f([]int{1, 2}, nil, false, 200, "[1,2]\n", merge(ok, map[string]string{"Content-Length": "6"}), "")
	f(map[string]string{"name": "<b>&"}, nil, false, 200, `{"name":"\u003cb\u003e\u0026"}`+"\n", ok, "")
	f(nil, nil, false, 200, "null\n", ok, "")
	f([]int{}, nil, true, 200, "[]\n", merge(ok, map[string]string{"Cache-Control": "no-store"}), "")
	f(math.NaN(), nil, false, 500, `{"error":"internal error: cannot encode the response"}`+"\n", refused(""), "cannot encode")

	// Each kind of error: its status, its message, never cached.
	for kind, status := range map[Kind]int{
		KindBadRequest: 400, KindUnauthorized: 401, KindForbidden: 403, KindNotFound: 404,
		KindMethodNotAllowed: 405, KindTimeout: 408, KindTooLarge: 413, KindUnsupportedMedia: 415,
		KindTooMany: 429, KindUnavailable: 503,
	} {
		f(nil, New(kind, "what to do"), false, status, `{"error":"what to do"}`+"\n", refused(""), "")
	}
	f(nil, BadRequest("invalid step %q", "<x>\n"), false, 400, `{"error":"invalid step \"\u003cx\u003e\\n\""}`+"\n", refused(""), "")
	f(nil, NotFound("unknown snapshot %d", 7), true, 404, `{"error":"unknown snapshot 7"}`+"\n", refused(""), "")
	f(nil, &Error{Kind: KindTooMany, Msg: "retry", RetryAfter: 1500 * time.Millisecond}, false, 429, `{"error":"retry"}`+"\n", refused("2"), "")
	f(nil, &Error{Kind: KindUnavailable, Msg: "opening", RetryAfter: time.Second}, false, 503, `{"error":"opening"}`+"\n", refused("1"), "")
	f(nil, fmt.Errorf("reading: %w", NotFound("gone")), false, 404, `{"error":"gone"}`+"\n", refused(""), "")
	f(nil, Errorf(Kind(200), "a kind without a status"), false, 500, `{"error":"a kind without a status"}`+"\n", refused(""), "")

	// Internal errors: the cause is logged, never sent.
	f(nil, errors.New("disk I/O error at /var/lib/x.db"), false, 500, `{"error":"internal error"}`+"\n", refused(""), "disk I/O error at /var/lib/x.db")
	f(nil, Internal("internal error: storage failed", errors.New("SQL logic error")), false, 500, `{"error":"internal error: storage failed"}`+"\n", refused(""), "SQL logic error")
	f(nil, &Error{Msg: "the zero kind"}, false, 500, `{"error":"the zero kind"}`+"\n", refused(""), "the zero kind")

	// Cancelled or timed out: 503, nothing logged (the client is gone).
	f(nil, context.Canceled, false, 503, `{"error":"request cancelled or timed out"}`+"\n", refused(""), "")
	f(nil, fmt.Errorf("query: %w", context.DeadlineExceeded), false, 503, `{"error":"request cancelled or timed out"}`+"\n", refused(""), "")
}

func merge(a, b map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

// TestWriteErrorKeepsHandlerHeaders: headers set for the refusal (Allow,
// WWW-Authenticate) stay; a length or encoding set for another answer goes.
func TestWriteErrorKeepsHandlerHeaders(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	rec.Header().Set("Allow", "GET, HEAD")
	rec.Header().Set("Content-Length", "999")
	rec.Header().Set("Content-Encoding", "gzip")
	WriteError(rec, New(KindMethodNotAllowed, "method POST is not allowed here"))
	h := rec.Header()
	if rec.Code != 405 || h.Get("Allow") != "GET, HEAD" || h.Get("Content-Length") != "" || h.Get("Content-Encoding") != "" {
		t.Fatalf("%d %v", rec.Code, h)
	}
}

// items is a Streamer of n small JSON numbers.
type items int

func (n items) AppendJSON(s *Stream, b []byte) []byte {
	b = append(b, '[')
	for i := range int(n) {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, "%d", i)
		var ok bool
		if b, ok = s.Flush(b); !ok {
			break
		}
	}
	return append(b, ']')
}

// TestStream: a Streamer's answer that fits one piece goes out with its
// Content-Length; a bigger one in pieces without; both whole.
func TestStream(t *testing.T) {
	t.Parallel()
	f := func(n int, wantLength bool) {
		t.Helper()
		srv := httptest.NewServer(Adapter{NoStore: true}.Handle(func(*http.Request) (any, error) { return items(n), nil }))
		defer srv.Close()
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var body bytes.Buffer
		if _, err := body.ReadFrom(resp.Body); err != nil {
			t.Fatal(err)
		}
		want := []byte{'['}
		for i := range n {
			if i > 0 {
				want = append(want, ',')
			}
			want = fmt.Appendf(want, "%d", i)
		}
		want = append(want, "]\n"...)
		if resp.StatusCode != 200 || !bytes.Equal(body.Bytes(), want) {
			t.Fatalf("%d items: %d, %d bytes, want %d", n, resp.StatusCode, body.Len(), len(want))
		}
		if got := resp.ContentLength >= 0; got != wantLength {
			t.Errorf("%d items: Content-Length %d", n, resp.ContentLength)
		}
		if resp.Header.Get("Content-Type") != "application/json; charset=utf-8" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%d items: headers %v", n, resp.Header)
		}
	}
	f(0, true)
	f(100, true)
	f(100_000, false) // ~590 KB
}

// TestRoute: named routes report each answer to the Observer above them;
// without one, or without a name, nothing is reported.
func TestRoute(t *testing.T) {
	t.Parallel()
	type seen struct {
		route  string
		status int
	}
	var got []seen
	obs := Observer(func(route string, status int, took time.Duration) {
		if took < 0 {
			t.Errorf("%s took %s", route, took)
		}
		got = append(got, seen{route, status})
	})
	teapot := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	silent := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, h := range []http.Handler{
		Observe(obs)(Route("tea")(teapot)),
		Observe(obs)(Route("silent")(silent)),
		Observe(obs)(Route("refused")(Adapter{}.Handle(func(*http.Request) (any, error) { return nil, NotFound("no") }))),
		Observe(obs)(teapot),
		Route("tea")(teapot),
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}
	want := []seen{{"tea", 418}, {"silent", 200}, {"refused", 404}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("observed %v, want %v", got, want)
	}
}
