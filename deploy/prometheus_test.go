package deploy

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ruleFiles lists the rule files prometheus.yml loads (relative to the
// repository root); every one must exist.
func ruleFiles(t *testing.T) []string {
	t.Helper()
	cfg := yamlDoc(t, "prometheus.yml")
	var out []string
	for _, pattern := range strList(cfg["rule_files"]) {
		m, err := filepath.Glob(filepath.Join(repoRoot, pattern))
		if err != nil || len(m) == 0 {
			t.Fatalf("prometheus.yml: rule_files %q matches no file (%v)", pattern, err)
		}
		for _, f := range m {
			rel, _ := filepath.Rel(repoRoot, f)
			out = append(out, rel)
		}
	}
	if len(out) == 0 {
		t.Fatal("prometheus.yml loads no rule file")
	}
	return out
}

func runTool(t *testing.T, dir, tool string, args ...string) {
	t.Helper()
	cmd := exec.Command(tool, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s %s: %v\n%s", filepath.Base(tool), strings.Join(args, " "), err, out)
	}
}

func TestPrometheusConfigIsValid(t *testing.T) {
	promtool := requireTool(t, "promtool")
	// From the repository root, as documented: relative paths in the
	// config resolve against its directory.
	runTool(t, repoRoot, promtool, "check", "config", "--lint=all", "--lint-fatal", "prometheus.yml")
}

func TestPrometheusConfigScrapesEverything(t *testing.T) {
	cfg := yamlDoc(t, "prometheus.yml")
	jobs := map[string]map[string]any{}
	for _, sc := range listOf(cfg["scrape_configs"]) {
		jobs[strOf(mapOf(sc)["job_name"])] = mapOf(sc)
	}
	exp := jobs["procscope-exporter"]
	if exp == nil {
		t.Fatalf("no job procscope-exporter in prometheus.yml; jobs: %v", sortedKeys(jobs))
	}
	if len(listOf(exp["static_configs"])) == 0 {
		t.Error("procscope-exporter: no static_configs (the static list of hosts)")
	}
	var sdFiles []string
	for _, sd := range listOf(exp["file_sd_configs"]) {
		sdFiles = append(sdFiles, strList(mapOf(sd)["files"])...)
	}
	if len(sdFiles) == 0 {
		t.Error("procscope-exporter: no file_sd_configs")
	}
	for _, pattern := range sdFiles {
		m, _ := filepath.Glob(filepath.Join(repoRoot, pattern))
		if len(m) == 0 {
			t.Errorf("file_sd pattern %q matches no example file in the repository", pattern)
		}
		for _, f := range m {
			rel, _ := filepath.Rel(repoRoot, f)
			// A file_sd file is a YAML list of {targets, labels}.
			var groups []struct {
				Targets []string          `yaml:"targets"`
				Labels  map[string]string `yaml:"labels"`
			}
			if err := yamlUnmarshalStrict(readFile(t, rel), &groups); err != nil {
				t.Errorf("%s: not a file_sd target list: %v", rel, err)
			}
		}
	}
	if jobs["procscope-aggregator"] == nil {
		t.Error("no job procscope-aggregator in prometheus.yml")
	}
}

func TestAlertRulesAreValid(t *testing.T) {
	promtool := requireTool(t, "promtool")
	files := ruleFiles(t)
	runTool(t, repoRoot, promtool, append([]string{"check", "rules", "--lint=all", "--lint-fatal"}, files...)...)
	tests, _ := filepath.Glob(filepath.Join(repoRoot, "deploy", "prometheus", "*_test.yml"))
	if len(tests) == 0 {
		t.Fatal("no rule unit tests (deploy/prometheus/*_test.yml)")
	}
	for _, f := range tests {
		runTool(t, filepath.Dir(f), promtool, "test", "rules", filepath.Base(f))
	}
}

// TestAlertRulesConventions checks what promtool does not: every alert has
// a for, a severity and both annotations; the alerts the project promises
// exist; and every alert is proven to fire by a unit test.
func TestAlertRulesConventions(t *testing.T) {
	alerts := map[string]map[string]any{}
	var exprs []string
	for _, f := range ruleFiles(t) {
		for _, g := range listOf(yamlDoc(t, f)["groups"]) {
			for _, r := range listOf(mapOf(g)["rules"]) {
				rule := mapOf(r)
				name := strOf(rule["alert"])
				if name == "" {
					continue // a recording rule
				}
				if alerts[name] != nil {
					t.Errorf("%s: alert %s defined twice", f, name)
				}
				alerts[name] = rule
				exprs = append(exprs, strOf(rule["expr"]))
				if strOf(rule["for"]) == "" {
					t.Errorf("%s: alert %s has no for:", f, name)
				}
				if sev := strOf(dig(rule, "labels", "severity")); !slices.Contains([]string{"critical", "warning", "info"}, sev) {
					t.Errorf("%s: alert %s: severity %q, want critical, warning or info", f, name, sev)
				}
				for _, a := range []string{"summary", "description"} {
					if strings.TrimSpace(strOf(dig(rule, "annotations", a))) == "" {
						t.Errorf("%s: alert %s has no %s annotation", f, name, a)
					}
				}
			}
		}
	}
	// What the alerts must watch, by the series their expressions use.
	all := strings.Join(exprs, "\n")
	for _, want := range []string{
		`up{job="procscope-exporter"}`,
		"procscope_aggregator_host_last_seen_timestamp_seconds",
		"procscope_cpu_seconds_total",
		"procscope_memory_available_bytes",
		"predict_linear(procscope_filesystem_avail_bytes",
		"procscope_process_group_processes == 0",
		"procscope_push_snapshots_failed_total",
		"procscope_push_snapshots_dropped_total",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no alert expression uses %s", want)
		}
	}
	// Every alert must be shown firing in a unit test.
	tested := map[string]bool{}
	tests, _ := filepath.Glob(filepath.Join(repoRoot, "deploy", "prometheus", "*_test.yml"))
	for _, f := range tests {
		rel, _ := filepath.Rel(repoRoot, f)
		for _, tc := range listOf(yamlDoc(t, rel)["tests"]) {
			for _, at := range listOf(mapOf(tc)["alert_rule_test"]) {
				if len(listOf(mapOf(at)["exp_alerts"])) > 0 {
					tested[strOf(mapOf(at)["alertname"])] = true
				}
			}
		}
	}
	for _, name := range sortedKeys(alerts) {
		if !tested[name] {
			t.Errorf("alert %s is never shown firing in deploy/prometheus/*_test.yml", name)
		}
	}
}
