package deploy

import (
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// The scaled topology (deploy/scaled, docs/scaling.md): PostgreSQL,
// VictoriaMetrics and two aggregators behind one service, in compose and
// Kubernetes. Checked as the single-host files are: pinned images, flags
// the binary has, and here what scaling out needs: the aggregators share
// PostgreSQL through the environment (no password in any argument or URL),
// send history to VictoriaMetrics, and keep no state of their own.

// checkScaledAggregator checks one aggregator's arguments and environment.
func checkScaledAggregator(t *testing.T, where, bin string, args []string, env map[string]string, vmHost string) {
	t.Helper()
	checkFlags(t, where, bin, strings.Join(args, " "))
	for _, a := range args {
		if strings.HasPrefix(a, "--storage.postgres-url") {
			t.Errorf("%s: the PostgreSQL URL is an argument (%s): it belongs in the environment", where, a)
		}
	}
	raw := env["PROCSCOPE_STORAGE_POSTGRES_URL"]
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "postgres" || u.Host == "" {
		t.Fatalf("%s: PROCSCOPE_STORAGE_POSTGRES_URL = %q, %v", where, raw, err)
	}
	if _, has := u.User.Password(); has || u.Query().Has("password") {
		t.Errorf("%s: the PostgreSQL URL carries the password", where)
	}
	if _, ok := env["PGPASSWORD"]; !ok {
		t.Errorf("%s: no PGPASSWORD from a secret", where)
	}
	rw, ok := argValue(args, "remote-write.url")
	if !ok {
		t.Fatalf("%s: history is not sent to VictoriaMetrics (no --remote-write.url)", where)
	}
	if ru, err := url.Parse(rw); err != nil || ru.Hostname() != vmHost || ru.Path != "/api/v1/write" {
		t.Errorf("%s: --remote-write.url=%s, want VictoriaMetrics' %s/api/v1/write", where, rw, vmHost)
	}
	// Every replica reads the one history, not its own embedded copy.
	if hu, ok := argValue(args, "history.url"); !ok {
		t.Errorf("%s: history is not read from VictoriaMetrics (no --history.url)", where)
	} else if u, err := url.Parse(hu); err != nil || u.Hostname() != vmHost {
		t.Errorf("%s: --history.url=%s, want VictoriaMetrics at %s", where, hu, vmHost)
	}
}

func TestScaledCompose(t *testing.T) {
	svcs := map[string]map[string]any{}
	for name, s := range mapOf(yamlDoc(t, "deploy/scaled/compose.yaml")["services"]) {
		svcs[name] = mapOf(s)
	}
	for _, want := range []string{"postgres", "victoriametrics", "aggregator"} {
		if svcs[want] == nil {
			t.Fatalf("scaled compose.yaml has no %s service (has %v)", want, sortedKeys(svcs))
		}
	}
	bins := buildBinaries(t)
	for name, s := range svcs {
		if b := s["build"]; b != nil {
			ctx := path.Join("deploy/scaled", strOf(dig(b, "context")))
			if path.Clean(ctx) != "." || !fileExists(filepath.Join(repoRoot, ctx, strOf(dig(b, "dockerfile")))) {
				t.Errorf("scaled compose %s: build context %s / %s", name, ctx, strOf(dig(b, "dockerfile")))
			}
		} else if !imagePinned(strOf(s["image"])) {
			t.Errorf("scaled compose %s: image %q is not pinned to a release", name, strOf(s["image"]))
		}
	}
	agg := svcs["aggregator"]
	if n, _ := dig(agg, "deploy", "replicas").(int); n < 2 {
		t.Errorf("scaled compose: %d aggregator replicas, want at least 2", n)
	}
	env := map[string]string{}
	for k, v := range mapOf(agg["environment"]) {
		env[k] = strOf(v)
	}
	checkScaledAggregator(t, "scaled compose aggregator", bins.Aggregator, commandArgs(agg), env, "victoriametrics")
	if !strings.Contains(env["PROCSCOPE_STORAGE_POSTGRES_URL"], "@postgres:") {
		t.Errorf("scaled compose: the aggregators do not use the postgres service: %s", env["PROCSCOPE_STORAGE_POSTGRES_URL"])
	}
}

func TestScaledKubernetes(t *testing.T) {
	kz := yamlDoc(t, "deploy/scaled/kubernetes/kustomization.yaml")
	var objs []map[string]any
	for _, r := range strList(kz["resources"]) {
		objs = append(objs, yamlDocs(t, filepath.Join("deploy", "scaled", "kubernetes", r))...)
	}
	all, _ := filepath.Glob(filepath.Join(repoRoot, "deploy", "scaled", "kubernetes", "*.yaml"))
	if len(strList(kz["resources"]))+1 != len(all) {
		t.Errorf("deploy/scaled/kubernetes has %d files, kustomization.yaml lists %d", len(all), len(strList(kz["resources"])))
	}
	byName := map[string]map[string]any{}
	for _, o := range objs {
		byName[strOf(o["kind"])+"/"+strOf(dig(o, "metadata", "name"))] = o
		for _, c := range containers(o) {
			if img := strOf(c["image"]); !strings.HasPrefix(img, "ghcr.io/procscope/") && !imagePinned(img) {
				t.Errorf("%s: image %q is not pinned to a release", strOf(dig(o, "metadata", "name")), img)
			}
		}
	}
	for _, want := range []string{"StatefulSet/procscope-postgres", "Service/procscope-postgres",
		"StatefulSet/procscope-victoriametrics", "Service/procscope-victoriametrics",
		"Deployment/procscope-aggregator", "Service/procscope-aggregator"} {
		if byName[want] == nil {
			t.Fatalf("scaled kubernetes: no %s (has %v)", want, sortedKeys(byName))
		}
	}
	dep := byName["Deployment/procscope-aggregator"]
	if n, _ := dig(dep, "spec", "replicas").(int); n < 2 {
		t.Errorf("scaled kubernetes: %d aggregator replicas, want at least 2", n)
	}
	// One Service in front of every replica.
	sel := mapOf(dig(byName["Service/procscope-aggregator"], "spec", "selector"))
	labels := mapOf(dig(dep, "spec", "template", "metadata", "labels"))
	for k, v := range sel {
		if labels[k] != v {
			t.Errorf("the aggregator Service selects %s=%v, which the pods do not carry", k, v)
		}
	}
	for _, v := range listOf(dig(dep, "spec", "template", "spec", "volumes")) {
		if mapOf(v)["persistentVolumeClaim"] != nil {
			t.Errorf("scaled aggregator pods mount a persistent volume: they must keep no state of their own")
		}
	}
	bins := buildBinaries(t)
	for _, c := range containers(dep) {
		env := map[string]string{}
		for _, e := range listOf(c["env"]) {
			m := mapOf(e)
			env[strOf(m["name"])] = strOf(m["value"])
			if strOf(m["name"]) == "PGPASSWORD" && dig(m, "valueFrom", "secretKeyRef", "name") != "procscope-postgres" {
				t.Errorf("PGPASSWORD does not come from the procscope-postgres Secret")
			}
		}
		checkScaledAggregator(t, "scaled kubernetes aggregator", bins.Aggregator, strList(c["args"]), env, "procscope-victoriametrics")
		if !strings.Contains(env["PROCSCOPE_STORAGE_POSTGRES_URL"], "@procscope-postgres:5432/") {
			t.Errorf("the aggregators do not use the procscope-postgres Service: %s", env["PROCSCOPE_STORAGE_POSTGRES_URL"])
		}
	}
}
