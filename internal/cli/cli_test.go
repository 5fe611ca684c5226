package cli

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"
)

func TestEnvName(t *testing.T) {
	f := func(flag, want string) {
		t.Helper()
		if got := EnvName(flag); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", flag, got, want)
		}
	}
	f("push.url", "PROCSCOPE_PUSH_URL")
	f("push.api-key-file", "PROCSCOPE_PUSH_API_KEY_FILE")
	f("push.queue.max-age", "PROCSCOPE_PUSH_QUEUE_MAX_AGE")
	f("collect.top-n", "PROCSCOPE_COLLECT_TOP_N")
	f("web.listen-address", "PROCSCOPE_WEB_LISTEN_ADDRESS")
	f("path.rootfs", "PROCSCOPE_PATH_ROOTFS")
	f("storage.retention.raw", "PROCSCOPE_STORAGE_RETENTION_RAW")
	f("web.max-streams-per-client", "PROCSCOPE_WEB_MAX_STREAMS_PER_CLIENT")
	f("history.top-k", "PROCSCOPE_HISTORY_TOP_K")
}

// testApp has one flag of each kind Parse must handle.
type testApp struct {
	app   *kingpin.Application
	out   bytes.Buffer
	dur   *time.Duration
	num   *int
	sw    *bool
	words *string
	list  *[]string
	text  *string
}

func newTestApp() *testApp {
	a := &testApp{app: kingpin.New("t", "")}
	a.app.UsageWriter(&a.out)
	a.app.ErrorWriter(&a.out)
	a.app.Terminate(func(int) {})
	a.dur = Duration(a.app.Flag("x.interval", "").Default("2s"))
	a.num = Int(a.app.Flag("x.count", "").Default("3"))
	a.sw = Bool(a.app.Flag("x.on", "").Default("true"))
	a.words = Enum(a.app.Flag("x.mode", ""), "open", "closed")
	a.list = a.app.Flag("x.addr", "").Default(":1").Strings()
	a.text = a.app.Flag("x.name", "").Default("abc").String()
	return a
}

// TestParseNamesTheSource: a bad value's error names the flag when the
// command line gave it and the variable otherwise; the flag beats the
// variable, which beats the default.
func TestParseNamesTheSource(t *testing.T) {
	f := func(env map[string]string, args []string, wantErr string, check func(a *testApp) bool) {
		t.Helper()
		for k, v := range env {
			t.Setenv(k, v)
		}
		a := newTestApp()
		_, _, err := Parse(a.app, args)
		for k := range env {
			t.Setenv(k, "")
		}
		switch {
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("env %v args %q: error %v, want one containing %q", env, args, err, wantErr)
		case wantErr == "" && err != nil:
			t.Errorf("env %v args %q: %v", env, args, err)
		case wantErr == "" && !check(a):
			t.Errorf("env %v args %q: interval %s count %d on %v mode %q addr %q", env, args, *a.dur, *a.num, *a.sw, *a.words, *a.list)
		}
	}
	none := map[string]string{}
	f(none, []string{"--x.interval=soon"}, `--x.interval="soon": not a duration`, nil)
	f(none, []string{"--x.count", "many"}, `--x.count="many": not an integer`, nil)
	f(none, []string{"--x.mode=ajar"}, `--x.mode="ajar": want one of open, closed`, nil)
	f(none, []string{"--x.on=maybe"}, `--x.on="maybe": not a boolean`, nil)
	f(map[string]string{"PROCSCOPE_X_INTERVAL": "soon"}, nil, `$PROCSCOPE_X_INTERVAL="soon": not a duration`, nil)
	f(map[string]string{"PROCSCOPE_X_COUNT": "many"}, nil, `$PROCSCOPE_X_COUNT="many": not an integer`, nil)
	f(map[string]string{"PROCSCOPE_X_ON": "maybe"}, nil, `$PROCSCOPE_X_ON="maybe": not a boolean`, nil)
	f(map[string]string{"PROCSCOPE_X_MODE": "ajar"}, nil, `$PROCSCOPE_X_MODE="ajar"`, nil)
	// The same bad value in both places: the command line's is the one
	// kingpin parses (it ignores the variable), so the flag is named.
	f(map[string]string{"PROCSCOPE_X_COUNT": "many"}, []string{"--x.count=many"}, `--x.count="many"`, nil)
	// Precedence: flag > environment > default; a bad variable under a
	// good flag is never read.
	f(none, nil, "", func(a *testApp) bool {
		return *a.dur == 2*time.Second && *a.num == 3 && *a.sw && *a.words == "" && len(*a.list) == 1
	})
	f(map[string]string{"PROCSCOPE_X_INTERVAL": "5s", "PROCSCOPE_X_ON": "false", "PROCSCOPE_X_ADDR": ":2\n:3"}, nil, "", func(a *testApp) bool {
		return *a.dur == 5*time.Second && !*a.sw && len(*a.list) == 2 && (*a.list)[1] == ":3"
	})
	f(map[string]string{"PROCSCOPE_X_INTERVAL": "soon", "PROCSCOPE_X_ON": "false"}, []string{"--x.interval=7s", "--x.on"}, "", func(a *testApp) bool {
		return *a.dur == 7*time.Second && *a.sw
	})
	// Switches: --x, --no-x, and --x=true|false (kingpin alone says
	// "unexpected false"); after "--" nothing is rewritten.
	f(none, []string{"--x.on=false"}, "", func(a *testApp) bool { return !*a.sw })
	f(map[string]string{"PROCSCOPE_X_ON": "false"}, []string{"--x.on=true"}, "", func(a *testApp) bool { return *a.sw })
	f(none, []string{"--", "--x.on=false"}, "unexpected", nil)
	// Repeatable flags still repeat.
	f(none, []string{"--x.addr=:5", "--x.addr=:6"}, "", func(a *testApp) bool { return len(*a.list) == 2 })
}

// TestParseGiven: Parse reports the flags of the command line, not those
// of the environment.
func TestParseGiven(t *testing.T) {
	t.Setenv("PROCSCOPE_X_COUNT", "4")
	a := newTestApp()
	_, given, err := Parse(a.app, []string{"--x.interval=1s", "--no-x.on"})
	if err != nil {
		t.Fatal(err)
	}
	if !given["x.interval"] || !given["x.on"] || given["x.count"] || *a.num != 4 {
		t.Errorf("given %v, count %d", given, *a.num)
	}
}

// TestHelpShowsVariables: --help shows each visible flag's variable;
// kingpin's hidden flags have none (one would print help and exit).
func TestHelpShowsVariables(t *testing.T) {
	a := newTestApp()
	if _, _, err := Parse(a.app, []string{"--help"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"($PROCSCOPE_X_INTERVAL)", "($PROCSCOPE_X_ON)", "($PROCSCOPE_X_ADDR)", "--[no-]x.on", `--x.name="abc"`} {
		if !strings.Contains(a.out.String(), want) {
			t.Errorf("--help lacks %s:\n%s", want, a.out.String())
		}
	}
	t.Setenv("PROCSCOPE_HELP_LONG", "true")
	a = newTestApp()
	if _, _, err := Parse(a.app, nil); err != nil || a.out.Len() != 0 {
		t.Errorf("PROCSCOPE_HELP_LONG acted: %v %q", err, a.out.String())
	}
}

// TestFillVersion: no label stays empty; what the linker set stays.
func TestFillVersion(t *testing.T) {
	saved := []string{version.Version, version.Branch, version.BuildUser, version.BuildDate}
	defer func() {
		version.Version, version.Branch, version.BuildUser, version.BuildDate = saved[0], saved[1], saved[2], saved[3]
	}()
	f := func(info *debug.BuildInfo, preset string, want ...string) {
		t.Helper()
		version.Version, version.Branch, version.BuildUser, version.BuildDate = preset, preset, preset, preset
		fillVersion(info)
		got := []string{version.Version, version.Branch, version.BuildUser, version.BuildDate}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("fillVersion(%v, %q) = %q, want %q", info, preset, got, want)
		}
	}
	f(nil, "", "devel", "unknown", "unknown", "unknown")
	f(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "", "devel", "unknown", "unknown", "unknown")
	f(&debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}}},
		"", "v1.2.3", "unknown", "unknown", "20260102-03:04:05")
	f(&debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "set", "set", "set", "set", "set")
}
