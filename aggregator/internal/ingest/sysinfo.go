package ingest

import (
	"bytes"
	"strconv"
)

// Num is a number of system_info that may be absent.
type Num struct {
	V  float64
	OK bool
}

// SystemNumbers are the values of system_info that history keeps, read
// while system_info is validated so that nothing scans it twice. They are
// what encoding/json would decode into
//
//	struct {
//		CPU         *struct{ UsagePercent Num `json:"usage_percent"` }           `json:"cpu"`
//		Memory      *struct{ UsedBytes, AvailableBytes Num }                     `json:"memory"`
//		Swap        *struct{ UsedBytes Num }                                     `json:"swap"`
//		Filesystems []struct{ Mountpoint string; UsedBytes Num }                 `json:"filesystems"`
//		LoadAverage *struct{ Load1, Load5, Load15 Num }                          `json:"load_average"`
//		ProcessCount Num                                                         `json:"process_count"`
//	}
//
// where Num is absent unless the value is a finite number, with
// encoding/json's rules: keys match after unescaping and case-insensitively
// (Unicode folding), a value of the wrong type leaves its field as it was,
// null clears a pointer or a slice, a duplicate key decodes again into
// what the first one left (objects merge, the filesystems array is
// decoded into the elements already there). FuzzSystemNumbers checks this
// against encoding/json itself.
type SystemNumbers struct {
	CPU, MemUsed, MemAvail, SwapUsed Num
	Load1, Load5, Load15             Num
	ProcessCount                     Num
	// Filesystems keeps the order and the entries (empty mount points
	// included) that encoding/json would decode.
	Filesystems []FSNumber
}

// FSNumber is one element of system_info's filesystems.
type FSNumber struct {
	Mountpoint string
	Used       Num
}

// keyIs matches an object key to a field name as encoding/json does:
// exactly, or else case-insensitively with Unicode simple folding.
func keyIs(key []byte, name string) bool {
	return string(key) == name || bytes.EqualFold(key, []byte(name))
}

// sysObject reads the system_info object (the current byte is '{') into
// out, checking its syntax as skipValue(0) does.
func (d *decoder) sysObject(out *SystemNumbers) error {
	// fsSeen is how many filesystems elements the backing array of the
	// decoded slice holds: a later filesystems array decodes into them
	// (encoding/json keeps the slice's memory, even past a shorter
	// array's length), beyond them into zero elements.
	var fs []FSNumber
	fsLen := 0
	err := d.members(func(key []byte) error {
		switch {
		case keyIs(key, "cpu"):
			return d.sysGroup(func(k []byte) (*Num, bool) {
				return &out.CPU, keyIs(k, "usage_percent")
			}, &out.CPU)
		case keyIs(key, "memory"):
			return d.sysGroup(func(k []byte) (*Num, bool) {
				switch {
				case keyIs(k, "used_bytes"):
					return &out.MemUsed, true
				case keyIs(k, "available_bytes"):
					return &out.MemAvail, true
				}
				return nil, false
			}, &out.MemUsed, &out.MemAvail)
		case keyIs(key, "swap"):
			return d.sysGroup(func(k []byte) (*Num, bool) {
				return &out.SwapUsed, keyIs(k, "used_bytes")
			}, &out.SwapUsed)
		case keyIs(key, "load_average"):
			return d.sysGroup(func(k []byte) (*Num, bool) {
				switch {
				case keyIs(k, "load1"):
					return &out.Load1, true
				case keyIs(k, "load5"):
					return &out.Load5, true
				case keyIs(k, "load15"):
					return &out.Load15, true
				}
				return nil, false
			}, &out.Load1, &out.Load5, &out.Load15)
		case keyIs(key, "process_count"):
			return d.sysNum(1, &out.ProcessCount)
		case keyIs(key, "filesystems"):
			return d.sysFilesystems(&fs, &fsLen)
		}
		return d.skipValue(1)
	})
	out.Filesystems = fs[:fsLen]
	return err
}

// sysGroup reads the value of a field that encoding/json decodes into a
// pointer to a struct of Nums (fields, in that order): null sets the
// pointer to nil, so every field is absent; an object decodes into the
// struct (field maps its keys); any other kind is a type error that
// leaves the struct as it was.
func (d *decoder) sysGroup(field func(key []byte) (*Num, bool), fields ...*Num) error {
	if d.isNull() {
		for _, f := range fields {
			*f = Num{}
		}
		return nil
	}
	if d.peek() != '{' {
		return d.skipValue(1)
	}
	return d.members(func(k []byte) error {
		if dst, ok := field(k); ok {
			return d.sysNum(2, dst)
		}
		return d.skipValue(2)
	})
}

// sysNum reads any value into *dst: a finite number is present, anything
// else (null, a string, a number out of range) absent.
func (d *decoder) sysNum(depth int, dst *Num) error {
	c := d.peek()
	if c != '-' && (c < '0' || c > '9') {
		*dst = Num{}
		return d.skipValue(depth)
	}
	tok, _, err := d.number()
	if err != nil {
		return err
	}
	*dst = numValue(tok)
	return nil
}

// numValue converts a JSON number. Whole numbers below 10^15 (byte and
// process counts) convert exactly without strconv; "-0" and fractions take
// ParseFloat.
func numValue(tok []byte) Num {
	if len(tok) <= 15 {
		var n int64
		for _, c := range tok {
			if c < '0' || c > '9' {
				goto parse
			}
			n = n*10 + int64(c-'0')
		}
		return Num{V: float64(n), OK: true}
	}
parse:
	f, err := strconv.ParseFloat(string(tok), 64)
	return Num{V: f, OK: err == nil && f-f == 0} // f-f is NaN for ±Inf
}

// sysFilesystems reads the filesystems array into the backing array *fs
// of a slice of length *n, as encoding/json decodes into a slice: null or
// [] leave a new empty slice; elements decode into what the backing array
// holds at their index; any other kind is a type error that leaves the
// slice as it was.
func (d *decoder) sysFilesystems(fs *[]FSNumber, n *int) error {
	if d.isNull() {
		*fs, *n = nil, 0
		return nil
	}
	if d.peek() != '[' {
		return d.skipValue(1)
	}
	read, err := d.elements(func(i int) error {
		if i == len(*fs) {
			*fs = append(*fs, FSNumber{})
		}
		return d.sysFilesystem(&(*fs)[i])
	})
	if err != nil {
		return err
	}
	if read == 0 {
		*fs = nil
	}
	*n = read
	return nil
}

// sysFilesystem reads one element of filesystems into f: an object
// decodes into it, anything else (null included, as f is a struct, not a
// pointer) leaves it as it was.
func (d *decoder) sysFilesystem(f *FSNumber) error {
	if d.peek() != '{' {
		return d.skipValue(2)
	}
	return d.members(func(k []byte) error {
		switch {
		case keyIs(k, "mountpoint"):
			if d.peek() != '"' {
				return d.skipValue(3) // null or a wrong type: unchanged
			}
			s, err := d.str()
			if err != nil {
				return err
			}
			f.Mountpoint = s
			return nil
		case keyIs(k, "used_bytes"):
			return d.sysNum(3, &f.Used)
		}
		return d.skipValue(3)
	})
}
