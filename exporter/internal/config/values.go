package config

import (
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/procscope/procscope/internal/cli"
)

// The flags' values are the shared cli ones, whose errors say what was
// expected; cli.Parse names the flag or the variable the value came from.

func durationFlag(app *kingpin.Application, name, help, def string, dst *time.Duration, set *bool) {
	cli.DurationVar(app.Flag(name, help).Default(def).IsSetByUser(set), dst)
}

func intFlag(app *kingpin.Application, name, help, def string, dst *int, set *bool) {
	cli.IntVar(app.Flag(name, help).Default(def).IsSetByUser(set), dst)
}
