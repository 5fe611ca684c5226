package api

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/procscope/procscope/aggregator/internal/history"
)

// TestRouteMetrics: every named route is counted by status, the history
// routes mounted from outside the package included; requests no route
// answered (unknown paths, wrong methods) are not.
func TestRouteMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	e := newEnv(t, func(o *Options) {
		o.Registerer, o.Gatherer = reg, reg
		o.Store = new(LazyStore)
		o.Mount = history.NewHandler(nil, o.Store, slog.New(slog.DiscardHandler)).Mount
	})
	mustStatus(t, e.ingest("k", snap("web-1", "2026-11-25T17:00:00Z", proc1)), 201)
	mustStatus(t, e.ingest("", nil), 401)
	for path, code := range map[string]int{
		"/api/v1/hosts":                             200,
		"/api/v1/snapshots/latest":                  400,
		"/api/v1/snapshots/1/processes":             200,
		"/api/v1/snapshots/9/processes":             404,
		"/api/v1/hosts/web-1/series":                404, // history is off
		"/api/v1/snapshots/1/diff?against=1":        200,
		"/api/v1/snapshots/1/diff":                  400,
		"/api/v1/hosts/web-1/processes/x/series":    400,
		"/api/v1/nope":                              404,
		"/api/v1/stream?hostname=%00":               400,
		"/api/v1/hosts/web-1/snapshots?limit=99999": 400,
	} {
		mustStatus(t, e.get(path), code)
	}
	mustStatus(t, e.do(http.MethodPost, "/api/v1/hosts", nil, nil), 405)
	want := `
# HELP procscope_aggregator_http_requests_total HTTP API requests by handler and status code.
# TYPE procscope_aggregator_http_requests_total counter
procscope_aggregator_http_requests_total{code="200",handler="diff"} 1
procscope_aggregator_http_requests_total{code="200",handler="hosts"} 1
procscope_aggregator_http_requests_total{code="200",handler="processes"} 1
procscope_aggregator_http_requests_total{code="201",handler="ingest"} 1
procscope_aggregator_http_requests_total{code="400",handler="diff"} 1
procscope_aggregator_http_requests_total{code="400",handler="host_snapshots"} 1
procscope_aggregator_http_requests_total{code="400",handler="latest"} 1
procscope_aggregator_http_requests_total{code="400",handler="process_series"} 1
procscope_aggregator_http_requests_total{code="400",handler="stream"} 1
procscope_aggregator_http_requests_total{code="401",handler="ingest"} 1
procscope_aggregator_http_requests_total{code="404",handler="host_series"} 1
procscope_aggregator_http_requests_total{code="404",handler="processes"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "procscope_aggregator_http_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(e.a.metrics.httpDuration); n != 9 {
		t.Errorf("durations of %d routes, want the 9 answered", n)
	}
}
