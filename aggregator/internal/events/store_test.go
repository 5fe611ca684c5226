package events

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/procscope/procscope/aggregator/internal/httpapi"
	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

func openStore(tb testing.TB) *store.SQLite {
	tb.Helper()
	s, err := store.OpenSQLite(context.Background(), tb.TempDir(), store.Options{PruneInterval: -1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func put(tb testing.TB, s store.Store, tr *Tracker, r *store.IngestRequest) {
	tb.Helper()
	r.SystemInfo = json.RawMessage(`{}`)
	r.ReceivedAt = r.CapturedAt
	res, err := s.Ingest(context.Background(), r)
	if err != nil {
		tb.Fatal(err)
	}
	if tr != nil {
		tr.OnIngest(context.Background(), r, res)
	}
}

// drain stores what OnIngest queued.
func drain(tr *Tracker) {
	for {
		select {
		case b := <-tr.queue:
			tr.store(context.Background(), b)
		default:
			return
		}
	}
}

// TestTrackerRestart: a new Tracker (the aggregator restarted) compares
// a host's next snapshot with the stored one before it, so nothing is
// invented; a late snapshot after the restart invents nothing either; a
// retried ingest (Created false) is not compared twice.
func TestTrackerRestart(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	c := func(d time.Duration) string { return t0.Add(d).Format(snapshot.CapturedAtFormat) }
	a, b := pr(1, 0, "init", "", c(-time.Hour)), pr(7, 1, "cron", "system.slice/cron.service", c(-time.Hour))
	tr := New(s, s, Options{})
	put(t, s, tr, req("h", t0, a, b))
	put(t, s, tr, req("h", t0.Add(2*time.Second), a))
	drain(tr)

	tr2 := New(s, s, Options{}) // restarted
	// A late snapshot (between the two stored ones) first: nothing.
	put(t, s, tr2, req("h", t0.Add(time.Second), a, b, pr(9, 1, "late", "", c(time.Second))))
	put(t, s, tr2, req("h", t0.Add(4*time.Second), a, pr(8, 1, "cron", "system.slice/cron.service", c(3*time.Second))))
	// The same snapshot again (an exporter's retry): not compared twice.
	put(t, s, tr2, req("h", t0.Add(4*time.Second), a, pr(8, 1, "cron", "system.slice/cron.service", c(3*time.Second))))
	drain(tr2)

	evs, err := s.Events(context.Background(), "h", store.EventQuery{From: t0, To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(evs); got != "restarted 8 cron prev=7; exited 7 cron life=1h0m2s" {
		t.Errorf("events %q", got)
	}
}

func TestEventsRoute(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	c := func(d time.Duration) string { return t0.Add(d).Format(snapshot.CapturedAtFormat) }
	tr := New(s, s, Options{})
	evil := pr(66, 1, `<script>alert("x")</script>`, "system.slice/evil\x1b.service", c(time.Second))
	put(t, s, tr, req("web/1", t0, pr(1, 0, "init", "", c(-time.Hour))))
	put(t, s, tr, req("web/1", t0.Add(2*time.Second), pr(1, 0, "init", "", c(-time.Hour)), evil))
	put(t, s, tr, req("web/1", t0.Add(4*time.Second), pr(1, 0, "init", "", c(-time.Hour))))
	drain(tr)

	h := NewHandler(func() store.EventStore { return s }, httpapi.Adapter{})
	h.now = func() time.Time { return t0.Add(time.Minute) }
	r := chi.NewRouter()
	r.Route("/api/v1", h.Mount)
	get := func(q string) (int, string) {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/hosts/"+url.PathEscape("web/1")+"/events"+q, nil))
		return rec.Code, rec.Body.String()
	}
	code, body := get("")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var a Answer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatal(err)
	}
	if len(a.Events) != 2 || a.Events[0].Kind != "exited" || a.Events[1].Kind != "started" || a.Truncated {
		t.Fatalf("answer %+v", a)
	}
	ex := a.Events[0]
	if ex.Name != evil.Name || ex.Unit != evil.Unit || *ex.LifetimeSec != 3 || *ex.CPUPercent != 1.5 || *ex.MemoryMB != 20 {
		t.Errorf("exit %+v", ex)
	}
	// A start carries the process's start time too (no lifetime).
	if st := a.Events[1]; st.StartedAt != evil.CreateTime || st.LifetimeSec != nil || st.CPUPercent != nil {
		t.Errorf("start %+v", st)
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "\x1b") {
		t.Errorf("hostile text not escaped: %s", body)
	}
	if _, body := get("?limit=1"); !strings.Contains(body, `"truncated":true`) {
		t.Errorf("limit 1: %s", body)
	}
	if _, body := get("?q=SCRIPT"); !strings.Contains(body, `"pid":66`) {
		t.Errorf("q: %s", body)
	}
	if _, body := get("?kind=started"); !strings.Contains(body, `"kind":"started"`) || strings.Contains(body, `"kind":"exited"`) {
		t.Errorf("kind=started: %s", body)
	}
	if _, body := get("?kind=exited,restarted&limit=1"); !strings.Contains(body, `"kind":"exited"`) || strings.Contains(body, `"truncated":true`) {
		t.Errorf("kind=exited,restarted: %s", body)
	}
	if _, body := get("?q=nothing-like-it"); !strings.Contains(body, `"events":[]`) {
		t.Errorf("q without match: %s", body)
	}
	if _, body := get("?from=" + t0.Add(3*time.Second).Format(time.RFC3339)); !strings.Contains(body, `"kind":"exited"`) || strings.Contains(body, `"kind":"started"`) {
		t.Errorf("from: %s", body)
	}
	for q, want := range map[string]int{
		"?limit=0": 400, "?limit=x": 400, "?from=yesterday": 400, "?from=0": 400,
		"?to=" + t0.Format(time.RFC3339) + "&from=" + t0.Add(time.Hour).Format(time.RFC3339): 400,
		"?q=" + strings.Repeat("x", 300): 400, "?kind=died": 400, "?kind=started,": 400,
	} {
		if code, body := get(q); code != want || !strings.HasPrefix(body, `{"error":`) {
			t.Errorf("%s: %d %s", q, code, body)
		}
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/hosts/nope/events", nil))
	if rec.Code != 404 {
		t.Errorf("unknown host: %d %s", rec.Code, rec.Body)
	}
	// Before storage opens: 503 with a message.
	h2 := NewHandler(func() store.EventStore { return nil }, httpapi.Adapter{})
	r2 := chi.NewRouter()
	r2.Route("/api/v1", h2.Mount)
	rec = httptest.NewRecorder()
	r2.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/hosts/h/events", nil))
	if rec.Code != 503 {
		t.Errorf("no storage: %d", rec.Code)
	}
}

// TestPruneEvents: events older than their host's oldest snapshot go
// with it.
func TestPruneEvents(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	put(t, s, nil, req("h", t0.Add(time.Hour), pr(1, 0, "init", "", "")))
	evs := []store.Event{
		{At: t0, Kind: store.EventStarted, PID: 2, Name: "old"},
		{At: t0.Add(2 * time.Hour), Kind: store.EventExited, PID: 3, Name: "new", Started: t0},
	}
	if err := s.AddEvents(context.Background(), "h", evs); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneEvents(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	got, err := s.Events(context.Background(), "h", store.EventQuery{From: t0.Add(-time.Hour), To: t0.Add(3 * time.Hour)})
	if err != nil || summary(got) != "exited 3 new life=2h0m0s" {
		t.Fatalf("left %q, %v", summary(got), err)
	}
	if err := s.DeleteHost(context.Background(), "h"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddEvents(context.Background(), "h", evs); err == nil {
		t.Error("events of a deleted host stored")
	}
}
