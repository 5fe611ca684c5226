package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procscope/procscope/tools/loadgen/gen"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// serve starts the aggregator on storage for the rest of the test: a
// failed start ends the test, and the server is stopped (30 s grace) when
// the test is over.
func serve(t *testing.T, bin, storage string, extra ...string) *Process {
	t.Helper()
	p, err := Start(bin, storage, 2*time.Minute, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(30 * time.Second) })
	return p
}

// binary builds the aggregator once for all tests of this package.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "procscope-apptest-")
		if buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		builtBin, buildErr = Build(ctx, buildDir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

type sent struct {
	host  string
	at    string
	procs []gen.Process
	id    int64
}

func post(client *http.Client, url, key string, body []byte) (int, int64, error) {
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/ingest", bytes.NewReader(body))
	req.Header.Set("X-API-KEY", key)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = res.Body.Close() }()
	var r struct {
		ID int64 `json:"snapshot_id"`
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, 0, err
	}
	_ = json.Unmarshal(b, &r)
	return res.StatusCode, r.ID, nil
}

// TestKill9KeepsAcknowledgedSnapshots: ingest from several goroutines,
// SIGKILL the aggregator at a random moment, restart it on the same
// storage, and check that every acknowledged snapshot reads back with the
// same content, that no id was given twice, and that key bindings held.
func TestKill9KeepsAcknowledgedSnapshots(t *testing.T) {
	bin := binary(t)
	storage := t.TempDir()
	const rounds, writers = 4, 4
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	client := &http.Client{Timeout: 10 * time.Second}
	var acked []sent
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

	for round := range rounds {
		p, err := Start(bin, storage, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		// Everything acknowledged before survives the previous kill.
		verifyAll(t, client, p.URL, acked)
		if round > 0 {
			// Bindings are durable too: another key for a known host is 403.
			code, _, err := post(client, p.URL, "intruder", gen.BodyOf("kill-w0", base.Format(time.RFC3339), nil))
			if err != nil || code != http.StatusForbidden {
				t.Fatalf("round %d: wrong key for a known host: %d %v", round, code, err)
			}
		}

		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				host := fmt.Sprintf("kill-w%d", w)
				for i := 0; i < 10000; i++ { // bounded; the kill ends it sooner
					select {
					case <-stop:
						return
					default:
					}
					at := base.Add(time.Duration(round*100000+i) * time.Millisecond).Format("2006-01-02T15:04:05.000Z07:00")
					procs := gen.Processes(20+i%50, uint64(round*1000+w*100+i), i%2 == 0)
					code, id, err := post(client, p.URL, "key-"+host, gen.BodyOf(host, at, procs))
					if err != nil {
						return // killed
					}
					if code != http.StatusCreated {
						t.Errorf("%s: status %d", host, code)
						return
					}
					mu.Lock()
					acked = append(acked, sent{host: host, at: at, procs: procs, id: id})
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(150+rng.IntN(600)) * time.Millisecond)
		p.Kill()
		close(stop)
		wg.Wait()
		t.Logf("round %d: killed pid %d with %d snapshots acknowledged so far", round, p.PID(), len(acked))
	}
	p := serve(t, bin, storage)
	verifyAll(t, client, p.URL, acked)
	ids := map[int64]bool{}
	for _, s := range acked {
		if ids[s.id] {
			t.Fatalf("snapshot id %d acknowledged twice", s.id)
		}
		ids[s.id] = true
	}
	if len(acked) < rounds {
		t.Fatalf("only %d snapshots acknowledged in %d rounds: the test proved little", len(acked), rounds)
	}
	t.Logf("%d acknowledged snapshots over %d kills: all read back identical, no id reused", len(acked), rounds)
}

func verifyAll(t *testing.T, client *http.Client, url string, acked []sent) {
	t.Helper()
	for _, s := range acked {
		var meta struct {
			Hostname     string `json:"hostname"`
			CapturedAt   string `json:"captured_at"`
			ProcessCount int    `json:"process_count"`
		}
		if code := getJSON(t, client, fmt.Sprintf("%s/api/v1/snapshots/%d", url, s.id), &meta); code != 200 {
			t.Fatalf("acknowledged snapshot %d (%s %s) lost: status %d", s.id, s.host, s.at, code)
		}
		if meta.Hostname != s.host || meta.CapturedAt != s.at || meta.ProcessCount != len(s.procs) {
			t.Fatalf("snapshot %d is %+v, sent %s %s with %d processes", s.id, meta, s.host, s.at, len(s.procs))
		}
		var got []gen.Process
		if code := getJSON(t, client, fmt.Sprintf("%s/api/v1/snapshots/%d/processes", url, s.id), &got); code != 200 {
			t.Fatalf("processes of %d: status %d", s.id, code)
		}
		if !reflect.DeepEqual(got, s.procs) && (len(got) != 0 || len(s.procs) != 0) {
			t.Fatalf("processes of snapshot %d differ from what was sent", s.id)
		}
	}
}

func getJSON(t *testing.T, client *http.Client, url string, v any) int {
	t.Helper()
	res, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode == 200 {
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return res.StatusCode
}

// TestAdminCommands runs `hosts list|delete|reset-key` on a store the
// binary filled, and checks exit codes for bad usage.
func TestAdminCommands(t *testing.T) {
	bin := binary(t)
	storage := t.TempDir()
	p, err := Start(bin, storage, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, h := range []string{"alpha", "beta", "evil\u202ehost"} {
		if code, _, err := post(client, p.URL, "key-"+h, gen.Body(3, h, "2026-11-25T17:00:00Z", false)); err != nil || code != 201 {
			t.Fatalf("ingest %q: %d %v", h, code, err)
		}
	}
	if !p.Stop(30 * time.Second) {
		t.Fatalf("SIGTERM did not stop the aggregator cleanly:\n%s", p.Log())
	}

	run := func(args ...string) (int, string, string) { t.Helper(); return runBin(t, bin, args...) }
	sp := "--storage.path=" + storage
	code, out, _ := run("hosts", "list", sp)
	if code != 0 || !strings.Contains(out, "alpha") || !strings.Contains(out, "beta") || !strings.Contains(out, `"evil\u202ehost"`) {
		t.Fatalf("hosts list: %d\n%s", code, out)
	}
	if code, _, _ := run("hosts", "delete", "beta", sp); code != 0 {
		t.Fatalf("delete: exit %d", code)
	}
	if _, out, _ := run("hosts", "list", sp); strings.Contains(out, "beta") {
		t.Fatalf("beta still listed:\n%s", out)
	}
	if code, _, errOut := run("hosts", "delete", "beta", sp); code != 1 || !strings.Contains(errOut, "no host named beta") {
		t.Fatalf("deleting an unknown host: exit %d %s", code, errOut)
	}
	code, out, _ = run("hosts", "reset-key", "alpha", sp)
	newKey := regexp.MustCompile(`(?m)^[0-9a-f]{64}$`).FindString(out)
	if code != 0 || newKey == "" {
		t.Fatalf("reset-key: exit %d, no key printed:\n%s", code, out)
	}
	for _, bad := range [][]string{{"hosts"}, {"hosts", "delete"}, {"hosts", "frobnicate"}, {"--no-such-flag"}, {"hosts", "delete", "", sp},
		{"--web.read-header-timeout=11s", sp}, {"--ingest.max-processes=0", sp}, {"--storage.retention=banana", sp}} {
		if code, _, _ := run(bad...); code != 2 {
			t.Errorf("%q: exit %d, want 2", bad, code)
		}
	}
	// A web config that is missing or broken is the user's to fix: exit
	// 2, as in the exporter.
	if code, _, errOut := run("--web.config.file="+filepath.Join(storage, "no-such.yml"), sp); code != 2 || !strings.Contains(errOut, "--web.config.file=") {
		t.Errorf("missing web config: exit %d %s", code, errOut)
	}
	if code, _, errOut := run("hosts", "list", "--storage.path="+filepath.Join(storage, "missing")); code != 1 || !strings.Contains(errOut, "no storage directory") {
		t.Errorf("missing storage: exit %d %s", code, errOut)
	}

	// Key bindings survive the admin commands and a restart.
	p, err = Start(bin, storage, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(30 * time.Second)
	if code, _, _ := post(client, p.URL, "wrong", gen.Body(3, "evil\u202ehost", "2026-11-25T17:00:02Z", false)); code != 403 {
		t.Fatalf("keys must survive the admin commands: %d", code)
	}
	// alpha's key was reset to the printed one: the old key and any other
	// are refused (even in open enrolment, the default on loopback), the
	// printed one works.
	for _, k := range []string{"key-alpha", "key-alpha-reinstalled"} {
		if code, _, err := post(client, p.URL, k, gen.Body(3, "alpha", "2026-11-25T17:00:03Z", false)); code != 403 {
			t.Fatalf("key %q after reset-key: %d %v, want 403", k, code, err)
		}
	}
	if code, _, err := post(client, p.URL, newKey, gen.Body(3, "alpha", "2026-11-25T17:00:04Z", false)); err != nil || code != 201 {
		t.Fatalf("ingest with the key reset-key printed: %d %v", code, err)
	}
}
