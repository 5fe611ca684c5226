package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// This file holds helpers that read the deployment files.

// readFile reads a file relative to the repository root.
func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// yamlDocs decodes every document of a YAML file into generic maps.
func yamlDocs(t *testing.T, rel string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(string(readFile(t, rel))))
	var out []map[string]any
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("%s: %v", rel, err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no YAML document", rel)
	}
	return out
}

func yamlDoc(t *testing.T, rel string) map[string]any {
	t.Helper()
	docs := yamlDocs(t, rel)
	if len(docs) != 1 {
		t.Fatalf("%s: want one YAML document, got %d", rel, len(docs))
	}
	return docs[0]
}

// Accessors for decoded YAML/JSON: a missing key or a wrong type gives the
// zero value, and the tests then fail on what they expected to find.
func mapOf(v any) map[string]any { m, _ := v.(map[string]any); return m }
func listOf(v any) []any         { l, _ := v.([]any); return l }
func strOf(v any) string         { s, _ := v.(string); return s }

func strList(v any) []string {
	var out []string
	for _, e := range listOf(v) {
		out = append(out, strOf(e))
	}
	return out
}

// dig follows a path of map keys.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		v = mapOf(v)[k]
	}
	return v
}

// flagRE finds the long flags a file passes to a program.
var flagRE = regexp.MustCompile(`--(?:\[no-\])?([a-z][a-z0-9]*(?:[.\-][a-z0-9]+)*)`)

// flagNames lists the --flags in a text.
func flagNames(text string) []string {
	var out []string
	for _, m := range flagRE.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// argValue returns the value of --name=value in args.
func argValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// interpolate resolves compose-style ${VAR:-default} to its default and
// ${VAR:?message} / ${VAR} to a placeholder, as compose would with an
// empty environment (and the required variables set).
func interpolate(s string) string {
	re := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}`)
	return re.ReplaceAllStringFunc(s, func(m string) string {
		p := re.FindStringSubmatch(m)
		if p[2] == "-" {
			return p[3]
		}
		return "SET-" + p[1]
	})
}

// imagePinned says whether an image reference from outside the project is
// pinned: a digest, or a tag that names a release (not "latest", and not a
// variable that could be anything).
func imagePinned(ref string) bool {
	if strings.Contains(ref, "@sha256:") {
		return true
	}
	if strings.Contains(ref, "$") {
		return false
	}
	slash := strings.LastIndex(ref, "/")
	name := ref[slash+1:]
	_, tag, ok := strings.Cut(name, ":")
	if !ok || tag == "" || tag == "latest" {
		return false
	}
	// A release has a digit in its tag (v3.5.0, 12.1.1, 1.26.8-bookworm).
	return strings.ContainsAny(tag, "0123456789")
}

// imageName strips the tag or digest off an image reference.
func imageName(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	slash := strings.LastIndex(ref, "/")
	if i := strings.LastIndex(ref, ":"); i > slash {
		ref = ref[:i]
	}
	return ref
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// yamlUnmarshalStrict decodes YAML refusing unknown fields.
func yamlUnmarshalStrict(b []byte, v any) error {
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func TestHelpers(t *testing.T) {
	pinned := func(ref string, want bool) {
		t.Helper()
		if got := imagePinned(ref); got != want {
			t.Errorf("imagePinned(%q) = %v, want %v", ref, got, want)
		}
	}
	pinned("prom/prometheus:v3.5.0", true)
	pinned("golang:1.26.8-bookworm", true)
	pinned("localhost:5000/x@sha256:abcd", true)
	pinned("prom/prometheus", false)
	pinned("prom/prometheus:latest", false)
	pinned("localhost:5000/prometheus", false)
	pinned("grafana/grafana:${TAG}", false)
	pinned("debian:bookworm-slim", false)

	name := func(ref, want string) {
		t.Helper()
		if got := imageName(ref); got != want {
			t.Errorf("imageName(%q) = %q, want %q", ref, got, want)
		}
	}
	name("ghcr.io/procscope/procscope-exporter:latest", "ghcr.io/procscope/procscope-exporter")
	name("localhost:5000/x", "localhost:5000/x")
	name("localhost:5000/x:1@sha256:ab", "localhost:5000/x")

	interp := func(s, want string) {
		t.Helper()
		if got := interpolate(s); got != want {
			t.Errorf("interpolate(%q) = %q, want %q", s, got, want)
		}
	}
	interp("--a=${X:-127.0.0.1:8000}", "--a=127.0.0.1:8000")
	interp("${P:?set P}", "SET-P")
	interp("plain", "plain")

	flags := func(text string, want ...string) {
		t.Helper()
		if got := flagNames(text); !slices.Equal(got, want) {
			t.Errorf("flagNames(%q) = %q, want %q", text, got, want)
		}
	}
	flags("x --web.listen-address=:1 --[no-]collect.cmdline -- y --push.api-key-file", "web.listen-address", "collect.cmdline", "push.api-key-file")
	flags("no flags - here")
}
