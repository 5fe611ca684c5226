package history

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/procscope/procscope/aggregator/internal/httpapi"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// fuzzNow is the clock of the fuzz targets, so that a failure replays.
var fuzzNow = time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)

var historyQuerySeeds = []string{
	"",
	"metric=filesystem&from=1764090000&to=1764093600&step=30s&agg=max",
	"from=2026-11-25T16:00:00Z&to=2026-11-25T17:00:00.5%2B01:00",
	"from=0&to=34560000&step=1",
	"from=-1e11&to=1e11",
	"from=1e300",
	"step=1e-300",
	"step=-5s",
	"step=9999999h",
	"step=NaN&agg=avg",
	"to=2026-11-25T17:00:00Z&from=2025-10-21T17:00:00Z&step=1ms",
	"from=9999-12-31T23:59:59Z&to=9999-12-31T23:59:59.999999999Z",
	"from=0000-01-01T00:00:00Z",
	"metric=cpu%00&agg=median",
	"against=2&limit=10000",
	"against=9223372036854775808&limit=-1",
	"create_time=2026-11-25T00:00:00Z&step=0.001",
}

// checkSeriesParams asserts what parseSeriesParams promises: errors are
// 400s, and a parsed range is ordered, at most maxRange long, with a step
// that keeps a series to maxPoints+1 points.
func checkSeriesParams(t *testing.T, q url.Values) {
	p, err := parseSeriesParams(q, fuzzNow)
	if err != nil {
		var ae *httpapi.Error
		if !errors.As(err, &ae) || ae.Status() != http.StatusBadRequest || ae.Msg == "" {
			t.Fatalf("%v: error %v is not a 400 with a message", q, err)
		}
		return
	}
	if p.to.Before(p.from) || p.to.Sub(p.from) > maxRange {
		t.Fatalf("%v: range %v..%v", q, p.from, p.to)
	}
	span := p.to.UnixMilli() - p.from.UnixMilli()
	if p.step < 0 || p.step > maxRange.Milliseconds() || (p.step > 0 && span/p.step+1 > maxPoints+1) {
		t.Fatalf("%v: step %d over %d ms", q, p.step, span)
	}
	if p.agg != AggAvg && p.agg != AggMax {
		t.Fatalf("%v: agg %d", q, p.agg)
	}
	if autoStep(p.from, p.to) < 1 || span/autoStep(p.from, p.to)+1 > maxPoints+1 {
		t.Fatalf("%v: auto step %d over %d ms", q, autoStep(p.from, p.to), span)
	}
}

func isBadRequest(err error) bool {
	var ae *httpapi.Error
	return err == nil || (errors.As(err, &ae) && ae.Status() == http.StatusBadRequest && ae.Msg != "")
}

// FuzzSeriesParams: the query parameters of the history routes (from, to,
// step, agg, metric, pid, against, limit) never panic, fail only with a
// 400, and parse to bounded ranges.
// go test -run '^$' -fuzz FuzzSeriesParams ./aggregator/internal/history
func FuzzSeriesParams(f *testing.F) {
	for _, s := range historyQuerySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw) // what is left of a bad query is parsed too
		checkSeriesParams(t, q)
		if _, _, err := parseMetric(q); !isBadRequest(err) {
			t.Fatalf("metric %q: %v", q.Get("metric"), err)
		}
		if _, err := parsePID(q.Get("against")); !isBadRequest(err) {
			t.Fatalf("pid %q: %v", q.Get("against"), err)
		}
		if id, err := parseID("against", q.Get("against")); !isBadRequest(err) || (err == nil && id < 1) {
			t.Fatalf("against %q: %d, %v", q.Get("against"), id, err)
		}
		if n, err := parseDiffLimit(q.Get("limit")); !isBadRequest(err) || (err == nil && (n < 1 || n > maxDiffLimit)) {
			t.Fatalf("limit %q: %d, %v", q.Get("limit"), n, err)
		}
	})
}

// FuzzHistoryRoutes sends fuzzed queries and path parameters through the
// real routes over real storage (a host with an hour of 2 s samples and
// a process): every answer is 200, 400 or 404 with a JSON body, errors
// carry a message, and no series has more than maxPoints+1 points.
// go test -run '^$' -fuzz FuzzHistoryRoutes ./aggregator/internal/history
func FuzzHistoryRoutes(f *testing.F) {
	h := openTest(f, f.TempDir(), Options{TopK: 2})
	st := newTestStore(f)
	start := fuzzNow.Add(-time.Hour)
	for at := start; at.Before(fuzzNow); at = at.Add(2 * time.Second) {
		procs := []snapshot.Process{{PID: 7, Name: "db", CPUPercent: float64(at.Second()), MemoryMB: 100, CreateTime: "2026-11-25T00:00:00Z"}}
		h.Add(testRequest("h", at, float64(at.Second()%10), procs))
	}
	id1 := st.add("h", start, []snapshot.Process{{PID: 7, Name: "db", CPUPercent: 1, MemoryMB: 1}, {PID: 8, Name: "old"}})
	st.add("h", fuzzNow, []snapshot.Process{{PID: 7, Name: "db", CPUPercent: 9, MemoryMB: 2}, {PID: 9, Name: "new"}})
	st.add("other", fuzzNow, nil)
	flush(f, h)
	hd := NewHandler(h, st, nil)
	hd.now = func() time.Time { return fuzzNow }
	r := chi.NewRouter()
	r.Route("/api/v1", hd.Mount)

	for _, s := range historyQuerySeeds {
		for route := range uint8(3) {
			f.Add(route, "7", s)
		}
	}
	f.Add(uint8(1), "-1", "")
	f.Add(uint8(2), strconv.FormatInt(id1, 10), "against=2&limit=1")
	f.Add(uint8(2), "99999999999999999999", "against=1")
	f.Fuzz(func(t *testing.T, route uint8, param, raw string) {
		var path string
		switch route % 3 {
		case 0:
			path = "/api/v1/hosts/" + url.PathEscape(param) + "/series"
		case 1:
			path = "/api/v1/hosts/h/processes/" + url.PathEscape(param) + "/series"
		default:
			path = "/api/v1/snapshots/" + url.PathEscape(param) + "/diff"
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL = &url.URL{Path: path, RawQuery: raw}
		if u, err := url.PathUnescape(path); err == nil {
			req.URL.Path, req.URL.RawPath = u, path
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		body := w.Body.Bytes()
		switch w.Code {
		case 200, 400, 404:
		default:
			t.Fatalf("GET %s?%s: status %d: %s", path, raw, w.Code, body)
		}
		if w.Code == 404 && w.Header().Get("Content-Type") == "text/plain; charset=utf-8" {
			return // no route matched (chi's own 404, before any handler)
		}
		var v map[string]json.RawMessage
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("GET %s?%s: status %d, body %q is not a JSON object", path, raw, w.Code, body)
		}
		if w.Code != 200 {
			var msg string
			if json.Unmarshal(v["error"], &msg) != nil || msg == "" {
				t.Fatalf("GET %s?%s: status %d without an error message: %s", path, raw, w.Code, body)
			}
			return
		}
		for _, key := range []string{"series", "cpu", "memory"} {
			var series []SeriesJSON
			if v[key] == nil {
				continue
			}
			if err := json.Unmarshal(v[key], &series); err != nil {
				t.Fatal(err)
			}
			for _, s := range series {
				if len(s.Values) > maxPoints+1 {
					t.Fatalf("GET %s?%s: a series of %d points", path, raw, len(s.Values))
				}
			}
		}
	})
}
