package deploy

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every shipped deployment runs the aggregator in token enrolment mode
// with a generated token that its exporters send (issue 11). These tests
// check the wiring of each, and run what can run here.

// systemdExpand expands an Exec line as systemd does: "$$" is a dollar,
// ${VAR} is replaced inside a word, and a word that is only $VAR becomes
// the variable's words.
func systemdExpand(line string, env map[string]string) []string {
	var out []string
	braced := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	for _, w := range strings.Fields(line) {
		if name, ok := strings.CutPrefix(w, "$"); ok && regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(name) {
			out = append(out, strings.Fields(env[name])...)
			continue
		}
		w = braced.ReplaceAllStringFunc(w, func(m string) string { return env[braced.FindStringSubmatch(m)[1]] })
		out = append(out, strings.ReplaceAll(w, "$$", "$"))
	}
	return out
}

// unitEnv is the environment a unit's commands see: its Environment=
// lines, then the lines of an EnvironmentFile (KEY=value, quotes removed).
func unitEnv(set map[string][]string, envFile string, extra map[string]string) map[string]string {
	env := map[string]string{}
	for _, e := range set["Service.Environment"] {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	for _, l := range strings.Split(envFile, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && !strings.HasPrefix(k, "#") {
			env[k] = strings.Trim(v, `"`)
		}
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// TestSystemdListenAddressSeparateFromArgs: flags put in ARGS, as the unit
// suggests, no longer replace the listen address (they did: ARGS held it).
func TestSystemdListenAddressSeparateFromArgs(t *testing.T) {
	set := unitSettings(string(readFile(t, "deploy/systemd/procscope-aggregator.service")))
	state := map[string]string{"STATE_DIRECTORY": "/var/lib/procscope-aggregator"}
	f := func(envFile, wantListen string, wantArgs ...string) {
		t.Helper()
		args := systemdExpand(set["Service.ExecStart"][0], unitEnv(set, envFile, state))
		var listen []string
		for _, a := range args {
			if v, ok := strings.CutPrefix(a, "--web.listen-address="); ok {
				listen = append(listen, v)
			}
		}
		if len(listen) != 1 || listen[0] != wantListen {
			t.Errorf("/etc/default %q: listens on %q, want %s", envFile, listen, wantListen)
		}
		for _, w := range wantArgs {
			if !slices.Contains(args, w) {
				t.Errorf("/etc/default %q: %q lacks %s", envFile, args, w)
			}
		}
	}
	tokenFlag := "--hosts.enrollment-token-file=/var/lib/procscope-aggregator/enrollment-token"
	f("", ":8000", tokenFlag, "--storage.path=/var/lib/procscope-aggregator")
	f(`ARGS="--web.config.file=/etc/procscope/web.yml --storage.retention=180d"`, ":8000",
		"--web.config.file=/etc/procscope/web.yml", "--storage.retention=180d", tokenFlag)
	f("LISTEN_ADDRESS=127.0.0.1:8000\nARGS=--web.config.file=/etc/procscope/web.yml", "127.0.0.1:8000", "--web.config.file=/etc/procscope/web.yml")
}

// TestSystemdEnrollmentToken runs the aggregator unit's ExecStartPre in a
// scratch state directory (a 64-hex-digit token, mode 0600, kept across
// restarts), then the aggregator with the unit's ExecStart: token mode,
// new hosts need the token.
func TestSystemdEnrollmentToken(t *testing.T) {
	set := unitSettings(string(readFile(t, "deploy/systemd/procscope-aggregator.service")))
	pre := set["Service.ExecStartPre"]
	if len(pre) != 1 {
		t.Fatalf("want one ExecStartPre (the token), have %q", pre)
	}
	m := regexp.MustCompile(`^/bin/sh -c '([^'\\]*)'$`).FindStringSubmatch(pre[0])
	if m == nil {
		t.Fatalf("ExecStartPre is not /bin/sh -c '<script without backslashes>': %s", pre[0])
	}
	script := strings.ReplaceAll(m[1], "$$", "$")
	state := t.TempDir()
	token := filepath.Join(state, "enrollment-token")
	runPre := func() string {
		t.Helper()
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.Env = append(os.Environ(), "STATE_DIRECTORY="+state)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ExecStartPre: %v\n%s", err, out)
		}
		b, err := os.ReadFile(token)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	first := runPre()
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(first) {
		t.Fatalf("token %q: want 64 hex digits", first)
	}
	if fi, _ := os.Stat(token); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	if again := runPre(); again != first {
		t.Fatal("a restart replaced the token: every exporter's copy would be wrong")
	}

	bins := buildBinaries(t)
	env := unitEnv(set, "", map[string]string{"STATE_DIRECTORY": state, "LISTEN_ADDRESS": "127.0.0.1:0"})
	args := systemdExpand(set["Service.ExecStart"][0], env)
	p, addr := start(t, "aggregator (systemd unit)", true, nil, bins.Aggregator, args[1:]...)
	if !strings.Contains(p.Log(), "host enrollment is token") {
		t.Fatalf("the unit's aggregator is not in token mode:\n%s", p.Log())
	}
	waitFor(t, 30*time.Second, "aggregator ready", func() error {
		res, err := httpClient.Get("http://" + addr + "/-/ready")
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK {
				err = os.ErrNotExist
			}
		}
		return err
	})
	ingest := func(tok string) int {
		t.Helper()
		body := `{"hostname":"web-1","captured_at":"2026-11-25T17:00:00Z","system_info":{},"processes":[]}`
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/ingest", bytes.NewReader([]byte(body)))
		req.Header.Set("X-API-KEY", "key-web-1-0123456789")
		if tok != "" {
			req.Header.Set("X-Enrollment-Token", tok)
		}
		res, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		return res.StatusCode
	}
	if c := ingest(""); c != http.StatusForbidden {
		t.Fatalf("new host without the token: %d, want 403", c)
	}
	if c := ingest(first); c != http.StatusCreated {
		t.Fatalf("new host with the token: %d, want 201", c)
	}
}

// TestComposeEnrollmentToken: the one-shot service writes the token into
// a volume that the aggregator reads as --hosts.enrollment-token-file and
// the exporter as --push.enrollment-token-file, both waiting for it; its
// script, run here, writes a 64-hex-digit token once.
func TestComposeEnrollmentToken(t *testing.T) {
	svcs := composeServices(t)
	init, agg, exp := svcs["enrollment-token"], svcs["aggregator"], svcs["exporter"]
	if init == nil {
		t.Fatal("compose.yaml has no enrollment-token service")
	}
	// volumeAt maps a file path to "volume:path inside it" through the
	// service's named-volume mounts.
	volumeAt := func(s map[string]any, file string) string {
		for _, v := range strList(s["volumes"]) {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && !strings.HasPrefix(parts[0], ".") && !strings.HasPrefix(parts[0], "/") {
				if rel, ok := strings.CutPrefix(file, parts[1]+"/"); ok {
					return parts[0] + ":" + rel
				}
			}
		}
		return ""
	}
	aggFile, _ := argValue(commandArgs(agg), "hosts.enrollment-token-file")
	expFile, _ := argValue(commandArgs(exp), "push.enrollment-token-file")
	if mode, _ := argValue(commandArgs(agg), "hosts.enrollment"); mode != "token" {
		t.Errorf("compose aggregator: --hosts.enrollment=%q, want token", mode)
	}
	av, ev := volumeAt(agg, aggFile), volumeAt(exp, expFile)
	if av == "" || av != ev {
		t.Fatalf("compose: the aggregator reads the token at %s (%q) and the exporter at %s (%q): not the same file of one volume", aggFile, av, expFile, ev)
	}
	script := strings.Join(strList(init["command"]), " ")
	vol, rel, _ := strings.Cut(av, ":")
	var initDir string
	for _, v := range strList(init["volumes"]) {
		if parts := strings.Split(v, ":"); parts[0] == vol {
			initDir = parts[1]
		}
	}
	if initDir == "" || !strings.Contains(script, path.Join(initDir, rel)) {
		t.Fatalf("compose enrollment-token: does not write %s into volume %s (mounts %v)", rel, vol, init["volumes"])
	}
	for name, s := range map[string]map[string]any{"aggregator": agg, "exporter": exp} {
		if c := strOf(dig(s, "depends_on", "enrollment-token", "condition")); c != "service_completed_successfully" {
			t.Errorf("compose %s: depends on enrollment-token with condition %q, want service_completed_successfully", name, c)
		}
	}

	// The script itself, in a scratch directory.
	dir := t.TempDir()
	script = strings.ReplaceAll(strings.ReplaceAll(script, "$$", "$"), initDir, dir)
	if os.Geteuid() != 0 {
		script = strings.ReplaceAll(script, "chown 65532:65532 $f && ", "") // only root may chown
	}
	for range 2 {
		if out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput(); err != nil {
			t.Fatalf("enrollment-token script: %v\n%s\n%s", err, script, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{64}$`).Match(b) {
		t.Fatalf("token %q %v: want 64 hex digits", b, err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, rel)); fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("token readable by others: %v", fi.Mode().Perm())
	}
}

// TestKubernetesEnrollmentToken: the aggregator and the exporters mount the
// same Secret and pass its token file, and the documented command creates
// that Secret in the namespace.
func TestKubernetesEnrollmentToken(t *testing.T) {
	objs := k8sObjects(t)
	ns := strOf(dig(k8sFind(objs, "Namespace")[0], "metadata", "name"))
	// secretFile resolves a file path to "secret/key" through the pod's
	// secret volumes.
	secretFile := func(o, c map[string]any, file string) string {
		vols := map[string]map[string]any{}
		for _, v := range listOf(dig(o, "spec", "template", "spec", "volumes")) {
			vols[strOf(mapOf(v)["name"])] = mapOf(v)
		}
		for _, m := range listOf(c["volumeMounts"]) {
			rel, ok := strings.CutPrefix(file, strOf(mapOf(m)["mountPath"])+"/")
			sec := mapOf(vols[strOf(mapOf(m)["name"])]["secret"])
			if !ok || sec == nil {
				continue
			}
			if opt, _ := sec["optional"].(bool); opt {
				t.Errorf("%s: the enrollment Secret is optional: the pod would start without it", dig(o, "metadata", "name"))
			}
			for _, it := range listOf(sec["items"]) {
				if strOf(mapOf(it)["path"]) == rel {
					return strOf(sec["secretName"]) + "/" + strOf(mapOf(it)["key"])
				}
			}
		}
		return ""
	}
	dep, ds := k8sFind(objs, "Deployment")[0], k8sFind(objs, "DaemonSet")[0]
	ac, ec := containers(dep)[0], containers(ds)[0]
	aargs, eargs := strList(ac["args"]), strList(ec["args"])
	if mode, _ := argValue(aargs, "hosts.enrollment"); mode != "token" {
		t.Errorf("aggregator Deployment: --hosts.enrollment=%q, want token", mode)
	}
	af, _ := argValue(aargs, "hosts.enrollment-token-file")
	ef, _ := argValue(eargs, "push.enrollment-token-file")
	as, es := secretFile(dep, ac, af), secretFile(ds, ec, ef)
	if as == "" || as != es {
		t.Fatalf("the aggregator reads the token from %q (%s), the exporter from %q (%s): not one Secret key", af, as, ef, es)
	}
	secret, key, _ := strings.Cut(as, "/")
	create := regexp.MustCompile(`kubectl -n (\S+) create secret generic (\S+) \\\s*#\s*--from-literal=(\w+)=\$\(head -c 32 /dev/urandom`)
	for _, f := range []string{"deploy/kubernetes/kustomization.yaml", "deploy/kubernetes/aggregator.yaml"} {
		m := create.FindStringSubmatch(string(readFile(t, f)))
		if m == nil || m[1] != ns || m[2] != secret || m[3] != key {
			t.Errorf("%s does not document `kubectl -n %s create secret generic %s --from-literal=%s=...` (found %q)", f, ns, secret, key, m)
		}
	}
}
