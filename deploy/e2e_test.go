package deploy

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/procscope/procscope/internal/testutil"
)

// Grafana's built-in variables, as they would be on a short time range
// with the 1s scrape interval of this test.
var builtinVars = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__range":         "1m",
}

// The end-to-end test starts the real aggregator, two real exporters (one
// listed statically, one through file_sd, both pushing) and the real
// Prometheus with the shipped prometheus.yml (only addresses, paths and
// intervals changed), then checks that every dashboard query returns data
// and every alert rule evaluates.
func TestEndToEndWithPrometheus(t *testing.T) {
	promBin := requireTool(t, "prometheus")
	promtool := requireTool(t, "promtool")
	bins := buildBinaries(t)
	tmp := t.TempDir()

	_, aggAddr := start(t, "aggregator", true, nil, bins.Aggregator,
		"--web.listen-address=127.0.0.1:0", "--storage.path="+filepath.Join(tmp, "aggregator"))

	// Both exporters push as the same host with the same key, so that both
	// have push metrics with data; a process group that runs (the
	// exporters themselves, whose names the kernel cuts to 15 bytes) and
	// one that never does.
	key := make([]byte, 32)
	rand.Read(key)
	env := []string{"PROCSCOPE_API_KEY=" + hex.EncodeToString(key)}
	exporterArgs := func(name string) []string {
		return []string{
			"--web.listen-address=127.0.0.1:0",
			"--push.url=http://" + aggAddr + "/api/v1/ingest",
			"--push.interval=1s",
			"--state.dir=" + filepath.Join(tmp, name),
			"--metrics.process-group=procscope=^procscope-",
			"--metrics.process-group=absent=^no-such-process-e2e$",
		}
	}
	_, staticAddr := start(t, "exporter (static)", true, env, bins.Exporter, exporterArgs("exporter-static")...)
	_, sdAddr := start(t, "exporter (file_sd)", true, env, bins.Exporter, exporterArgs("exporter-sd")...)

	// The aggregator's probes used by the Kubernetes manifests.
	waitFor(t, 30*time.Second, "aggregator /-/ready", func() error {
		for _, p := range []string{"/-/healthy", "/-/ready"} {
			resp, err := httpClient.Get("http://" + aggAddr + p)
			if err != nil {
				return err
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", p, resp.Status)
			}
		}
		return nil
	})

	t.Run("promtool check metrics", func(t *testing.T) {
		for name, addr := range map[string]string{"exporter": staticAddr, "aggregator": aggAddr} {
			cmd := exec.Command(promtool, "check", "metrics")
			cmd.Stdin = bytes.NewReader(getBody(t, "http://"+addr+"/metrics"))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool check metrics on the %s's /metrics: %v\n%s", name, err, out)
			}
		}
	})

	promAddr := startPrometheus(t, promBin, tmp, staticAddr, sdAddr, aggAddr)
	api := "http://" + promAddr + "/api/v1/"

	// Every target up, the file_sd one found through the file.
	waitFor(t, 60*time.Second, "every target up", func() error {
		var r struct {
			Data struct {
				ActiveTargets []struct {
					ScrapeURL        string            `json:"scrapeUrl"`
					Health           string            `json:"health"`
					LastError        string            `json:"lastError"`
					DiscoveredLabels map[string]string `json:"discoveredLabels"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := getJSON(api+"targets", &r); err != nil {
			return err
		}
		up := map[string]bool{}
		var problems []string
		for _, tg := range r.Data.ActiveTargets {
			u, _ := url.Parse(tg.ScrapeURL)
			if tg.Health != "up" {
				problems = append(problems, fmt.Sprintf("%s %s %s", tg.ScrapeURL, tg.Health, tg.LastError))
				continue
			}
			if u.Host == sdAddr && tg.DiscoveredLabels["__meta_filepath"] == "" {
				problems = append(problems, sdAddr+" not discovered through file_sd")
			}
			up[u.Host] = true
		}
		for _, a := range []string{staticAddr, sdAddr, aggAddr} {
			if !up[a] {
				problems = append(problems, a+" not up")
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("%s", strings.Join(problems, "; "))
		}
		return nil
	})

	t.Run("every dashboard query returns data", func(t *testing.T) {
		dashes := loadDashboards(t)
		var failures []string
		// Poll: a rate() needs two scrapes, a push counter a first push.
		deadline := time.Now().Add(45 * time.Second)
		for {
			failures = failures[:0]
			n := 0
			columns := map[string][]string{}           // panel -> its table's label columns
			labelsSeen := map[string]map[string]bool{} // panel -> labels of its series
			for _, d := range dashes {
				vars, errs := resolveVariables(api, d)
				failures = append(failures, errs...)
				for _, q := range d.queries() {
					n++
					expr, err := substitute(q.Expr, vars)
					if err != nil {
						failures = append(failures, fmt.Sprintf("%s: %v", q.Where, err))
						continue
					}
					res, err := promQuery(api, expr)
					if err != nil {
						failures = append(failures, fmt.Sprintf("%s: %s: %v", q.Where, expr, err))
					} else if len(res) == 0 {
						failures = append(failures, fmt.Sprintf("%s: no series: %s", q.Where, expr))
					} else if missing := legendLabelsMissing(q.Legend, res); len(missing) > 0 {
						failures = append(failures, fmt.Sprintf("%s: legend %q names labels %v the series lack: %s", q.Where, q.Legend, missing, expr))
					}
					columns[q.Panel] = q.Columns
					if labelsSeen[q.Panel] == nil {
						labelsSeen[q.Panel] = map[string]bool{}
					}
					for _, r := range res {
						for l := range mapOf(mapOf(r)["metric"]) {
							labelsSeen[q.Panel][l] = true
						}
					}
				}
			}
			for _, panel := range sortedKeys(columns) {
				for _, c := range columns[panel] {
					if !labelsSeen[panel][c] {
						failures = append(failures, fmt.Sprintf("%s: the table's column %q is a label none of its series has", panel, c))
					}
				}
			}
			if n == 0 {
				t.Fatal("no dashboard queries found")
			}
			if len(failures) == 0 {
				t.Logf("%d dashboard queries over %d dashboards all returned data", n, len(dashes))
				return
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(2 * time.Second)
		}
		for _, f := range failures {
			t.Error(f)
		}
	})

	t.Run("every alert expression evaluates", func(t *testing.T) {
		var exprs []query
		for _, f := range ruleFiles(t) {
			for _, g := range listOf(yamlDoc(t, f)["groups"]) {
				for _, r := range listOf(mapOf(g)["rules"]) {
					name := strOf(mapOf(r)["alert"]) + strOf(mapOf(r)["record"])
					exprs = append(exprs, query{Where: f + " " + name, Expr: strOf(mapOf(r)["expr"])})
				}
			}
		}
		for _, q := range exprs {
			if _, err := promQuery(api, q.Expr); err != nil {
				t.Errorf("%s: %v", q.Where, err)
			}
		}
		// Prometheus itself evaluated every rule without error...
		waitFor(t, 20*time.Second, "every rule evaluated", func() error {
			var r struct {
				Data struct {
					Groups []struct {
						Rules []struct {
							Name           string `json:"name"`
							Health         string `json:"health"`
							LastError      string `json:"lastError"`
							LastEvaluation string `json:"lastEvaluation"`
						} `json:"rules"`
					} `json:"groups"`
				} `json:"data"`
			}
			if err := getJSON(api+"rules", &r); err != nil {
				return err
			}
			var n int
			for _, g := range r.Data.Groups {
				for _, rule := range g.Rules {
					n++
					if rule.Health != "ok" {
						return fmt.Errorf("rule %s: health %q %s", rule.Name, rule.Health, rule.LastError)
					}
				}
			}
			if n != len(exprs) {
				return fmt.Errorf("prometheus has %d rules, the rule files %d", n, len(exprs))
			}
			return nil
		})
		// ...and the group that never runs is caught (pending: its for: is
		// minutes), the one that runs is not.
		waitFor(t, 20*time.Second, "ProcscopeProcessGroupNotRunning pending for the absent group", func() error {
			var r struct {
				Data struct {
					Alerts []struct {
						Labels map[string]string `json:"labels"`
						State  string            `json:"state"`
					} `json:"alerts"`
				} `json:"data"`
			}
			if err := getJSON(api+"alerts", &r); err != nil {
				return err
			}
			var groups []string
			for _, a := range r.Data.Alerts {
				if a.Labels["alertname"] == "ProcscopeProcessGroupNotRunning" {
					groups = append(groups, a.Labels["group"])
				}
			}
			sort.Strings(groups)
			if slices.Contains(groups, "procscope") {
				t.Errorf("ProcscopeProcessGroupNotRunning is active for group procscope, whose processes run")
			}
			if !slices.Contains(groups, "absent") {
				return fmt.Errorf("active for groups %v, want absent", groups)
			}
			return nil
		})
	})
}

// startPrometheus writes the shipped prometheus.yml with only the targets,
// paths and intervals changed into tmp and starts Prometheus on it.
func startPrometheus(t *testing.T, bin, tmp, staticAddr, sdAddr, aggAddr string) string {
	t.Helper()
	cfg := yamlDoc(t, "prometheus.yml")
	g := mapOf(cfg["global"])
	g["scrape_interval"], g["scrape_timeout"], g["evaluation_interval"] = "1s", "1s", "1s"
	var rules []string
	for _, r := range strList(cfg["rule_files"]) {
		abs, err := filepath.Abs(filepath.Join(repoRoot, r))
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, abs)
	}
	cfg["rule_files"] = rules
	sdDir := filepath.Join(tmp, "targets")
	if err := os.MkdirAll(sdDir, 0o755); err != nil {
		t.Fatal(err)
	}
	sd, _ := yaml.Marshal([]map[string]any{{"targets": []string{sdAddr}}})
	if err := os.WriteFile(filepath.Join(sdDir, "e2e.yml"), sd, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, sc := range listOf(cfg["scrape_configs"]) {
		job := mapOf(sc)
		delete(job, "scrape_interval")
		delete(job, "scrape_timeout")
		var addr string
		switch strOf(job["job_name"]) {
		case "procscope-exporter":
			addr = staticAddr
			for _, fsd := range listOf(job["file_sd_configs"]) {
				mapOf(fsd)["files"] = []string{filepath.Join(sdDir, "*.yml")}
				mapOf(fsd)["refresh_interval"] = "1s"
			}
		case "procscope-aggregator":
			addr = aggAddr
		default:
			t.Fatalf("prometheus.yml: job %v is new to this test: teach it where that job's target listens", job["job_name"])
		}
		for _, st := range listOf(job["static_configs"]) {
			mapOf(st)["targets"] = []string{addr}
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(tmp, "prometheus.yml")
	if err := os.WriteFile(cfgPath, out, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testutil.FreePort(t)
	p, _ := start(t, "prometheus", false, nil, bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(tmp, "prometheus"),
		"--web.listen-address="+addr)
	waitFor(t, 30*time.Second, "prometheus ready", func() error {
		select {
		case <-p.done:
			t.Fatalf("prometheus exited:\n%s", tail(p.Log(), 4000))
		default:
		}
		resp, err := httpClient.Get("http://" + addr + "/-/ready")
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	})
	return addr
}

// waitFor polls check every 500ms until it succeeds or the time is up.
func waitFor(t *testing.T, limit time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: still failing after %v: %v", what, limit, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// promQuery runs an instant query and returns its result (vector or
// scalar) or Prometheus' error.
func promQuery(api, expr string) ([]any, error) {
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     any    `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(api+"query?query="+url.QueryEscape(expr), &r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s", r.Error)
	}
	switch v := r.Data.Result.(type) {
	case []any:
		return v, nil
	case nil:
		return nil, nil
	default: // a scalar or string: one value
		return []any{v}, nil
	}
}

var (
	labelValuesRE = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)
	varRefRE      = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)`)
)

// substitute replaces Grafana variables in an expression; an unknown
// variable is an error (Grafana would leave it and the query would fail).
func substitute(expr string, vars map[string]string) (string, error) {
	var missing []string
	out := varRefRE.ReplaceAllStringFunc(expr, func(m string) string {
		p := varRefRE.FindStringSubmatch(m)
		name := p[1] + p[2] + p[3]
		if v, ok := vars[name]; ok {
			return v
		}
		if v, ok := builtinVars[name]; ok {
			return v
		}
		missing = append(missing, name)
		return m
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unknown variable(s) %v in %s", missing, expr)
	}
	return out, nil
}

// resolveVariables gives each query variable of a dashboard the value
// Grafana would: label_values(selector, label) asked of Prometheus, then
// the All value for multi-value variables, else the first value.
func resolveVariables(api string, d dashboard) (map[string]string, []string) {
	vars := map[string]string{}
	var errs []string
	for _, v := range d.variables() {
		switch v.Type {
		case "datasource":
			vars[v.Name] = "prometheus"
			continue
		case "query":
		default:
			errs = append(errs, fmt.Sprintf("%s: variable %s of type %s is new to this test", d.File, v.Name, v.Type))
			continue
		}
		m := labelValuesRE.FindStringSubmatch(strings.TrimSpace(v.Query))
		if m == nil {
			errs = append(errs, fmt.Sprintf("%s: variable %s: cannot resolve %q", d.File, v.Name, v.Query))
			continue
		}
		sel, err := substitute(m[1], vars)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: variable %s: %v", d.File, v.Name, err))
			continue
		}
		var r struct {
			Status string              `json:"status"`
			Error  string              `json:"error"`
			Data   []map[string]string `json:"data"`
		}
		start := time.Now().Add(-10 * time.Minute).Unix()
		if err := getJSON(fmt.Sprintf("%sseries?match[]=%s&start=%d", api, url.QueryEscape(sel), start), &r); err != nil || r.Status != "success" {
			errs = append(errs, fmt.Sprintf("%s: variable %s: %v %s", d.File, v.Name, err, r.Error))
			continue
		}
		set := map[string]bool{}
		for _, s := range r.Data {
			if val := s[m[2]]; val != "" {
				set[val] = true
			}
		}
		values := sortedKeys(set)
		if len(values) == 0 {
			errs = append(errs, fmt.Sprintf("%s: variable %s: %s has no values", d.File, v.Name, v.Query))
			continue
		}
		switch {
		case v.IncludeAll && v.AllValue != "":
			vars[v.Name] = v.AllValue
		case v.IncludeAll:
			q := make([]string, len(values))
			for i, s := range values {
				q[i] = regexp.QuoteMeta(s)
			}
			vars[v.Name] = "(" + strings.Join(q, "|") + ")"
		default:
			vars[v.Name] = values[0]
		}
	}
	return vars, errs
}

var legendLabelRE = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// legendLabelsMissing lists the labels a legend format names that some
// series of a query result does not have.
func legendLabelsMissing(legend string, result []any) []string {
	var missing []string
	for _, m := range legendLabelRE.FindAllStringSubmatch(legend, -1) {
		for _, r := range result {
			metric, ok := mapOf(r)["metric"].(map[string]any)
			if !ok {
				continue // a scalar
			}
			if _, has := metric[m[1]]; !has {
				missing = append(missing, m[1])
				break
			}
		}
	}
	return missing
}

func TestLegendLabelsMissing(t *testing.T) {
	series := func(labels ...string) map[string]any {
		m := map[string]any{}
		for _, l := range labels {
			m[l] = "x"
		}
		return map[string]any{"metric": m, "value": []any{1.0, "1"}}
	}
	f := func(legend string, result []any, want ...string) {
		t.Helper()
		if got := legendLabelsMissing(legend, result); !slices.Equal(got, want) {
			t.Errorf("legendLabelsMissing(%q) = %v, want %v", legend, got, want)
		}
	}
	f("{{mode}}", []any{series("mode"), series("mode", "cpu")})
	f("{{ mode }} on {{instance}}", []any{series("mode")}, "instance")
	f("{{device}} receive", []any{series("device"), series("other")}, "device")
	f("__auto", []any{series()})
	f("{{x}}", []any{[]any{1.0, "3"}}) // a scalar has no labels to check
}

func TestSubstitute(t *testing.T) {
	vars := map[string]string{"instance": "127.0.0.1:1", "aggregator": "a", "aggregator_job": "j"}
	f := func(in, want string, wantErr bool) {
		t.Helper()
		got, err := substitute(in, vars)
		if (err != nil) != wantErr || (!wantErr && got != want) {
			t.Errorf("substitute(%q) = %q, %v; want %q, error %v", in, got, err, want, wantErr)
		}
	}
	f(`up{instance="$instance"}`, `up{instance="127.0.0.1:1"}`, false)
	f(`x{a=~"$aggregator", j=~"${aggregator_job}"}`, `x{a=~"a", j=~"j"}`, false)
	f(`rate(x[$__rate_interval])`, `rate(x[1m])`, false)
	f(`x{i="[[instance]]"}`, `x{i="127.0.0.1:1"}`, false)
	f(`x{i="$nope"}`, "", true)
	f(`x{i=~"^a$"}`, `x{i=~"^a$"}`, false)
}
