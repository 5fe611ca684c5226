package testutil

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TSDB is a time-series database (VictoriaMetrics single node or
// Prometheus) this test started on 127.0.0.1, its data in a temp dir. It
// is stopped, by its PID, in t.Cleanup.
type TSDB struct {
	// URL is the base of its query API (…/api/v1/query_range lives under it).
	URL string
	// RemoteWriteURL takes Prometheus remote write.
	RemoteWriteURL string
	cmd            *exec.Cmd
	out            LogBuffer
}

// Log is what the database printed so far.
func (d *TSDB) Log() string { return d.out.String() }

func (d *TSDB) Write(p []byte) (int, error) { return d.out.Write(p) }

// Binary finds a program of a Debian package on PATH. Missing, the test
// skips saying how to install it, or fails under REQUIRE_E2E=1.
func Binary(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("REQUIRE_E2E") != "" {
			t.Fatalf("%s not installed (apt-get install %s) and REQUIRE_E2E is set", name, pkg)
		}
		t.Skipf("SKIPPING: %s not installed (apt-get install %s); set REQUIRE_E2E=1 to make this a failure", name, pkg)
	}
	return p
}

// FreePort asks the OS for a free port on 127.0.0.1 and returns
// "127.0.0.1:PORT". The port is released before it is used: a program
// that cannot take a listener from us has to bind it itself.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// StartVictoriaMetrics starts Debian's victoria-metrics single node.
// -search.latencyOffset=0 makes a sample searchable at once (the default
// hides the last 30 s, which a test comparing answers cannot wait out);
// -search.disableCache keeps answers from a cache filled before the test
// wrote everything.
func StartVictoriaMetrics(t testing.TB, extra ...string) *TSDB {
	t.Helper()
	bin := Binary(t, "victoria-metrics", "victoria-metrics")
	addr := FreePort(t)
	args := append([]string{"-httpListenAddr=" + addr, "-storageDataPath=" + t.TempDir(), "-retentionPeriod=100y",
		"-search.latencyOffset=0s", "-search.disableCache", "-loggerLevel=WARN"}, extra...)
	base := "http://" + addr
	return startTSDB(t, bin, args, base, base+"/api/v1/write", base+"/health")
}

// StartPrometheus starts Debian's prometheus (2.42) as a remote write
// receiver with no scrape targets.
func StartPrometheus(t testing.TB, extra ...string) *TSDB {
	t.Helper()
	bin := Binary(t, "prometheus", "prometheus")
	dir := t.TempDir()
	cfg := dir + "/prometheus.yml"
	// Out-of-order samples accepted for a day back: a test may write
	// series whose samples interleave with another's.
	if err := os.WriteFile(cfg, []byte("global: {}\nstorage:\n  tsdb:\n    out_of_order_time_window: 1d\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := FreePort(t)
	args := append([]string{"--config.file=" + cfg, "--storage.tsdb.path=" + dir + "/data", "--web.listen-address=" + addr,
		"--web.enable-remote-write-receiver", "--storage.tsdb.retention.time=100y", "--log.level=warn"}, extra...)
	base := "http://" + addr
	return startTSDB(t, bin, args, base, base+"/api/v1/write", base+"/-/ready")
}

func startTSDB(t testing.TB, bin string, args []string, base, write, ready string) *TSDB {
	t.Helper()
	d := &TSDB{URL: base, RemoteWriteURL: write, out: LogBuffer{Cap: 1 << 20}}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = d, d
	// Its own process group, so a stop reaches nothing else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	d.cmd = cmd
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("%s exited at start:\n%s", bin, d.Log())
		default:
		}
		resp, err := client.Get(ready)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready on %s after 30 s:\n%s", bin, base, d.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// String names the database for test logs.
func (d *TSDB) String() string { return fmt.Sprintf("%s (pid %d)", d.URL, d.cmd.Process.Pid) }

// PID is the database's process id (a test may SIGKILL it).
func (d *TSDB) PID() int { return d.cmd.Process.Pid }
