package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// TestPathHostname: what a {hostname} path segment decodes to, and the
// 400 a bad escape or a hostname ingest would refuse gets.
func TestPathHostname(t *testing.T) {
	t.Parallel()
	f := func(target, want, wantErr string) {
		t.Helper()
		var got string
		var err error
		r := chi.NewRouter()
		r.Get("/hosts/{hostname}/x", func(_ http.ResponseWriter, req *http.Request) { got, err = PathHostname(req) })
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		// Set by hand: a server's request can carry a raw path url.Parse
		// would refuse, and chi routes on it.
		req.URL.Path = target
		if strings.Contains(target, "%") {
			req.URL.RawPath = target
			if u, err := url.PathUnescape(target); err == nil {
				req.URL.Path = u
			}
		}
		r.ServeHTTP(httptest.NewRecorder(), req)
		if wantErr == "" {
			if err != nil || got != want {
				t.Errorf("%s: %q, %v; want %q", target, got, err, want)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindBadRequest || e.Msg != wantErr {
			t.Errorf("%s: %q, %v; want a 400 %q", target, got, err, wantErr)
		}
	}
	f("/hosts/web-1/x", "web-1", "")
	f("/hosts/a%2Fb%25c/x", "a/b%c", "")
	f("/hosts/a%20b/x", "a b", "")
	f("/hosts/a%2Fb%zz/x", "", "invalid hostname in path")
	f("/hosts/a%01b/x", "", "invalid hostname: hostname contains the control character U+0001")
	f("/hosts/a%2F%ff/x", "", "invalid hostname: hostname must be valid UTF-8")
}
