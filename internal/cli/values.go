package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
	"github.com/prometheus/common/model"
)

// kingpin's own parsers fail with messages such as `time: invalid duration
// "fast"`, meant for programmers. These values say what was expected, in
// words; Parse adds which flag or variable was wrong.

// value is a kingpin.Value that parses with parse and, when that fails,
// says want (what the flag takes, with examples).
type value[T any] struct {
	dst    *T
	parse  func(string) (T, error)
	format func(T) string
	want   string
}

func (v *value[T]) Set(s string) error {
	x, err := v.parse(s)
	if err != nil {
		return errors.New(v.want)
	}
	*v.dst = x
	return nil
}

func (v *value[T]) String() string { return v.format(*v.dst) }

// boolValue is a value that kingpin accepts alone (--name) and gives a
// --no-name.
type boolValue struct{ value[bool] }

func (*boolValue) IsBoolFlag() bool { return true }

// DurationVar makes fc a Go duration (500ms, 2s, 10m) stored in dst.
func DurationVar(fc *kingpin.FlagClause, dst *time.Duration) {
	fc.SetValue(&value[time.Duration]{dst, time.ParseDuration, time.Duration.String, "not a duration (examples: 500ms, 2s, 10m)"})
}

// Duration is DurationVar into a new variable.
func Duration(fc *kingpin.FlagClause) *time.Duration {
	d := new(time.Duration)
	DurationVar(fc, d)
	return d
}

// LongDuration makes fc a Prometheus duration, which also takes days,
// weeks and years (90d, 2w, 1y), as retention periods want.
func LongDuration(fc *kingpin.FlagClause) *model.Duration {
	d := new(model.Duration)
	fc.SetValue(&value[model.Duration]{d, model.ParseDuration, model.Duration.String, "not a duration (examples: 90d, 2w, 24h, 30m)"})
	return d
}

// IntVar makes fc an integer stored in dst.
func IntVar(fc *kingpin.FlagClause, dst *int) {
	fc.SetValue(&value[int]{dst, strconv.Atoi, strconv.Itoa, "not an integer"})
}

// Int is IntVar into a new variable.
func Int(fc *kingpin.FlagClause) *int {
	n := new(int)
	IntVar(fc, n)
	return n
}

// BoolVar makes fc a switch stored in dst: --name, --no-name, or
// true/false (1/0, t/f) from its environment variable.
func BoolVar(fc *kingpin.FlagClause, dst *bool) {
	fc.SetValue(&boolValue{value[bool]{dst, strconv.ParseBool, strconv.FormatBool, "not a boolean (true or false)"}})
}

// Bool is BoolVar into a new variable.
func Bool(fc *kingpin.FlagClause) *bool {
	b := new(bool)
	BoolVar(fc, b)
	return b
}

// Bytes makes fc a size in bytes with a binary unit (512KiB, 16MiB, 1GiB).
func Bytes(fc *kingpin.FlagClause) *units.Base2Bytes {
	b := new(units.Base2Bytes)
	fc.SetValue(&value[units.Base2Bytes]{b, units.ParseBase2Bytes, units.Base2Bytes.String, "not a size (examples: 512KiB, 16MiB, 1GiB)"})
	return b
}

// Enum makes fc one of the given words.
func Enum(fc *kingpin.FlagClause, words ...string) *string {
	s := new(string)
	fc.SetValue(&enumValue{s: s, words: words})
	return s
}

type enumValue struct {
	s     *string
	words []string
}

func (v *enumValue) Set(s string) error {
	for _, w := range v.words {
		if s == w {
			*v.s = s
			return nil
		}
	}
	return fmt.Errorf("want one of %s", strings.Join(v.words, ", "))
}

func (v *enumValue) String() string { return *v.s }
