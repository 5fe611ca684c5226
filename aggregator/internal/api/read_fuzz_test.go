package api

import (
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// FuzzTimeTravelRoutes sends fuzzed query strings and path parameters to
// the time-travel reads (the snapshot at a moment, a host's snapshots in a
// range, one snapshot, its processes) over the real store: every answer
// is 200, 400 or 404, a JSON body, errors with a message.
// go test -run '^$' -fuzz FuzzTimeTravelRoutes ./aggregator/internal/api
func FuzzTimeTravelRoutes(f *testing.F) {
	st, err := store.OpenSQLite(f.Context(), f.TempDir(), store.Options{PruneInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	a, err := New(Options{Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	a.SetStore(st)
	f.Cleanup(func() {
		a.Close()
		_ = st.Close()
	})
	for i := range 3 {
		_, err := st.Ingest(f.Context(), &store.IngestRequest{
			Hostname: "h", KeyHash: sha256.Sum256([]byte("k")), CapturedAt: now.Add(time.Duration(i-3) * time.Minute),
			SystemInfo: json.RawMessage(`{}`), Processes: []snapshot.Process{{PID: 1, Name: "init"}}, ReceivedAt: now,
		})
		if err != nil {
			f.Fatal(err)
		}
	}
	for _, s := range []string{
		"hostname=h", "hostname=h&time=2026-11-25T16:58:30Z", "hostname=h&time=1795626000.5",
		"hostname=h&time=-1", "hostname=h&time=253402300800", "hostname=h&time=1e300", "hostname=h&time=NaN",
		"from=0&to=2026-11-25T17:00:00Z&limit=10000", "from=9999-12-31T23:59:59Z", "limit=0", "limit=99999999999999999999",
		"hostname=%00", "time=0000-01-01T00:00:00Z&hostname=h",
	} {
		for route := range uint8(4) {
			f.Add(route, "h", s)
		}
	}
	f.Add(uint8(2), "1", "")
	f.Add(uint8(3), "3", "")
	f.Add(uint8(2), "99999999999999999999999999999999999999999", "")
	f.Fuzz(func(t *testing.T, route uint8, param, raw string) {
		var path string
		switch route % 4 {
		case 0:
			path = "/api/v1/snapshots/at"
		case 1:
			path = "/api/v1/hosts/" + url.PathEscape(param) + "/snapshots"
		case 2:
			path = "/api/v1/snapshots/" + url.PathEscape(param)
		default:
			path = "/api/v1/snapshots/" + url.PathEscape(param) + "/processes"
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Host = "127.0.0.1"
		req.URL = &url.URL{Path: path, RawQuery: raw}
		if u, err := url.PathUnescape(path); err == nil {
			req.URL.Path, req.URL.RawPath = u, path
		}
		w := httptest.NewRecorder()
		a.ServeHTTP(w, req)
		body := w.Body.Bytes()
		switch w.Code {
		case 200, 400, 404:
		default:
			t.Fatalf("GET %s?%s: status %d: %s", path, raw, w.Code, body)
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("GET %s?%s: status %d, body %q is not JSON", path, raw, w.Code, body)
		}
		if w.Code != 200 {
			var e struct{ Error string }
			if json.Unmarshal(body, &e) != nil || e.Error == "" {
				t.Fatalf("GET %s?%s: status %d without an error message: %s", path, raw, w.Code, body)
			}
		}
	})
}
