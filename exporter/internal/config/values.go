package config

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

// kingpin's own duration, int and bool parsers fail with messages like
// `time: invalid duration "fast"` that do not say which flag was wrong;
// these values name the flag, or its environment variable when the bad
// value came from there.

// source names where a value s of flag name came from, for an error
// message. kingpin applies the environment variable only when the flag is
// absent from the command line, so a value equal to the variable's is
// taken to be the variable's.
func source(name, s string) string {
	if env := EnvName(name); s != "" && os.Getenv(env) == s {
		return fmt.Sprintf("$%s=%q", env, s)
	}
	return fmt.Sprintf("--%s=%q", name, s)
}

type durationValue struct {
	name string
	d    *time.Duration
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%s: not a duration (examples: 2s, 500ms, 10m)", source(v.name, s))
	}
	*v.d = d
	return nil
}

func (v durationValue) String() string { return v.d.String() }

type intValue struct {
	name string
	n    *int
}

func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%s: not an integer", source(v.name, s))
	}
	*v.n = n
	return nil
}

func (v intValue) String() string { return strconv.Itoa(*v.n) }

// boolValue is a switch: --name, --no-name, or true/false (1/0, ...) from
// its environment variable.
type boolValue struct {
	name string
	b    *bool
}

func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%s: not a boolean (true or false)", source(v.name, s))
	}
	*v.b = b
	return nil
}

func (v boolValue) String() string { return strconv.FormatBool(*v.b) }

// IsBoolFlag makes kingpin accept --name alone and add --no-name.
func (v boolValue) IsBoolFlag() bool { return true }

func durationFlag(app *kingpin.Application, name, help, def string, dst *time.Duration, set *bool) {
	app.Flag(name, help).Default(def).IsSetByUser(set).SetValue(durationValue{name, dst})
}

func intFlag(app *kingpin.Application, name, help, def string, dst *int, set *bool) {
	app.Flag(name, help).Default(def).IsSetByUser(set).SetValue(intValue{name, dst})
}
