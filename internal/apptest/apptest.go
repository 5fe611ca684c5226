// Package apptest starts the real procscope-aggregator binary for tests
// and the load generator: built from source into a temp dir, listening on
// 127.0.0.1 with a port chosen by the OS (read back from exporter-toolkit's
// "Listening on" log line), stopped or killed by its own PID only. Its own
// tests are the aggregator's end-to-end tests (kill -9, enrolment, TLS).
//
// It sits in the module's top-level internal/ rather than under
// aggregator/ so that tools/loadgen may import it too (Go's internal rule),
// while staying out of the module's public API.
package apptest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/procscope/procscope/internal/testutil"
)

// Build compiles the aggregator into dir and returns the binary's path.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "procscope-aggregator")
	if err := testutil.Build(ctx, "./aggregator", bin, true); err != nil {
		return "", err
	}
	return bin, nil
}

// Process is a running aggregator.
type Process struct {
	URL  string // http://127.0.0.1:PORT
	cmd  *exec.Cmd
	done chan struct{}

	mu  sync.Mutex
	log strings.Builder // its stderr, for failure messages
}

var listenRE = regexp.MustCompile(`msg="?Listening on"? .*address=(127\.0\.0\.1:\d+)`)

// Start runs bin with --storage.path=storage on 127.0.0.1:0 plus extra
// args, and waits until it listens and /-/ready answers 200 (at most
// timeout).
func Start(bin, storage string, timeout time.Duration, extra ...string) (*Process, error) {
	return startWithProbe(bin, storage, timeout, func(url string) bool {
		res, err := http.Get(url + "/-/ready")
		if err != nil {
			return false
		}
		_ = res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, extra...)
}

// startWithProbe is Start with the readiness check given.
func startWithProbe(bin, storage string, timeout time.Duration, ready func(url string) bool, extra ...string) (*Process, error) {
	args := append([]string{"--web.listen-address=127.0.0.1:0", "--storage.path=" + storage}, extra...)
	cmd := exec.Command(bin, args...)
	// Its own process group, so that a Ctrl-C of the test does not reach
	// it twice and Kill can never hit anything but this PID.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			if p.log.Len() < 1<<20 {
				p.log.WriteString(line + "\n")
			}
			p.mu.Unlock()
			if m := listenRE.FindStringSubmatch(line); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()

	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-p.done:
		return nil, fmt.Errorf("aggregator exited before listening:\n%s", p.Log())
	case <-deadline.C:
		p.Kill()
		return nil, fmt.Errorf("aggregator did not listen within %s:\n%s", timeout, p.Log())
	}
	for {
		if ready(p.URL) {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("aggregator exited before ready:\n%s", p.Log())
		case <-deadline.C:
			p.Kill()
			return nil, fmt.Errorf("aggregator not ready within %s:\n%s", timeout, p.Log())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Log returns what the process wrote to stderr so far.
func (p *Process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Kill sends SIGKILL to this process only and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to timeout, then kills. It reports
// whether the process exited by itself with status 0.
func (p *Process) Stop(timeout time.Duration) bool {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.cmd.ProcessState.Success()
	case <-time.After(timeout):
		p.Kill()
		return false
	}
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }
