package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procscope/procscope/internal/testutil"
)

// TestScaledTopologyUnderLoad is issue 14's proof with real engines, all
// of it at once: a PostgreSQL cluster and a victoria-metrics single node
// of the test's own; two aggregator binaries on that PostgreSQL, both
// forwarding history to VictoriaMetrics (--remote-write.url) and reading
// it from there (--history.url); the load generator (tools/loadgen)
// pushing from several hosts to A and failing over to B (-failover-url,
// the exporter's --push.url ring). A is SIGKILLed mid-run, and restarted
// on the same address once B has taken over; the hosts come back to it.
// Then every snapshot the load generator saw acknowledged (its
// -acks-file: hostname, captured_at, id) reads back identical from both
// aggregators, each host lists exactly its acknowledged snapshots once,
// and the series routes of both answer with VictoriaMetrics' samples.
func TestScaledTopologyUnderLoad(t *testing.T) {
	bins := buildBinaries(t)
	pgURL := testutil.PostgresURL(t)
	vm := testutil.StartVictoriaMetrics(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	loadgen := filepath.Join(t.TempDir(), "loadgen")
	if err := testutil.Build(ctx, "./tools/loadgen", loadgen, false); err != nil {
		t.Fatal(err)
	}

	// The password by the environment, as the aggregator demands.
	u, _ := url.Parse(pgURL)
	pw, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	env := []string{"PROCSCOPE_STORAGE_POSTGRES_URL=" + u.String(), "PGPASSWORD=" + pw}
	flags := []string{"--remote-write.url=" + vm.RemoteWriteURL, "--history.url=" + vm.URL,
		"--hosts.enroll-rate=0", "--hosts.max=0"}
	a := startAggregatorAt(t, "A", bins.Aggregator, testutil.FreePort(t), env, flags)
	b := startAggregatorAt(t, "B", bins.Aggregator, testutil.FreePort(t), env, flags)

	// 8 hosts, 2 pushes a second each, for 45 s: ~720 snapshots of 60
	// processes, hostnames with markup and a non-ASCII letter.
	const hosts = 8
	acksFile := filepath.Join(t.TempDir(), "acks.jsonl")
	lg := exec.CommandContext(ctx, loadgen, "-url", a.url, "-failover-url", b.url, "-failover-back-after", "2s",
		"-acks-file", acksFile, "-hosts", strconv.Itoa(hosts), "-rate", "16", "-duration", "45s", "-procs", "60",
		"-host-prefix", "e2e<b>☃-", "-key-prefix", "key-", "-verify-content-every", "5")
	var lgOut testutil.LogBuffer
	lg.Stdout, lg.Stderr = &lgOut, &lgOut
	lg.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := lg.Start(); err != nil {
		t.Fatal(err)
	}
	var lgErr error // set before lgDone is closed
	lgDone := make(chan struct{})
	go func() { lgErr = lg.Wait(); close(lgDone) }()
	defer func() {
		select {
		case <-lgDone:
		default:
			_ = lg.Process.Kill() // os.Process: never a PID already reaped
			<-lgDone
		}
	}()
	loadgenRunning := func(what string) {
		t.Helper()
		select {
		case <-lgDone:
			t.Fatalf("the load ended before %s (%v); a slower machine needs a longer -duration:\n%s", what, lgErr, lgOut.String())
		default:
		}
	}
	// waitStored polls an aggregator's count of snapshots it stored
	// itself until it reaches n, the load still running.
	waitStored := func(p *aggProc, n float64, what string) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for storedBy(p.url) < n {
			loadgenRunning(what)
			if time.Now().After(deadline) {
				t.Fatalf("%s: aggregator %s stored %v snapshots, waited for %v:\n%s", what, p.name, storedBy(p.url), n, lgOut.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Mid-request: A is stopped (SIGSTOP) until pushes wait unread in its
	// sockets, then SIGKILLed; those pushes must go to B, not be lost.
	waitStored(a, 40, "killing A")
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waiting := 0
	for deadline := time.Now().Add(30 * time.Second); waiting < 4; waiting = unreadRequests(t, a.url) {
		loadgenRunning("A had pushes waiting")
		if time.Now().After(deadline) {
			t.Fatalf("no push waited at the stopped A within 30 s (%d)", waiting)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.kill()
	t.Logf("aggregator A (pid %d) SIGKILLed mid-run, %d pushes unread in its sockets", a.pid(), waiting)
	waitStored(b, 40, "B took over")
	a = startAggregatorAt(t, "A again", bins.Aggregator, strings.TrimPrefix(a.url, "http://"), env, flags)
	waitStored(a, 20, "the hosts came back to the restarted A")

	select {
	case <-lgDone:
		if lgErr != nil {
			t.Fatalf("loadgen: %v\n%s", lgErr, lgOut.String())
		}
	case <-ctx.Done():
		t.Fatalf("the load did not end:\n%s", lgOut.String())
	}
	out := lgOut.String()
	t.Logf("loadgen:\n%s", out)
	if !strings.Contains(out, "errors 0 ") || !strings.Contains(out, "lost=0") || !strings.Contains(out, "failover: ") {
		t.Fatalf("the load generator reports errors or losses:\n%s", out)
	}

	// Every acknowledged snapshot, identical from both.
	type ackLine struct {
		Hostname   string `json:"hostname"`
		CapturedAt string `json:"captured_at"`
		ID         int64  `json:"snapshot_id"`
	}
	f, err := os.Open(acksFile)
	if err != nil {
		t.Fatal(err)
	}
	var acks []ackLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l ackLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("acks file: %q: %v", sc.Text(), err)
		}
		acks = append(acks, l)
	}
	_ = f.Close()
	if len(acks) < 300 {
		t.Fatalf("only %d snapshots acknowledged", len(acks))
	}
	get := func(base, path string) string { t.Helper(); return statusAndBody(t, base+path) }
	byHost := map[string][]string{}
	for _, ak := range acks {
		byHost[ak.Hostname] = append(byHost[ak.Hostname], ak.CapturedAt)
		for _, p := range []string{fmt.Sprintf("/api/v1/snapshots/%d", ak.ID), fmt.Sprintf("/api/v1/snapshots/%d/processes", ak.ID)} {
			ga, gb := get(a.url, p), get(b.url, p)
			if ga != gb || !strings.HasPrefix(ga, "200 ") {
				t.Fatalf("%s: A %.300s\nB %.300s", p, ga, gb)
			}
		}
		var meta struct {
			Hostname   string `json:"hostname"`
			CapturedAt string `json:"captured_at"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(get(b.url, fmt.Sprintf("/api/v1/snapshots/%d", ak.ID)), "200 ")), &meta); err != nil ||
			meta.Hostname != ak.Hostname || meta.CapturedAt != ak.CapturedAt {
			t.Fatalf("snapshot %d is %+v, acknowledged as %s at %s (%v)", ak.ID, meta, ak.Hostname, ak.CapturedAt, err)
		}
	}
	if len(byHost) != hosts {
		t.Fatalf("%d hosts acknowledged, want %d", len(byHost), hosts)
	}
	// None duplicated: each host lists exactly its acknowledged snapshots,
	// once each, on both aggregators.
	span := "&from=" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + "&to=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for h, ats := range byHost {
		slices.Sort(ats)
		for _, p := range []*aggProc{a, b} {
			var list []struct {
				At string `json:"captured_at"`
			}
			body := get(p.url, "/api/v1/hosts/"+url.PathEscape(h)+"/snapshots?limit=10000"+span)
			if err := json.Unmarshal([]byte(strings.TrimPrefix(body, "200 ")), &list); err != nil {
				t.Fatalf("%s on %s: %.300s", h, p.name, body)
			}
			var got []string
			for _, s := range list {
				got = append(got, s.At)
			}
			slices.Sort(got)
			if !slices.Equal(got, ats) {
				t.Fatalf("%s on %s: %d snapshots stored, %d acknowledged (stored twice or not acknowledged: %v)",
					h, p.name, len(got), len(ats), diffSorted(got, ats))
			}
		}
	}

	// History: the series routes of both answer alike, with exactly the
	// samples VictoriaMetrics holds, each at an acknowledged captured_at
	// (remote write from A may have lost what it had not sent when it was
	// killed: history gaps are that failure mode's documented cost).
	from, to := time.Now().Add(-10*time.Minute).Unix(), time.Now().Add(time.Minute).Unix()
	points := 0
	for h, ats := range byHost {
		acked := map[int64]bool{}
		for _, at := range ats {
			tm, _ := time.Parse(time.RFC3339Nano, at)
			acked[(tm.UnixMilli()+50)/100*100] = true // history keeps times to 100 ms
		}
		path := fmt.Sprintf("/api/v1/hosts/%s/series?metric=cpu&from=%d&to=%d", url.PathEscape(h), from, to)
		deadline := time.Now().Add(time.Minute)
		for {
			ga, gb := get(a.url, path), get(b.url, path)
			inVM := vmSamples(t, vm.URL, h, to)
			var ans struct {
				Series []struct {
					Values [][2]float64 `json:"values"`
				} `json:"series"`
			}
			_ = json.Unmarshal([]byte(strings.TrimPrefix(ga, "200 ")), &ans)
			var served map[int64]float64
			if len(ans.Series) == 1 {
				served = map[int64]float64{}
				for _, v := range ans.Series[0].Values {
					served[int64(v[0]*1000+0.5)] = v[1]
				}
			}
			if ga == gb && strings.HasPrefix(ga, "200 ") && len(inVM) > 0 && reflect.DeepEqual(served, inVM) {
				for ms := range served {
					if !acked[ms] {
						t.Fatalf("%s: a history point at %d ms is no acknowledged snapshot", h, ms)
					}
				}
				points += len(served)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: history from A and B and VictoriaMetrics' samples never agreed:\nA %.400s\nB %.400s\nVM %v", h, ga, gb, inVM)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	t.Logf("%d snapshots acknowledged and read back identical from both aggregators; %d history points, all VictoriaMetrics' samples", len(acks), points)
	if points < len(acks)/2 {
		t.Errorf("only %d history points for %d snapshots", points, len(acks))
	}
	for _, p := range []*aggProc{a, b} {
		if _, err := os.Stat(filepath.Join(p.storage, "history")); !os.IsNotExist(err) {
			t.Errorf("aggregator %s opened an embedded history store (%v): --history.url must read from VictoriaMetrics alone", p.name, err)
		}
	}
}

// vmSamples are VictoriaMetrics' own CPU samples of a host: unix ms to value.
func vmSamples(t *testing.T, base, host string, at int64) map[int64]float64 {
	t.Helper()
	// A PromQL string literal takes Go's escapes.
	q := url.Values{"query": {fmt.Sprintf(`procscope_snapshot_cpu_usage_percent{hostname=%s}[15m]`, strconv.Quote(host))}, "time": {strconv.FormatInt(at, 10)}}
	var r struct {
		Data struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(base+"/api/v1/query?"+q.Encode(), &r); err != nil || len(r.Data.Result) != 1 {
		return nil
	}
	out := map[int64]float64{}
	for _, v := range r.Data.Result[0].Values {
		ts, _ := v[0].(float64)
		s, _ := v[1].(string)
		f, _ := strconv.ParseFloat(s, 64)
		out[int64(ts*1000+0.5)] = f
	}
	return out
}

// unreadRequests counts the established connections to base's
// 127.0.0.1 port holding bytes the aggregator has not read (Linux
// /proc/net/tcp: local address, state 01, rx_queue).
func unreadRequests(t *testing.T, base string) int {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	n := 0
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 5 || f[1] != local || f[3] != "01" {
			continue
		}
		if _, rx, ok := strings.Cut(f[4], ":"); ok && strings.Trim(rx, "0") != "" {
			n++
		}
	}
	return n
}

// storedBy is an aggregator's procscope_aggregator_snapshots_stored_total
// (snapshots it stored itself, repeats not counted), -1 when unreadable.
func storedBy(base string) float64 {
	resp, err := httpClient.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "procscope_aggregator_snapshots_stored_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// diffSorted names a few entries in one sorted list and not the other.
func diffSorted(got, want []string) []string {
	var d []string
	for _, g := range got {
		if _, ok := slices.BinarySearch(want, g); !ok && len(d) < 5 {
			d = append(d, "+"+g)
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] && len(d) < 10 {
			d = append(d, "twice "+got[i])
		}
	}
	for _, w := range want {
		if _, ok := slices.BinarySearch(got, w); !ok && len(d) < 15 {
			d = append(d, "-"+w)
		}
	}
	return d
}

// aggProc is an aggregator this test started on a fixed address (so
// that a restart keeps the URL the load generator fails over from), on
// a storage directory of its own. It is stopped by its PID in t.Cleanup.
type aggProc struct {
	name, url, storage string
	cmd                *exec.Cmd
	done               chan struct{}
	log                testutil.LogBuffer
}

func startAggregatorAt(t *testing.T, name, bin, addr string, env, flags []string) *aggProc {
	t.Helper()
	p := &aggProc{name: name, url: "http://" + addr, storage: t.TempDir(), done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"--web.listen-address=" + addr, "--storage.path=" + p.storage}, flags...)...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.kill()
		}
		if t.Failed() {
			t.Logf("--- log of aggregator %s ---\n%s", name, tail(p.log.String(), 4000))
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-p.done:
			t.Fatalf("aggregator %s exited at start:\n%s", name, p.log.String())
		default:
		}
		if resp, err := httpClient.Get(p.url + "/-/ready"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Logf("aggregator %s: pid %d at %s", name, p.pid(), p.url)
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("aggregator %s not ready on %s within a minute:\n%s", name, p.url, p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *aggProc) pid() int { return p.cmd.Process.Pid }

// kill SIGKILLs this process only (while it has not been reaped, so the
// PID is still its own) and waits for it.
func (p *aggProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}
