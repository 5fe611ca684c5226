package deploy

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dashboard is a Grafana dashboard file, decoded generically.
type dashboard struct {
	File string
	JSON map[string]any
}

func loadDashboards(t *testing.T) []dashboard {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repoRoot, "dashboards", "*.json"))
	if len(files) == 0 {
		t.Fatal("no dashboards/*.json")
	}
	var out []dashboard
	for _, f := range files {
		rel, _ := filepath.Rel(repoRoot, f)
		var m map[string]any
		if err := json.Unmarshal(readFile(t, rel), &m); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		out = append(out, dashboard{File: rel, JSON: m})
	}
	return out
}

// panels lists every panel, rows' nested panels included.
func (d dashboard) panels() []map[string]any {
	var out []map[string]any
	var walk func([]any)
	walk = func(ps []any) {
		for _, p := range ps {
			out = append(out, mapOf(p))
			walk(listOf(mapOf(p)["panels"]))
		}
	}
	walk(listOf(d.JSON["panels"]))
	return out
}

// query is one PromQL expression of a dashboard, with where it is.
type query struct {
	Where string
	Expr  string
	// Legend is the target's legendFormat; the labels it names must be on
	// every series the query returns, or the legend shows nothing.
	Legend string
	// Panel names the panel; Columns are the labels its table shows as
	// columns (from its organize transformation), which some series of
	// the panel's queries must carry.
	Panel   string
	Columns []string
}

// queries lists every PromQL expression of the panels.
func (d dashboard) queries() []query {
	var out []query
	for _, p := range d.panels() {
		for _, tg := range listOf(p["targets"]) {
			if e := strOf(mapOf(tg)["expr"]); e != "" {
				out = append(out, query{
					Where:   fmt.Sprintf("%s panel %q target %s", d.File, strOf(p["title"]), strOf(mapOf(tg)["refId"])),
					Expr:    e,
					Legend:  strOf(mapOf(tg)["legendFormat"]),
					Panel:   fmt.Sprintf("%s panel %q", d.File, strOf(p["title"])),
					Columns: tableColumns(p),
				})
			}
		}
	}
	return out
}

// variable is a templating variable.
type variable struct {
	Name, Type, Query, AllValue string
	IncludeAll                  bool
}

func (d dashboard) variables() []variable {
	var out []variable
	for _, v := range listOf(dig(d.JSON, "templating", "list")) {
		m := mapOf(v)
		q := strOf(m["query"])
		if q == "" {
			q = strOf(dig(m, "query", "query"))
		}
		inc, _ := m["includeAll"].(bool)
		out = append(out, variable{strOf(m["name"]), strOf(m["type"]), q, strOf(m["allValue"]), inc})
	}
	return out
}

const dsInput = "${DS_PROMETHEUS}"

func TestDashboards(t *testing.T) {
	dashes := loadDashboards(t)
	uids := map[string]string{}
	titles := map[string]bool{}
	for _, d := range dashes {
		uid := strOf(d.JSON["uid"])
		if uid == "" || uids[uid] != "" {
			t.Errorf("%s: uid %q empty or also used by %s", d.File, uid, uids[uid])
		}
		uids[uid] = d.File
		titles[strOf(d.JSON["title"])] = true

		// The data source input for import...
		var hasInput bool
		for _, in := range listOf(d.JSON["__inputs"]) {
			if strOf(mapOf(in)["name"]) == "DS_PROMETHEUS" && strOf(mapOf(in)["pluginId"]) == "prometheus" {
				hasInput = true
			}
		}
		if !hasInput {
			t.Errorf("%s: no DS_PROMETHEUS prometheus entry in __inputs", d.File)
		}
		// ...and the variable of the same name that resolves it when the
		// file is provisioned (provisioning ignores __inputs).
		vars := d.variables()
		var hasDSVar bool
		for _, v := range vars {
			if v.Name == "DS_PROMETHEUS" && v.Type == "datasource" && v.Query == "prometheus" {
				hasDSVar = true
			}
		}
		if !hasDSVar {
			t.Errorf("%s: no datasource variable DS_PROMETHEUS (query prometheus) in templating", d.File)
		}
		for _, v := range vars {
			if v.Type == "query" && !strings.HasPrefix(v.Query, "label_values(") {
				t.Errorf("%s: variable %s: query %q is not label_values(...), which the end-to-end test resolves", d.File, v.Name, v.Query)
			}
		}

		ids := map[float64]string{}
		for _, p := range d.panels() {
			title := strOf(p["title"])
			id, ok := p["id"].(float64)
			if !ok {
				t.Errorf("%s: panel %q has no numeric id", d.File, title)
			} else if prev, dup := ids[id]; dup {
				t.Errorf("%s: panel id %v used by %q and %q", d.File, id, prev, title)
			}
			ids[id] = title
			if title == "" {
				t.Errorf("%s: panel %v has no title", d.File, id)
			}
			g := mapOf(p["gridPos"])
			x, _ := g["x"].(float64)
			w, _ := g["w"].(float64)
			if w <= 0 || x+w > 24 {
				t.Errorf("%s: panel %q: gridPos x=%v w=%v outside the 24 columns", d.File, title, x, w)
			}
			if strOf(p["type"]) == "row" {
				continue
			}
			if strOf(p["description"]) == "" {
				t.Errorf("%s: panel %q has no description", d.File, title)
			}
			if uid := strOf(dig(p, "datasource", "uid")); uid != dsInput {
				t.Errorf("%s: panel %q: data source uid %q, want %s", d.File, title, uid, dsInput)
			}
			targets := listOf(p["targets"])
			if len(targets) == 0 {
				t.Errorf("%s: panel %q has no query", d.File, title)
			}
			for _, tg := range targets {
				if strings.TrimSpace(strOf(mapOf(tg)["expr"])) == "" {
					t.Errorf("%s: panel %q: a target has no expr", d.File, title)
				}
				if uid := strOf(dig(tg, "datasource", "uid")); uid != dsInput {
					t.Errorf("%s: panel %q: target data source uid %q, want %s", d.File, title, uid, dsInput)
				}
			}
		}
	}
	for _, want := range []string{"procscope / Host", "procscope / Fleet", "procscope / Internals"} {
		if !titles[want] {
			t.Errorf("no dashboard titled %q", want)
		}
	}
}

// TestDashboardsCoverTheMetrics checks each dashboard shows what it is
// for: the Host dashboard every host figure, the Internals dashboard every
// pipeline figure. (That the queries return data is proven end to end.)
func TestDashboardsCoverTheMetrics(t *testing.T) {
	want := map[string][]string{
		"procscope / Host": {"procscope_cpu_seconds_total", "procscope_memory_available_bytes", "procscope_swap_used_bytes",
			"procscope_load1", "procscope_filesystem_avail_bytes", "procscope_network_receive_bytes_total",
			"procscope_network_transmit_bytes_total", "procscope_processes", "procscope_top_process_cpu_percent",
			"procscope_top_process_resident_memory_bytes", "procscope_process_group_processes",
			"procscope_unit_cpu_seconds_total", "procscope_unit_resident_memory_bytes", "procscope_unit_io_read_bytes_total",
			"procscope_unit_process_starts_total", "procscope_unit_process_exits_total"},
		"procscope / Fleet": {"up", "procscope_cpu_seconds_total", "procscope_memory_available_bytes",
			"procscope_aggregator_host_last_seen_timestamp_seconds"},
		"procscope / Internals": {"procscope_walk_duration_seconds", "procscope_scrape_collector_duration_seconds",
			"procscope_push_snapshots_sent_total", "procscope_push_snapshots_failed_total", "procscope_push_snapshots_dropped_total",
			"procscope_push_queue_snapshots", "procscope_aggregator_ingest_requests_total",
			"procscope_aggregator_ingest_duration_seconds_bucket", "procscope_aggregator_database_size_bytes"},
	}
	for _, d := range loadDashboards(t) {
		title := strOf(d.JSON["title"])
		var all []string
		for _, q := range d.queries() {
			all = append(all, q.Expr)
		}
		text := strings.Join(all, "\n")
		for _, m := range want[title] {
			if !regexp.MustCompile(`\b` + regexp.QuoteMeta(m) + `\b`).MatchString(text) {
				t.Errorf("%s (%s): no query uses %s", d.File, title, m)
			}
		}
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	ds := yamlDoc(t, "dashboards/provisioning/datasources.yml")
	var defaults int
	for _, d := range listOf(ds["datasources"]) {
		m := mapOf(d)
		if strOf(m["type"]) != "prometheus" || strOf(m["url"]) == "" {
			t.Errorf("datasources.yml: %v: want a prometheus data source with a url", m["name"])
		}
		if b, _ := m["isDefault"].(bool); b {
			defaults++
		}
	}
	// The dashboards' DS_PROMETHEUS variable starts on the default data
	// source, so exactly one must be the default.
	if defaults != 1 {
		t.Errorf("datasources.yml: %d default data sources, want 1", defaults)
	}
	dp := yamlDoc(t, "dashboards/provisioning/dashboards.yml")
	provs := listOf(dp["providers"])
	if len(provs) == 0 {
		t.Fatal("dashboards.yml: no providers")
	}
	for _, p := range provs {
		if strOf(mapOf(p)["type"]) != "file" || strOf(dig(p, "options", "path")) == "" {
			t.Errorf("dashboards.yml: provider %v: want type file with options.path", mapOf(p)["name"])
		}
	}
}

// tableColumns lists the labels a table panel renames into columns.
func tableColumns(p map[string]any) []string {
	var out []string
	for _, tr := range listOf(p["transformations"]) {
		if strOf(mapOf(tr)["id"]) != "organize" {
			continue
		}
		for _, k := range sortedKeys(mapOf(dig(tr, "options", "renameByName"))) {
			if k != "Time" && k != "Value" && !strings.HasPrefix(k, "Value #") {
				out = append(out, k)
			}
		}
	}
	return out
}
