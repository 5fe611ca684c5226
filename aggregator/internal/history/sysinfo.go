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
// Decoding with encoding/json cost ~20 µs a snapshot, 40 % of Add.
func readHostNumbers(raw []byte, out *hostNumbers) {
	*out = hostNumbers{filesystems: out.filesystems[:0]}
	// Validity first, as json.Unmarshal does: a syntax error anywhere
	// means nothing is read. After this the scanner may assume valid JSON.
	if !json.Valid(raw) {
		return
	}
	sc := sysScanner{b: raw}
	if sc.top(out) {
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

// sysScanner walks valid JSON (json.Valid said so): it never checks syntax,
// only which kind of value comes next.
type sysScanner struct {
	b []byte
	i int
}

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

// peek is the first byte of the next value (0 at the end).
func (s *sysScanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str consumes a string and returns its raw content (between the quotes)
// and whether that content is plain: no escapes and valid UTF-8, so the
// decoded string is the raw bytes as they are.
func (s *sysScanner) str() (raw []byte, plain bool) {
	s.i++ // opening quote
	start := s.i
	plain = true
	ascii := true
	for ; s.i < len(s.b); s.i++ {
		c := s.b[s.i]
		if c == '"' {
			break
		}
		if c == '\\' {
			plain = false
			s.i++ // the escaped byte cannot end the string
		} else if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	raw = s.b[start:s.i]
	s.i++ // closing quote
	if plain && !ascii {
		plain = utf8.Valid(raw)
	}
	return raw, plain
}

// skip consumes one value of any kind.
func (s *sysScanner) skip() {
	switch s.peek() {
	case '"':
		s.str()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				s.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.i++
			if depth == 0 {
				return
			}
		}
	default: // number, true, false, null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			s.i++
		}
	}
}

// num consumes a value as optNum.UnmarshalJSON reads it: a number, or
// absent for anything else.
func (s *sysScanner) num() optNum {
	c := s.peek()
	if c != '-' && (c < '0' || c > '9') {
		s.skip()
		return optNum{}
	}
	start := s.i
	s.skip()
	tok := s.b[start:s.i]
	// Whole numbers below 2^53 (byte counts, process counts) convert
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
	n.UnmarshalJSON(tok)
	return n
}

// fields iterates the members of the object starting at the next byte,
// calling member for each key; member must consume the value. It returns
// false (stop, take the encoding/json path) when a key is not plain
// lowercase ASCII, since encoding/json matches keys case-insensitively and
// after unescaping, or when member returns false.
func (s *sysScanner) fields(member func(key []byte) bool) bool {
	s.i++ // '{'
	for {
		switch s.peek() {
		case '}':
			s.i++
			return true
		case ',':
			s.i++
			continue
		}
		key, plain := s.str()
		if !plain || !lowerASCII(key) {
			return false
		}
		s.peek()
		s.i++ // ':'
		if !member(key) {
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
// pointer to a struct: an object is read with member; null or any other
// kind leaves the struct absent (nil pointer), so nothing is read.
func (s *sysScanner) obj(member func(key []byte) bool) bool {
	if s.peek() != '{' {
		s.skip()
		return true
	}
	return s.fields(member)
}

// top reads the top-level value; false means "use encoding/json".
func (s *sysScanner) top(out *hostNumbers) bool {
	if s.peek() != '{' {
		// Valid JSON that is no object: a type error, nothing read.
		return true
	}
	var mask uint16
	return s.fields(func(key []byte) bool {
		switch string(key) {
		case "cpu":
			if seen(&mask, 0) {
				return false
			}
			var m uint16
			return s.obj(func(k []byte) bool {
				if string(k) == "usage_percent" {
					if seen(&m, 0) {
						return false
					}
					out.cpu = s.num()
					return true
				}
				s.skip()
				return true
			})
		case "memory":
			if seen(&mask, 1) {
				return false
			}
			var m uint16
			return s.obj(func(k []byte) bool {
				switch string(k) {
				case "used_bytes":
					if seen(&m, 0) {
						return false
					}
					out.memUsed = s.num()
				case "available_bytes":
					if seen(&m, 1) {
						return false
					}
					out.memAvail = s.num()
				default:
					s.skip()
				}
				return true
			})
		case "swap":
			if seen(&mask, 2) {
				return false
			}
			var m uint16
			return s.obj(func(k []byte) bool {
				if string(k) == "used_bytes" {
					if seen(&m, 0) {
						return false
					}
					out.swapUsed = s.num()
					return true
				}
				s.skip()
				return true
			})
		case "load_average":
			if seen(&mask, 3) {
				return false
			}
			var m uint16
			return s.obj(func(k []byte) bool {
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
					s.skip()
					return true
				}
				if seen(&m, bit) {
					return false
				}
				*dst = s.num()
				return true
			})
		case "process_count":
			if seen(&mask, 4) {
				return false
			}
			out.processCount = s.num()
			return true
		case "filesystems":
			if seen(&mask, 5) {
				return false
			}
			return s.filesystems(out)
		}
		s.skip()
		return true
	})
}

// filesystems reads the filesystems array. An element that is not an
// object decodes to the zero entry (no mount point), which writes nothing.
func (s *sysScanner) filesystems(out *hostNumbers) bool {
	if s.peek() != '[' {
		s.skip() // null or a wrong type: no filesystems
		return true
	}
	s.i++
	for {
		switch s.peek() {
		case ']':
			s.i++
			return true
		case ',':
			s.i++
			continue
		}
		var f fsNumber
		var m uint16
		ok := s.obj(func(k []byte) bool {
			switch string(k) {
			case "mountpoint":
				if seen(&m, 0) {
					return false
				}
				if s.peek() != '"' {
					s.skip() // null or a wrong type: no mount point
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
				f.used = s.num()
			default:
				s.skip()
			}
			return true
		})
		if !ok {
			return false
		}
		out.filesystems = append(out.filesystems, f)
	}
}
