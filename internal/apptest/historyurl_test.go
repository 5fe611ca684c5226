package apptest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/procscope/procscope/internal/testutil"
)

// TestHistoryFromVictoriaMetrics: the aggregator forwards history by
// remote write to a real VictoriaMetrics and, with --history.url, reads
// it back from there: the real exporter pushes, the series route answers
// with exactly the samples the TSDB holds, the embedded store is never
// created, and with the TSDB gone the route says so (503) instead of
// answering from anywhere else.
func TestHistoryFromVictoriaMetrics(t *testing.T) {
	testHistoryFromTSDB(t, testutil.StartVictoriaMetrics(t))
}

// TestHistoryFromPrometheus is the same with Prometheus 2.42 as the
// remote write receiver and query API.
func TestHistoryFromPrometheus(t *testing.T) {
	testHistoryFromTSDB(t, testutil.StartPrometheus(t))
}

func testHistoryFromTSDB(t *testing.T, vm *testutil.TSDB) {
	storage := t.TempDir()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("t0ken-not-logged\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	agg, err := Start(binary(t), storage, time.Minute, "--remote-write.url="+vm.RemoteWriteURL, "--history.url="+vm.URL,
		"--history.bearer-token-file="+tokenFile, "--log.level=debug")
	if err != nil {
		t.Fatal(err)
	}
	defer agg.Kill()

	cmd := exec.Command(exporterBinary(t), "--web.listen-address=127.0.0.1:0", "--push.url="+agg.URL+"/api/v1/ingest",
		"--push.interval=200ms", "--state.dir="+t.TempDir(), "--collect.sample-window=0", "--collect.top-n=30")
	cmd.Env = append(os.Environ(), "PROCSCOPE_API_KEY=history-url-e2e-key")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, bufio.NewReader(stderr)) }()
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	host, _ := os.Hostname()
	from := time.Now().Add(-time.Minute)
	series := func() (int, seriesAnswer) {
		u := fmt.Sprintf("%s/api/v1/hosts/%s/series?metric=cpu&from=%d&to=%d", agg.URL, url.PathEscape(host),
			from.Unix(), time.Now().Add(time.Minute).Unix())
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var a seriesAnswer
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, &a); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
		} else {
			a.raw = string(b)
		}
		return resp.StatusCode, a
	}
	var ans seriesAnswer
	deadline := time.Now().Add(90 * time.Second)
	for {
		status, a := series()
		if status == http.StatusOK && len(a.Series) == 1 && len(a.Series[0].Values) >= 5 {
			ans = a
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no history from the TSDB: %d %+v\naggregator:\n%s\nvictoria-metrics:\n%s", status, a, agg.Log(), vm.Log())
		}
		time.Sleep(250 * time.Millisecond)
	}

	// The points are VictoriaMetrics' samples: ask it directly.
	q := url.Values{"query": {fmt.Sprintf(`procscope_snapshot_cpu_usage_percent{hostname=%q}[10m]`, host)},
		"time": {fmt.Sprint(time.Now().Add(time.Minute).Unix())}}
	resp, err := http.Get(vm.URL + "/api/v1/query?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var direct struct {
		Data struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&direct)
	_ = resp.Body.Close()
	if err != nil || len(direct.Data.Result) != 1 {
		t.Fatalf("the TSDB answered %+v, %v", direct, err)
	}
	inVM := map[int64]bool{}
	for _, v := range direct.Data.Result[0].Values {
		inVM[int64(v[0].(float64)*1000+0.5)] = true
	}
	for _, v := range ans.Series[0].Values {
		if !inVM[int64(v[0]*1000+0.5)] {
			t.Errorf("point at %v is not a sample of the TSDB", v[0])
		}
	}
	t.Logf("series route: %d points, all among the %d samples of %s", len(ans.Series[0].Values), len(inVM), vm)

	if _, err := os.Stat(filepath.Join(storage, "history")); !os.IsNotExist(err) {
		t.Errorf("the embedded history store exists (%v): it must not be opened with --history.url", err)
	}
	logs := agg.Log()
	if !strings.Contains(logs, "embedded store is not opened") {
		t.Errorf("no start line about --history.url:\n%s", logs)
	}
	if strings.Contains(logs, "t0ken-not-logged") {
		t.Error("the bearer token is in the log")
	}

	// Without VictoriaMetrics there is no history to answer from.
	_ = syscall.Kill(vm.PID(), syscall.SIGKILL)
	deadline = time.Now().Add(30 * time.Second)
	for {
		status, a := series()
		if status == http.StatusServiceUnavailable && strings.Contains(a.raw, "external TSDB") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with the TSDB down the route answered %d %s", status, a.raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var (
	exporterOnce sync.Once
	exporterBin  string
	exporterErr  error
)

// exporterBinary builds the exporter once for this package's tests (into
// the aggregator's build directory, removed by TestMain).
func exporterBinary(t *testing.T) string {
	t.Helper()
	agg := binary(t)
	exporterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		exporterBin = filepath.Join(filepath.Dir(agg), "procscope-exporter")
		exporterErr = testutil.Build(ctx, "./exporter", exporterBin, false)
	})
	if exporterErr != nil {
		t.Fatal(exporterErr)
	}
	return exporterBin
}

type seriesAnswer struct {
	Series []struct {
		Labels map[string]string `json:"labels"`
		Values [][2]float64      `json:"values"`
	} `json:"series"`
	raw string
}
