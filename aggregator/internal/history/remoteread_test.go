package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/internal/testutil"
)

// The same samples written to the embedded storage and, by remote write,
// to a real TSDB must give byte-identical answers from every series route.
func TestRemoteReaderSameAnswersVictoriaMetrics(t *testing.T) {
	testSameAnswers(t, testutil.StartVictoriaMetrics(t), 0)
}

// Prometheus sums with Kahan compensation (sum_over_time) where the
// embedded storage and VictoriaMetrics add plainly, so an average may
// differ in its last bits: 30 samples of 0.1 average 0.1 there and
// 0.10000000000000005 here. Everything else is identical.
func TestRemoteReaderSameAnswersPrometheus(t *testing.T) {
	testSameAnswers(t, testutil.StartPrometheus(t), 1e-12)
}

// hostileHost has every character PromQL quoting must get right.
const hostileHost = "web\"1\\{x}=~'ü/"

// testSameAnswers compares the answers byte for byte, or with tolerance
// (> 0) as JSON whose numbers may differ by that much relatively.
func testSameAnswers(t *testing.T, db *testutil.TSDB, tolerance float64) {
	h := openTest(t, t.TempDir(), Options{TopK: 3, RemoteWriteURL: db.RemoteWriteURL, Logger: testLogger(t)})
	// 1500 snapshots 1.5 s apart (every other one on a whole second, the
	// others 500 ms off, a few with odd milliseconds): bucket edges are
	// hit exactly, and the whole range holds more raw points than one
	// answer may carry, so the default answer is folded.
	start := time.Now().Add(-50 * time.Minute).Truncate(time.Minute)
	const n = 1500
	at := func(i int) time.Time {
		d := time.Duration(i) * 1500 * time.Millisecond
		if i%10 == 3 {
			d += 7 * time.Millisecond
		}
		return start.Add(d)
	}
	for i := range n {
		// PID 42 is reused half way by another process.
		ct, name := "2026-11-25T00:00:00Z", "postgres"
		if i >= n/2 {
			ct, name = "2026-11-25T01:00:00Z", `evil"name\`
		}
		procs := []snapshot.Process{
			{PID: 42, Name: name, CPUPercent: float64(i%17) * 1.1, MemoryMB: float64(100 + i%5), CreateTime: ct},
			{PID: 7, Name: "init", CPUPercent: 0.1, MemoryMB: 10, CreateTime: "2026-11-24T00:00:00Z"},
		}
		h.Add(testRequest("web-1", at(i), float64((i*37)%100)/10+0.05, procs))
		h.Add(testRequest(hostileHost, at(i), float64(i%3), nil))
	}
	flush(t, h)
	want := h.Stats().RowsWritten
	deadline := time.Now().Add(60 * time.Second)
	for h.Stats().Remote.Sent < want {
		if time.Now().After(deadline) {
			t.Fatalf("remote write sent %+v of %d samples", h.Stats().Remote, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rr, err := NewRemoteReader(RemoteOptions{URL: db.URL, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	// Searchable: every sample counted by the TSDB itself.
	for {
		got, err := countSamples(rr)
		if err == nil && got == float64(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the TSDB holds %v samples (err %v), want %d\n%s", got, err, want, db.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}

	embedded := seriesServer(t, NewHandler(h, nil, nil))
	rh := NewHandler(nil, nil, nil)
	rh.SetReader(rr)
	remote := seriesServer(t, rh)

	ts := func(d time.Duration) string { return url.QueryEscape(start.Add(d).UTC().Format(time.RFC3339Nano)) }
	all := "&from=" + ts(-time.Minute) + "&to=" + ts(40*time.Minute)
	web := "/api/v1/hosts/web-1"
	hostile := "/api/v1/hosts/" + url.PathEscape(hostileHost)
	paths := []string{
		web + "/series?metric=cpu" + all, // folded: more than maxPoints raw
		web + "/series?metric=cpu&from=" + ts(10500*time.Millisecond) + "&to=" + ts(100250*time.Millisecond), // raw
		web + "/series?metric=cpu&step=1s&from=" + ts(1250*time.Millisecond) + "&to=" + ts(5*time.Minute+1),
		web + "/series?metric=cpu&step=3s&from=" + ts(0) + "&to=" + ts(3*time.Minute),
		web + "/series?metric=cpu&step=60&agg=max" + all,
		web + "/series?metric=cpu&step=7s&from=" + ts(4503*time.Millisecond) + "&to=" + ts(4503*time.Millisecond), // one instant
		web + "/series?metric=cpu&step=0.001&from=" + ts(4500*time.Millisecond) + "&to=" + ts(4900*time.Millisecond),
		web + "/series?metric=cpu&from=" + ts(4503*time.Millisecond) + "&to=" + ts(4503*time.Millisecond),
		web + "/series?metric=memory&step=7s" + all,
		web + "/series?metric=available&step=1m" + all,
		web + "/series?metric=swap&step=1h" + all,
		web + "/series?metric=load1&from=" + ts(0) + "&to=" + ts(time.Minute),
		web + "/series?metric=load15&step=5m&agg=max" + all,
		web + "/series?metric=processes&step=30s" + all,
		web + "/series?metric=filesystem&step=10m" + all,
		web + "/series?metric=filesystem&from=" + ts(time.Minute) + "&to=" + ts(2*time.Minute),
		web + "/series?metric=cpu&from=" + ts(-3*time.Hour) + "&to=" + ts(-2*time.Hour), // no data
		web + "/processes/42/series?agg=avg" + all,
		web + "/processes/42/series?step=2m&agg=max" + all,
		web + "/processes/42/series?create_time=2026-11-25T01:00:00Z&from=" + ts(18*time.Minute) + "&to=" + ts(20*time.Minute),
		web + "/processes/42/series?create_time=" + url.QueryEscape(`x"}or vector(1)`) + all,
		web + "/processes/7/series?step=45s" + all,
		hostile + "/series?metric=cpu&step=10s" + all,
		hostile + "/series?metric=cpu&from=" + ts(0) + "&to=" + ts(30*time.Second),
	}
	for _, p := range paths {
		wantStatus, wantBody := get(t, embedded+p)
		gotStatus, gotBody := get(t, remote+p)
		if wantStatus != http.StatusOK {
			t.Errorf("GET %s: embedded answered %d: %s", p, wantStatus, wantBody)
			continue
		}
		if gotStatus != wantStatus || (gotBody != wantBody && (tolerance == 0 || !sameJSON(t, gotBody, wantBody, tolerance))) {
			t.Errorf("GET %s:\nembedded %d %s\nremote   %d %s", p, wantStatus, clip(wantBody), gotStatus, clip(gotBody))
		}
	}
	// The answers are not trivially equal: the folded one has data.
	if _, b := get(t, remote+paths[0]); !strings.Contains(b, `"values":[[`) {
		t.Errorf("no points in %s", b)
	}
}

func clip(s string) string {
	if len(s) > 3000 {
		return s[:3000] + "..."
	}
	return s
}

func seriesServer(t *testing.T, hd *Handler) string {
	t.Helper()
	r := chi.NewRouter()
	r.Route("/api/v1", hd.Mount)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPromQuoteAndSelector(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := promQuote(in); got != want {
			t.Errorf("promQuote(%q) = %s, want %s", in, got, want)
		}
	}
	f("web-1", `"web-1"`)
	f(`a"b\c`, `"a\"b\\c"`)
	f("a\nb\x7f", `"a\x0ab\x7f"`)
	f("ü{}", `"ü{}"`)
	if got := selector("m", map[string]string{"pid": "1", "hostname": "h"}); got != `m{hostname="h",pid="1"}` {
		t.Errorf("selector %s", got)
	}
}

func TestPromTime(t *testing.T) {
	f := func(ms int64, want string) {
		t.Helper()
		if got := promTime(ms); got != want {
			t.Errorf("promTime(%d) = %s, want %s", ms, got, want)
		}
	}
	f(1_700_000_000_123, "1700000000.123")
	f(5, "0.005")
	f(-1500, "-1.500")
}

func TestNewRemoteReaderRefuses(t *testing.T) {
	f := func(o RemoteOptions, want string) {
		t.Helper()
		_, err := NewRemoteReader(o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", o.URL, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the password: %v", err)
		}
	}
	f(RemoteOptions{URL: "ftp://x"}, "http")
	f(RemoteOptions{URL: "http://u:s3cret@x"}, "basic-auth-file")
	f(RemoteOptions{URL: "http://x/?a=1"}, "no query")
	f(RemoteOptions{URL: "http://x", BasicAuthUser: "u", BearerToken: "t"}, "keep one")
}

// TestRemoteReaderBounds: an answer over the byte limit, or with more
// series than allowed, is refused; an error answer, auth and an
// unreachable TSDB are ErrRemote, and the credentials go in the request.
func TestRemoteReaderBounds(t *testing.T) {
	var gotAuth string
	mode := "ok"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		_ = r.ParseForm()
		if strings.Contains(r.Form.Get("query"), "vector(1)") {
			_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1000000,"2"]}]}}`)
			return
		}
		switch mode {
		case "big":
			_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"matrix","result":[`+strings.Repeat(" ", 2000)+`]}}`)
		case "many":
			var parts []string
			for i := range 5 {
				parts = append(parts, fmt.Sprintf(`{"metric":{"pid":"%d"},"values":[[1,"1"]]}`, i))
			}
			_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"matrix","result":[`+strings.Join(parts, ",")+`]}}`)
		case "error":
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = io.WriteString(w, `{"status":"error","errorType":"bad_data","error":"too many samples"}`)
		}
	}))
	defer srv.Close()
	rr, err := NewRemoteReader(RemoteOptions{URL: srv.URL + "/", BearerToken: "tok3n", MaxResponseBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	q := func() error {
		_, _, err := rr.QueryWith(context.Background(), MetricCPU, map[string]string{LabelHostname: "h"},
			time.Unix(0, 0), time.Unix(10, 0), QueryOptions{MaxSeries: 3})
		return err
	}
	mode = "big"
	if err := q(); !errorsIs(err, ErrTooManyPoints) {
		t.Errorf("big answer: %v", err)
	}
	if gotAuth != "Bearer tok3n" {
		t.Errorf("Authorization %q", gotAuth)
	}
	mode = "many"
	if err := q(); !errorsIs(err, ErrTooManySeries) {
		t.Errorf("many series: %v", err)
	}
	mode = "error"
	if err := q(); !errorsIs(err, ErrRemote) || !strings.Contains(err.Error(), "too many samples") || strings.Contains(err.Error(), "tok3n") {
		t.Errorf("error answer: %v", err)
	}
	srv.Close()
	if err := q(); !errorsIs(err, ErrRemote) {
		t.Errorf("unreachable: %v", err)
	}
	// Through the route: a 503 with one error, no detail of the TSDB.
	hd := NewHandler(nil, nil, nil)
	hd.SetReader(rr)
	status, body := get(t, seriesServer(t, hd)+"/api/v1/hosts/h/series?from=0&to=10")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, `"error":"history is read from an external TSDB`) {
		t.Errorf("route: %d %s", status, body)
	}
	// Counted on the aggregator's /metrics: one probe answered, the
	// queries after it failed (too big, too many, an error, unreachable x2).
	reg := prometheus.NewRegistry()
	reg.MustRegister(hd)
	want := `
# HELP procscope_aggregator_history_remote_read_requests_total Requests to the --history.url query API by outcome: ok, or error (unreachable, an error answer, over a limit).
# TYPE procscope_aggregator_history_remote_read_requests_total counter
procscope_aggregator_history_remote_read_requests_total{result="error"} 5
procscope_aggregator_history_remote_read_requests_total{result="ok"} 1
`
	if err := promtestutil.GatherAndCompare(reg, strings.NewReader(want), "procscope_aggregator_history_remote_read_requests_total"); err != nil {
		t.Error(err)
	}
}

func errorsIs(err, target error) bool { return err != nil && errors.Is(err, target) }

// countSamples is how many samples of the history's series the TSDB holds
// from the last two hours.
func countSamples(rr *RemoteReader) (float64, error) {
	total := 0.0
	for _, m := range []string{MetricCPU, MetricMemoryUsed, MetricMemoryAvail, MetricSwapUsed, MetricLoad1, MetricLoad5,
		MetricLoad15, MetricProcesses, MetricFilesystemUsed, MetricProcessCPU, MetricProcessRSS} {
		ss, err := rr.instant(context.Background(), "sum(count_over_time("+m+"[2h]))", time.Now().UnixMilli(), QueryOptions{MaxSeries: 1})
		if err != nil {
			return 0, err
		}
		if len(ss) == 1 {
			total += ss[0].Points[0].V
		}
	}
	return total, nil
}

// sameJSON compares two JSON documents, numbers within a relative
// tolerance.
func sameJSON(t *testing.T, a, b string, tolerance float64) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	var eq func(x, y any) bool
	eq = func(x, y any) bool {
		switch xv := x.(type) {
		case float64:
			yv, ok := y.(float64)
			return ok && (xv == yv || math.Abs(xv-yv) <= tolerance*math.Max(math.Abs(xv), math.Abs(yv)))
		case []any:
			yv, ok := y.([]any)
			if !ok || len(xv) != len(yv) {
				return false
			}
			for i := range xv {
				if !eq(xv[i], yv[i]) {
					return false
				}
			}
			return true
		case map[string]any:
			yv, ok := y.(map[string]any)
			if !ok || len(xv) != len(yv) {
				return false
			}
			for k := range xv {
				if !eq(xv[k], yv[k]) {
					return false
				}
			}
			return true
		default:
			return x == y
		}
	}
	return eq(x, y)
}
