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
