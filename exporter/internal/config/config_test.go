package config

import (
	"fmt"
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
	f("enrollment_token: \"two words\"\n", "enrollment_token")
	f("enrollment_token: abc\nenrollment_token_file: /t\n", "keep one")
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
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(empty); err == nil {
		t.Error("empty key file accepted")
	}
}

// TestMain keeps the tests independent of the environment they run in:
// kingpin reads the flags' variables from the process environment.
func TestMain(m *testing.M) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, EnvPrefix) {
			_ = os.Unsetenv(k)
		}
	}
	os.Exit(m.Run())
}

// TestEnvPrecedence checks flag > environment > file > default for every
// setting the file can hold: each case parses the file alone, the file with
// the variable, the file with the variable and the flag, and the variable
// alone.
func TestEnvPrecedence(t *testing.T) {
	type tc struct {
		flag     string
		fileLine string // sets the value "file"
		env      string
		flagArg  string
		file     string // what each source yields through get
		envWant  string
		flagWant string
		get      func(*Config) string
	}
	dur := func(d *time.Duration) string { return d.String() }
	cases := []tc{
		{"push.url", "push_url: http://file:1/api/v1/ingest", "http://env:1/api/v1/ingest", "--push.url=http://flag:1/api/v1/ingest",
			"http://file:1/api/v1/ingest", "http://env:1/api/v1/ingest", "http://flag:1/api/v1/ingest", func(c *Config) string { return c.PushURL }},
		{"push.interval", "push_interval: 3s", "4s", "--push.interval=5s", "3s", "4s", "5s", func(c *Config) string { return dur(&c.PushInterval) }},
		{"push.timeout", "push_timeout: 3s", "4s", "--push.timeout=5s", "3s", "4s", "5s", func(c *Config) string { return dur(&c.PushTimeout) }},
		{"push.flush-timeout", "push_flush_timeout: 3s", "4s", "--push.flush-timeout=5s", "3s", "4s", "5s", func(c *Config) string { return dur(&c.PushFlushTimeout) }},
		{"push.queue.max-age", "push_queue_max_age: 3m", "4m", "--push.queue.max-age=5m", "3m0s", "4m0s", "5m0s", func(c *Config) string { return dur(&c.PushQueueMaxAge) }},
		{"push.queue.size", "push_queue_size: 3", "4", "--push.queue.size=5", "3", "4", "5", func(c *Config) string { return fmt.Sprint(c.PushQueueSize) }},
		{"push.api-key-file", "api_key_file: /file", "/env", "--push.api-key-file=/flag", "/file", "/env", "/flag", func(c *Config) string { return c.APIKeyFile }},
		{"push.enrollment-token-file", "enrollment_token_file: /file", "/env", "--push.enrollment-token-file=/flag", "/file", "/env", "/flag", func(c *Config) string { return c.EnrollmentTokenFile }},
		{"state.dir", "state_dir: /file", "/env", "--state.dir=/flag", "/file", "/env", "/flag", func(c *Config) string { return c.StateDir }},
		{"path.procfs", "procfs: /file", "/env", "--path.procfs=/flag", "/file", "/env", "/flag", func(c *Config) string { return c.ProcRoot }},
		{"path.sysfs", "sysfs: /file", "/env", "--path.sysfs=/flag", "/file", "/env", "/flag", func(c *Config) string { return c.SysRoot }},
		{"path.rootfs", "rootfs: /file", "/env", "--path.rootfs=/flag", "/file", "/env", "/flag", func(c *Config) string { return c.RootFS }},
		{"web.telemetry-path", "telemetry_path: /file", "/env", "--web.telemetry-path=/flag", "/file", "/env", "/flag", func(c *Config) string { return c.TelemetryPath }},
		// A variable set to the default still beats the file, as a typed
		// flag set to its default does.
		{"collect.cmdline", "collect_cmdline: true", "false", "--collect.cmdline", "true", "false", "true", func(c *Config) string { return fmt.Sprint(c.CollectCmdline) }},
		{"collect.top-n", "collect_top_n: 3", "4", "--collect.top-n=5", "3", "4", "5", func(c *Config) string { return fmt.Sprint(c.CollectTopN) }},
		{"collect.sample-window", "collect_sample_window: 300ms", "400ms", "--collect.sample-window=500ms", "300ms", "400ms", "500ms", func(c *Config) string { return dur(&c.CollectSampleWindow) }},
		{"metrics.top-n", "metrics_top_n: 3", "4", "--metrics.top-n=5", "3", "4", "5", func(c *Config) string { return fmt.Sprint(c.MetricsTopN) }},
		{"metrics.process-group", "process_groups: {file: ^f}", "env=^e", "--metrics.process-group=flag=^x", "file", "env", "flag", func(c *Config) string {
			var names []string
			for _, g := range c.ProcessGroups {
				names = append(names, g.Name)
			}
			return strings.Join(names, ",")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.flag, func(t *testing.T) {
			file := writeFile(t, "c.yml", tc.fileLine+"\n")
			parse := func(args ...string) string {
				t.Helper()
				c, err := Parse(args, noEnv)
				if err != nil {
					t.Fatal(err)
				}
				return tc.get(c)
			}
			if got := parse("--config.file=" + file); got != tc.file {
				t.Errorf("file alone: %q, want %q", got, tc.file)
			}
			t.Setenv(EnvName(tc.flag), tc.env)
			if got := parse("--config.file=" + file); got != tc.envWant {
				t.Errorf("file and $%s: %q, want the variable's %q", EnvName(tc.flag), got, tc.envWant)
			}
			if got := parse("--config.file="+file, tc.flagArg); got != tc.flagWant {
				t.Errorf("file, variable and %s: %q, want the flag's %q", tc.flagArg, got, tc.flagWant)
			}
			if got := parse(); got != tc.envWant {
				t.Errorf("variable alone: %q, want %q", got, tc.envWant)
			}
		})
	}
}

func TestEnvOther(t *testing.T) {
	// The config file itself, the toolkit's and promslog's flags.
	file := writeFile(t, "c.yml", "push_interval: 7s\n")
	t.Setenv("PROCSCOPE_CONFIG_FILE", file)
	t.Setenv("PROCSCOPE_WEB_LISTEN_ADDRESS", "127.0.0.1:9999")
	t.Setenv("PROCSCOPE_LOG_LEVEL", "debug")
	t.Setenv("PROCSCOPE_COLLECT_CMDLINE", "1")
	// Several groups in one variable, one a line (kingpin's rule for
	// repeatable flags).
	t.Setenv("PROCSCOPE_METRICS_PROCESS_GROUP", "a=^a$\nb=^b$")
	// kingpin's hidden flags have no variables: these would otherwise
	// print help or shell completions and exit.
	t.Setenv("PROCSCOPE_HELP_LONG", "true")
	t.Setenv("PROCSCOPE_COMPLETION_BASH", "true")
	c, err := Parse(nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.PushInterval != 7*time.Second || (*c.Web.WebListenAddresses)[0] != "127.0.0.1:9999" ||
		c.Log.Level.String() != "debug" || !c.CollectCmdline || len(c.ProcessGroups) != 2 || c.ProcessGroups[1].Name != "b" {
		t.Errorf("environment not applied: interval %s listen %v level %s cmdline %v groups %+v",
			c.PushInterval, *c.Web.WebListenAddresses, c.Log.Level, c.CollectCmdline, c.ProcessGroups)
	}
	c, err = Parse([]string{"--no-collect.cmdline", "--web.listen-address=:1"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.CollectCmdline || len(*c.Web.WebListenAddresses) != 1 || (*c.Web.WebListenAddresses)[0] != ":1" {
		t.Errorf("flags did not beat the environment: cmdline %v listen %v", c.CollectCmdline, *c.Web.WebListenAddresses)
	}
}

// TestEnvBad: a bad value in a variable is an error naming the variable,
// and no Config comes back.
func TestEnvBad(t *testing.T) {
	f := func(env, value, wantErr string) {
		t.Helper()
		t.Setenv(env, value)
		c, err := Parse(nil, noEnv)
		if err == nil || !strings.Contains(err.Error(), wantErr) || c != nil {
			t.Errorf("%s=%q: error = %v, want it to contain %q", env, value, err, wantErr)
		}
		t.Setenv(env, "")
	}
	f("PROCSCOPE_PUSH_INTERVAL", "fast", `$PROCSCOPE_PUSH_INTERVAL="fast": not a duration`)
	f("PROCSCOPE_PUSH_QUEUE_SIZE", "ten", `$PROCSCOPE_PUSH_QUEUE_SIZE="ten": not an integer`)
	f("PROCSCOPE_COLLECT_CMDLINE", "maybe", `$PROCSCOPE_COLLECT_CMDLINE="maybe": not a boolean`)
	f("PROCSCOPE_METRICS_PROCESS_GROUP", "nginx", `$PROCSCOPE_METRICS_PROCESS_GROUP "nginx": want NAME=REGEX`)
	f("PROCSCOPE_PUSH_INTERVAL", "1ms", "at least")
	f("PROCSCOPE_PUSH_URL", "ftp://x/y", "scheme")
	f("PROCSCOPE_LOG_LEVEL", "loud", "log")
	f("PROCSCOPE_CONFIG_FILE", "/nonexistent/procscope.yml", "no such file")
	// The flag's own message still names the flag.
	if _, err := Parse([]string{"--push.interval=fast"}, noEnv); err == nil || !strings.Contains(err.Error(), `--push.interval="fast"`) {
		t.Errorf("--push.interval=fast: %v", err)
	}
}

// TestEnvAPIKey: PROCSCOPE_API_KEY and PROCSCOPE_PUSH_API_KEY_FILE at once
// are ambiguous and refused; the flag still beats the key's variable.
func TestEnvAPIKey(t *testing.T) {
	key := func(k string) string {
		if k == APIKeyEnv {
			return "envkey"
		}
		return ""
	}
	t.Setenv("PROCSCOPE_PUSH_API_KEY_FILE", "/env/key")
	if _, err := Parse(nil, key); err == nil || !strings.Contains(err.Error(), "keep one") {
		t.Errorf("both variables: error = %v, want a refusal", err)
	}
	c, err := Parse([]string{"--push.api-key-file=/flag/key"}, key)
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKeyFile != "/flag/key" || c.APIKey != "" {
		t.Errorf("flag did not win: file %q key set %v", c.APIKeyFile, c.APIKey != "")
	}
	c, err = Parse(nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKeyFile != "/env/key" {
		t.Errorf("key file %q, want the variable's", c.APIKeyFile)
	}
}

// TestEnrollmentToken: the token follows the API key's rules: its file
// flag, its variable PROCSCOPE_ENROLLMENT_TOKEN (the token itself), the
// config file's enrollment_token(_file); the variable together with
// PROCSCOPE_PUSH_ENROLLMENT_TOKEN_FILE is refused; none at all is fine.
func TestEnrollmentToken(t *testing.T) {
	dir := t.TempDir()
	tf := filepath.Join(dir, "token")
	if err := os.WriteFile(tf, []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	token := func(v string) func(string) string {
		return func(k string) string {
			if k == EnrollmentTokenEnv {
				return v
			}
			return ""
		}
	}
	resolve := func(args []string, getenv func(string) string) (string, KeySource) {
		t.Helper()
		c, err := Parse(args, getenv)
		if err != nil {
			t.Fatal(err)
		}
		tok, src, err := c.ResolveEnrollmentToken()
		if err != nil {
			t.Fatal(err)
		}
		return tok, src
	}
	if tok, src := resolve(nil, noEnv); tok != "" || src != "" {
		t.Errorf("no token configured: %q from %q", tok, src)
	}
	// The file's trailing newline is not part of the token.
	if tok, src := resolve([]string{"--push.enrollment-token-file=" + tf}, token("env-token")); tok != "file-token" || src != KeyFromFile {
		t.Errorf("flag: %q from %q, want the file's", tok, src)
	}
	if tok, src := resolve(nil, token("env-token")); tok != "env-token" || src != KeyFromEnv {
		t.Errorf("variable: %q from %q", tok, src)
	}
	conf := writeFile(t, "c.yml", "enrollment_token: conf-token\n")
	if tok, _ := resolve([]string{"--config.file=" + conf}, noEnv); tok != "conf-token" {
		t.Errorf("config file: %q", tok)
	}
	if tok, _ := resolve([]string{"--config.file=" + conf}, token("env-token")); tok != "env-token" {
		t.Errorf("variable and config file: %q, want the variable's", tok)
	}
	conf2 := writeFile(t, "c2.yml", "enrollment_token_file: "+tf+"\n")
	if tok, _ := resolve([]string{"--config.file=" + conf2}, noEnv); tok != "file-token" {
		t.Errorf("config file's token file: %q", tok)
	}
	if _, err := Parse(nil, token("two words")); err == nil || !strings.Contains(err.Error(), EnrollmentTokenEnv) ||
		strings.Contains(err.Error(), "two words") {
		t.Errorf("bad token in the variable: %v", err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("two words\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]string{"--push.enrollment-token-file=" + bad}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ResolveEnrollmentToken(); err == nil || !strings.Contains(err.Error(), "enrollment token file") ||
		strings.Contains(err.Error(), "two words") {
		t.Errorf("bad token file: %v", err)
	}

	t.Setenv("PROCSCOPE_PUSH_ENROLLMENT_TOKEN_FILE", tf)
	if _, err := Parse(nil, token("env-token")); err == nil || !strings.Contains(err.Error(), "keep one") {
		t.Errorf("both variables: error = %v, want a refusal", err)
	}
	if tok, _ := resolve(nil, noEnv); tok != "file-token" {
		t.Errorf("file variable: %q", tok)
	}
}

// TestPushURLs: --push.url repeats, push_urls lists several in the file,
// the single forms keep working, and "" alone still disables pushing.
func TestPushURLs(t *testing.T) {
	const a, b = "http://a:1/api/v1/ingest", "http://b:1/api/v1/ingest"
	f := func(args []string, file, want string) {
		t.Helper()
		if file != "" {
			args = append(args, "--config.file="+writeFile(t, "c.yml", file))
		}
		c, err := Parse(args, noEnv)
		if err != nil {
			t.Errorf("%v %q: %v", args, file, err)
			return
		}
		if got := strings.Join(c.PushURLs, " "); got != want || c.PushURL != strings.Split(want, " ")[0] {
			t.Errorf("%v %q: urls %q (first %q), want %q", args, file, got, c.PushURL, want)
		}
	}
	f(nil, "", DefaultPushURL)
	f([]string{"--push.url=" + a}, "", a)
	f([]string{"--push.url=" + a, "--push.url=" + b}, "", a+" "+b)
	f([]string{"--push.url="}, "", "")
	f(nil, "push_urls: ["+a+", "+b+"]\n", a+" "+b)
	f(nil, "push_url: "+b+"\n", b)
	f(nil, "backend_url: "+b+"\n", b)
	f(nil, "push_url: \"\"\n", "")
	// The command line replaces the file's list, it does not add to it.
	f([]string{"--push.url=" + b}, "push_urls: ["+a+"]\n", b)

	bad := func(args []string, file, wantErr string) {
		t.Helper()
		if file != "" {
			args = append(args, "--config.file="+writeFile(t, "c.yml", file))
		}
		_, err := Parse(args, noEnv)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%v %q: error %v, want %q", args, file, err, wantErr)
		}
	}
	bad([]string{"--push.url=" + a, "--push.url=" + a}, "", "given twice")
	bad([]string{"--push.url=" + a, "--push.url="}, "", "only when it is the only one")
	bad([]string{"--push.url=" + a, "--push.url=ftp://x/y"}, "", "scheme")
	bad(nil, "push_urls: []\n", "empty list")
	bad(nil, "push_urls: ["+a+"]\npush_url: "+b+"\n", "keep one")
	bad(nil, "push_urls: ["+a+"]\nbackend_url: "+b+"\n", "keep one")
	bad(nil, "push_urls: ["+a+", http://u:p@b/]\n", "user:password")
}

// TestPushURLsFromEnv: the variable of a repeatable flag holds one value
// per line, as kingpin reads it.
func TestPushURLsFromEnv(t *testing.T) {
	const a, b = "http://a:1/api/v1/ingest", "http://b:1/api/v1/ingest"
	t.Setenv(EnvName("push.url"), a+"\n"+b)
	c, err := Parse(nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.PushURLs, " ") != a+" "+b {
		t.Errorf("urls %q", c.PushURLs)
	}
}
