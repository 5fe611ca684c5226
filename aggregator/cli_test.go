package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHelpListsServerFlags: serving is the default command, so the top
// level --help lists the server's flags, each with its variable; `serve`
// is still a command (older scripts) and `hosts` still has its own.
func TestHelpListsServerFlags(t *testing.T) {
	code, out, _ := runCLI("--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, want := range []string{
		"--web.listen-address=127.0.0.1:8000", "($PROCSCOPE_WEB_LISTEN_ADDRESS)",
		"--storage.retention=90d", "($PROCSCOPE_STORAGE_RETENTION)",
		`--storage.path="./data"`, "($PROCSCOPE_STORAGE_PATH)",
		"--hosts.enrollment=MODE", "--[no-]history", "--history.top-k=5",
		"--web.max-streams-per-client=16", "($PROCSCOPE_LOG_LEVEL)",
		"serve*", "hosts list",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "PROCSCOPE_DEBUG_PPROF_ADDRESS") || strings.Contains(out, "PROCSCOPE_HELP_LONG") {
		t.Errorf("--help shows a hidden flag's variable:\n%s", out)
	}
	if code, out, _ := runCLI("serve", "--help"); code != 0 || !strings.Contains(out, "--storage.retention") {
		t.Errorf("serve --help: exit %d\n%s", code, out)
	}
}

// runRefused is runCLI for a command line that must be refused at once.
// Should it serve instead (a check gone missing), the test fails after a
// minute rather than hang; that server runs on until the test binary exits.
func runRefused(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	type result struct {
		code        int
		out, stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, out, stderr := runCLI(args...)
		done <- result{code, out, stderr}
	}()
	select {
	case r := <-done:
		return r.code, r.out, r.stderr
	case <-time.After(time.Minute):
		t.Fatalf("%q was not refused within a minute: it serves", args)
		return 0, "", ""
	}
}

// stringFlags take any text; every other flag is in TestBadFlagValues.
var stringFlags = []string{
	"storage.path", "web.listen-address", "web.config.file", "remote-write.url",
	"hosts.enrollment-token-file", "web.allowed-hosts",
}

var helpFlagRE = regexp.MustCompile(`(?m)^  (?:-\w, |    )--(?:\[no-\])?([a-z][a-z0-9.\-]*)`)

// TestBadFlagValues: a value that does not parse, or parses but is out of
// range, is exit code 2 with one message naming the flag and the value
// (or the variable, when the value came from the environment), before any
// storage is created. The exporter exits 2 on the same (exporter/main_test.go).
func TestBadFlagValues(t *testing.T) {
	_, help, _ := runCLI("--help")
	covered := map[string]bool{}
	f := func(arg, want string) {
		t.Helper()
		name, _, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		covered[name] = true
		storage := filepath.Join(t.TempDir(), "data")
		code, _, stderr := runRefused(t, "--web.listen-address=127.0.0.1:0", "--storage.path="+storage, arg)
		if code != 2 || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q; want 2 and one line with %q", arg, code, stderr, want)
		}
		if _, err := os.Stat(storage); err == nil {
			t.Errorf("%s: storage created before the flags were checked", arg)
		}
	}
	f("--log.level=loud", `--log.level="loud"`)
	f("--log.format=xml", `--log.format="xml"`)
	f("--web.systemd-socket=maybe", `--web.systemd-socket="maybe": not a boolean`)
	f("--web.read-header-timeout=soon", `--web.read-header-timeout="soon": not a duration`)
	f("--web.read-header-timeout=11s", `--web.read-header-timeout=11s: must be more than 0 and at most 10s`)
	f("--web.read-timeout=soon", `--web.read-timeout="soon": not a duration`)
	f("--web.read-timeout=0s", `--web.read-timeout=0s: must be positive`)
	f("--web.write-timeout=soon", `--web.write-timeout="soon": not a duration`)
	f("--web.write-timeout=-1s", `--web.write-timeout=-1s: must be positive`)
	f("--web.idle-timeout=soon", `--web.idle-timeout="soon": not a duration`)
	f("--web.idle-timeout=0s", `--web.idle-timeout=0s: must be positive`)
	f("--storage.retention.raw=forever", `--storage.retention.raw="forever": not a duration`)
	f("--storage.retention.raw=0s", `--storage.retention.raw=0s: must be positive`)
	f("--storage.retention=forever", `--storage.retention="forever": not a duration`)
	f("--storage.retention=0d", `--storage.retention=0s: must be positive`)
	f("--storage.commit-interval=soon", `--storage.commit-interval="soon": not a duration`)
	f("--storage.commit-interval=2s", `--storage.commit-interval=2s: must be between 0 and 1s`)
	f("--ingest.max-body-bytes=big", `--ingest.max-body-bytes="big": not a size`)
	f("--ingest.max-body-bytes=0B", `--ingest.max-body-bytes=0B: must be positive`)
	f("--ingest.max-decompressed-bytes=16", `--ingest.max-decompressed-bytes="16": not a size`)
	f("--ingest.max-decompressed-bytes=-1MiB", `--ingest.max-decompressed-bytes=-1MiB: must be positive`)
	f("--ingest.max-inflight-bytes=lots", `--ingest.max-inflight-bytes="lots": not a size`)
	f("--ingest.max-inflight-bytes=1KiB", `--ingest.max-inflight-bytes=1KiB: must be at least`)
	f("--ingest.max-processes=many", `--ingest.max-processes="many": not an integer`)
	f("--ingest.max-processes=0", `--ingest.max-processes=0: must be positive`)
	f("--ingest.max-concurrent=1.5", `--ingest.max-concurrent="1.5": not an integer`)
	f("--ingest.max-concurrent=-1", `--ingest.max-concurrent=-1: must be positive`)
	f("--ingest.max-clock-skew=soon", `--ingest.max-clock-skew="soon": not a duration`)
	f("--ingest.max-clock-skew=0s", `--ingest.max-clock-skew=0s: must be positive`)
	f("--web.body-timeout=soon", `--web.body-timeout="soon": not a duration`)
	f("--web.body-timeout=0s", `--web.body-timeout=0s: must be positive`)
	f("--web.shutdown-timeout=soon", `--web.shutdown-timeout="soon": not a duration`)
	f("--web.shutdown-timeout=-1s", `--web.shutdown-timeout=-1s: must not be negative`)
	f("--hosts.online-window=soon", `--hosts.online-window="soon": not a duration`)
	f("--hosts.online-window=0s", `--hosts.online-window=0s: must be positive`)
	f("--history=maybe", `--history="maybe": not a boolean`)
	f("--web.trusted-proxies=proxy.example.com", `--web.trusted-proxies: "proxy.example.com" is not a CIDR`)
	f("--events.restart-window=soon", `--events.restart-window="soon": not a duration`)
	f("--events.restart-window=0s", `--events.restart-window=0s: must be more than 0 and at most 24h`)
	f("--history.top-k=five", `--history.top-k="five": not an integer`)
	f("--history.top-k=1001", `--history.top-k=1001: must be between 0 and 1000`)
	f("--hosts.enrollment=sometimes", `--hosts.enrollment="sometimes": want one of open, token, closed`)
	f("--hosts.max=lots", `--hosts.max="lots": not an integer`)
	f("--hosts.max=-1", `--hosts.max=-1: must not be negative`)
	f("--hosts.enroll-rate=fast", `--hosts.enroll-rate="fast": not an integer`)
	f("--hosts.enroll-rate=-1", `--hosts.enroll-rate=-1: must not be negative`)
	f("--web.max-streams-per-client=many", `--web.max-streams-per-client="many": not an integer`)
	f("--web.max-streams-per-client=0", `--web.max-streams-per-client=0: must be positive`)
	f("--web.max-reads-per-client=0", `--web.max-reads-per-client=0: must be positive`)
	f("--web.max-concurrent-reads=-1", `--web.max-concurrent-reads=-1: must be positive`)
	f("--history.url=ftp://tsdb", `--history.url=ftp://tsdb: want http(s)://host[/path]`)
	f("--history.timeout=soon", `--history.timeout="soon": not a duration`)
	f("--history.timeout=0s", `--history.timeout=0s: must be positive`)
	f("--history.max-answer-bytes=big", `--history.max-answer-bytes="big": not a size`)
	f("--history.max-answer-bytes=0B", `--history.max-answer-bytes=0B: must be positive`)
	f("--history.bearer-token-file=/nonexistent", `need --history.url`)
	f("--history.basic-auth-file=/nonexistent", `need --history.url`)
	f("--storage.postgres-url=mysql://db/x", `--storage.postgres-url: not a postgres://USER@HOST:PORT/DATABASE URL`)
	f("--storage.postgres-url=postgres://u:hunter2@db/x", `--storage.postgres-url carries a password`)
	f("--storage.min-free-disk-space=lots", `--storage.min-free-disk-space="lots": not a size`)
	f("--storage.min-free-disk-space=0B", `--storage.min-free-disk-space=0B: must be positive`)
	f("--storage.quick-check=maybe", `--storage.quick-check="maybe": not a boolean`)

	// Every flag that is not free text is covered above: a new flag
	// fails here until its bad values are.
	listed := helpFlagRE.FindAllStringSubmatch(help, -1)
	if len(listed) < 25 {
		t.Fatalf("--help lists %d flags:\n%s", len(listed), help)
	}
	for _, m := range listed {
		name := m[1]
		if name == "help" || name == "version" || slices.Contains(stringFlags, name) {
			continue
		}
		if !covered[name] {
			t.Errorf("--%s has no bad value in this table", name)
		}
	}

	// From the environment: the variable is named, not a flag nobody typed;
	// a flag on the command line beats the variable.
	env := func(name, value, want string, args ...string) {
		t.Helper()
		t.Setenv(name, value)
		storage := filepath.Join(t.TempDir(), "data")
		code, _, stderr := runRefused(t, append([]string{"--web.listen-address=127.0.0.1:0", "--storage.path=" + storage}, args...)...)
		t.Setenv(name, "")
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("%s=%q %q: exit %d, stderr %q; want 2 and %q", name, value, args, code, stderr, want)
		}
	}
	env("PROCSCOPE_STORAGE_RETENTION", "forever", `$PROCSCOPE_STORAGE_RETENTION="forever": not a duration`)
	env("PROCSCOPE_HISTORY", "maybe", `$PROCSCOPE_HISTORY="maybe": not a boolean`)
	env("PROCSCOPE_INGEST_MAX_BODY_BYTES", "big", `$PROCSCOPE_INGEST_MAX_BODY_BYTES="big": not a size`)
	env("PROCSCOPE_HOSTS_ENROLLMENT", "sometimes", `$PROCSCOPE_HOSTS_ENROLLMENT="sometimes"`)
	// The variable's value is range-checked as the flag's; and the flag,
	// when given, is what counts.
	env("PROCSCOPE_HISTORY_TOP_K", "5000", `--history.top-k=5000: must be between`)
	env("PROCSCOPE_HISTORY_TOP_K", "5", `--history.top-k=5000`, "--history.top-k=5000")
}

// TestAdminCommandsRefuseServerFlags: a server flag given to `hosts ...`
// would do nothing; it is refused (exit 2) rather than ignored, while its
// variable in the environment is fine and --storage.path still applies.
func TestAdminCommandsRefuseServerFlags(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCLI("hosts", "list", "--storage.path="+dir, "--storage.retention=1d")
	if code != 2 || !strings.Contains(stderr, "--storage.retention configures the server") {
		t.Errorf("hosts list --storage.retention: exit %d, %q", code, stderr)
	}
	t.Setenv("PROCSCOPE_STORAGE_RETENTION", "1d")
	code, out, stderr := runCLI("hosts", "list", "--storage.path="+dir)
	if code != 0 || !strings.HasPrefix(out, "HOSTNAME") {
		t.Errorf("hosts list with a server variable set: exit %d, %q %q", code, out, stderr)
	}
	// The storage path from the environment, for the admin commands too.
	t.Setenv("PROCSCOPE_STORAGE_PATH", filepath.Join(dir, "missing"))
	if code, _, stderr := runCLI("hosts", "list"); code != 1 || !strings.Contains(stderr, filepath.Join(dir, "missing")) {
		t.Errorf("hosts list with $PROCSCOPE_STORAGE_PATH: exit %d, %q", code, stderr)
	}
}
