package deploy

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const modulePath = "github.com/procscope/procscope"

// ourImages are the images built from our Dockerfiles, by name (no tag),
// mapped to the Dockerfile, as deploy/compose.yaml builds them.
func ourImages(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, s := range composeServices(t) {
		if s["build"] == nil {
			continue
		}
		df := path.Join(strOf(dig(s, "build", "context")), strOf(dig(s, "build", "dockerfile")))
		img := imageName(strOf(s["image"]))
		if img == "" {
			t.Errorf("compose service %s builds %s but names no image", name, df)
		}
		out[img] = path.Clean(path.Join("deploy", df))
	}
	return out
}

// dockerInstr is one Dockerfile instruction, continuation lines joined.
type dockerInstr struct {
	Cmd  string // upper case
	Args string
}

func parseDockerfile(t *testing.T, rel string) []dockerInstr {
	t.Helper()
	var out []dockerInstr
	sc := bufio.NewScanner(strings.NewReader(string(readFile(t, rel))))
	var cur string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur == "") {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur += s + " "
			continue
		}
		cur += line
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur), " ")
		out = append(out, dockerInstr{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur = ""
	}
	return out
}

// execForm decodes a JSON-array instruction (ENTRYPOINT, CMD).
func execForm(t *testing.T, where, args string) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(args), &out); err != nil {
		t.Errorf("%s: %q is not in exec (JSON array) form: %v", where, args, err)
	}
	return out
}

// goDeps lists the directories (relative to the repository root) of the
// module's own packages that pkg needs to build, itself included.
func goDeps(t *testing.T, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg)
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	var dirs []string
	for _, ip := range strings.Fields(string(out)) {
		if rel, ok := strings.CutPrefix(ip, modulePath+"/"); ok {
			dirs = append(dirs, rel)
		}
	}
	return dirs
}

// TestDockerfiles checks what a docker build would trip over, without a
// Docker engine: base images pinned, every COPY'd path present, every
// package the binary needs copied in, the entry point is the binary built,
// and the flags of CMD exist.
func TestDockerfiles(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot, "deploy", "*.Dockerfile"))
	if len(files) < 2 {
		t.Fatalf("want the exporter and aggregator Dockerfiles in deploy/, found %v", files)
	}
	bins := buildBinaries(t)
	for _, f := range files {
		rel, _ := filepath.Rel(repoRoot, f)
		t.Run(filepath.Base(f), func(t *testing.T) {
			instrs := parseDockerfile(t, rel)
			stages := map[string]bool{}
			var copied []string          // COPY sources from the build context
			built := map[string]string{} // output path -> package
			var finalFrom, entry string
			var cmdArgs []string
			var exposed []string
			for _, in := range instrs {
				switch in.Cmd {
				case "FROM":
					f := strings.Fields(in.Args)
					img := f[0]
					if len(f) >= 3 && strings.EqualFold(f[1], "AS") {
						stages[f[2]] = true
					}
					if img != "scratch" && !stages[img] && !imagePinned(img) {
						t.Errorf("FROM %s: pin the base image to a release tag or digest", img)
					}
					finalFrom = img
					entry, cmdArgs = "", nil
				case "COPY", "ADD":
					f := strings.Fields(in.Args)
					var from bool
					var srcs []string
					for _, a := range f[:len(f)-1] {
						if strings.HasPrefix(a, "--from=") {
							from = true
						} else if !strings.HasPrefix(a, "--") {
							srcs = append(srcs, a)
						}
					}
					if from {
						continue
					}
					for _, s := range srcs {
						if _, err := os.Stat(filepath.Join(repoRoot, s)); err != nil {
							t.Errorf("COPY %s: not in the repository: %v", s, err)
						}
						copied = append(copied, path.Clean(s))
					}
				case "RUN":
					m := regexp.MustCompile(`go build .*-o (\S+) (\./\S+)`).FindStringSubmatch(in.Args)
					if m != nil {
						built[m[1]] = m[2]
					}
				case "ENTRYPOINT":
					if e := execForm(t, "ENTRYPOINT", in.Args); len(e) > 0 {
						entry = e[0]
					}
				case "CMD":
					cmdArgs = execForm(t, "CMD", in.Args)
				case "EXPOSE":
					exposed = append(exposed, strings.Fields(in.Args)...)
				}
			}
			if stages[finalFrom] {
				t.Errorf("the final stage is a build stage (%s); want a small runtime base", finalFrom)
			}
			if len(built) != 1 {
				t.Fatalf("want one `go build -o OUT ./PKG`, found %v", built)
			}
			var pkg string
			for _, p := range built {
				pkg = p
			}
			// The package and everything of ours it imports must be copied in.
			for _, dir := range goDeps(t, pkg) {
				if !slices.ContainsFunc(copied, func(c string) bool { return c == "." || dir == c || strings.HasPrefix(dir, c+"/") }) {
					t.Errorf("%s needs package ./%s, which no COPY brings into the build", pkg, dir)
				}
			}
			for _, need := range []string{"go.mod", "go.sum"} {
				if !slices.Contains(copied, need) && !slices.Contains(copied, ".") {
					t.Errorf("%s is not copied", need)
				}
			}
			if entry == "" || !strings.Contains(in(instrs, "COPY"), entry) {
				t.Errorf("ENTRYPOINT %q is not a file copied into the final image", entry)
			}
			bin := bins.Exporter
			if strings.Contains(pkg, "aggregator") {
				bin = bins.Aggregator
			}
			checkFlags(t, "CMD", bin, strings.Join(cmdArgs, " "))
			if listen, ok := argValue(cmdArgs, "web.listen-address"); ok {
				_, port, _ := net.SplitHostPort(listen)
				if !slices.Contains(exposed, port) {
					t.Errorf("CMD listens on %s but EXPOSE is %v", listen, exposed)
				}
			}
		})
	}
}

// in joins the arguments of every instruction of one kind.
func in(instrs []dockerInstr, cmd string) string {
	var b strings.Builder
	for _, i := range instrs {
		if i.Cmd == cmd {
			b.WriteString(i.Args + "\n")
		}
	}
	return b.String()
}

// helpFlags lists the flags a program's --help shows.
var helpCache = map[string][]string{}

func helpFlags(t *testing.T, bin string, helpArgs ...string) []string {
	t.Helper()
	key := bin + " " + strings.Join(helpArgs, " ")
	if f, ok := helpCache[key]; ok {
		return f
	}
	if len(helpArgs) == 0 {
		// --help-long lists the flags of subcommands too, should a
		// binary grow some (the aggregator's are all top-level).
		helpArgs = []string{"--help-long"}
	}
	out, err := exec.Command(bin, helpArgs...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, helpArgs, err, out)
	}
	f := flagNames(string(out))
	if len(f) < 3 {
		t.Fatalf("%s --help lists no flags:\n%s", bin, out)
	}
	helpCache[key] = f
	return f
}

// checkFlags fails the test for every --flag in text that the program
// does not have: a typo in a unit or a manifest is otherwise found at 3 am.
func checkFlags(t *testing.T, where, bin, text string) {
	t.Helper()
	known := helpFlags(t, bin)
	for _, f := range flagNames(text) {
		if !slices.Contains(known, f) {
			t.Errorf("%s: %s has no flag --%s", where, filepath.Base(bin), f)
		}
	}
}

func composeServices(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for name, s := range mapOf(yamlDoc(t, "deploy/compose.yaml")["services"]) {
		out[name] = mapOf(s)
	}
	return out
}

// mounts maps container paths to repository paths for a compose service's
// bind mounts, or to "host:PATH" for a path of the host (named volumes are
// left out).
func mounts(t *testing.T, svc string, s map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range strList(s["volumes"]) {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			t.Errorf("compose %s: volume %q has no target", svc, v)
			continue
		}
		src := parts[0]
		if strings.HasPrefix(src, "/") {
			// A path on the host, not in the repository.
			out[parts[1]] = "host:" + src
			continue
		}
		if !strings.HasPrefix(src, ".") {
			continue // a named volume
		}
		host := path.Clean(path.Join("deploy", src))
		if _, err := os.Stat(filepath.Join(repoRoot, host)); err != nil {
			t.Errorf("compose %s: volume source %s: %v", svc, src, err)
		}
		out[parts[1]] = host
	}
	return out
}

// hostPath maps a container path to the repository path behind it through
// the longest bind mount that contains it.
func hostPath(m map[string]string, p string) (string, bool) {
	best := ""
	for target := range m {
		if (p == target || strings.HasPrefix(p, target+"/")) && len(target) > len(best) {
			best = target
		}
	}
	if best == "" {
		return "", false
	}
	return path.Join(m[best], strings.TrimPrefix(p, best)), true
}

func commandArgs(s map[string]any) []string {
	var out []string
	for _, a := range strList(s["command"]) {
		out = append(out, interpolate(a))
	}
	return out
}

func TestCompose(t *testing.T) {
	svcs := composeServices(t)
	for _, want := range []string{"aggregator", "exporter", "prometheus", "grafana"} {
		if svcs[want] == nil {
			t.Fatalf("compose.yaml has no %s service (has %v)", want, sortedKeys(svcs))
		}
	}
	bins := buildBinaries(t)
	ours := ourImages(t)
	for name, s := range svcs {
		img := strOf(s["image"])
		if b := s["build"]; b != nil {
			ctx := path.Join("deploy", strOf(dig(b, "context")))
			df := path.Join(ctx, strOf(dig(b, "dockerfile")))
			if _, err := os.Stat(filepath.Join(repoRoot, df)); err != nil {
				t.Errorf("compose %s: Dockerfile %s: %v", name, df, err)
			}
			if path.Clean(ctx) != "." {
				t.Errorf("compose %s: build context %s, want the repository root (the Dockerfiles COPY from it)", name, ctx)
			}
		} else if !imagePinned(img) {
			t.Errorf("compose %s: image %q is neither built here nor pinned to a release", name, img)
		}
		mounts(t, name, s) // checks every bind source exists
	}
	for img := range ours {
		if !strings.HasPrefix(img, "ghcr.io/procscope/") {
			t.Errorf("our image %s is not under ghcr.io/procscope/", img)
		}
	}

	agg, exp := svcs["aggregator"], svcs["exporter"]
	checkFlags(t, "compose aggregator", bins.Aggregator, strings.Join(commandArgs(agg), " "))
	checkFlags(t, "compose exporter", bins.Exporter, strings.Join(commandArgs(exp), " "))
	if strOf(exp["pid"]) != "host" || strOf(exp["network_mode"]) != "host" {
		t.Error("compose exporter: want pid: host and network_mode: host to see the host's processes and interfaces")
	}
	for _, c := range []string{"SYS_PTRACE", "DAC_READ_SEARCH"} {
		if !slices.Contains(strList(exp["cap_add"]), c) {
			t.Errorf("compose exporter: cap_add lacks %s", c)
		}
	}
	// The host's file systems where the exporter is told to look for them.
	em := mounts(t, "exporter", exp)
	for flag, want := range map[string]string{"path.rootfs": "host:/", "path.sysfs": "host:/sys", "path.procfs": "host:/proc"} {
		if p, ok := argValue(commandArgs(exp), flag); ok && em[p] != want {
			t.Errorf("compose exporter: --%s=%s, but %s is mounted from %q, want %s", flag, p, p, em[p], want)
		}
	}
	// The exporter pushes where the aggregator listens.
	aggListen, _ := argValue(commandArgs(agg), "web.listen-address")
	pushURL, _ := argValue(commandArgs(exp), "push.url")
	if _, port, _ := net.SplitHostPort(aggListen); port == "" || !strings.Contains(pushURL, ":"+port+"/api/v1/ingest") {
		t.Errorf("compose: exporter pushes to %q, aggregator listens on %q", pushURL, aggListen)
	}

	// Prometheus: the shipped prometheus.yml is mounted, and every file it
	// refers to (relative to itself) is there too.
	prom := svcs["prometheus"]
	pm := mounts(t, "prometheus", prom)
	cfgPath, _ := argValue(commandArgs(prom), "config.file")
	cfgHost, ok := hostPath(pm, cfgPath)
	if !ok || cfgHost != "prometheus.yml" {
		t.Fatalf("compose prometheus: --config.file=%s is not the repository's prometheus.yml (mounts %v)", cfgPath, pm)
	}
	if p := requireToolOptional("prometheus"); p != "" {
		checkFlags(t, "compose prometheus", p, strings.Join(commandArgs(prom), " "))
	}
	cfg := yamlDoc(t, "prometheus.yml")
	refs := strList(cfg["rule_files"])
	for _, sc := range listOf(cfg["scrape_configs"]) {
		for _, sd := range listOf(mapOf(sc)["file_sd_configs"]) {
			refs = append(refs, strList(mapOf(sd)["files"])...)
		}
	}
	for _, r := range refs {
		hp, ok := hostPath(pm, path.Join(path.Dir(cfgPath), r))
		if !ok {
			t.Errorf("compose prometheus: %s (from prometheus.yml) is not mounted", r)
			continue
		}
		if m, _ := filepath.Glob(filepath.Join(repoRoot, hp)); len(m) == 0 {
			t.Errorf("compose prometheus: %s maps to %s, which matches no file", r, hp)
		}
	}
	promListen, _ := argValue(commandArgs(prom), "web.listen-address")

	// Grafana: both provisioning files mounted where Grafana reads them, the
	// dashboards where the provider looks, the data source where
	// Prometheus listens.
	gm := mounts(t, "grafana", svcs["grafana"])
	for _, kind := range []string{"datasources", "dashboards"} {
		var found bool
		for target, src := range gm {
			if strings.HasPrefix(target, "/etc/grafana/provisioning/"+kind+"/") && src == "dashboards/provisioning/"+kind+".yml" {
				found = true
			}
		}
		if !found {
			t.Errorf("compose grafana: dashboards/provisioning/%s.yml is not mounted under /etc/grafana/provisioning/%s/", kind, kind)
		}
	}
	for _, p := range listOf(yamlDoc(t, "dashboards/provisioning/dashboards.yml")["providers"]) {
		dir := strOf(dig(p, "options", "path"))
		hp, ok := hostPath(gm, dir)
		if !ok {
			t.Errorf("compose grafana: provider path %s is not mounted", dir)
			continue
		}
		if m, _ := filepath.Glob(filepath.Join(repoRoot, hp, "*.json")); len(m) < 3 {
			t.Errorf("compose grafana: provider path %s holds %d dashboards", dir, len(m))
		}
	}
	if home := strOf(dig(svcs["grafana"], "environment", "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")); home != "" {
		if hp, ok := hostPath(gm, home); !ok || !fileExists(filepath.Join(repoRoot, hp)) {
			t.Errorf("compose grafana: home dashboard %s is not a mounted file", home)
		}
	}
	for _, d := range listOf(yamlDoc(t, "dashboards/provisioning/datasources.yml")["datasources"]) {
		if u := strOf(mapOf(d)["url"]); !strings.HasSuffix(u, "://"+promListen) {
			t.Errorf("datasources.yml: url %s, but compose's Prometheus listens on %s", u, promListen)
		}
	}
	// And prometheus.yml's static targets are where compose's exporter and
	// aggregator listen (all share the host's network).
	expListen, _ := argValue(commandArgs(exp), "web.listen-address")
	for job, listen := range map[string]string{"procscope-exporter": expListen, "procscope-aggregator": aggListen} {
		_, port, _ := net.SplitHostPort(listen)
		if !slices.ContainsFunc(staticTargets(cfg, job), func(tg string) bool { return strings.HasSuffix(tg, ":"+port) }) {
			t.Errorf("prometheus.yml job %s has no static target on port %s, where compose's service listens", job, port)
		}
	}
}

func staticTargets(cfg map[string]any, job string) []string {
	var out []string
	for _, sc := range listOf(cfg["scrape_configs"]) {
		if strOf(mapOf(sc)["job_name"]) != job {
			continue
		}
		for _, st := range listOf(mapOf(sc)["static_configs"]) {
			out = append(out, strList(mapOf(st)["targets"])...)
		}
	}
	return out
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// requireToolOptional returns a program's path, or "" when it is missing
// (for cross-checks that add to a test but are not its point).
func requireToolOptional(name string) string {
	p, _ := exec.LookPath(name)
	return p
}
