package deploy

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// update rewrites the generated parts of the docs instead of comparing them:
// go test ./deploy -run TestOperationsFlagTables -update
var update = flag.Bool("update", false, "rewrite the flag tables in docs/operations.md from the binaries' --help")

// helpFlag is one flag as a kingpin --help lists it.
type helpFlag struct {
	name, value, env, help string
	repeatable, boolean    bool
}

// helpEntryRE is the first line of a flag in kingpin's help: the short
// form, the long form with its default or placeholder, " ..." when
// repeatable, then the start of the help text (or nothing when the flag is
// too long and the text starts on the next line). An entry is indented
// two spaces; its continuation lines are indented further.
var helpEntryRE = regexp.MustCompile(`^  (?:-\w, |    )--(\[no-\])?([a-z][a-z0-9.\-]*)(?:=(\S+))?( \.\.\.)?(?:\s+(.*))?$`)

// envRE is the environment variable kingpin appends to a flag's help.
var envRE = regexp.MustCompile(`\s*\(\$([A-Z0-9_]+)\)$`)

// parseHelp reads the flags of a kingpin --help-long output, each once
// (a command's help repeats the flags of the application).
func parseHelp(out string) []helpFlag {
	var flags []helpFlag
	var cur *helpFlag
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if m := helpEntryRE.FindStringSubmatch(line); m != nil {
			cur = nil
			if seen[m[2]] {
				continue
			}
			seen[m[2]] = true
			flags = append(flags, helpFlag{name: m[2], boolean: m[1] != "", value: m[3], repeatable: m[4] != "", help: m[5]})
			cur = &flags[len(flags)-1]
			continue
		}
		text := strings.TrimSpace(line)
		switch {
		case cur == nil:
		case text == "" || !strings.HasPrefix(line, "   "):
			cur = nil // a blank line or a section heading ends the flag
		default:
			cur.help = strings.TrimSpace(cur.help + " " + text)
		}
	}
	for i := range flags {
		f := &flags[i]
		if m := envRE.FindStringSubmatch(f.help); m != nil {
			f.env, f.help = m[1], strings.TrimSpace(f.help[:len(f.help)-len(m[0])])
		}
	}
	return flags
}

// placeholderRE is a value kingpin shows for a flag without a default
// (FILE, NAME=REGEX), as opposed to the default itself.
var placeholderRE = regexp.MustCompile(`^[A-Z][A-Z0-9_=]*$`)

// flagTable renders flags as the Markdown table docs/operations.md holds.
func flagTable(flags []helpFlag) string {
	withEnv := slices.ContainsFunc(flags, func(f helpFlag) bool { return f.env != "" })
	var b strings.Builder
	if withEnv {
		b.WriteString("| flag | default | environment | meaning |\n|---|---|---|---|\n")
	} else {
		b.WriteString("| flag | default | meaning |\n|---|---|---|\n")
	}
	// Help text is plain text: "|" would end a cell, "<x>" would be HTML.
	cell := strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace
	for _, f := range flags {
		name, def := "`--"+f.name+"`", "none"
		switch {
		case f.boolean:
			name, def = "`--[no-]"+f.name+"`", "switch"
		case f.value == `""`:
			def = "`\"\"`"
		case f.value != "" && !placeholderRE.MatchString(f.value):
			def = "`" + strings.Trim(f.value, `"`) + "`"
		}
		if f.repeatable {
			def += " (repeatable)"
		}
		env := ""
		if f.env != "" {
			env = "`$" + f.env + "`"
		}
		if withEnv {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, def, env, cell(f.help))
		} else {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", name, def, cell(f.help))
		}
	}
	return b.String()
}

// TestOperationsFlagTables keeps docs/operations.md's flag tables what the
// freshly built binaries' --help says: every flag, its default, its
// environment variable and its help text. After changing a flag, run it
// with -update to regenerate them.
func TestOperationsFlagTables(t *testing.T) {
	bins := buildBinaries(t)
	path := filepath.Join(repoRoot, "docs", "operations.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for _, b := range []struct{ name, bin string }{
		{"procscope-exporter", bins.Exporter},
		{"procscope-aggregator", bins.Aggregator},
	} {
		out, err := exec.Command(b.bin, "--help-long").CombinedOutput()
		if err != nil {
			t.Fatalf("%s --help-long: %v\n%s", b.name, err, out)
		}
		flags := parseHelp(string(out))
		if len(flags) < 10 {
			t.Fatalf("%s --help-long: parsed only %d flags:\n%s", b.name, len(flags), out)
		}
		begin := "<!-- BEGIN generated flags of " + b.name + " -->\n"
		end := "<!-- END generated flags of " + b.name + " -->"
		i, j := strings.Index(text, begin), strings.Index(text, end)
		if i < 0 || j < i {
			t.Fatalf("docs/operations.md lacks the markers %q ... %q", begin, end)
		}
		want := flagTable(flags)
		if got := text[i+len(begin) : j]; got != want {
			if *update {
				text = text[:i+len(begin)] + want + text[j:]
				continue
			}
			t.Errorf("docs/operations.md: the flag table of %s differs from its --help; run go test ./deploy -run TestOperationsFlagTables -update\ngot:\n%s\nwant:\n%s", b.name, got, want)
		}
	}
	if *update {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// notOurs are dotted flags of other programs the docs' commands use, and
// our hidden ones, which --help does not list.
var notOurs = []string{
	"web.enable-remote-write-receiver", // Prometheus
	"debug.pprof-address",              // the aggregator's, hidden (loadgen -cpuprofile)
}

// TestDocsNameRealFlags: every Prometheus-style --flag (one with a dot)
// the README and docs/ name exists in one of the binaries, so a renamed
// flag cannot leave a guide behind. Undotted ones are mostly other
// programs' (systemctl --now, docker --build-arg).
func TestDocsNameRealFlags(t *testing.T) {
	bins := buildBinaries(t)
	known := append(helpFlags(t, bins.Exporter), helpFlags(t, bins.Aggregator)...)
	known = append(known, notOurs...)
	files, _ := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	files = append(files, filepath.Join(repoRoot, "README.md"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range flagNames(string(b)) {
			if strings.Contains(name, ".") && !slices.Contains(known, name) {
				t.Errorf("%s mentions --%s, which neither binary has", filepath.Base(f), name)
			}
		}
	}
}

func TestParseHelp(t *testing.T) {
	out := `Flags:
  -h, --[no-]help                Show context-sensitive help (also try
                                 --help-long and --help-man).
      --web.listen-address=:9717 ...  
                                 Addresses on which to expose metrics.
                                 ($PROCSCOPE_WEB_LISTEN_ADDRESS)
      --push.api-key-file=FILE   File holding the key. ($PROCSCOPE_KEY)
      --storage.path="./data"    Directory.

serve [<flags>]
      --storage.path="./data"    Directory.
`
	got := parseHelp(out)
	want := []helpFlag{
		{name: "help", boolean: true, help: "Show context-sensitive help (also try --help-long and --help-man)."},
		{name: "web.listen-address", value: ":9717", repeatable: true, env: "PROCSCOPE_WEB_LISTEN_ADDRESS", help: "Addresses on which to expose metrics."},
		{name: "push.api-key-file", value: "FILE", env: "PROCSCOPE_KEY", help: "File holding the key."},
		{name: "storage.path", value: `"./data"`, help: "Directory."},
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseHelp:\ngot  %+v\nwant %+v", got, want)
	}
	table := flagTable(got)
	for _, row := range []string{
		"| `--[no-]help` | switch |  | Show context-sensitive help (also try --help-long and --help-man). |",
		"| `--web.listen-address` | `:9717` (repeatable) | `$PROCSCOPE_WEB_LISTEN_ADDRESS` | Addresses on which to expose metrics. |",
		"| `--push.api-key-file` | none | `$PROCSCOPE_KEY` | File holding the key. |",
		"| `--storage.path` | `./data` |  | Directory. |",
	} {
		if !strings.Contains(table, row+"\n") {
			t.Errorf("flagTable lacks %q:\n%s", row, table)
		}
	}
}
