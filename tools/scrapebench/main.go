// Command scrapebench compares the cost of one /metrics scrape of
// procscope-exporter with one of node_exporter, measured in the same run on
// the same machine so that the ratio holds on a noisy, shared host.
//
// It builds the exporter (or takes --exporter.binary), starts it and
// prometheus-node-exporter on free 127.0.0.1 ports, scrapes each --scrapes
// times alternately, as Prometheus does (gzip accepted), and reports wall
// latency, CPU time per scrape (utime+stime deltas from /proc/PID/stat)
// and resident memory. It stops only the two processes it started, by PID.
//
//	go run ./tools/scrapebench --scrapes=300
//
// The exporter runs with a 1h walk interval so that its one walk happens
// before the measurement and only the scrape cost is counted; the walk's
// own cost is reported from procscope_walk_duration_seconds.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/procscope/procscope/internal/testutil"
)

func main() {
	app := kingpin.New("scrapebench", "Compare /metrics cost of procscope-exporter and node_exporter.")
	scrapes := app.Flag("scrapes", "Scrapes of each exporter.").Default("300").Int()
	exporterBin := app.Flag("exporter.binary", "procscope-exporter binary; empty builds one with the Makefile's flags.").String()
	nodeBin := app.Flag("node-exporter.binary", "node_exporter binary.").Default("/usr/bin/prometheus-node-exporter").String()
	var o options
	app.Flag("interval", "The exporter's --push.interval. The default keeps walks out of the measured CPU; 2s shows the real steady state (CPU then includes walks).").
		Default("1h").DurationVar(&o.interval)
	app.Flag("push", "Let the exporter push every walk to a receiver inside scrapebench (answers 201), as in production.").BoolVar(&o.push)
	app.Flag("processes", "Start this many extra `sleep` processes (stopped at the end, by PID) to make the host busier.").
		Default("0").IntVar(&o.processes)
	kingpin.MustParse(app.Parse(os.Args[1:]))
	o.scrapes, o.exporterBin, o.nodeBin = *scrapes, *exporterBin, *nodeBin
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "scrapebench:", err)
		os.Exit(1)
	}
}

type target struct {
	name string
	cmd  *exec.Cmd
	url  string
	lat  []time.Duration
	cpu  time.Duration
	size int
}

type options struct {
	scrapes              int
	exporterBin, nodeBin string
	interval             time.Duration
	push                 bool
	processes            int
}

func run(o options) error {
	n, exporterBin, nodeBin := o.scrapes, o.exporterBin, o.nodeBin
	if n < 1 || n > 100000 {
		return errors.New("--scrapes must be 1-100000")
	}
	if o.processes < 0 || o.processes > 10000 {
		return errors.New("--processes must be 0-10000")
	}
	for i := 0; i < o.processes; i++ {
		c := exec.Command("sleep", "3600")
		if err := c.Start(); err != nil {
			return err
		}
		defer func() { _ = c.Process.Kill(); _ = c.Wait() }()
	}
	pushURL := ""
	if o.push {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		var received atomic.Int64
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			received.Add(1)
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"snapshot_id":1}`)
		})}
		go func() { _ = srv.Serve(ln) }()
		defer func() {
			_ = srv.Close()
			fmt.Printf("receiver got %d snapshots\n", received.Load())
		}()
		pushURL = "http://" + ln.Addr().String() + "/api/v1/ingest"
	}
	if _, err := os.Stat(nodeBin); err != nil {
		return fmt.Errorf("node_exporter: %w (apt-get install prometheus-node-exporter)", err)
	}
	tmp, err := os.MkdirTemp("", "scrapebench")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	if exporterBin == "" {
		exporterBin = filepath.Join(tmp, "procscope-exporter")
		cmd := exec.Command("go", "build", "-trimpath",
			"-ldflags", "-s -w", "-o", exporterBin, "./exporter")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build (run from the repository root): %v\n%s", err, out)
		}
	}
	pp, err := freePort()
	if err != nil {
		return err
	}
	np, err := freePort()
	if err != nil {
		return err
	}
	ours := &target{name: "procscope-exporter", url: fmt.Sprintf("http://127.0.0.1:%d/metrics", pp),
		cmd: exec.Command(exporterBin, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", pp), "--push.url="+pushURL,
			"--push.interval="+o.interval.String(), "--state.dir="+filepath.Join(tmp, "state"), "--log.level=warn")}
	node := &target{name: "node_exporter", url: fmt.Sprintf("http://127.0.0.1:%d/metrics", np),
		cmd: exec.Command(nodeBin, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", np), "--log.level=warn")}
	ours.cmd.Stderr = os.Stderr
	// node_exporter logs every failed collector (systemd without D-Bus in a
	// container) at error level on every scrape: noise here.
	node.cmd.Stderr = io.Discard
	targets := []*target{ours, node}
	for _, t := range targets {
		t.cmd.Stdout = io.Discard
		if err := t.cmd.Start(); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		defer func(c *exec.Cmd) {
			_ = c.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = c.Process.Kill()
			}
		}(t.cmd)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	ready := strings.Replace(ours.url, "/metrics", "/-/ready", 1)
	for _, u := range []string{ready, node.url} {
		if err := waitOK(client, u, 20*time.Second); err != nil {
			return err
		}
	}
	for i := 0; i < 20; i++ { // warm-up: connections, caches, first GC
		for _, t := range targets {
			if _, err := scrape(client, t.url); err != nil {
				return err
			}
		}
	}
	cpu0 := map[*target]time.Duration{}
	for _, t := range targets {
		if cpu0[t], err = testutil.ProcCPU(t.cmd.Process.Pid); err != nil {
			return err
		}
	}
	for i := 0; i < n; i++ {
		for _, t := range targets {
			start := time.Now()
			size, err := scrape(client, t.url)
			if err != nil {
				return err
			}
			t.lat = append(t.lat, time.Since(start))
			t.size = size
		}
	}
	for _, t := range targets {
		c, err := testutil.ProcCPU(t.cmd.Process.Pid)
		if err != nil {
			return err
		}
		t.cpu = c - cpu0[t]
	}

	procs, _ := os.ReadDir("/proc")
	pids := 0
	for _, e := range procs {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			pids++
		}
	}
	fmt.Printf("scrapes: %d each, alternating; %s, %d CPUs, %d processes; exporter interval %s, push %v\n",
		n, runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), pids, o.interval, o.push)
	fmt.Printf("%-20s %10s %10s %10s %14s %10s %12s\n", "exporter", "mean", "p50", "p95", "cpu/scrape", "rss", "wire bytes")
	for _, t := range targets {
		rss, _ := status(t.cmd.Process.Pid, "VmRSS:")
		slices.Sort(t.lat)
		var sum time.Duration
		for _, l := range t.lat {
			sum += l
		}
		fmt.Printf("%-20s %10s %10s %10s %14s %8.1fMB %11dB\n", t.name,
			(sum / time.Duration(n)).Round(time.Microsecond), t.lat[n/2].Round(time.Microsecond),
			t.lat[n*95/100].Round(time.Microsecond), (t.cpu / time.Duration(n)).Round(time.Microsecond),
			float64(rss)/(1<<20), t.size)
	}
	mean := func(t *target) float64 {
		var s time.Duration
		for _, l := range t.lat {
			s += l
		}
		return float64(s) / float64(n)
	}
	fmt.Printf("ratio node_exporter/procscope: latency %.1fx, cpu %.1fx\n",
		mean(node)/mean(ours), float64(node.cpu)/float64(max(ours.cpu, time.Microsecond)))
	anon, _ := status(ours.cmd.Process.Pid, "RssAnon:")
	file, _ := status(ours.cmd.Process.Pid, "RssFile:")
	hwm, _ := status(ours.cmd.Process.Pid, "VmHWM:")
	fmt.Printf("procscope-exporter rss: anon %.1fMB + file (binary) %.1fMB; peak %.1fMB\n",
		float64(anon)/(1<<20), float64(file)/(1<<20), float64(hwm)/(1<<20))
	if w, err := walkDuration(client, ours.url); err == nil {
		fmt.Printf("procscope walk (once per --push.interval, not per scrape): %s\n", w)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitOK(c *http.Client, url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %s", url, within)
}

// scrape fetches like Prometheus: text format, gzip accepted. Returns the
// bytes on the wire.
func scrape(c *http.Client, url string) (int, error) {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	n, err := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return int(n), err
}

// status reads one "kB" line of /proc/PID/status, in bytes.
func status(pid int, key string) (int64, error) {
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer func() { _ = fh.Close() }()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no " + key)
}

func walkDuration(c *http.Client, url string) (time.Duration, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "procscope_walk_duration_seconds "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return time.Duration(f * float64(time.Second)), err
		}
	}
	return 0, errors.New("no procscope_walk_duration_seconds")
}
