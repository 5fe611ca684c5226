package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/internal/api"
	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testutil.PostgresMain(m)) }

// fill stores a few hosts' runs of drifting snapshots (keyframes and
// deltas), a host deleted, a key reset.
func fill(t *testing.T, st store.Store, start time.Time) {
	t.Helper()
	ctx := context.Background()
	for h, host := range []string{"web-1", "db<1>&\"x\"", "gone", "zz ☃"} {
		procs := make([]snapshot.Process, 40)
		for i := range procs {
			cmd := fmt.Sprintf("/usr/bin/p%d --flag=%d", i, h)
			procs[i] = snapshot.Process{PID: int64(100 + i), PPID: 1, Name: fmt.Sprintf("p%d", i), Username: "root", Status: "running",
				CPUPercent: float64(i%7) * 0.5, MemoryMB: float64(i) * 1.25, NumThreads: int32(i%5 + 1), Cmdline: &cmd}
		}
		for n := range 30 {
			for i := range procs {
				procs[i].CPUPercent = float64((n*i+h)%97) / 3
			}
			if n%10 == 9 {
				procs = append(procs, snapshot.Process{PID: int64(1000 + n), PPID: 100, Name: "new"})
			}
			at := start.Add(time.Duration(n)*10*time.Second + time.Duration(h)*time.Millisecond)
			_, err := st.Ingest(ctx, &store.IngestRequest{
				Hostname: host, KeyHash: sha256.Sum256([]byte(host)), CapturedAt: at, ReceivedAt: at.Add(time.Second),
				SystemInfo: []byte(fmt.Sprintf(`{"os":{"name":"linux","distro":"debian","version":"13","arch":"x86_64"},"uptime_seconds":%d}`, n)),
				Processes:  append([]snapshot.Process(nil), procs...),
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := st.DeleteHost(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := st.ResetKey(ctx, "zz ☃", nil); err != nil {
		t.Fatal(err)
	}
}

// apiServer serves st through the real API.
func apiServer(t *testing.T, st store.Store, now time.Time) *httptest.Server {
	t.Helper()
	a, err := api.New(api.Options{Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	a.SetStore(st)
	srv := httptest.NewServer(a)
	t.Cleanup(func() { a.Close(); srv.Close() })
	return srv
}

func getBody(t *testing.T, base, path string) string {
	t.Helper()
	res, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	b, _ := io.ReadAll(res.Body)
	return fmt.Sprintf("%d %s", res.StatusCode, b)
}

// TestStorageCopy: `storage copy` moves a SQLite store into PostgreSQL,
// and the API answers the same from both, byte for byte; a second run
// copies nothing again; new snapshots get ids never used before.
func TestStorageCopy(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	now := start.Add(10 * time.Minute)
	ctx := context.Background()
	src, err := store.OpenSQLite(ctx, dir, store.Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, src, start)
	// Lifecycle events go along: more than one page of them for web-1.
	var evs []store.Event
	for i := range 5100 {
		evs = append(evs, store.Event{At: start.Add(time.Duration(i/3) * time.Millisecond), Kind: store.EventStarted,
			PID: int64(1000 + i), PPID: 1, Name: "job<" + fmt.Sprint(i%7) + ">", Unit: "cron.service"})
	}
	if err := src.AddEvents(ctx, "web-1", evs); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}

	// The password goes by the environment: on the command line it is refused.
	u, _ := url.Parse(testutil.PostgresURL(t))
	pw, _ := u.User.Password()
	var out, errb bytes.Buffer
	if code := run([]string{"--storage.path=" + dir, "storage", "copy", "--to=" + u.String()}, &out, &errb); code != exitUsage ||
		!strings.Contains(errb.String(), "process list") || strings.Contains(errb.String(), pw) {
		t.Fatalf("password on the command line: exit %d, %s", code, errb.String())
	}
	t.Setenv("PGPASSWORD", pw)
	u.User = url.User(u.User.Username())
	for i := range 2 {
		out.Reset()
		errb.Reset()
		if code := run([]string{"--storage.path=" + dir, "storage", "copy", "--to=" + u.String()}, &out, &errb); code != 0 {
			t.Fatalf("copy %d: exit %d\n%s%s", i, code, out.String(), errb.String())
		}
		t.Logf("copy %d: %s", i, out.String())
	}
	if !strings.Contains(out.String(), "90/90 snapshots (100%; 0 new, 90 there already)") {
		t.Fatalf("second copy: %s", out.String())
	}

	src, err = store.OpenSQLite(ctx, dir, store.Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	dst, err := store.OpenPostgres(ctx, u.String(), store.Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = dst.Close() }()
	a, b := apiServer(t, src, now), apiServer(t, dst, now)
	paths := []string{"/api/v1/hosts"}
	for _, h := range []string{"web-1", "db<1>&\"x\"", "zz ☃", "gone"} {
		q := url.QueryEscape(h)
		paths = append(paths,
			"/api/v1/snapshots/latest?hostname="+q,
			"/api/v1/snapshots/at?hostname="+q+"&time=2026-11-25T17:02:05Z",
			"/api/v1/hosts/"+url.PathEscape(h)+"/snapshots?from=2026-11-25T16:00:00Z&to=2026-11-25T18:00:00Z")
	}
	for id := 1; id <= 125; id++ {
		paths = append(paths, fmt.Sprintf("/api/v1/snapshots/%d", id), fmt.Sprintf("/api/v1/snapshots/%d/processes", id))
	}
	for _, p := range paths {
		if ga, gb := getBody(t, a.URL, p), getBody(t, b.URL, p); ga != gb {
			t.Fatalf("%s differs:\nsqlite:   %.300s\npostgres: %.300s", p, ga, gb)
		}
	}
	if got := getBody(t, b.URL, "/api/v1/snapshots/91/processes"); !strings.HasPrefix(got, "200 [") {
		t.Fatalf("snapshot 91 from PostgreSQL: %.200s", got)
	}
	all := store.EventQuery{From: start.Add(-time.Hour), To: now.Add(time.Hour), Limit: 5000}
	for _, q := range []store.EventQuery{all, {From: all.From, To: start.Add(time.Second), Q: "job<3", Limit: 5000}} {
		ea, errA := src.Events(ctx, "web-1", q)
		eb, errB := dst.Events(ctx, "web-1", q)
		if errA != nil || errB != nil || len(ea) != len(eb) || len(ea) == 0 {
			t.Fatalf("events %+v: %d from SQLite (%v), %d from PostgreSQL (%v)", q, len(ea), errA, len(eb), errB)
		}
		for i := range ea {
			if ea[i] != eb[i] {
				t.Fatalf("event %d differs:\nsqlite:   %+v\npostgres: %+v", i, ea[i], eb[i])
			}
		}
	}
	dels, err := dst.HostDeletions(ctx, 0)
	if err != nil || len(dels) != 1 || dels[0].Hostname != "gone" {
		t.Fatalf("host deletions copied: %+v, %v", dels, err)
	}
	// The reset key stays reset; the ids go on after SQLite's highest
	// (the deleted host's snapshots included).
	res, err := dst.Ingest(ctx, &store.IngestRequest{Hostname: "zz ☃", KeyHash: sha256.Sum256([]byte("new")), CapturedAt: now,
		SystemInfo: []byte(`{}`), Processes: []snapshot.Process{}})
	if err != nil || res.SnapshotID != 121 {
		t.Fatalf("first PostgreSQL ingest: %+v, %v; want id 121", res, err)
	}
}
