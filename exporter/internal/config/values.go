package config

import (
	"fmt"
	"strconv"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

// kingpin's own duration and int parsers fail with messages like
// `time: invalid duration "fast"` that do not say which flag was wrong;
// these values name the flag.

type durationValue struct {
	name string
	d    *time.Duration
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("--%s=%q: not a duration (examples: 2s, 500ms, 10m)", v.name, s)
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
		return fmt.Errorf("--%s=%q: not an integer", v.name, s)
	}
	*v.n = n
	return nil
}

func (v intValue) String() string { return strconv.Itoa(*v.n) }

func durationFlag(app *kingpin.Application, name, help, def string, dst *time.Duration, set *bool) {
	app.Flag(name, help).Default(def).IsSetByUser(set).SetValue(durationValue{name, dst})
}

func intFlag(app *kingpin.Application, name, help, def string, dst *int, set *bool) {
	app.Flag(name, help).Default(def).IsSetByUser(set).SetValue(intValue{name, dst})
}
