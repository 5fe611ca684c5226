package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/exporter/internal/collector"
	"github.com/procscope/procscope/exporter/internal/metrics"
	"github.com/procscope/procscope/exporter/internal/push"
	"github.com/procscope/procscope/internal/testutil"
)

func TestWalkLoopOneAtATime(t *testing.T) {
	var running, maxRunning, walks atomic.Int32
	walk := func(ctx context.Context) (*collector.Walk, error) {
		if n := running.Add(1); n > maxRunning.Load() {
			maxRunning.Store(n)
		}
		defer running.Add(-1)
		walks.Add(1)
		// Slower than the interval: ticks must be dropped, not stacked.
		time.Sleep(30 * time.Millisecond)
		return &collector.Walk{Time: time.Now()}, nil
	}
	var fed atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	walkLoop(ctx, 10*time.Millisecond, walk, func(*collector.Walk, time.Duration) { fed.Add(1) },
		slog.New(slog.DiscardHandler))
	if maxRunning.Load() != 1 {
		t.Errorf("%d walks ran at once", maxRunning.Load())
	}
	// 300 ms of 30 ms walks: at most 10, never the 30 the ticker asked for.
	if w := walks.Load(); w < 1 || w > 11 {
		t.Errorf("%d walks in 300ms with 30ms walks", w)
	}
	if fed.Load() != walks.Load() {
		t.Errorf("fed %d of %d walks", fed.Load(), walks.Load())
	}
}

func TestBadCommandLineExits2(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("push_urll: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := func(args ...string) {
		t.Helper()
		var stderr bytes.Buffer
		if code := run(args, func(string) string { return "" }, &stderr); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
		if !strings.Contains(stderr.String(), "procscope-exporter:") {
			t.Errorf("no clear message: %q", stderr.String())
		}
	}
	f("--push.interval=soon")
	f("--nope")
	f("--config.file=" + bad)
	f("--metrics.process-group=x=(")
	// A bad value in a flag's environment variable is a usage error too,
	// and the message names the variable, not a flag nobody typed.
	t.Setenv("PROCSCOPE_PUSH_INTERVAL", "soon")
	var stderr bytes.Buffer
	if code := run(nil, func(string) string { return "" }, &stderr); code != 2 || !strings.Contains(stderr.String(), "$PROCSCOPE_PUSH_INTERVAL") {
		t.Errorf("PROCSCOPE_PUSH_INTERVAL=soon: exit %d, stderr %q", code, stderr.String())
	}
}

// ---- end to end, on the built binary ----

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func exporterBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "procscope-exporter-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "procscope-exporter")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		buildErr = testutil.Build(ctx, "./exporter", binPath, false)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// proc is a running exporter with its stderr captured.
type proc struct {
	cmd    *exec.Cmd
	addr   string
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan error
}

func (p *proc) logs() string { p.mu.Lock(); defer p.mu.Unlock(); return p.stderr.String() }

var listenRE = regexp.MustCompile(`msg="Listening on" address=(127\.0\.0\.1:\d+)`)

func startExporter(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(exporterBinary(t), append([]string{"--web.listen-address=127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		// Our own child only, by PID.
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	select {
	case p.addr = <-addr:
	case <-time.After(15 * time.Second):
		t.Fatalf("exporter did not log its address:\n%s", p.logs())
	}
	return p
}

// stop sends SIGTERM and waits (bounded) for exit code 0.
func (p *proc) stop(t *testing.T, within time.Duration) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("exporter exited with %v, want 0\n%s", err, p.logs())
		}
	case <-time.After(within):
		t.Fatalf("exporter still running %s after SIGTERM", within)
	}
}

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBinaryBadFlagExitCode(t *testing.T) {
	cmd := exec.Command(exporterBinary(t), "--push.interval=often")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want code 2; output %s", err, out)
	}
	if !strings.Contains(string(out), "push.interval") {
		t.Errorf("message does not name the flag: %s", out)
	}
}

func TestEndpoints(t *testing.T) {
	state := t.TempDir()
	// A long priming window keeps the first walk (and readiness) back.
	p := startExporter(t, nil, "--push.url=", "--state.dir="+state, "--collect.sample-window=1500ms",
		"--metrics.process-group=nothing=^no-such-process$")
	base := "http://" + p.addr
	if code, _ := get(t, http.MethodGet, base+"/-/ready"); code != http.StatusServiceUnavailable {
		t.Errorf("/-/ready before the first walk: %d, want 503", code)
	}
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		if code, _ := get(t, m, base+"/-/healthy"); code != http.StatusOK {
			t.Errorf("%s /-/healthy: %d", m, code)
		}
	}
	if code, _ := get(t, http.MethodPost, base+"/-/healthy"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /-/healthy: %d, want 405", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := get(t, http.MethodGet, base+"/-/ready")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready:\n%s", p.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, body := get(t, http.MethodGet, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		"procscope_exporter_build_info{", "procscope_cpus ", `procscope_processes{state="sleeping"}`,
		`procscope_top_process_cpu_percent{name=`, `procscope_process_group_processes{group="nothing"} 0`,
		"procscope_walk_duration_seconds ", "go_goroutines ", "process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The identity series carries the hostname snapshots are pushed under.
	if h, err := os.Hostname(); err != nil {
		t.Fatal(err)
	} else if re := regexp.MustCompile(`(?m)^procscope_host_info\{.*hostname="` + regexp.QuoteMeta(h) + `".*\} 1$`); !re.MatchString(body) {
		t.Errorf("/metrics lacks procscope_host_info for hostname %q", h)
	}
	if strings.Contains(body, "procscope_push_") {
		t.Error("push metrics present although pushing is disabled")
	}
	if code, body := get(t, http.MethodGet, base+"/"); code != http.StatusOK || !strings.Contains(body, "/metrics") {
		t.Errorf("landing page: %d", code)
	}
	if code, _ := get(t, http.MethodGet, base+"/nope"); code != http.StatusNotFound {
		t.Errorf("/nope: %d, want 404", code)
	}
	p.stop(t, 10*time.Second)
}

// receiver stands in for the aggregator: gzip JSON in, idempotent on
// captured_at like the real one, and it can go down (listener closed).
type receiver struct {
	*testutil.Server
	t      *testing.T
	mu     sync.Mutex
	stored map[string]int // captured_at -> times received
	order  []string
	keys   map[string]bool
	tokens map[string]bool // X-Enrollment-Token values seen
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, stored: map[string]int{}, keys: map[string]bool{}, tokens: map[string]bool{}}
	r.Server = testutil.NewServer(t, r)
	return r
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	zr, err := gzip.NewReader(req.Body)
	if err != nil {
		http.Error(w, `{"error":"bad gzip"}`, 400)
		return
	}
	var s snapshot.Snapshot
	if err := json.NewDecoder(zr).Decode(&s); err != nil || s.Hostname == "" || s.Processes == nil {
		http.Error(w, `{"error":"bad body"}`, 400)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys[req.Header.Get("X-API-KEY")] = true
	r.tokens[req.Header.Get("X-Enrollment-Token")] = true
	r.stored[s.CapturedAt]++
	if r.stored[s.CapturedAt] > 1 {
		w.WriteHeader(http.StatusOK)
	} else {
		r.order = append(r.order, s.CapturedAt)
		w.WriteHeader(http.StatusCreated)
	}
	_, _ = fmt.Fprint(w, `{"snapshot_id":1}`)
}

// pushStats are the exporter's push counters, read from its /metrics.
type pushStats struct{ queued, sent, failed, dropped, waiting int }

// drainedStats are the push counters and the count stored at one moment.
type drainedStats struct {
	pushStats
	stored int
}

var pushMetricRE = regexp.MustCompile(`(?m)^procscope_push_(snapshots_queued_total|snapshots_sent_total|snapshots_failed_total|snapshots_dropped_total|queue_snapshots) (\S+)$`)

func (p *proc) pushStats(t *testing.T) pushStats {
	t.Helper()
	code, body := get(t, http.MethodGet, "http://"+p.addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	var s pushStats
	for _, m := range pushMetricRE.FindAllStringSubmatch(body, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatalf("%s: %v", m[0], err)
		}
		*map[string]*int{"snapshots_queued_total": &s.queued, "snapshots_sent_total": &s.sent,
			"snapshots_failed_total": &s.failed, "snapshots_dropped_total": &s.dropped, "queue_snapshots": &s.waiting}[m[1]] = int(v)
	}
	return s
}

// waitFor polls cond every 50 ms until it holds; it fails the test after
// within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s still waiting until %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// drained waits until the exporter's queue is empty and every snapshot it
// queued is stored, nothing dropped: read as one consistent moment (the
// same counters before and after counting what is stored).
// A walk running at the later SIGTERM is still queued and sent, so only
// the counts of this moment are compared.
func drained(t *testing.T, p *proc, within time.Duration, stored func() int) drainedStats {
	t.Helper()
	var last drainedStats
	waitFor(t, within, "every queued snapshot is stored", func() bool {
		before := p.pushStats(t)
		n := stored()
		last = drainedStats{p.pushStats(t), n}
		return before == last.pushStats && last.waiting == 0 && last.queued == n
	})
	return last
}

// TestOutage is the outage figure of docs/performance.md: an exporter pushing every
// 100 ms, the receiver down for 3 s in the middle, then back. Every
// snapshot the exporter queued must arrive exactly once (stored), in
// capture order after the backlog, none lost.
func TestOutage(t *testing.T) {
	const interval = 100 * time.Millisecond
	down := 3 * time.Second
	r := newReceiver(t)
	state := t.TempDir()
	p := startExporter(t, []string{"PROCSCOPE_API_KEY=outage-test-key", "PROCSCOPE_ENROLLMENT_TOKEN=outage-test-token"},
		"--push.url=http://"+r.Addr()+"/api/v1/ingest", "--push.interval="+interval.String(),
		"--state.dir="+state, "--collect.sample-window=0", "--collect.top-n=20", "--push.timeout=1s")
	storedN := func() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.order) }
	waitFor(t, 20*time.Second, "10 snapshots are stored", func() bool { return storedN() >= 10 })
	r.Down()
	before := p.pushStats(t)
	// The outage lasts as long as it takes to fail down/interval pushes' worth of walks.
	waitFor(t, 30*time.Second, "the outage has queued "+down.String()+" of walks", func() bool {
		s := p.pushStats(t)
		return s.failed > before.failed && s.waiting >= int(down/interval)
	})
	r.Up()
	st := drained(t, p, 30*time.Second, storedN)
	p.stop(t, 15*time.Second)
	queued, sent, failed, dropped, storedThen := st.queued, st.sent, st.failed, st.dropped, st.stored

	r.mu.Lock()
	defer r.mu.Unlock()
	stored := len(r.order)
	resent := 0
	for _, c := range r.stored {
		resent += c - 1
	}
	times := make([]time.Time, 0, stored)
	for at := range r.stored {
		tm, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			t.Fatalf("captured_at %q: %v", at, err)
		}
		times = append(times, tm)
	}
	gaps, maxGap := timelineGaps(times, interval)
	t.Logf("outage %s at %s interval: queued %d, stored %d, resent (answered 200) %d, "+
		"dropped %d, failed attempts %d, lost %d, timeline gaps > 1.5 intervals %d (largest %s)",
		down, interval, queued, stored, resent, dropped, failed, queued-storedThen-dropped, gaps, maxGap)
	if len(r.keys) != 1 || !r.keys["outage-test-key"] {
		t.Errorf("keys seen: %v", r.keys)
	}
	// The enrolment token goes with every push and never into the log,
	// which says where it came from.
	if len(r.tokens) != 1 || !r.tokens["outage-test-token"] {
		t.Errorf("enrolment tokens seen: %v", r.tokens)
	}
	if l := p.logs(); strings.Contains(l, "outage-test-token") || strings.Contains(l, "outage-test-key") ||
		!strings.Contains(l, `enrollment_token_source="environment or config file"`) {
		t.Errorf("a secret is logged, or the token's source is not:\n%s", l)
	}
	if lost := queued - storedThen - dropped; lost != 0 || dropped != 0 {
		t.Errorf("lost %d, dropped %d", lost, dropped)
	}
	if sent < storedThen {
		t.Errorf("sent %d < stored %d", sent, storedThen)
	}
	if failed == 0 {
		t.Error("no failed attempts: the outage did not happen")
	}
	// The walk never waits for the network: the outage leaves no hole.
	if stored < 10+int(down/interval) {
		t.Errorf("only %d snapshots stored", stored)
	}
	if maxGap > 2*time.Second {
		t.Errorf("a %s hole in the timeline", maxGap)
	}
}

func TestSinkLogsQueueFailureOnce(t *testing.T) {
	state := t.TempDir()
	q, _, err := push.OpenQueue(filepath.Join(state, "queue"), 10)
	if err != nil {
		t.Fatal(err)
	}
	p, err := push.New(push.Options{URL: "http://127.0.0.1:1/", Queue: q})
	if err != nil {
		t.Fatal(err)
	}
	mc, _ := metrics.New(3, nil)
	var logs bytes.Buffer
	s := &sink{mc: mc, pusher: p, hostname: "h", logger: slog.New(slog.NewTextHandler(&logs, nil))}
	w := &collector.Walk{Time: time.Now(), Processes: []collector.Process{{}}}
	s.onWalk(w, time.Millisecond)
	if st := p.Stats(); st.Queued != 1 {
		t.Fatalf("stats %+v", st)
	}
	// The queue directory disappears (disk replaced, rm -rf): every walk
	// fails to queue, the log says so once.
	_ = os.RemoveAll(filepath.Join(state, "queue"))
	for i := 0; i < 5; i++ {
		s.onWalk(w, time.Millisecond)
	}
	if n := strings.Count(logs.String(), "could not queue snapshot"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs.String())
	}
	if st := p.Stats(); st.Dropped != 5 {
		t.Errorf("dropped %v, want 5", st.Dropped)
	}
	if !mc.Ready() {
		t.Error("/metrics not fed while the queue fails")
	}
	if err := os.MkdirAll(filepath.Join(state, "queue"), 0o700); err != nil {
		t.Fatal(err)
	}
	s.onWalk(w, time.Millisecond)
	if !strings.Contains(logs.String(), "queueing snapshots again") {
		t.Error("recovery not logged")
	}
}

// TestLogWebConfig: with --web.config.file the start says what it turns
// on for /metrics.
func TestLogWebConfig(t *testing.T) {
	dir := t.TempDir()
	f := func(content string, want ...string) {
		t.Helper()
		path := ""
		if content != "" {
			path = filepath.Join(dir, "web.yml")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var logs bytes.Buffer
		logWebConfig(slog.New(slog.NewTextHandler(&logs, nil)), path, "/metrics")
		if len(want) == 0 && logs.Len() != 0 {
			t.Errorf("no web config file, but logged %q", logs.String())
		}
		for _, w := range want {
			if !strings.Contains(logs.String(), w) {
				t.Errorf("%q: log %q lacks %q", content, logs.String(), w)
			}
		}
	}
	f("")
	f("basic_auth_users:\n  admin: $2y$10$X1rW/vnLyTj8tB/8.OZcXO6N1Y7M9IR1UQBlbDKD0h8mSThgVXKNu\n",
		"level=INFO", "web config file loaded", "/metrics", "tls=false", "basic_auth=true", "basic_auth_users=1")
	f("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n", "tls=true", "basic_auth=false")
}
