package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := Parse(nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := (*c.Web.WebListenAddresses)[0]; got != ":9717" {
		t.Errorf("listen address %q", got)
	}
	if c.PushURL != DefaultPushURL || c.PushInterval != 2*time.Second || c.CollectSampleWindow != 200*time.Millisecond ||
		c.MetricsTopN != 10 || c.TelemetryPath != "/metrics" || c.CollectCmdline || c.CollectTopN != 0 {
		t.Errorf("unexpected defaults: %+v", c)
	}
	if got := c.QueueSize(); got != 300 {
		t.Errorf("queue size = %d, want 10m/2s = 300", got)
	}
}

func TestFlags(t *testing.T) {
	c, err := Parse([]string{
		"--push.url=", "--push.interval=500ms", "--collect.cmdline", "--collect.top-n=50",
		"--metrics.top-n=3", "--metrics.process-group=nginx=^nginx", "--metrics.process-group=db=^(postgres|mysqld)$",
		"--push.queue.size=7", "--log.level=debug",
	}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.PushURL != "" || c.PushInterval != 500*time.Millisecond || !c.CollectCmdline || c.CollectTopN != 50 || c.MetricsTopN != 3 {
		t.Errorf("flags not applied: %+v", c)
	}
	if c.QueueSize() != 7 {
		t.Errorf("queue size %d", c.QueueSize())
	}
	if len(c.ProcessGroups) != 2 || c.ProcessGroups[1].Name != "db" || !c.ProcessGroups[1].Regexp.MatchString("mysqld") ||
		c.ProcessGroups[1].Regexp.MatchString("mysqld_safe") {
		t.Errorf("groups: %+v", c.ProcessGroups)
	}
}

func TestBadInput(t *testing.T) {
	f := func(args []string, wantErr string) {
		t.Helper()
		_, err := Parse(args, noEnv)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("Parse(%q) error = %v, want it to contain %q", args, err, wantErr)
		}
	}
	f([]string{"--push.interval=fast"}, "push.interval")
	f([]string{"--push.interval=1ms"}, "at least")
	f([]string{"--push.url=ftp://x/y"}, "scheme")
	f([]string{"--push.url=http://"}, "no host")
	f([]string{"--push.url=http://u:p@h/api/v1/ingest"}, "user:password")
	f([]string{"--collect.top-n=-1"}, "collect.top-n")
	f([]string{"--metrics.top-n=100000"}, "metrics.top-n")
	f([]string{"--metrics.process-group=nginx"}, "NAME=REGEX")
	f([]string{"--metrics.process-group=ng inx=x"}, "group name")
	f([]string{"--metrics.process-group=a=("}, "missing closing")
	f([]string{"--metrics.process-group=a=x", "--metrics.process-group=a=y"}, "defined twice")
	f([]string{"--web.telemetry-path=/"}, "telemetry-path")
	f([]string{"--no-such-flag"}, "unknown long flag")
	f([]string{"--config.file=/nonexistent/procscope.yml"}, "no such file")
	f([]string{"--log.level=loud"}, "log")
	f([]string{"--web.config.file=/nonexistent/web.yml"}, "web.config.file")
}

func TestWebConfigFile(t *testing.T) {
	bad := writeFile(t, "web.yml", "basic_auth_users:\n  admin: not-a-bcrypt-hash\n")
	if _, err := Parse([]string{"--web.config.file=" + bad}, noEnv); err == nil {
		t.Error("a web config with a clear-text password was accepted")
	}
	// bcrypt of "secret"
	good := writeFile(t, "web.yml", "basic_auth_users:\n  admin: $2y$10$X1rW/vnLyTj8tB/8.OZcXO6N1Y7M9IR1UQBlbDKD0h8mSThgVXKNu\n")
	if _, err := Parse([]string{"--web.config.file=" + good}, noEnv); err != nil {
		t.Error(err)
	}
}

func TestFileAndSeedKeys(t *testing.T) {
	// The original agent's DEFAULT_CONFIG, as YAML.
	p := writeFile(t, "seed.yml", `
backend_url: http://agg.example:8000/api/v1/ingest
api_key: TESTKEY123
interval_sec: 0.5
sample_sleep_ms: 150
include_cmdline: true
top_n_processes: 200
process_groups: {nginx: "^nginx", java: "^java$"}
`)
	c, err := Parse([]string{"--config.file=" + p}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.PushURL != "http://agg.example:8000/api/v1/ingest" || c.APIKey != "TESTKEY123" ||
		c.PushInterval != 500*time.Millisecond || c.CollectSampleWindow != 150*time.Millisecond ||
		!c.CollectCmdline || c.CollectTopN != 200 {
		t.Errorf("seed keys not applied: %+v", c)
	}
	if len(c.ProcessGroups) != 2 || c.ProcessGroups[0].Name != "java" || c.ProcessGroups[1].Name != "nginx" {
		t.Errorf("groups %+v", c.ProcessGroups)
	}

	// Explicit flags win, even when set to their default value.
	c, err = Parse([]string{"--config.file=" + p, "--push.interval=2s", "--collect.top-n=0",
		"--metrics.process-group=x=^x$", "--push.url=http://other:1/api/v1/ingest"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.PushInterval != 2*time.Second || c.CollectTopN != 0 || c.PushURL != "http://other:1/api/v1/ingest" {
		t.Errorf("flags did not win: %+v", c)
	}
	if len(c.ProcessGroups) != 1 || c.ProcessGroups[0].Name != "x" {
		t.Errorf("flag groups should replace file groups: %+v", c.ProcessGroups)
	}

	// The environment beats the file's key.
	c, err = Parse([]string{"--config.file=" + p}, func(k string) string {
		if k == APIKeyEnv {
			return "envkey"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKey != "envkey" {
		t.Errorf("key = %q, want the environment's", c.APIKey)
	}

	// top_n_processes: null (None in the seed) means all.
	p2 := writeFile(t, "null.yml", "top_n_processes: null\npush_interval: 3s\n")
	c, err = Parse([]string{"--config.file=" + p2}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.CollectTopN != 0 || c.PushInterval != 3*time.Second {
		t.Errorf("got top-n %d interval %s", c.CollectTopN, c.PushInterval)
	}
}

func TestBadFile(t *testing.T) {
	f := func(content, wantErr string) {
		t.Helper()
		p := writeFile(t, "c.yml", content)
		_, err := Parse([]string{"--config.file=" + p}, noEnv)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("file %q: error = %v, want it to contain %q", content, err, wantErr)
		}
	}
	f("push_urll: http://x/\n", "field push_urll not found")
	f("push_interval: soon\n", "line 1")
	f("interval_sec: -1\n", "interval_sec")
	f("interval_sec: 2\npush_interval: 2s\n", "keep one")
	f("backend_url: http://a/\npush_url: http://b/\n", "keep one")
	f("process_groups: {bad: \"(\"}\n", "missing closing")
	f("api_key: \"two words\"\n", "api_key")
	f("metrics_top_n: -4\n", "metrics.top-n")
	f("a: [\n", "yaml")
	f("push_interval: 1s\n---\npush_interval: 2s\n", "more than one")
}

func TestKeyFileAndGeneratedKey(t *testing.T) {
	dir := t.TempDir()
	kf := filepath.Join(dir, "key")
	if err := os.WriteFile(kf, []byte("  abc123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]string{"--push.api-key-file=" + kf}, func(string) string { return "envkey" })
	if err != nil {
		t.Fatal(err)
	}
	k, src, err := c.ResolveKey()
	if err != nil || k != "abc123" || src != KeyFromFile {
		t.Errorf("key file: %q %q %v", k, src, err)
	}

	state := filepath.Join(dir, "state")
	c, err = Parse([]string{"--state.dir=" + state}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	k1, src, err := c.ResolveKey()
	if err != nil || src != KeyFromGenerated || len(k1) != 64 {
		t.Fatalf("generated: %q %q %v", k1, src, err)
	}
	st, err := os.Stat(filepath.Join(state, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	k2, src, err := c.ResolveKey()
	if err != nil || k2 != k1 || src != KeyFromState {
		t.Errorf("second start got %q (%q, %v), want the stored key", k2, src, err)
	}
	entries, _ := os.ReadDir(state)
	if len(entries) != 1 {
		t.Errorf("state dir has %d entries, want only the key (temp files removed)", len(entries))
	}

	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	if _, err := ReadKeyFile(empty); err == nil {
		t.Error("empty key file accepted")
	}
}
