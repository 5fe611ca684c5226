package cli

import (
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

// DurationVar makes fc a Go duration (500ms, 2s, 10m) stored in dst.
func DurationVar(fc *kingpin.FlagClause, dst *time.Duration) {
	fc.SetValue((*durationValue)(dst))
}

// Duration is DurationVar into a new variable.
func Duration(fc *kingpin.FlagClause) *time.Duration {
	d := new(time.Duration)
	DurationVar(fc, d)
	return d
}

type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration (examples: 500ms, 2s, 10m)")
	}
	*v = durationValue(d)
	return nil
}

func (v *durationValue) String() string { return time.Duration(*v).String() }

// LongDuration makes fc a Prometheus duration, which also takes days,
// weeks and years (90d, 2w, 1y), as retention periods want.
func LongDuration(fc *kingpin.FlagClause) *model.Duration {
	d := new(model.Duration)
	fc.SetValue((*longDurationValue)(d))
	return d
}

type longDurationValue model.Duration

func (v *longDurationValue) Set(s string) error {
	d, err := model.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration (examples: 90d, 2w, 24h, 30m)")
	}
	*v = longDurationValue(d)
	return nil
}

func (v *longDurationValue) String() string { return model.Duration(*v).String() }

// IntVar makes fc an integer stored in dst.
func IntVar(fc *kingpin.FlagClause, dst *int) {
	fc.SetValue((*intValue)(dst))
}

// Int is IntVar into a new variable.
func Int(fc *kingpin.FlagClause) *int {
	n := new(int)
	IntVar(fc, n)
	return n
}

type intValue int

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not an integer")
	}
	*v = intValue(n)
	return nil
}

func (v *intValue) String() string { return strconv.Itoa(int(*v)) }

// BoolVar makes fc a switch stored in dst: --name, --no-name, or
// true/false (1/0, t/f) from its environment variable.
func BoolVar(fc *kingpin.FlagClause, dst *bool) {
	fc.SetValue((*boolValue)(dst))
}

// Bool is BoolVar into a new variable.
func Bool(fc *kingpin.FlagClause) *bool {
	b := new(bool)
	BoolVar(fc, b)
	return b
}

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("not a boolean (true or false)")
	}
	*v = boolValue(b)
	return nil
}

func (v *boolValue) String() string { return strconv.FormatBool(bool(*v)) }

// IsBoolFlag makes kingpin accept --name alone and add --no-name.
func (v *boolValue) IsBoolFlag() bool { return true }

// Bytes makes fc a size in bytes with a binary unit (512KiB, 16MiB, 1GiB).
func Bytes(fc *kingpin.FlagClause) *units.Base2Bytes {
	b := new(units.Base2Bytes)
	fc.SetValue((*bytesValue)(b))
	return b
}

type bytesValue units.Base2Bytes

func (v *bytesValue) Set(s string) error {
	b, err := units.ParseBase2Bytes(s)
	if err != nil {
		return fmt.Errorf("not a size (examples: 512KiB, 16MiB, 1GiB)")
	}
	*v = bytesValue(b)
	return nil
}

func (v *bytesValue) String() string { return units.Base2Bytes(*v).String() }

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
