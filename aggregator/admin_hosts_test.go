package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/internal/api"
	"github.com/procscope/procscope/aggregator/internal/history"
	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/tools/loadgen/gen"
)

// testServer is the server's parts as serve() assembles them, in this
// process: store, history, API and the deletion watcher.
type testServer struct {
	t     *testing.T
	dir   string
	st    *store.SQLite
	hist  *history.History
	a     *api.API
	srv   *httptest.Server
	watch *deletionWatcher
	// forgotten lists the hosts the watcher told the API to forget.
	forgotten []string
}

func startTestServer(t *testing.T, dir string, enroll api.Enrollment) *testServer {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), dir, store.Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	h, err := history.Open(filepath.Join(dir, "history"), history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lazy := new(api.LazyStore)
	hd := history.NewHandler(h, lazy, nil)
	a, err := api.New(api.Options{Logger: slog.New(slog.DiscardHandler), Store: lazy, OnIngest: hd.OnIngest, Enrollment: enroll})
	if err != nil {
		t.Fatal(err)
	}
	lazy.Set(st)
	s := &testServer{t: t, dir: dir, st: st, hist: h, a: a, srv: httptest.NewServer(a)}
	forget := func(host string) {
		s.forgotten = append(s.forgotten, host)
		a.ForgetHost(host)
	}
	s.watch = &deletionWatcher{st: st, forget: forget, hist: h, histDir: filepath.Join(dir, "history"), log: slog.New(slog.DiscardHandler)}
	t.Cleanup(s.stop)
	return s
}

func (s *testServer) stop() {
	if s.srv == nil {
		return
	}
	s.a.Close()
	s.srv.Close()
	_ = s.hist.Close()
	_ = s.st.Close()
	s.srv = nil
}

func (s *testServer) ingest(key, host string, at time.Time) int {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+api.IngestPath, bytes.NewReader(gen.Body(3, host, at.UTC().Format(time.RFC3339Nano), false)))
	req.Header.Set("X-API-KEY", key)
	req.Header.Set("Content-Type", "application/json")
	res, err := s.srv.Client().Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	_ = res.Body.Close()
	return res.StatusCode
}

// series counts a host's CPU and process series in the last hour.
func (s *testServer) series(host string) int {
	s.t.Helper()
	if err := s.hist.Flush(30 * time.Second); err != nil {
		s.t.Fatal(err)
	}
	n := 0
	for _, m := range []string{history.MetricCPU, history.MetricProcessCPU} {
		got, err := s.hist.Query(context.Background(), m, map[string]string{history.LabelHostname: host}, time.Now().Add(-time.Hour), time.Now().Add(time.Minute))
		if err != nil {
			s.t.Fatal(err)
		}
		n += len(got)
	}
	return n
}

// runCLI runs the command line in this process, as the admin would.
func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

var keyLine = regexp.MustCompile(`(?m)^([0-9a-f]{64})$`)

// TestHostsAddWhileServing: with enrolment closed, a new host gets 403
// naming `hosts add`; `hosts add` run while the server holds the database
// prints a key once, which the server accepts at once (201) while other
// keys stay refused; adding it again fails with exit 1.
func TestHostsAddWhileServing(t *testing.T) {
	dir := t.TempDir()
	s := startTestServer(t, dir, api.Enrollment{Mode: api.EnrollClosed, MaxHosts: 10000, RatePerMinute: 60, MinKeyLen: 8})
	now := time.Now()
	if code := s.ingest("key-web-1", "web-1", now); code != http.StatusForbidden {
		t.Fatalf("closed enrolment, new host: %d", code)
	}
	// The server's writer has read the hosts before the add.
	if code := s.ingest("key-web-1", "web-1", now); code != http.StatusForbidden {
		t.Fatalf("closed enrolment, new host again: %d", code)
	}

	code, out, errOut := runCLI("hosts", "add", "web-1", "--storage.path="+dir)
	if code != 0 {
		t.Fatalf("hosts add: exit %d: %s", code, errOut)
	}
	m := keyLine.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "--push.api-key-file") || !strings.Contains(out, "only this once") {
		t.Fatalf("hosts add printed no key on its own line, or no install hint:\n%s", out)
	}
	if code := s.ingest(m[1], "web-1", now); code != http.StatusCreated {
		t.Fatalf("ingest with the printed key while the server runs: %d, want 201", code)
	}
	if code := s.ingest("key-squatter", "web-1", now.Add(time.Second)); code != http.StatusForbidden {
		t.Fatalf("another key for the added host: %d", code)
	}
	code, _, errOut = runCLI("hosts", "add", "web-1", "--storage.path="+dir)
	if code != 1 || !strings.Contains(errOut, "exists already") {
		t.Fatalf("adding it again: exit %d: %s", code, errOut)
	}
	if code, _, _ := runCLI("hosts", "add", "bad\x01name", "--storage.path="+dir); code != 2 {
		t.Fatalf("invalid hostname: exit %d, want 2", code)
	}
	// A second add prints another key: keys are random.
	_, out2, _ := runCLI("hosts", "add", "web-2", "--storage.path="+dir)
	if m2 := keyLine.FindStringSubmatch(out2); m2 == nil || m2[1] == m[1] {
		t.Fatalf("second key: %q", out2)
	}
}

// TestHostsDeleteWhileServing: `hosts delete` in another process while the
// server holds the history store: the command says the server will delete
// the series; the server's watcher then deletes them and drops the host
// from the API's memory; other hosts keep theirs.
func TestHostsDeleteWhileServing(t *testing.T) {
	dir := t.TempDir()
	s := startTestServer(t, dir, api.Enrollment{})
	now := time.Now().Add(-time.Minute)
	for i := range 2 {
		for _, h := range []string{"web-1", "web-2"} {
			if code := s.ingest("key-"+h, h, now.Add(time.Duration(i)*10*time.Second)); code != http.StatusCreated {
				t.Fatalf("ingest %s: %d", h, code)
			}
		}
	}
	if s.series("web-1") == 0 || s.series("web-2") == 0 {
		t.Fatal("no history before the delete")
	}
	if err := s.watch.pass(context.Background()); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCLI("hosts", "delete", "web-1", "--storage.path="+dir)
	if code != 0 || !strings.Contains(out, "deleted by the running server") {
		t.Fatalf("hosts delete: exit %d\n%s%s", code, out, errOut)
	}
	if err := s.watch.pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := s.series("web-1"); n != 0 {
		t.Fatalf("%d history series of the deleted host left", n)
	}
	if s.series("web-2") == 0 {
		t.Fatal("the other host's history went too")
	}
	if d, err := s.st.HostDeletions(context.Background(), 0); err != nil || len(d) != 0 {
		t.Fatalf("deletion still recorded after the server handled it: %v %v", d, err)
	}
	if len(s.forgotten) != 1 || s.forgotten[0] != "web-1" {
		t.Fatalf("the API was told to forget %q, want [web-1]", s.forgotten)
	}
	// A reinstalled machine with a new key starts over.
	if code := s.ingest("key-web-1-new", "web-1", now.Add(30*time.Second)); code != http.StatusCreated {
		t.Fatalf("the deleted hostname, new key: %d", code)
	}
}

// TestHostsDeleteWithoutServer: with no server running the command
// deletes the history series itself, and those of an earlier deletion
// that a server never handled.
func TestHostsDeleteWithoutServer(t *testing.T) {
	dir := t.TempDir()
	s := startTestServer(t, dir, api.Enrollment{})
	now := time.Now().Add(-time.Minute)
	for _, h := range []string{"web-1", "web-2", "web-3"} {
		if code := s.ingest("key-"+h, h, now); code != http.StatusCreated {
			t.Fatalf("ingest %s: %d", h, code)
		}
	}
	if s.series("web-1") == 0 {
		t.Fatal("no history")
	}
	// web-3 is deleted while the server runs but stops before handling it.
	if err := s.st.DeleteHost(context.Background(), "web-3"); err != nil {
		t.Fatal(err)
	}
	s.stop()

	code, out, errOut := runCLI("hosts", "delete", "web-1", "--storage.path="+dir)
	if code != 0 || !strings.Contains(out, "history series") || strings.Contains(out, "running server") {
		t.Fatalf("hosts delete: exit %d\n%s%s", code, out, errOut)
	}
	s = startTestServer(t, dir, api.Enrollment{})
	if n := s.series("web-1"); n != 0 {
		t.Fatalf("%d series of web-1 left", n)
	}
	if n := s.series("web-3"); n != 0 {
		t.Fatalf("%d series of web-3 (deleted earlier) left", n)
	}
	if s.series("web-2") == 0 {
		t.Fatal("web-2's history went too")
	}
	if d, _ := s.st.HostDeletions(context.Background(), 0); len(d) != 0 {
		t.Fatalf("deletions left: %+v", d)
	}
}
