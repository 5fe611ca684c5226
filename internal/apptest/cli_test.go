package apptest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/procscope/procscope/internal/testutil"
)

// runTimed runs the binary with args and env added to the environment,
// for at most a minute, and returns its exit code and stderr.
func runTimed(t *testing.T, bin string, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stderr.String()
	}
	t.Fatalf("%s %q: %v\n%s", bin, args, err, stderr.String())
	return 0, ""
}

// TestTakenPortFoundFirst: a listen address in use stops the start with
// exit 1 and a message that says so and names the flag, before the
// storage directory is created.
func TestTakenPortFoundFirst(t *testing.T) {
	bin := binary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	storage := filepath.Join(t.TempDir(), "data")
	code, stderr := runTimed(t, bin, nil, "--web.listen-address="+l.Addr().String(), "--storage.path="+storage)
	if code != 1 || !strings.Contains(stderr, "in use by another process") || !strings.Contains(stderr, "--web.listen-address="+l.Addr().String()) {
		t.Errorf("taken port: exit %d, stderr:\n%s", code, stderr)
	}
	if _, err := os.Stat(storage); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("storage directory created although the port was taken: %v", err)
	}
}

// TestUnwritableStorage: a storage path that cannot be written is exit 1
// with a message that says why and names --storage.path, for the server
// and the admin commands alike, instead of SQLite's "unable to open
// database file". Root ignores permission bits, so the read-only case
// mounts a read-only tmpfs in a private mount namespace where it can, and
// uses a directory without write permission when not root.
func TestUnwritableStorage(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	listen := "--web.listen-address=127.0.0.1:0"
	code, stderr := runTimed(t, bin, nil, listen, "--storage.path="+filepath.Join(file, "data"))
	if code != 1 || !strings.Contains(stderr, "--storage.path="+filepath.Join(file, "data")+" is below a file, not a directory") {
		t.Errorf("storage below a file: exit %d, stderr:\n%s", code, stderr)
	}

	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o700); err != nil {
		t.Fatal(err)
	}
	var want string
	var wrap func(args ...string) (string, []string)
	switch {
	case os.Getuid() != 0:
		if err := os.Chmod(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(ro, 0o700) })
		want = "is not writable by this user"
		wrap = func(args ...string) (string, []string) { return bin, args }
	case runtime.GOOS == "linux" && exec.Command("unshare", "-m", "sh", "-c", "mount -t tmpfs -o ro tmpfs "+ro).Run() == nil:
		want = "is on a read-only file system"
		wrap = func(args ...string) (string, []string) {
			// $0 is the mount point, "$@" the command.
			return "unshare", append([]string{"-m", "sh", "-c", `mount -t tmpfs -o ro tmpfs "$0" && exec "$@"`, ro, bin}, args...)
		}
	default:
		t.Skip("SKIPPED the read-only case: root, and no mount namespace to mount a read-only file system in")
	}
	for _, args := range [][]string{
		{listen, "--storage.path=" + ro},
		{"hosts", "list", "--storage.path=" + ro},
	} {
		name, argv := wrap(args...)
		code, stderr := runTimed(t, name, nil, argv...)
		if code != 1 || !strings.Contains(stderr, "--storage.path="+ro+" "+want) || strings.Contains(stderr, "unable to open database file") {
			t.Errorf("%q on read-only storage: exit %d, stderr:\n%s", args, code, stderr)
		}
	}
}

// TestServeCommandAndEnvironment: `serve` is still accepted before or
// after the flags; every flag has a PROCSCOPE_ variable, and a flag on
// the command line beats it.
func TestServeCommandAndEnvironment(t *testing.T) {
	bin := binary(t)
	// The variable's address could not be bound: the flag must win.
	t.Setenv("PROCSCOPE_WEB_LISTEN_ADDRESS", "192.0.2.1:1")
	t.Setenv("PROCSCOPE_HOSTS_ENROLLMENT", "closed")
	p, err := Start(bin, filepath.Join(t.TempDir(), "data"), 2*time.Minute, "serve")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(30 * time.Second)
	if !strings.Contains(p.Log(), "host enrollment is closed") {
		t.Errorf("$PROCSCOPE_HOSTS_ENROLLMENT=closed not applied:\n%s", p.Log())
	}
	code, stderr := runTimed(t, bin, []string{"PROCSCOPE_WEB_LISTEN_ADDRESS=", "PROCSCOPE_STORAGE_RETENTION=forever"}, "serve", "--storage.path="+t.TempDir())
	if code != 2 || !strings.Contains(stderr, `$PROCSCOPE_STORAGE_RETENTION="forever": not a duration`) {
		t.Errorf("serve with a bad variable: exit %d, stderr %q", code, stderr)
	}
}

// versionRE is the first line of prometheus/common's version.Print.
var versionRE = regexp.MustCompile(`^(\S+), version (\S*) \(branch: (\S*), revision: (\S*)\)`)

// TestVersionHasNoEmptyField: --version of both binaries, built with a
// plain `go build` (no -ldflags), has a value in every field, and
// `make build` sets every label.
func TestVersionHasNoEmptyField(t *testing.T) {
	agg := binary(t)
	exp := filepath.Join(t.TempDir(), "procscope-exporter")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := testutil.Build(ctx, "./exporter", exp, false); err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{agg, exp} {
		out, err := exec.Command(bin, "--version").CombinedOutput()
		if err != nil {
			t.Fatalf("%s --version: %v\n%s", bin, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		m := versionRE.FindStringSubmatch(lines[0])
		if m == nil || m[2] == "" || m[3] == "" || m[4] == "" || len(lines) < 5 {
			t.Errorf("%s --version: an empty field:\n%s", filepath.Base(bin), out)
			continue
		}
		for _, l := range lines[1:] {
			if k, v, ok := strings.Cut(l, ":"); !ok || strings.TrimSpace(v) == "" {
				t.Errorf("%s --version: %q is empty:\n%s", filepath.Base(bin), strings.TrimSpace(k), out)
			}
		}
	}

	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("SKIPPED the make build half: no make")
	}
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", "-n", "build", "BIN="+t.TempDir())
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build: %v\n%s", err, out)
	}
	for _, label := range []string{"Version", "Revision", "Branch", "BuildUser", "BuildDate"} {
		re := regexp.MustCompile(`-X github\.com/prometheus/common/version\.` + label + `=[^\s']+`)
		if n := len(re.FindAll(out, -1)); n != 2 {
			t.Errorf("make build sets version.%s for %d of 2 binaries:\n%s", label, n, out)
		}
	}
}
