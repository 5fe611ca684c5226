package history

import (
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// hostNumbers are the values of system_info that history keeps, in the
// form buildSamples consumes. Filesystems keep the order and the entries
// (empty mount points included) that encoding/json would decode.
type hostNumbers struct {
	cpu, memUsed, memAvail, swapUsed optNum
	load1, load5, load15             optNum
	processCount                     optNum
	filesystems                      []fsNumber
}

type fsNumber struct {
	mountpoint string
	used       optNum
}

// readHostNumbers reads system_info. The scanner below handles what
// exporters send; anything it is not sure to read exactly as encoding/json
// does (escaped or case-folded keys, duplicate keys, escaped or invalid
// UTF-8 mount points) goes to the encoding/json decoder of systemNumbers,
// so both paths give the same numbers for every input (FuzzHostNumbers).
// Decoding with encoding/json cost ~20 µs a snapshot, 40 % of Add; even
// json.Valid alone cost ~5 µs, so the scanner checks the syntax itself.
func readHostNumbers(raw []byte, out *hostNumbers) {
	*out = hostNumbers{filesystems: out.filesystems[:0]}
	sc := sysScanner{b: raw}
	done := sc.top(out)
	if sc.bad {
		// A syntax error anywhere means nothing is read, as json.Unmarshal
		// checks the whole input before decoding.
		*out = hostNumbers{filesystems: out.filesystems[:0]}
		return
	}
	if done {
		return
	}
	*out = hostNumbers{filesystems: out.filesystems[:0]}
	decodeHostNumbers(raw, out)
}

// decodeHostNumbers is the encoding/json reading of system_info, with its
// tolerance: a field of the wrong type (or a number out of range) is
// absent, the rest is still read.
func decodeHostNumbers(raw []byte, out *hostNumbers) {
	var sys systemNumbers
	err := json.Unmarshal(raw, &sys)
	var typeErr *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &typeErr) {
		return
	}
	if sys.CPU != nil {
		out.cpu = sys.CPU.UsagePercent
	}
	if sys.Memory != nil {
		out.memUsed, out.memAvail = sys.Memory.UsedBytes, sys.Memory.AvailableBytes
	}
	if sys.Swap != nil {
		out.swapUsed = sys.Swap.UsedBytes
	}
	if sys.LoadAverage != nil {
		out.load1, out.load5, out.load15 = sys.LoadAverage.Load1, sys.LoadAverage.Load5, sys.LoadAverage.Load15
	}
	out.processCount = sys.ProcessCount
	for _, f := range sys.Filesystems {
		out.filesystems = append(out.filesystems, fsNumber{mountpoint: f.Mountpoint, used: f.UsedBytes})
	}
}

// sysScanner reads JSON and checks its syntax as encoding/json does
// (RFC 8259; any bytes but control characters inside strings; at most
// maxDepth nested arrays and objects). On a syntax error it sets bad and
// stops; callers then only unwind.
type sysScanner struct {
	b   []byte
	i   int
	bad bool
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

func (s *sysScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek is the next byte after whitespace (0 at the end).
func (s *sysScanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// expect consumes c after whitespace, or marks the input bad.
func (s *sysScanner) expect(c byte) bool {
	if s.peek() != c {
		s.bad = true
		return false
	}
	s.i++
	return true
}

// str consumes a string (the next byte is its quote) and returns its raw
// content and whether that content is plain: no escapes and valid UTF-8,
// so the decoded string is the raw bytes as they are.
func (s *sysScanner) str() (raw []byte, plain bool) {
	s.i++ // opening quote
	start := s.i
	plain = true
	ascii := true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			if plain && !ascii {
				plain = utf8.Valid(raw)
			}
			return raw, plain
		case c == '\\':
			plain = false
			if s.i+1 >= len(s.b) {
				s.bad = true
				return nil, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					s.bad = true
					return nil, false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if (h < '0' || h > '9') && (h < 'a' || h > 'f') && (h < 'A' || h > 'F') {
						s.bad = true
						return nil, false
					}
				}
				s.i += 6
			default:
				s.bad = true
				return nil, false
			}
		case c < 0x20:
			s.bad = true
			return nil, false
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			s.i++
		}
	}
	s.bad = true // unterminated
	return nil, false
}

// numTok consumes a number (the next byte is '-' or a digit) and returns
// its text.
func (s *sysScanner) numTok() []byte {
	b, i := s.b, s.i
	start := i
	digits := func() bool {
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		digits()
	default:
		s.bad = true
		return nil
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			s.bad = true
			return nil
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			s.bad = true
			return nil
		}
	}
	s.i = i
	return b[start:i]
}

// value consumes and checks one value of any kind; depth is the number of
// arrays and objects it is nested in.
func (s *sysScanner) value(depth int) {
	switch c := s.peek(); c {
	case '"':
		s.str()
	case '{':
		if depth >= maxDepth {
			s.bad = true
			return
		}
		s.members(depth+1, nil)
	case '[':
		if depth >= maxDepth {
			s.bad = true
			return
		}
		s.elements(depth+1, func() bool { s.value(depth + 1); return true })
	case 't':
		s.lit("true")
	case 'f':
		s.lit("false")
	case 'n':
		s.lit("null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			s.numTok()
			return
		}
		s.bad = true
	}
}

func (s *sysScanner) lit(word string) {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		s.bad = true
		return
	}
	s.i += len(word)
}

// elements consumes an array (the next byte is '['), calling element for
// each; element consumes one value. It returns false when element does
// (give up, take the encoding/json path) or the syntax is bad.
func (s *sysScanner) elements(depth int, element func() bool) bool {
	s.i++ // '['
	if s.peek() == ']' {
		s.i++
		return true
	}
	for {
		if !element() || s.bad {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			s.bad = true
			return false
		}
	}
}

// num consumes a value as optNum.UnmarshalJSON reads it: a number, or
// absent for anything else.
func (s *sysScanner) num(depth int) optNum {
	c := s.peek()
	if c != '-' && (c < '0' || c > '9') {
		s.value(depth)
		return optNum{}
	}
	tok := s.numTok()
	if s.bad {
		return optNum{}
	}
	// Whole numbers below 10^15 (byte counts, process counts) convert
	// exactly without strconv; "-0" and fractions take ParseFloat.
	if len(tok) <= 15 {
		var n int64
		for _, d := range tok {
			if d < '0' || d > '9' {
				goto parse
			}
			n = n*10 + int64(d-'0')
		}
		return optNum{v: float64(n), ok: true}
	}
parse:
	var n optNum
	_ = n.UnmarshalJSON(tok) // never fails: a malformed number is kept as absent
	return n
}

// members consumes an object (the next byte is '{') at nesting depth,
// calling member for each key; member consumes the value. A nil member
// skips every value. It returns false (give up, take the encoding/json
// path) when member does, when a key member would see is not plain
// lowercase ASCII (encoding/json matches keys case-insensitively and after
// unescaping), or when the syntax is bad.
func (s *sysScanner) members(depth int, member func(key []byte) bool) bool {
	s.i++ // '{'
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		if s.peek() != '"' {
			s.bad = true
			return false
		}
		key, plain := s.str()
		if s.bad || !s.expect(':') {
			return false
		}
		if member == nil {
			s.value(depth)
		} else if !plain || !lowerASCII(key) || !member(key) {
			return false
		}
		if s.bad {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			s.bad = true
			return false
		}
	}
}

func lowerASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// seen marks key number bit as read in *mask; a second occurrence makes
// the caller give up (encoding/json merges duplicates in ways not worth
// copying).
func seen(mask *uint16, bit uint) bool {
	if *mask&(1<<bit) != 0 {
		return true
	}
	*mask |= 1 << bit
	return false
}

// obj consumes the value of a field that encoding/json decodes into a
// pointer to a struct, inside depth containers: an object is read with
// member; null or any other kind leaves the struct absent (nil pointer),
// so nothing is read.
func (s *sysScanner) obj(depth int, member func(key []byte) bool) bool {
	if s.peek() != '{' {
		s.value(depth)
		return true
	}
	return s.members(depth+1, member)
}

// top reads the whole input; false means "use encoding/json" (unless bad
// is set: then the input is not JSON).
func (s *sysScanner) top(out *hostNumbers) bool {
	ok := true
	if s.peek() != '{' {
		// Not an object: a type error, nothing read, if it is JSON.
		s.value(0)
	} else {
		ok = s.topMembers(out)
	}
	if !ok || s.bad {
		return false
	}
	s.ws()
	if s.i != len(s.b) {
		s.bad = true // trailing data
		return false
	}
	return true
}

func (s *sysScanner) topMembers(out *hostNumbers) bool {
	var mask uint16
	return s.members(1, func(key []byte) bool {
		switch string(key) {
		case "cpu":
			if seen(&mask, 0) {
				return false
			}
			var m uint16
			return s.obj(1, func(k []byte) bool {
				if string(k) == "usage_percent" {
					if seen(&m, 0) {
						return false
					}
					out.cpu = s.num(2)
					return true
				}
				s.value(2)
				return true
			})
		case "memory":
			if seen(&mask, 1) {
				return false
			}
			var m uint16
			return s.obj(1, func(k []byte) bool {
				switch string(k) {
				case "used_bytes":
					if seen(&m, 0) {
						return false
					}
					out.memUsed = s.num(2)
				case "available_bytes":
					if seen(&m, 1) {
						return false
					}
					out.memAvail = s.num(2)
				default:
					s.value(2)
				}
				return true
			})
		case "swap":
			if seen(&mask, 2) {
				return false
			}
			var m uint16
			return s.obj(1, func(k []byte) bool {
				if string(k) == "used_bytes" {
					if seen(&m, 0) {
						return false
					}
					out.swapUsed = s.num(2)
					return true
				}
				s.value(2)
				return true
			})
		case "load_average":
			if seen(&mask, 3) {
				return false
			}
			var m uint16
			return s.obj(1, func(k []byte) bool {
				var dst *optNum
				var bit uint
				switch string(k) {
				case "load1":
					dst, bit = &out.load1, 0
				case "load5":
					dst, bit = &out.load5, 1
				case "load15":
					dst, bit = &out.load15, 2
				default:
					s.value(2)
					return true
				}
				if seen(&m, bit) {
					return false
				}
				*dst = s.num(2)
				return true
			})
		case "process_count":
			if seen(&mask, 4) {
				return false
			}
			out.processCount = s.num(1)
			return true
		case "filesystems":
			if seen(&mask, 5) {
				return false
			}
			return s.filesystems(out)
		}
		s.value(1)
		return true
	})
}

// filesystems reads the filesystems array (a member of the top object). An
// element that is not an object decodes to the zero entry (no mount
// point), which writes nothing.
func (s *sysScanner) filesystems(out *hostNumbers) bool {
	if s.peek() != '[' {
		s.value(1) // null or a wrong type: no filesystems
		return true
	}
	return s.elements(2, func() bool {
		var f fsNumber
		var m uint16
		ok := s.obj(2, func(k []byte) bool {
			switch string(k) {
			case "mountpoint":
				if seen(&m, 0) {
					return false
				}
				if s.peek() != '"' {
					s.value(3) // null or a wrong type: no mount point
					return true
				}
				raw, plain := s.str()
				if !plain {
					return false
				}
				f.mountpoint = string(raw)
			case "used_bytes":
				if seen(&m, 1) {
					return false
				}
				f.used = s.num(3)
			default:
				s.value(3)
			}
			return true
		})
		out.filesystems = append(out.filesystems, f)
		return ok
	})
}
