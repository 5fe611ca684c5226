package deploy

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// k8sObjects decodes every manifest kustomization.yaml lists, and checks
// that no manifest in the directory is left out of it.
func k8sObjects(t *testing.T) []map[string]any {
	t.Helper()
	kz := yamlDoc(t, "deploy/kubernetes/kustomization.yaml")
	res := strList(kz["resources"])
	all, _ := filepath.Glob(filepath.Join(repoRoot, "deploy", "kubernetes", "*.yaml"))
	for _, f := range all {
		if b := filepath.Base(f); b != "kustomization.yaml" && !slices.Contains(res, b) {
			t.Errorf("deploy/kubernetes/%s is not listed in kustomization.yaml", b)
		}
	}
	var out []map[string]any
	for _, r := range res {
		for _, doc := range yamlDocs(t, filepath.Join("deploy", "kubernetes", r)) {
			if strOf(doc["apiVersion"]) == "" || strOf(doc["kind"]) == "" || strOf(dig(doc, "metadata", "name")) == "" {
				t.Errorf("%s: an object without apiVersion, kind or metadata.name", r)
			}
			out = append(out, doc)
		}
	}
	return out
}

func k8sFind(objs []map[string]any, kind string) []map[string]any {
	var out []map[string]any
	for _, o := range objs {
		if strOf(o["kind"]) == kind {
			out = append(out, o)
		}
	}
	return out
}

func containers(o map[string]any) []map[string]any {
	var out []map[string]any
	for _, c := range listOf(dig(o, "spec", "template", "spec", "containers")) {
		out = append(out, mapOf(c))
	}
	return out
}

// volumeMountsFrom maps mount paths to the pod volume behind them.
func volumeMountsFrom(o, c map[string]any) map[string]map[string]any {
	vols := map[string]map[string]any{}
	for _, v := range listOf(dig(o, "spec", "template", "spec", "volumes")) {
		vols[strOf(mapOf(v)["name"])] = mapOf(v)
	}
	out := map[string]map[string]any{}
	for _, m := range listOf(c["volumeMounts"]) {
		out[strOf(mapOf(m)["mountPath"])] = vols[strOf(mapOf(m)["name"])]
	}
	return out
}

func TestKubernetesManifests(t *testing.T) {
	objs := k8sObjects(t)
	bins := buildBinaries(t)
	ours := ourImages(t)
	ns := ""
	if n := k8sFind(objs, "Namespace"); len(n) == 1 {
		ns = strOf(dig(n[0], "metadata", "name"))
	}
	for _, o := range objs {
		if k := strOf(o["kind"]); k != "Namespace" && strOf(dig(o, "metadata", "namespace")) != ns {
			t.Errorf("%s %s: namespace %q, want %q", k, dig(o, "metadata", "name"), dig(o, "metadata", "namespace"), ns)
		}
	}
	kzImages := map[string]bool{}
	for _, i := range listOf(yamlDoc(t, "deploy/kubernetes/kustomization.yaml")["images"]) {
		kzImages[strOf(mapOf(i)["name"])] = true
	}
	checkImage := func(where, img string) string {
		name := imageName(img)
		df, ok := ours[name]
		if !ok && !imagePinned(img) {
			t.Errorf("%s: image %s is neither ours (%v) nor pinned", where, img, sortedKeys(ours))
		}
		if ok && !kzImages[name] {
			t.Errorf("%s: image %s has no images: entry in kustomization.yaml to set its tag", where, name)
		}
		return df
	}

	// The exporter DaemonSet: the host's PIDs, the host's /proc, the two
	// capabilities, pushing to the aggregator's Service.
	ds := k8sFind(objs, "DaemonSet")
	if len(ds) != 1 {
		t.Fatalf("want one DaemonSet (the exporter), found %d", len(ds))
	}
	pod := mapOf(dig(ds[0], "spec", "template", "spec"))
	if b, _ := pod["hostPID"].(bool); !b {
		t.Error("exporter DaemonSet: hostPID is not true")
	}
	ec := containers(ds[0])
	if len(ec) != 1 {
		t.Fatalf("exporter DaemonSet: want one container, found %d", len(ec))
	}
	if df := checkImage("exporter DaemonSet", strOf(ec[0]["image"])); !strings.Contains(df, "exporter") {
		t.Errorf("exporter DaemonSet runs the image built from %q", df)
	}
	eargs := strList(ec[0]["args"])
	checkFlags(t, "exporter DaemonSet", bins.Exporter, strings.Join(eargs, " "))
	procfs, ok := argValue(eargs, "path.procfs")
	if !ok {
		procfs = "/proc"
	}
	if v := volumeMountsFrom(ds[0], ec[0])[procfs]; strOf(dig(v, "hostPath", "path")) != "/proc" {
		t.Errorf("exporter DaemonSet: --path.procfs=%s is not the host's /proc mounted", procfs)
	}
	for flag, want := range map[string]string{"path.rootfs": "/", "path.sysfs": "/sys"} {
		if p, ok := argValue(eargs, flag); ok {
			if v := volumeMountsFrom(ds[0], ec[0])[p]; strOf(dig(v, "hostPath", "path")) != want {
				t.Errorf("exporter DaemonSet: --%s=%s is not the node's %s mounted", flag, p, want)
			}
		}
	}
	caps := strList(dig(ec[0], "securityContext", "capabilities", "add"))
	for _, c := range []string{"SYS_PTRACE", "DAC_READ_SEARCH"} {
		if !slices.Contains(caps, c) {
			t.Errorf("exporter DaemonSet: capabilities.add lacks %s", c)
		}
	}
	if sd, ok := argValue(eargs, "state.dir"); !ok || volumeMountsFrom(ds[0], ec[0])[sd] == nil {
		t.Errorf("exporter DaemonSet: --state.dir (%q) is not on a volume: the generated API key would be lost with the pod", sd)
	}

	// The aggregator: a Deployment storing on a claimed volume, behind a
	// Service whose selector and port reach it.
	deps := k8sFind(objs, "Deployment")
	if len(deps) != 1 {
		t.Fatalf("want one Deployment (the aggregator), found %d", len(deps))
	}
	ac := containers(deps[0])
	if len(ac) != 1 {
		t.Fatalf("aggregator Deployment: want one container, found %d", len(ac))
	}
	if df := checkImage("aggregator Deployment", strOf(ac[0]["image"])); !strings.Contains(df, "aggregator") {
		t.Errorf("aggregator Deployment runs the image built from %q", df)
	}
	aargs := strList(ac[0]["args"])
	checkFlags(t, "aggregator Deployment", bins.Aggregator, strings.Join(aargs, " "))
	sp, _ := argValue(aargs, "storage.path")
	vol := volumeMountsFrom(deps[0], ac[0])[sp]
	claim := strOf(dig(vol, "persistentVolumeClaim", "claimName"))
	if claim == "" {
		t.Errorf("aggregator Deployment: --storage.path=%s is not on a persistentVolumeClaim", sp)
	} else if !slices.ContainsFunc(k8sFind(objs, "PersistentVolumeClaim"), func(o map[string]any) bool { return strOf(dig(o, "metadata", "name")) == claim }) {
		t.Errorf("aggregator Deployment: claim %s is not in the manifests", claim)
	}
	if r, _ := dig(deps[0], "spec", "replicas").(int); r != 1 || strOf(dig(deps[0], "spec", "strategy", "type")) != "Recreate" {
		t.Error("aggregator Deployment: want replicas 1 and strategy Recreate (one writer on the volume)")
	}
	podLabels := mapOf(dig(deps[0], "spec", "template", "metadata", "labels"))
	portNames := map[string]int{}
	for _, p := range listOf(ac[0]["ports"]) {
		n, _ := mapOf(p)["containerPort"].(int)
		portNames[strOf(mapOf(p)["name"])] = n
	}
	svcs := k8sFind(objs, "Service")
	if len(svcs) != 1 {
		t.Fatalf("want one Service (the aggregator), found %d", len(svcs))
	}
	svc := svcs[0]
	for k, v := range mapOf(dig(svc, "spec", "selector")) {
		if podLabels[k] != v {
			t.Errorf("Service selector %s=%v does not match the aggregator's pods (%v)", k, v, podLabels)
		}
	}
	var svcPort int
	for _, p := range listOf(dig(svc, "spec", "ports")) {
		svcPort, _ = mapOf(p)["port"].(int)
		tp := mapOf(p)["targetPort"]
		if s, ok := tp.(string); ok && portNames[s] == 0 {
			t.Errorf("Service targetPort %s is no port of the aggregator container", s)
		}
	}
	listen, _ := argValue(aargs, "web.listen-address")
	_, port, _ := net.SplitHostPort(listen)
	var declared bool
	for _, n := range portNames {
		declared = declared || fmt.Sprint(n) == port
	}
	if !declared {
		t.Errorf("aggregator listens on %q but its container ports are %v", listen, portNames)
	}
	push, _ := argValue(eargs, "push.url")
	u, err := url.Parse(push)
	if err != nil || u.Host != fmt.Sprintf("%s.%s.svc:%d", dig(svc, "metadata", "name"), ns, svcPort) || u.Path != "/api/v1/ingest" {
		t.Errorf("exporter pushes to %q, not to the aggregator Service %s.%s.svc:%d/api/v1/ingest", push, dig(svc, "metadata", "name"), ns, svcPort)
	}
	// Probes hit paths the aggregator serves (checked live in the
	// end-to-end test); here only that they are set.
	for _, p := range []string{"readinessProbe", "livenessProbe"} {
		if strOf(dig(ac[0], p, "httpGet", "path")) == "" {
			t.Errorf("aggregator Deployment: no %s", p)
		}
	}
}
