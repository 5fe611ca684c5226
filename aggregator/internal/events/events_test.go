package events

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/internal/ingest"
	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func pr(pid, ppid int64, name, unit, created string) snapshot.Process {
	p := snapshot.Process{PID: pid, PPID: ppid, Name: name, CreateTime: created, CPUPercent: 1.5, MemoryMB: 20}
	p.SetExt(snapshot.ProcessExt{Unit: unit})
	return p
}

func req(host string, at time.Time, procs ...snapshot.Process) *store.IngestRequest {
	return &store.IngestRequest{Hostname: host, CapturedAt: at, Processes: procs}
}

// summary is one event as a short line, for comparing.
func summary(evs []store.Event) string {
	var b []string
	for _, e := range evs {
		s := fmt.Sprintf("%s %d %s", e.Kind, e.PID, e.Name)
		if e.Kind == store.EventRestarted {
			s += fmt.Sprintf(" prev=%d", e.PrevPID)
		}
		if e.Kind == store.EventExited && !e.Started.IsZero() {
			s += fmt.Sprintf(" life=%s", e.At.Sub(e.Started))
		}
		b = append(b, s)
	}
	return strings.Join(b, "; ")
}

func TestDerive(t *testing.T) {
	t.Parallel()
	tr := New(nil, nil, Options{RestartWindow: 5 * time.Minute})
	ctx := context.Background()
	c := func(d time.Duration) string { return t0.Add(d).Format(snapshot.CapturedAtFormat) }
	initP := pr(1, 0, "systemd", "init.scope", c(-time.Hour))
	nginx := pr(100, 1, "nginx", "system.slice/nginx.service", c(-time.Minute))
	steps := []struct {
		name  string
		at    time.Duration
		procs []snapshot.Process
		want  string
	}{
		{"first snapshot is the baseline", 0, []snapshot.Process{initP, nginx}, ""},
		{"nothing changed", 2 * time.Second, []snapshot.Process{initP, nginx}, ""},
		{"a worker starts", 4 * time.Second, []snapshot.Process{initP, nginx, pr(101, 100, "worker", "system.slice/nginx.service", c(3*time.Second))}, "started 101 worker"},
		{"nginx dies with its worker", 6 * time.Second, []snapshot.Process{initP}, "exited 100 nginx life=1m6s; exited 101 worker life=3s"},
		{"late snapshot changes nothing", 5 * time.Second, []snapshot.Process{initP, nginx, pr(500, 1, "ghost", "", c(5*time.Second))}, ""},
		{"repeated time changes nothing", 6 * time.Second, []snapshot.Process{initP, pr(501, 1, "ghost", "", c(5*time.Second))}, ""},
		{"nginx back within the window: restarted", 8 * time.Second, []snapshot.Process{initP, pr(200, 1, "nginx", "system.slice/nginx.service", c(7*time.Second))}, "restarted 200 nginx prev=100"},
		{"pid reused by another process", 10 * time.Second, []snapshot.Process{initP, pr(200, 1, "bash", "", c(9*time.Second))}, "exited 200 nginx life=3s; started 200 bash"},
		{"worker under another unit is no restart", 12 * time.Second, []snapshot.Process{initP, pr(200, 1, "bash", "", c(9*time.Second)), pr(300, 100, "worker", "system.slice/other.service", c(11*time.Second))}, "started 300 worker"},
		{"top-N snapshot: nothing", 14 * time.Second, nil, ""},
		{"full again: compared with nothing, baseline", 16 * time.Second, []snapshot.Process{initP}, ""},
		{"bash back after the window: started", 16*time.Second + 6*time.Minute, []snapshot.Process{initP, pr(900, 1, "bash", "", c(6*time.Minute))}, "started 900 bash"},
	}
	for _, s := range steps {
		r := req("web-1", t0.Add(s.at), s.procs...)
		if s.procs == nil {
			r.Processes = []snapshot.Process{initP}
			r.System = &ingest.SystemNumbers{ProcessCount: ingest.Num{V: 40, OK: true}}
		}
		if got := summary(tr.Derive(ctx, r)); got != s.want {
			t.Errorf("%s: got %q, want %q", s.name, got, s.want)
		}
	}
	// Another host has its own table.
	if got := tr.Derive(ctx, req("web-2", t0, initP)); len(got) != 0 {
		t.Errorf("new host: %v", got)
	}
}

// Without create_time (the original agent) a process is its pid and name.
func TestDeriveWithoutCreateTime(t *testing.T) {
	t.Parallel()
	tr := New(nil, nil, Options{})
	ctx := context.Background()
	tr.Derive(ctx, req("h", t0, pr(5, 1, "a", "", "")))
	if got := summary(tr.Derive(ctx, req("h", t0.Add(time.Second), pr(5, 1, "b", "", "")))); got != "exited 5 a; started 5 b" {
		t.Errorf("got %q", got)
	}
}

// TestForget: a deleted host's table is forgotten, so a host of the same
// name enrolled again starts from a baseline instead of "exiting" all of
// the old host's processes.
func TestForget(t *testing.T) {
	t.Parallel()
	tr := New(nil, nil, Options{})
	ctx := context.Background()
	tr.Derive(ctx, req("h", t0, pr(5, 1, "old", "", "")))
	tr.Forget("h")
	if got := tr.Derive(ctx, req("h", t0.Add(time.Second), pr(9, 1, "new", "", ""))); len(got) != 0 {
		t.Errorf("after Forget: %q", summary(got))
	}
}

// TestDeriveStartTime: started and restarted events carry the process's
// start time (its create_time), so that a client can tell the process
// that restarted from a later one reusing its pid; none without
// create_time.
func TestDeriveStartTime(t *testing.T) {
	t.Parallel()
	tr := New(nil, nil, Options{})
	ctx := context.Background()
	c := func(d time.Duration) string { return t0.Add(d).Format(snapshot.CapturedAtFormat) }
	initP := pr(1, 0, "systemd", "", c(-time.Hour))
	tr.Derive(ctx, req("h", t0, initP, pr(100, 1, "nginx", "nginx.service", c(-time.Minute))))
	got := tr.Derive(ctx, req("h", t0.Add(2*time.Second), initP,
		pr(200, 1, "nginx", "nginx.service", c(time.Second)), // restarted
		pr(300, 1, "job", "", c(1500*time.Millisecond)),      // started
		pr(400, 1, "old-agent", "", "")))                     // started, no create_time
	want := map[int64]time.Time{200: t0.Add(time.Second), 300: t0.Add(1500 * time.Millisecond), 400: {}, 100: t0.Add(-time.Minute)}
	if len(got) != len(want) {
		t.Fatalf("events %q", summary(got))
	}
	for _, e := range got {
		if !e.Started.Equal(want[e.PID]) {
			t.Errorf("%s %d: started %v, want %v", e.Kind, e.PID, e.Started, want[e.PID])
		}
	}
}
