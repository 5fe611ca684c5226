package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersionAndDebVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, deb string // deb "" when the version is refused
	}{
		{"1.2.3", "1.2.3"},
		{"0.10.0-rc.1", "0.10.0~rc.1"},
		{"v1.2.3", ""},
		{"1.2", ""},
		{"1.2.3-", ""},
		{"1.2.3 ", ""},
		{"abc1234-dirty", ""},
	} {
		ok := versionRE.MatchString(tc.in)
		if ok != (tc.deb != "") {
			t.Errorf("%q accepted: %v", tc.in, ok)
			continue
		}
		if ok && debVersion(tc.in) != tc.deb {
			t.Errorf("debVersion(%q) = %q, want %q", tc.in, debVersion(tc.in), tc.deb)
		}
	}
}

func TestRunRefusesABadVersion(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run([]string{"-version", "main"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "x.y.z") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
}

func TestPackagedUnit(t *testing.T) {
	t.Parallel()
	unit, err := os.ReadFile(filepath.Join("..", "..", "deploy", "systemd", "procscope-exporter.service"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := packagedUnit(unit, "procscope-exporter")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, []byte("\nExecStart=/usr/bin/procscope-exporter ")) || bytes.Contains(got, []byte("/usr/local/bin/")) {
		t.Errorf("ExecStart not moved to /usr/bin:\n%s", got)
	}
	if len(got) != len(unit)-len("/local")*bytes.Count(unit, []byte("/usr/local/bin/procscope-exporter")) {
		t.Error("more than the binary's path changed")
	}
	if _, err := packagedUnit([]byte("[Service]\nExecStart=/opt/x\n"), "procscope-exporter"); err == nil {
		t.Error("a unit without ExecStart=/usr/local/bin/procscope-exporter was packaged")
	}
}

func TestCheckChangelog(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "CHANGELOG.md")
	text := "# Changelog\n\n## [Unreleased]\n\n## [1.2.3] - 2026-12-05\n### Added\n- x\n\n## [1.2.2]\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		version string
		ok      bool
	}{
		{"1.2.3", true},
		{"1.2.2", true},
		{"1.2.4", false},
		{"1.2", false},       // a prefix of 1.2.3 is not its section
		{"1.3.0-rc.1", true}, // pre-releases need no section
	} {
		if err := checkChangelog(path, tc.version); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.version, err)
		}
	}
	// The repository's own changelog is in that format.
	b, err := os.ReadFile(filepath.Join("..", "..", "CHANGELOG.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "# Changelog\n") || !strings.Contains(string(b), "\n## [Unreleased]\n") {
		t.Error("CHANGELOG.md: want a \"# Changelog\" title and a \"## [Unreleased]\" section")
	}
}
