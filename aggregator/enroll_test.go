package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/procscope/procscope/aggregator/internal/api"
)

// TestDefaultEnrollment: open only when every listen address is
// loopback; anything that may be reachable from elsewhere is closed.
func TestDefaultEnrollment(t *testing.T) {
	f := func(want api.EnrollMode, systemd bool, listen ...string) {
		t.Helper()
		ef := testEnrollFlags("", "", 10000, 60)
		cfg, msg, level, err := ef.enrollment(listen, systemd)
		if err != nil {
			t.Fatalf("%v: %v", listen, err)
		}
		if cfg.Mode != want {
			t.Errorf("listen %v (systemd %v): mode %s, want %s (%s)", listen, systemd, cfg.Mode, want, msg)
		}
		if want == api.EnrollClosed && (level != slog.LevelWarn || !strings.Contains(msg, "hosts add NAME") || !strings.Contains(msg, "--hosts.enrollment=token")) {
			t.Errorf("closed by default: level %v, message %q must warn and name the fix", level, msg)
		}
		if want == api.EnrollOpen && !strings.Contains(msg, "--hosts.enrollment=token|closed") {
			t.Errorf("open by default: message %q must name the flag", msg)
		}
	}
	f(api.EnrollOpen, false, "127.0.0.1:8000")
	f(api.EnrollOpen, false, "127.0.0.2:8000", "[::1]:8000", "localhost:8000", "LOCALHOST:1")
	f(api.EnrollOpen, false, "[::ffff:127.0.0.1]:8000")
	f(api.EnrollClosed, false, ":8000")
	f(api.EnrollClosed, false, "0.0.0.0:8000")
	f(api.EnrollClosed, false, "[::]:8000")
	f(api.EnrollClosed, false, "127.0.0.1:8000", "192.0.2.10:8000")
	f(api.EnrollClosed, false, "10.0.0.1:8000")
	f(api.EnrollClosed, false, "aggregator.example.com:8000")
	f(api.EnrollClosed, false, "vsock://:8000")
	f(api.EnrollClosed, false, "127.0.0.1") // no port: not an address we can judge
	f(api.EnrollClosed, true, "127.0.0.1:8000")
	f(api.EnrollClosed, false)
}

func testEnrollFlags(mode, tokenFile string, maxHosts, rate int) *enrollFlags {
	return &enrollFlags{mode: &mode, tokenFile: &tokenFile, maxHosts: &maxHosts, rate: &rate}
}

// TestEnrollmentFlags: explicit modes, the token file, and the refusals.
func TestEnrollmentFlags(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	if err := os.WriteFile(good, []byte("  0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	spaced := filepath.Join(dir, "spaced")
	if err := os.WriteFile(spaced, []byte("0123456789 abcdef0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lo := []string{"127.0.0.1:8000"}
	any := []string{":8000"}

	// Only the token file: token mode, token read and trimmed.
	cfg, msg, _, err := testEnrollFlags("", good, 10000, 60).enrollment(any, false)
	if err != nil || cfg.Mode != api.EnrollToken || cfg.Token != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("token file alone: %+v %v", cfg, err)
	}
	if strings.Contains(msg, cfg.Token) {
		t.Fatal("the startup line shows the token")
	}
	if cfg.MaxHosts != 10000 || cfg.RatePerMinute != 60 || cfg.MinKeyLen != 8 {
		t.Fatalf("limits %+v", cfg)
	}
	// Explicit modes win over the listen addresses.
	if cfg, _, _, _ := testEnrollFlags("closed", "", 1, 1).enrollment(lo, false); cfg.Mode != api.EnrollClosed {
		t.Fatalf("explicit closed on loopback: %s", cfg.Mode)
	}
	cfg, msg, level, _ := testEnrollFlags("open", "", 1, 1).enrollment(any, false)
	if cfg.Mode != api.EnrollOpen || level != slog.LevelWarn || !strings.Contains(msg, "anyone") {
		t.Fatalf("explicit open beyond loopback must warn: %s %v %q", cfg.Mode, level, msg)
	}
	// A token file in another mode is said to be unused, not silently ignored.
	if _, msg, _, _ := testEnrollFlags("closed", good, 1, 1).enrollment(any, false); !strings.Contains(msg, "not used in closed mode") {
		t.Fatalf("closed with a token file: %q", msg)
	}

	var usage usageError
	if _, _, _, err := testEnrollFlags("token", "", 1, 1).enrollment(any, false); !errors.As(err, &usage) || !strings.Contains(err.Error(), "--hosts.enrollment-token-file") {
		t.Fatalf("token mode without a file: %v", err)
	}
	if _, _, _, err := testEnrollFlags("", "", -1, 1).enrollment(any, false); !errors.As(err, &usage) {
		t.Fatalf("negative --hosts.max: %v", err)
	}
	for _, bad := range []string{short, spaced, filepath.Join(dir, "missing")} {
		_, _, _, err := testEnrollFlags("token", bad, 1, 1).enrollment(any, false)
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), "--hosts.enrollment-token-file") {
			t.Fatalf("token file %s: %v, want a usage error (exit 2, as the exporter) naming the flag", bad, err)
		}
	}
}
