// Package cli holds the command-line conventions both procscope binaries
// follow, so that they behave alike without importing each other: every
// flag has a PROCSCOPE_ environment variable (flag > environment >
// default), a bad value is an error that names the flag or the variable it
// came from, and --version has no empty field.
//
// It knows nothing of either binary's flags; each main builds its own
// kingpin application and hands it to Parse.
package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/alecthomas/kingpin/v2"
)

// EnvPrefix starts the name of every flag's environment variable.
const EnvPrefix = "PROCSCOPE_"

// EnvName is the environment variable of a flag: "push.url" gives
// PROCSCOPE_PUSH_URL, "storage.retention.raw" PROCSCOPE_STORAGE_RETENTION_RAW.
func EnvName(flag string) string {
	b := []byte(EnvPrefix)
	for _, r := range flag {
		switch {
		case r >= 'a' && r <= 'z':
			b = append(b, byte(r-'a'+'A'))
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b = append(b, byte(r))
		default:
			b = append(b, '_')
		}
	}
	return string(b)
}

// Parse parses args (without the program name) with app, after giving
// every visible top-level flag its environment variable (EnvName, shown by
// --help) and making every flag's parse error name where the bad value came
// from: `--storage.retention="forever": not a duration ...`, or
// `$PROCSCOPE_STORAGE_RETENTION="forever": ...` when the command line did
// not give the flag. kingpin's hidden flags (--help-long,
// --completion-bash, ...) get no variable: one in the environment would
// print and exit. Parse returns the selected command and the set of flags
// given on the command line.
//
// Call it once per application, after every flag is defined.
func Parse(app *kingpin.Application, args []string) (string, map[string]bool, error) {
	args, err := switchValues(app, args)
	if err != nil {
		return "", nil, err
	}
	given := map[string]bool{}
	for _, fm := range app.Model().Flags {
		if fm.Name == "help" || fm.Name == "version" {
			continue
		}
		fc := app.GetFlag(fm.Name)
		env := ""
		if !fm.Hidden {
			env = EnvName(fm.Name)
			fc.Envar(env)
		}
		// kingpin's plain string never fails, and its help quotes a
		// string's default only when it sees its own type: left as is.
		if fmt.Sprintf("%T", fm.Value) != "*kingpin.stringValue" {
			fc.SetValue(wrap(&namedValue{Value: fm.Value, name: fm.Name, env: env, given: given}))
		}
	}
	// kingpin applies a variable only to a flag absent from the command
	// line, and calls the same Set for both; a first pass that sets no
	// value tells which flags the command line holds, so that an error
	// names the right source.
	if ctx, _ := app.ParseContext(args); ctx != nil {
		for _, el := range ctx.Elements {
			if fc, ok := el.Clause.(*kingpin.FlagClause); ok {
				given[fc.Model().Name] = true
			}
		}
	}
	cmd, err := app.Parse(args)
	return cmd, given, err
}

// switchValues rewrites --switch=true and --switch=false, which kingpin
// refuses with a puzzling "unexpected false", into --switch and
// --no-switch: what the environment variable and most other tools accept.
func switchValues(app *kingpin.Application, args []string) ([]string, error) {
	switches := map[string]bool{}
	for _, fm := range app.Model().Flags {
		if fm.IsBoolFlag() && !fm.Hidden && fm.Name != "help" && fm.Name != "version" {
			switches[fm.Name] = true
		}
	}
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...), nil
		}
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok || !strings.HasPrefix(a, "--") || !switches[name] {
			out = append(out, a)
			continue
		}
		b, err := strconv.ParseBool(value)
		if err != nil {
			return nil, fmt.Errorf("--%s=%q: not a boolean (true or false; or write --%s or --no-%s)", name, value, name, name)
		}
		if b {
			out = append(out, "--"+name)
		} else {
			out = append(out, "--no-"+name)
		}
	}
	return out, nil
}

// namedValue prefixes a value's parse error with its flag or variable.
type namedValue struct {
	kingpin.Value
	name, env string
	given     map[string]bool
}

func (v *namedValue) Set(s string) error {
	if err := v.Value.Set(s); err != nil {
		return fmt.Errorf("%s: %w", v.source(s), err)
	}
	return nil
}

// source names where s came from: the variable when the flag is not on the
// command line and the variable is set (a default cannot be bad unless the
// program is), else the flag.
func (v *namedValue) source(s string) string {
	if v.env != "" && !v.given[v.name] {
		return fmt.Sprintf("$%s=%q", v.env, s)
	}
	return fmt.Sprintf("--%s=%q", v.name, s)
}

// kingpin asks a flag's value whether it is a switch (--x, --no-x) and
// whether it repeats; the wrapper must answer as the value it wraps.
type boolFlag interface{ IsBoolFlag() bool }

type repeatableFlag interface{ IsCumulative() bool }

type namedBool struct{ *namedValue }

func (namedBool) IsBoolFlag() bool { return true }

type namedRepeatable struct{ *namedValue }

func (namedRepeatable) IsCumulative() bool { return true }

func wrap(v *namedValue) kingpin.Value {
	if b, ok := v.Value.(boolFlag); ok && b.IsBoolFlag() {
		return namedBool{v}
	}
	if r, ok := v.Value.(repeatableFlag); ok && r.IsCumulative() {
		return namedRepeatable{v}
	}
	return v
}
