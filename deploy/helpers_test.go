package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/procscope/procscope/internal/testutil"
)

// repoRoot is the module root: tests run in deploy/.
const repoRoot = ".."

// requireTool returns the path of an external program, or skips the test
// loudly when it is missing, unless REQUIRE_E2E is set (CI), when a
// missing program is a failure.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("REQUIRE_E2E") != "" {
		t.Fatalf("%s is required (REQUIRE_E2E is set) but not found: %v", name, err)
	}
	t.Skipf("SKIPPED: %s not found (%v); install it (Debian: see .ci/run) or set REQUIRE_E2E=1 to make this a failure", name, err)
	return ""
}

// binaries are the exporter and aggregator built once per test run.
type binaries struct {
	Exporter, Aggregator string
}

var (
	buildOnce sync.Once
	built     binaries
	buildErr  error
	buildDir  string
)

// TestMain removes the shared build directory after every test ran.
func TestMain(m *testing.M) {
	code := testutil.PostgresMain(m) // and stops the PostgreSQL cluster, if a test started one
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	if releaseDir != "" { // packages_test.go
		_ = os.RemoveAll(releaseDir)
	}
	os.Exit(code)
}

// buildBinaries builds ./exporter and ./aggregator into a temporary
// directory (once per test binary: the aggregator takes a while to link).
func buildBinaries(t *testing.T) binaries {
	t.Helper()
	for _, dir := range []string{"exporter", "aggregator"} {
		if m, _ := filepath.Glob(filepath.Join(repoRoot, dir, "*.go")); len(m) == 0 {
			if os.Getenv("REQUIRE_E2E") != "" {
				t.Fatalf("./%s has no main package to build", dir)
			}
			t.Skipf("SKIPPED: ./%s has no main package yet; set REQUIRE_E2E=1 to make this a failure", dir)
		}
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "procscope-deploy-test-")
		if buildErr != nil {
			return
		}
		for _, b := range []struct {
			pkg, out string
			cgo      bool
		}{
			{"./exporter", "procscope-exporter", false},
			{"./aggregator", "procscope-aggregator", true},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
			// Version labels set as make build and the Dockerfiles set them,
			// so build_info has what dashboards show.
			const v = "github.com/prometheus/common/version."
			ldflags := "-X " + v + "Version=0.0.0-deploy-test -X " + v + "Revision=test -X " + v + "Branch=test"
			buildErr = testutil.Build(ctx, b.pkg, filepath.Join(buildDir, b.out), b.cgo, "-ldflags", ldflags)
			cancel()
			if buildErr != nil {
				return
			}
		}
		built = binaries{
			Exporter:   filepath.Join(buildDir, "procscope-exporter"),
			Aggregator: filepath.Join(buildDir, "procscope-aggregator"),
		}
	})
	if buildErr != nil {
		t.Fatalf("building the binaries: %v", buildErr)
	}
	return built
}

// listenRE finds exporter-toolkit's "Listening on" address in a logfmt or
// JSON log line.
var listenRE = regexp.MustCompile(`"?address"?[=:]"?(127\.0\.0\.1:[0-9]+)`)

// proc is a program started by a test; it is stopped in t.Cleanup.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}      // closed when the process has exited
	log  testutil.LogBuffer // stderr and stdout, for failure messages
}

func (p *proc) Write(b []byte) (int, error) { return p.log.Write(b) }

func (p *proc) Log() string { return p.log.String() }

// start runs a program and registers its stop (SIGTERM, then SIGKILL after
// 10 s, by PID) in t.Cleanup. If waitListen is set it returns the
// 127.0.0.1:PORT address the program logged it listens on.
func start(t *testing.T, name string, waitListen bool, env []string, path string, args ...string) (*proc, string) {
	t.Helper()
	p := &proc{name: name}
	p.cmd = exec.Command(path, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = p
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = pw
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	_ = pw.Close()
	exited := make(chan struct{})
	p.done = exited
	go func() {
		_ = p.cmd.Wait()
		close(exited)
	}()
	addrCh := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			_, _ = p.Write([]byte(line + "\n"))
			if !sent && strings.Contains(line, "Listening on") {
				if m := listenRE.FindStringSubmatch(line); m != nil {
					addrCh <- m[1]
					sent = true
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() {
		pid := p.cmd.Process.Pid
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(pid, syscall.SIGKILL)
			<-exited
		}
		<-copied
		_ = pr.Close()
		if t.Failed() {
			t.Logf("--- log of %s (pid %d) ---\n%s", name, pid, tail(p.Log(), 6000))
		}
	})
	if !waitListen {
		return p, ""
	}
	select {
	case a := <-addrCh:
		return p, a
	case <-exited:
		t.Fatalf("%s exited before listening:\n%s", name, tail(p.Log(), 6000))
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not log a listen address within 30s:\n%s", name, tail(p.Log(), 6000))
	}
	return p, ""
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// getBody fetches a URL and fails the test unless the answer is 200.
func getBody(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, tail(string(b), 2000))
	}
	return b
}

// statusAndBody fetches a URL and returns "STATUS BODY", for comparing
// two aggregators' answers whatever the status.
func statusAndBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}

// getJSON fetches a URL into v; errors are returned, not fatal, so callers
// can poll.
func getJSON(url string, v any) error {
	resp, err := httpClient.Get(url)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %s: %v: %s", url, resp.Status, err, tail(string(b), 500))
	}
	return nil
}
