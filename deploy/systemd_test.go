package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// unitSettings parses a unit file into "Section.Key" -> values (a key
// may repeat), continuation lines joined.
func unitSettings(text string) map[string][]string {
	out := map[string][]string{}
	section := ""
	text = strings.ReplaceAll(text, "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		out[section+"."+strings.TrimSpace(k)] = append(out[section+"."+strings.TrimSpace(k)], strings.Join(strings.Fields(v), " "))
	}
	return out
}

var execStartRE = regexp.MustCompile(`(?m)^ExecStart=(\S+)`)

func TestSystemdUnits(t *testing.T) {
	units := map[string]string{
		"procscope-exporter.service":   "exporter",
		"procscope-aggregator.service": "aggregator",
	}
	bins := buildBinaries(t)
	verify := requireToolOptional("systemd-analyze")
	tmp := t.TempDir()
	for unit, which := range units {
		rel := filepath.Join("deploy", "systemd", unit)
		text := string(readFile(t, rel))
		set := unitSettings(text)
		bin := bins.Exporter
		if which == "aggregator" {
			bin = bins.Aggregator
		}
		m := execStartRE.FindStringSubmatch(text)
		if m == nil || m[1] != "/usr/local/bin/procscope-"+which {
			t.Errorf("%s: ExecStart is not /usr/local/bin/procscope-%s", unit, which)
			continue
		}
		// Every flag the unit passes, and every flag its comments suggest
		// for ARGS, must exist.
		var flagText []string
		flagText = append(flagText, set["Service.ExecStart"]...)
		for _, l := range strings.Split(text, "\n") {
			if strings.Contains(l, "ARGS=") {
				flagText = append(flagText, l)
			}
		}
		checkFlags(t, unit, bin, strings.Join(flagText, "\n"))

		want := map[string]string{
			"Service.NoNewPrivileges": "yes",
			"Service.ProtectSystem":   "strict",
			"Service.StateDirectory":  "procscope-" + which,
		}
		for k, v := range want {
			if !slices.Contains(set[k], v) {
				t.Errorf("%s: want %s=%s, have %v", unit, k, v, set[k])
			}
		}
		if !slices.Contains(set["Service.DynamicUser"], "yes") && len(set["Service.User"]) == 0 {
			t.Errorf("%s: runs as root: want DynamicUser=yes or User=", unit)
		}
		if which == "exporter" {
			for _, c := range []string{"CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"} {
				if !strings.Contains(strings.Join(set["Service.AmbientCapabilities"], " "), c) {
					t.Errorf("%s: AmbientCapabilities lacks %s, needed to read every process", unit, c)
				}
			}
			if slices.Contains(set["Service.ProtectProc"], "invisible") || slices.Contains(set["Service.ProcSubset"], "pid") {
				t.Errorf("%s: ProtectProc=invisible or ProcSubset=pid would hide processes or /proc files from the exporter", unit)
			}
		} else if b := set["Service.CapabilityBoundingSet"]; len(b) != 1 || b[0] != "" {
			t.Errorf("%s: the aggregator needs no capability: want an empty CapabilityBoundingSet=, have %v", unit, b)
		}

		if verify == "" {
			continue
		}
		// systemd-analyze verify checks every setting and that ExecStart
		// exists: point it at the binary just built.
		copyPath := filepath.Join(tmp, unit)
		if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(text, m[1], bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(verify, "verify", copyPath).CombinedOutput()
		var ours []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, unit) {
				ours = append(ours, l)
			}
		}
		if err != nil || len(ours) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
		}
	}
	if verify == "" {
		t.Log("systemd-analyze not found: unit files checked by this test only, not by systemd")
	}
}

func TestUnitSettings(t *testing.T) {
	f := func(text, key string, want ...string) {
		t.Helper()
		if got := unitSettings(text)[key]; !slices.Equal(got, want) {
			t.Errorf("unitSettings(%q)[%s] = %q, want %q", text, key, got, want)
		}
	}
	f("[Service]\nExecStart=/bin/x \\\n  --a=1 \\\n  --b\n", "Service.ExecStart", "/bin/x --a=1 --b")
	f("[Service]\nX=1\n# X=2\nX=3\n[Unit]\nX=4\n", "Service.X", "1", "3")
	f("[Service]\nCapabilityBoundingSet=\n", "Service.CapabilityBoundingSet", "")
	f("[Unit]\nX=1\n", "Service.X")
}
