package history

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// testStore is the real SQLite snapshot store in a temp dir, with a helper
// that ingests a snapshot and returns its id.
type testStore struct {
	*store.SQLite
	t testing.TB
}

func newTestStore(t testing.TB) *testStore {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), t.TempDir(), store.Options{Logger: slog.New(slog.DiscardHandler), PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &testStore{SQLite: st, t: t}
}

func (s *testStore) add(host string, at time.Time, procs []snapshot.Process) int64 {
	s.t.Helper()
	if procs == nil {
		procs = []snapshot.Process{}
	}
	res, err := s.Ingest(context.Background(), &store.IngestRequest{
		Hostname: host, KeyHash: sha256.Sum256([]byte("key of " + host)),
		CapturedAt: at.UTC().Truncate(time.Millisecond), SystemInfo: json.RawMessage(`{"cpu":{"usage_percent":1}}`),
		Processes: procs, ReceivedAt: time.Now(),
	})
	if err != nil || !res.Created {
		s.t.Fatalf("ingest %s at %s: %+v, %v", host, at, res, err)
	}
	return res.SnapshotID
}

type httpCase struct {
	name       string
	path       string
	wantStatus int
	check      func(t *testing.T, body []byte)
}

func runHTTPCases(t *testing.T, srv *httptest.Server, cases []httpCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := srv.Client().Get(srv.URL + c.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != c.wantStatus {
				t.Fatalf("GET %s: status %d, want %d; body %s", c.path, resp.StatusCode, c.wantStatus, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("content-type %q", ct)
			}
			if c.wantStatus >= 400 {
				var e struct{ Error string }
				if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
					t.Errorf("error body %s is not {\"error\": ...}", body)
				}
			}
			if c.check != nil {
				c.check(t, body)
			}
		})
	}
}

func newTestServer(t *testing.T, h *History, st store.Store) *httptest.Server {
	t.Helper()
	r := chi.NewRouter()
	r.Route("/api/v1", NewHandler(h, st, nil).Mount)
	srv := httptest.NewServer(r) // listens on 127.0.0.1 with a port from the OS
	t.Cleanup(srv.Close)
	return srv
}

func decodeSeries(t *testing.T, body []byte) SeriesResponse {
	t.Helper()
	var r SeriesResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return r
}

func TestHostSeriesRoute(t *testing.T) {
	h := openTest(t, t.TempDir(), Options{TopK: 3})
	st := newTestStore(t)
	// One hour of 2 s samples ending a minute ago: 1800 points, more than
	// maxPoints, so the default answer is downsampled.
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	start := end.Add(-time.Hour)
	n := 0
	for at := start; at.Before(end); at = at.Add(2 * time.Second) {
		procs := []snapshot.Process{{PID: 42, Name: "postgres", CPUPercent: 5, MemoryMB: 100, CreateTime: "2026-11-25T00:00:00Z"}}
		h.Add(testRequest("web/1", at, float64(n%10), procs))
		n++
	}
	h.Add(testRequest("other", end, 77, nil))
	st.add("web/1", end, nil)
	st.add("other", end, nil)
	flush(t, h)
	srv := newTestServer(t, h, st)

	from, to := strconv.FormatInt(start.Unix(), 10), strconv.FormatInt(end.Unix(), 10)
	rng := "&from=" + from + "&to=" + to
	host := "/api/v1/hosts/" + url.PathEscape("web/1")
	runHTTPCases(t, srv, []httpCase{
		{"cpu with a 1s step keeps every 2 s sample", host + "/series?metric=cpu&step=1s&from=" + url.QueryEscape(start.Format(time.RFC3339)) + "&to=" + url.QueryEscape(start.Add(time.Minute).Format(time.RFC3339)), 200, func(t *testing.T, b []byte) {
			r := decodeSeries(t, b)
			if r.Metric != "cpu" || r.Hostname != "web/1" || len(r.Series) != 1 {
				t.Fatalf("response %+v", r)
			}
			vals := r.Series[0].Values
			// [start, start+60s] inclusive holds 31 samples 2 s apart.
			if len(vals) != 31 {
				t.Fatalf("got %d points, want 31", len(vals))
			}
			if vals[0][0] != float64(start.Unix()) || vals[0][1] != 0 || vals[5][1] != 5 {
				t.Errorf("first points %v", vals[:6])
			}
			if r.Series[0].Labels[LabelHostname] != "web/1" {
				t.Errorf("labels %v", r.Series[0].Labels)
			}
		}},
		{"default downsampling caps points", host + "/series?metric=cpu" + rng, 200, func(t *testing.T, b []byte) {
			r := decodeSeries(t, b)
			if len(r.Series) != 1 {
				t.Fatalf("series %d", len(r.Series))
			}
			vals := r.Series[0].Values
			if len(vals) > maxPoints+1 || len(vals) < 100 || r.Step <= 0 || r.Agg != "avg" {
				t.Errorf("%d points, step %v, agg %q: want downsampled to <= %d", len(vals), r.Step, r.Agg, maxPoints)
			}
			for _, v := range vals {
				if v[1] < 0 || v[1] > 9 {
					t.Fatalf("average %v outside the data's 0..9", v[1])
				}
			}
		}},
		{"max per 1m step", host + "/series?metric=cpu&step=60&agg=max" + rng, 200, func(t *testing.T, b []byte) {
			r := decodeSeries(t, b)
			if r.Step != 60 || r.Agg != "max" {
				t.Errorf("step %v agg %q", r.Step, r.Agg)
			}
			vals := r.Series[0].Values
			for i, v := range vals {
				if int64(v[0])%60 != 0 {
					t.Fatalf("bucket time %v not aligned to the step", v[0])
				}
				// The first and last minute are partly outside the data.
				if i > 0 && i < len(vals)-1 && v[1] != 9 {
					t.Fatalf("max over a minute of 0..9 cycles = %v, want 9", v[1])
				}
			}
		}},
		{"filesystem has a series per mountpoint", host + "/series?metric=filesystem&step=10m" + rng, 200, func(t *testing.T, b []byte) {
			r := decodeSeries(t, b)
			mps := map[string]bool{}
			for _, s := range r.Series {
				mps[s.Labels[LabelMountpoint]] = true
			}
			if len(r.Series) != 2 || !mps["/"] || !mps["/home"] {
				t.Errorf("series %+v", r.Series)
			}
		}},
		{"memory", host + "/series?metric=memory&step=10m" + rng, 200, func(t *testing.T, b []byte) {
			r := decodeSeries(t, b)
			if len(r.Series) != 1 || r.Series[0].Values[0][1] != 3<<30 {
				t.Errorf("series %+v", r.Series)
			}
		}},
		{"default metric is cpu, default range the last hour", "/api/v1/hosts/other/series", 200, func(t *testing.T, b []byte) {
			r := decodeSeries(t, b)
			if r.Metric != "cpu" || len(r.Series) != 1 || len(r.Series[0].Values) != 1 || r.Series[0].Values[0][1] != 77 {
				t.Errorf("response %s", b)
			}
		}},
		{"no data in range is an empty list", "/api/v1/hosts/other/series?from=1000&to=2000", 200, func(t *testing.T, b []byte) {
			if r := decodeSeries(t, b); r.Series == nil || len(r.Series) != 0 {
				t.Errorf("response %s: want \"series\": []", b)
			}
		}},
		{"trailing data of another host is not mixed in", "/api/v1/hosts/other/series?metric=load1", 200, func(t *testing.T, b []byte) {
			if r := decodeSeries(t, b); len(r.Series) != 1 || r.Series[0].Labels[LabelHostname] != "other" {
				t.Errorf("response %s", b)
			}
		}},
		{"unknown host", "/api/v1/hosts/nobody/series", 404, nil},
		{"unknown metric", host + "/series?metric=rm%20-rf", 400, nil},
		{"bad from", host + "/series?from=yesterday", 400, nil},
		{"bad to", host + "/series?to=NaN", 400, nil},
		{"from after to", host + "/series?from=2000&to=1000", 400, nil},
		{"range too long", host + "/series?from=0&to=2000000000", 400, nil},
		{"bad step", host + "/series?step=-5s", 400, nil},
		{"bad agg", host + "/series?agg=median", 400, nil},
		{"control char in hostname", "/api/v1/hosts/a%01b/series", 400, func(t *testing.T, b []byte) {
			// The ingest rule's own reason (snapshot.CheckHostname).
			if !strings.Contains(string(b), "invalid hostname: hostname contains the control character U+0001") {
				t.Errorf("response %s", b)
			}
		}},
	})
}

func TestProcessSeriesRoute(t *testing.T) {
	h := openTest(t, t.TempDir(), Options{TopK: 3})
	st := newTestStore(t)
	at := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	for i := range 10 {
		p := snapshot.Process{PID: 42, Name: "postgres", CPUPercent: float64(i), MemoryMB: 1, CreateTime: "2026-11-25T00:00:00Z"}
		if i >= 6 {
			p = snapshot.Process{PID: 42, Name: "sh", CPUPercent: 50, MemoryMB: 2, CreateTime: "2026-11-25T01:00:00Z"}
		}
		h.Add(testRequest("db", at.Add(time.Duration(i)*2*time.Second), 1, []snapshot.Process{p}))
	}
	st.add("db", at, nil)
	flush(t, h)
	srv := newTestServer(t, h, st)
	base := "/api/v1/hosts/db/processes/42/series?from=" + strconv.FormatInt(at.Unix()-1, 10)
	decode := func(t *testing.T, b []byte) ProcessSeriesResponse {
		var r ProcessSeriesResponse
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	runHTTPCases(t, srv, []httpCase{
		{"reused pid is two series", base, 200, func(t *testing.T, b []byte) {
			r := decode(t, b)
			if r.PID != 42 || len(r.CPU) != 2 || len(r.Memory) != 2 {
				t.Fatalf("response %s", b)
			}
			for _, s := range r.CPU {
				want := map[string]int{"postgres": 6, "sh": 4}[s.Labels[LabelProcName]]
				if len(s.Values) != want {
					t.Errorf("%s: %d points, want %d", s.Labels[LabelProcName], len(s.Values), want)
				}
			}
		}},
		{"create_time picks one", base + "&create_time=" + url.QueryEscape("2026-11-25T01:00:00Z"), 200, func(t *testing.T, b []byte) {
			r := decode(t, b)
			if len(r.CPU) != 1 || r.CPU[0].Labels[LabelProcName] != "sh" || r.Memory[0].Values[0][1] != 2<<20 {
				t.Errorf("response %s", b)
			}
		}},
		{"pid never in top-k is empty", "/api/v1/hosts/db/processes/1/series", 200, func(t *testing.T, b []byte) {
			if r := decode(t, b); len(r.CPU) != 0 || r.CPU == nil {
				t.Errorf("response %s", b)
			}
		}},
		{"bad pid", "/api/v1/hosts/db/processes/-1/series", 400, nil},
		{"pid not a number", "/api/v1/hosts/db/processes/1e3/series", 400, nil},
		{"unknown host", "/api/v1/hosts/nope/processes/1/series", 404, nil},
	})
}

func TestDiffRoute(t *testing.T) {
	st := newTestStore(t)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	idOld := st.add("h1", t0, []snapshot.Process{
		{PID: 1, Name: "init", CPUPercent: 0.1, MemoryMB: 10},
		{PID: 2, Name: "old", CPUPercent: 3, MemoryMB: 5},
		{PID: 3, Name: "web", CPUPercent: 10, MemoryMB: 100, CreateTime: "2026-11-25T09:00:00Z"},
		{PID: 4, Name: "app", CPUPercent: 1, MemoryMB: 50},
	})
	idNew := st.add("h1", t0.Add(time.Minute), []snapshot.Process{
		{PID: 1, Name: "init", CPUPercent: 0.1, MemoryMB: 10},
		// PID 3 reused: another start time, so exited + started.
		{PID: 3, Name: "web", CPUPercent: 10, MemoryMB: 100, CreateTime: "2026-11-25T09:59:00Z"},
		{PID: 4, Name: "app", CPUPercent: 80, MemoryMB: 20},
		{PID: 5, Name: "<img src=x onerror=alert(1)>", CPUPercent: 1, MemoryMB: 1},
	})
	idOther := st.add("h2", t0, nil)
	srv := newTestServer(t, nil, st)
	diffPath := func(id, against int64) string {
		return fmt.Sprintf("/api/v1/snapshots/%d/diff?against=%d", id, against)
	}
	check := func(t *testing.T, b []byte) {
		var d Diff
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		if d.From != idOld || d.To != idNew {
			t.Errorf("from %d to %d, want %d to %d (older first)", d.From, d.To, idOld, idNew)
		}
		pids := func(ps []snapshot.Process) (out []int64) {
			for _, p := range ps {
				out = append(out, p.PID)
			}
			return
		}
		if got := pids(d.Started); len(got) != 2 || got[0] != 3 || got[1] != 5 {
			t.Errorf("started %v, want [3 5]", got)
		}
		if got := pids(d.Exited); len(got) != 2 || got[0] != 2 || got[1] != 3 {
			t.Errorf("exited %v, want [2 3]", got)
		}
		if len(d.CPUChanges) != 1 || d.CPUChanges[0].PID != 4 || d.CPUChanges[0].Delta != 79 {
			t.Errorf("cpu changes %+v", d.CPUChanges)
		}
		if len(d.MemoryChanges) != 1 || d.MemoryChanges[0].Delta != -30 {
			t.Errorf("memory changes %+v", d.MemoryChanges)
		}
		// Movers (no RAM in system_info: 100 MiB weighs like 1 % CPU):
		// app 79 + 0.3, exited web 10 + 1 and started web 10 + 1, old 3 + 0.05, the hostile name 1 + 0.01.
		var got []string
		for _, m := range d.Movers {
			got = append(got, fmt.Sprintf("%s %s x%d %+.0f", m.Kind, m.Name, m.Count, m.CPUDelta))
		}
		want := []string{"changed app x1 +79", "exited web x1 -10", "started web x1 +10", "exited old x1 -3", "started <img src=x onerror=alert(1)> x1 +1"}
		if !slices.Equal(got, want) {
			t.Errorf("movers\n got %q\nwant %q", got, want)
		}
		if d.StartedCPU != 11 || d.ExitedMemory != 105 {
			t.Errorf("started cpu %v, exited memory %v", d.StartedCPU, d.ExitedMemory)
		}
	}
	runHTTPCases(t, srv, []httpCase{
		{"newer against older", diffPath(idNew, idOld), 200, check},
		{"older against newer gives the same diff", diffPath(idOld, idNew), 200, check},
		{"same snapshot is empty", diffPath(idOld, idOld), 200, func(t *testing.T, b []byte) {
			if !strings.Contains(string(b), `"started":[]`) || !strings.Contains(string(b), `"cpu_changes":[]`) {
				t.Errorf("body %s: want empty lists, not null", b)
			}
		}},
		{"limit lists the first started and exited, totals count all", diffPath(idNew, idOld) + "&limit=1", 200, func(t *testing.T, b []byte) {
			var d Diff
			if err := json.Unmarshal(b, &d); err != nil {
				t.Fatal(err)
			}
			if len(d.Started) != 1 || d.Started[0].PID != 3 || d.StartedTotal != 2 || len(d.Exited) != 1 || d.Exited[0].PID != 2 || d.ExitedTotal != 2 {
				t.Errorf("diff %+v", d)
			}
		}},
		{"limit zero", diffPath(idNew, idOld) + "&limit=0", 400, nil},
		{"limit above the maximum", diffPath(idNew, idOld) + "&limit=10001", 400, nil},
		{"limit not a number", diffPath(idNew, idOld) + "&limit=all", 400, nil},
		{"other host", diffPath(idOld, idOther), 400, nil},
		{"unknown snapshot", diffPath(idOld, 999), 404, nil},
		{"unknown first snapshot", diffPath(999, idOld), 404, nil},
		{"missing against", fmt.Sprintf("/api/v1/snapshots/%d/diff", idOld), 400, nil},
		{"bad against", fmt.Sprintf("/api/v1/snapshots/%d/diff?against=abc", idOld), 400, nil},
		{"zero id", diffPath(0, idOld), 400, nil},
		{"negative id", diffPath(-3, idOld), 400, nil},
	})
}

func TestSeriesRoutesWithHistoryDisabled(t *testing.T) {
	st := newTestStore(t)
	st.add("h", time.Now(), nil)
	srv := newTestServer(t, nil, st)
	runHTTPCases(t, srv, []httpCase{
		{"host series", "/api/v1/hosts/h/series", 404, nil},
		{"process series", "/api/v1/hosts/h/processes/1/series", 404, nil},
	})
}

func TestDiffTopChanges(t *testing.T) {
	var older, newer []snapshot.Process
	for i := range 50 {
		older = append(older, snapshot.Process{PID: int64(i + 1), Name: "p", CPUPercent: 0, MemoryMB: 100})
		newer = append(newer, snapshot.Process{PID: int64(i + 1), Name: "p", CPUPercent: float64(i), MemoryMB: 100 - float64(i)})
	}
	d := DiffProcesses(1, older, 2, newer, 0)
	if len(d.CPUChanges) != maxChanges || len(d.MemoryChanges) != maxChanges {
		t.Fatalf("%d cpu and %d memory changes, want %d each", len(d.CPUChanges), len(d.MemoryChanges), maxChanges)
	}
	if d.CPUChanges[0].PID != 50 || d.CPUChanges[0].Delta != 49 || d.CPUChanges[maxChanges-1].PID != 31 {
		t.Errorf("cpu changes not the largest first: %+v", d.CPUChanges)
	}
	if d.MemoryChanges[0].Delta != -49 {
		t.Errorf("memory changes ranked by |delta|: first %+v", d.MemoryChanges[0])
	}
	// Without create_time a process is pid+name: a new name is a new process.
	d = DiffProcesses(1, []snapshot.Process{{PID: 9, Name: "a"}}, 2, []snapshot.Process{{PID: 9, Name: "b"}}, 0)
	if len(d.Started) != 1 || len(d.Exited) != 1 {
		t.Errorf("renamed pid: %+v", d)
	}
}

func TestParseTime(t *testing.T) {
	f := func(in string, want time.Time, ok bool) {
		t.Helper()
		got, err := parseTime("t", in)
		if (err == nil) != ok || (ok && !got.Equal(want)) {
			t.Errorf("parseTime(%q) = %v, %v; want %v ok=%v", in, got, err, want, ok)
		}
	}
	f("1764090000", time.Unix(1764090000, 0), true)
	f("1764090000.25", time.Unix(1764090000, 250e6), true)
	f("2026-11-25T17:00:00.123+01:00", time.Date(2026, 11, 25, 16, 0, 0, 123e6, time.UTC), true)
	f("", time.Time{}, false)
	f("now", time.Time{}, false)
	f("Inf", time.Time{}, false)
	f("1e300", time.Time{}, false)
	f("2026-11-25", time.Time{}, false)
}

func TestOnIngestWritesOnlyNewSnapshots(t *testing.T) {
	h := openTest(t, t.TempDir(), Options{})
	hd := NewHandler(nil, newTestStore(t), nil)
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	// Before SetHistory (storage still opening) ingests are not recorded.
	hd.OnIngest(context.Background(), testRequest("h", at.Add(-2*time.Second), 1, nil), store.IngestResult{SnapshotID: 1, Created: true})
	hd.SetHistory(h)
	hd.OnIngest(context.Background(), testRequest("h", at, 5, nil), store.IngestResult{SnapshotID: 2, Created: false})
	hd.OnIngest(context.Background(), testRequest("h", at.Add(2*time.Second), 7, nil), store.IngestResult{SnapshotID: 3, Created: true})
	flush(t, h)
	got, err := h.Query(context.Background(), MetricCPU, map[string]string{LabelHostname: "h"}, at.Add(-time.Minute), at.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Points) != 1 || got[0].Points[0].V != 7 {
		t.Fatalf("got %+v, want only the newly created snapshot's value 7", got)
	}
}

func TestHandlerMetrics(t *testing.T) {
	hd := NewHandler(nil, newTestStore(t), nil)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(hd)
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Fatalf("before history opens: %d metrics, %v", n, err)
	}
	h := openTest(t, t.TempDir(), Options{})
	hd.SetHistory(h)
	hd.OnIngest(context.Background(), testRequest("h", time.Now().Add(-time.Minute), 1, nil), store.IngestResult{SnapshotID: 1, Created: true})
	flush(t, h)
	want := fmt.Sprintf(`
# HELP procscope_aggregator_history_samples_total History samples by outcome: written to storage, dropped (queue full or closing), or lost to a storage error.
# TYPE procscope_aggregator_history_samples_total counter
procscope_aggregator_history_samples_total{result="dropped"} 0
procscope_aggregator_history_samples_total{result="error"} 0
procscope_aggregator_history_samples_total{result="written"} %d
`, h.Stats().RowsWritten)
	if h.Stats().RowsWritten != 10 {
		t.Errorf("rows written %d, want the 10 host series of one snapshot", h.Stats().RowsWritten)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
