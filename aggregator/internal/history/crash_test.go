package history

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The kill -9 test re-executes this test binary as a child that writes
// history and then waits to be killed.
const (
	helperEnvDir  = "PROCSCOPE_HISTORY_HELPER_DIR"
	helperEnvBase = "PROCSCOPE_HISTORY_HELPER_BASE"
	crashPoints   = 300
)

// TestHelperProcess is the child of TestSurvivesKill9; it does nothing in a
// normal run.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnvDir)
	if dir == "" {
		return
	}
	baseMs, err := strconv.ParseInt(os.Getenv(helperEnvBase), 10, 64)
	if err != nil {
		fmt.Println("bad base:", err)
		os.Exit(2)
	}
	h, err := Open(dir, Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	base := time.UnixMilli(baseMs)
	for i := range crashPoints {
		h.Add(testRequest("crash-host", base.Add(time.Duration(i)*2*time.Second), float64(i), nil))
	}
	if err := h.Flush(30 * time.Second); err != nil {
		fmt.Println("flush:", err)
		os.Exit(2)
	}
	fmt.Println("written")
	// Keep writing, as a live aggregator would, until killed.
	for i := crashPoints; i < crashPoints+100_000; i++ {
		h.Add(testRequest("crash-host", base.Add(time.Duration(i)*2*time.Second), float64(i), nil))
		time.Sleep(10 * time.Millisecond)
	}
	os.Exit(3) // never reached in the test: the parent kills us first
}

func TestSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 test waits for the storage's flush window; skipped with -short")
	}
	dir := t.TempDir()
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), helperEnvDir+"="+dir, helperEnvBase+"="+strconv.FormatInt(base.UnixMilli(), 10))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() {
		// Only the child we started, by its PID.
		_ = syscall.Kill(pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case line := <-lines:
		if strings.TrimSpace(line) != "written" {
			t.Fatalf("child said %q", line)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("child did not write within 60s")
	}
	// VictoriaMetrics writes in-memory parts to disk once they are 5 s old,
	// checked every 5 s: everything is on disk at most 10 s after Flush.
	time.Sleep(12 * time.Second)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}

	h := openTest(t, dir, Options{})
	got, err := h.Query(context.Background(), MetricCPU, map[string]string{LabelHostname: "crash-host"},
		base, base.Add(crashPoints*2*time.Second-time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Points) != crashPoints {
		n := 0
		if len(got) == 1 {
			n = len(got[0].Points)
		}
		t.Fatalf("after kill -9: %d series, %d points; want all %d points written before the flush window", len(got), n, crashPoints)
	}
	for i, p := range got[0].Points {
		if p.V != float64(i) {
			t.Fatalf("point %d has value %v", i, p.V)
		}
	}
	// The storage still accepts writes after the unclean stop.
	h.Add(testRequest("crash-host", time.Now().Add(-time.Minute), 1, nil))
	flush(t, h)
	if st := h.Stats(); st.WriteErrors != 0 || st.RowsWritten == 0 {
		t.Errorf("writes after restart: %+v", st)
	}
	t.Logf("kill -9 after %d points and a 12 s wait: all %d read back after reopening", crashPoints, crashPoints)
}
