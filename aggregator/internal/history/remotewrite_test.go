package history

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	"github.com/golang/snappy"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// receiver is a fake remote write endpoint that decodes what it gets and
// answers with the statuses queued in fail first.
type receiver struct {
	mu      sync.Mutex
	fail    []int
	calls   int
	samples map[string][]prompb.Sample // by label string
	headers http.Header
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.calls++
	rc.headers = r.Header.Clone()
	if len(rc.fail) > 0 {
		code := rc.fail[0]
		rc.fail = rc.fail[1:]
		http.Error(w, "induced failure", code)
		return
	}
	body, _ := io.ReadAll(r.Body)
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		http.Error(w, "snappy: "+err.Error(), 400)
		return
	}
	wru := prompb.GetWriteRequestUnmarshaler()
	defer prompb.PutWriteRequestUnmarshaler(wru)
	wr, err := wru.UnmarshalProtobuf(raw)
	if err != nil {
		http.Error(w, "protobuf: "+err.Error(), 400)
		return
	}
	for _, ts := range wr.Timeseries {
		k := prompb.LabelsToString(ts.Labels)
		rc.samples[k] = append(rc.samples[k], ts.Samples...)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) snapshot() (calls int, samples map[string][]prompb.Sample) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[string][]prompb.Sample, len(rc.samples))
	for k, v := range rc.samples {
		out[k] = append([]prompb.Sample(nil), v...)
	}
	return rc.calls, out
}

func testSamples(n int, at time.Time) []sample {
	var out []sample
	for i := range n {
		out = append(out, buildSamples(testRequest("rw-host", at.Add(time.Duration(i)*2*time.Second), float64(i), nil), 0)...)
	}
	return out
}

func TestRemoteWriteRetriesThenDelivers(t *testing.T) {
	rc := &receiver{fail: []int{503, 429, 500}, samples: map[string][]prompb.Sample{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/api/v1/write")
	w := newRemoteWriter(u, remoteOptions{minBackoff: time.Millisecond, flushInterval: 10 * time.Millisecond}, testLogger(t))
	at := time.Unix(1.7e9, 0)
	batch := testSamples(3, at)
	w.enqueue(batch)
	w.stop(10 * time.Second)

	calls, got := rc.snapshot()
	if calls != 4 {
		t.Errorf("%d requests, want 3 failures then 1 success", calls)
	}
	st := w.stats()
	if st.Sent != uint64(len(batch)) || st.Retries != 3 || st.Failed != 0 {
		t.Errorf("stats %+v, want %d sent after 3 retries", st, len(batch))
	}
	cpu := got[`{__name__="procscope_snapshot_cpu_usage_percent",hostname="rw-host"}`]
	if len(cpu) != 3 || cpu[2].Value != 2 || cpu[2].Timestamp != at.Add(4*time.Second).UnixMilli() {
		t.Errorf("cpu samples %+v; series received: %d", cpu, len(got))
	}
	for h, want := range map[string]string{
		"Content-Encoding":                  "snappy",
		"Content-Type":                      "application/x-protobuf",
		"X-Prometheus-Remote-Write-Version": "0.1.0",
	} {
		if rc.headers.Get(h) != want {
			t.Errorf("header %s = %q, want %q", h, rc.headers.Get(h), want)
		}
	}
}

func TestRemoteWriteDropsOnClientError(t *testing.T) {
	rc := &receiver{fail: []int{400}, samples: map[string][]prompb.Sample{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	w := newRemoteWriter(u, remoteOptions{minBackoff: time.Millisecond, flushInterval: 10 * time.Millisecond}, testLogger(t))
	batch := testSamples(1, time.Unix(1.7e9, 0))
	w.enqueue(batch)
	w.stop(10 * time.Second)
	if calls, _ := rc.snapshot(); calls != 1 {
		t.Errorf("%d requests: a 400 must not be retried", calls)
	}
	if st := w.stats(); st.Failed != uint64(len(batch)) || st.Sent != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestRemoteWriteBoundedQueueAndUnreachableReceiver(t *testing.T) {
	// A port nobody listens on: take one from the OS, then close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	u, _ := url.Parse("http://" + addr + "/write")
	w := newRemoteWriter(u, remoteOptions{queueSamples: 10, minBackoff: time.Millisecond, maxAttempts: 2, flushInterval: time.Hour}, testLogger(t))
	batch := testSamples(4, time.Unix(1.7e9, 0))
	w.enqueue(batch) // 10 fit in the queue
	start := time.Now()
	w.stop(5 * time.Second)
	st := w.stats()
	if st.Dropped != uint64(len(batch)-10) || st.Failed != 10 || st.Sent != 0 {
		t.Errorf("stats %+v, want %d dropped at the queue and 10 failed", st, len(batch)-10)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %v", d)
	}
}

// TestRemoteWriteToPrometheus forwards history to a real Prometheus (Debian's
// /usr/bin/prometheus with its remote write receiver on) and reads it back
// with PromQL.
func TestRemoteWriteToPrometheus(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("REQUIRE_E2E") != "" {
			t.Fatalf("REQUIRE_E2E is set but prometheus is not installed: %v", err)
		}
		t.Skip("SKIPPED: prometheus is not installed (apt-get install prometheus); set REQUIRE_E2E=1 to fail instead")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // Prometheus takes the port; a race with another process is unlikely and fails loudly
	tmp := t.TempDir()
	cfg := filepath.Join(tmp, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global:\n  scrape_interval: 1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--config.file="+cfg,
		"--storage.tsdb.path="+filepath.Join(tmp, "data"),
		"--web.listen-address="+addr,
		"--web.enable-remote-write-receiver",
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() {
		_ = syscall.Kill(pid, syscall.SIGTERM) // only the process we started
		_ = cmd.Wait()
	}()
	base := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 60s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	h := openTest(t, t.TempDir(), Options{TopK: 2, RemoteWriteURL: base + "/api/v1/write", Logger: testLogger(t)})
	now := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	procs := []snapshot.Process{{PID: 99, Name: `evil"name\n{}`, CPUPercent: 12.5, MemoryMB: 64, CreateTime: "2026-11-25T08:00:00Z"}}
	for i := range 5 {
		h.Add(testRequest(`host "quoted"`, now.Add(time.Duration(i)*2*time.Second), 10+float64(i), procs))
	}
	if err := h.Close(); err != nil { // Close delivers what is queued
		t.Fatal(err)
	}
	if st := h.Stats().Remote; st.Sent == 0 || st.Failed != 0 {
		t.Fatalf("remote stats %+v", st)
	}

	query := func(q string, at time.Time) []map[string]any {
		t.Helper()
		v := url.Values{"query": {q}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
		resp, err := http.Get(base + "/api/v1/query?" + v.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var r struct {
			Status string
			Data   struct{ Result []map[string]any }
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
			t.Fatalf("query %s: status %q, %v", q, r.Status, err)
		}
		return r.Data.Result
	}
	last := now.Add(8 * time.Second)
	res := query(fmt.Sprintf(`%s{hostname=%q}`, MetricCPU, `host "quoted"`), last)
	if len(res) != 1 {
		t.Fatalf("cpu query: %v", res)
	}
	if val := res[0]["value"].([]any)[1]; val != "14" {
		t.Errorf("cpu at the last sample = %v, want 14", val)
	}
	res = query(fmt.Sprintf(`count_over_time(%s[1m])`, MetricCPU), last)
	if len(res) != 1 || res[0]["value"].([]any)[1] != "5" {
		t.Errorf("count_over_time = %v, want 5 samples", res)
	}
	res = query(MetricProcessRSS, last)
	if len(res) != 1 {
		t.Fatalf("rss query: %v", res)
	}
	m := res[0]["metric"].(map[string]any)
	if m["name"] != `evil"name\n{}` || m["pid"] != "99" || m["create_time"] != "2026-11-25T08:00:00Z" {
		t.Errorf("process labels %v", m)
	}
	if res[0]["value"].([]any)[1] != strconv.Itoa(64<<20) {
		t.Errorf("rss %v, want %d", res[0]["value"], 64<<20)
	}
}
