package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
)

func TestCheckLoopback(t *testing.T) {
	f := func(addr string, ok bool) {
		t.Helper()
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
	f("127.0.0.1:6060", true)
	f("127.0.0.2:0", true)
	f("[::1]:6060", true)
	f("localhost:6060", true)
	f(":6060", false) // every interface
	f("0.0.0.0:6060", false)
	f("[::]:6060", false)
	f("192.168.1.10:6060", false)
	f("pprof.example.com:6060", false)
	f("127.0.0.1", false) // no port
}

// TestPprofRefusesNonLoopback: the serve command stops at start with exit
// 2 and one message saying what to use, before opening anything.
func TestPprofRefusesNonLoopback(t *testing.T) {
	f := func(flag, want string) {
		t.Helper()
		app := kingpin.New("test", "")
		sf := addServeFlags(app)
		if _, err := app.Parse([]string{flag}); err != nil {
			t.Fatal(err)
		}
		if err := sf.check(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: check() = %v, want an error with %q", flag, err, want)
		}
		var stdout, stderr bytes.Buffer
		storage := filepath.Join(t.TempDir(), "data")
		if code := run([]string{"--storage.path=" + storage, "--web.listen-address=127.0.0.1:0", flag}, &stdout, &stderr); code != 2 {
			t.Errorf("%s: exit %d, want 2", flag, code)
		}
		if _, err := os.Stat(storage); err == nil {
			t.Errorf("%s: storage created before the flags were checked", flag)
		}
	}
	f("--debug.pprof-address=0.0.0.0:6060", "pprof listens only on loopback")
	f("--debug.pprof-address=:6060", "127.0.0.1:PORT")
	f("--debug.pprof-address=[::]:6060", "127.0.0.1:PORT")
	f("--web.allowed-hosts=http://procscope.example.com/", "--web.allowed-hosts")
	f("--web.max-streams-per-client=0", "--web.max-streams-per-client")
}

// TestPprofHostGuard: pprof on loopback follows the API's DNS rebinding
// rule: a Host that is not an IP or localhost gets 403.
func TestPprofHostGuard(t *testing.T) {
	var logs bytes.Buffer
	if err := servePprof(slog.New(slog.NewJSONHandler(&logs, nil)), "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	var line struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil || line.Address == "" {
		t.Fatalf("no address logged: %q %v", logs.String(), err)
	}
	get := func(host string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+line.Address+"/debug/pprof/", nil)
		req.Host = host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		return res.StatusCode
	}
	if code := get("evil.example:6060"); code != http.StatusForbidden {
		t.Errorf("Host evil.example: %d, want 403", code)
	}
	for _, h := range []string{line.Address, "localhost:6060"} {
		if code := get(h); code != http.StatusOK {
			t.Errorf("Host %s: %d, want 200", h, code)
		}
	}
}
