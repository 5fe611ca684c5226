package snapshot

// This file is a frozen, test-only copy of the oldDecoder as it was before the
// speed work of commit "snapshot: faster decode" (decode.go at 64eae3c). It
// exists for two reasons: BenchmarkDecode compares the current oldDecoder with
// it in the same run (the machine is shared, so only a same-run ratio
// means anything), and TestDecodeSameAsOld / FuzzDecodeSameAsOld check that
// the fast paths changed nothing a client can see: same values, same error
// messages, same HostnameSeen, on every input.
//
// Identifiers are prefixed with "old"; exported types (Decoded,
// DecodeError, DecodeOptions) and helpers that did not change (ParseTime,
// CheckHostname, truncateForMsg) are shared with decode.go.

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// oldDecode is Decode as it was.
func oldDecode(data []byte, opts DecodeOptions) (*Decoded, error) {
	if opts.MaxProcesses <= 0 {
		opts.MaxProcesses = DefaultMaxProcesses
	}
	d := oldDecoder{data: data, opts: opts}
	out := &Decoded{}
	err := d.document(out)
	out.HostnameSeen = d.hostnameSeen
	if err != nil {
		return out, err
	}
	if d.tooLarge != nil {
		return out, d.tooLarge
	}
	if d.invalid != nil {
		return out, d.invalid
	}
	return out, nil
}

type oldDecoder struct {
	data []byte
	pos  int
	opts DecodeOptions

	hostnameSeen bool
	// invalid is the first content error (400), tooLarge the first size
	// error (413); both let the scan go on.
	invalid  *DecodeError
	tooLarge *DecodeError
	// scratch is reused for strings that need unescaping.
	scratch []byte
	// chunk holds the text of strings handed out (see makeString).
	chunk []byte
	// cmdlines backs the Process.Cmdline pointers.
	cmdlines []string
}

func (d *oldDecoder) syntax(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &DecodeError{Kind: KindInvalid, Msg: fmt.Sprintf("invalid JSON at byte %d: %s", d.pos, msg)}
}

// bad records a content error (400) and lets the scan continue.
func (d *oldDecoder) bad(format string, args ...any) {
	if d.invalid == nil {
		d.invalid = &DecodeError{Kind: KindInvalid, Msg: fmt.Sprintf(format, args...)}
	}
}

func (d *oldDecoder) failed() bool { return d.invalid != nil || d.tooLarge != nil }

func (d *oldDecoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (d *oldDecoder) peek() byte {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return 0
	}
	return d.data[d.pos]
}

func (d *oldDecoder) expect(c byte) error {
	if d.peek() != c {
		if d.pos >= len(d.data) {
			return d.syntax("unexpected end of input, want %q", c)
		}
		return d.syntax("want %q", c)
	}
	d.pos++
	return nil
}

const (
	oldTopHostname = 1 << iota
	oldTopCapturedAt
	oldTopSystemInfo
	oldTopProcesses
)

func (d *oldDecoder) document(out *Decoded) error {
	// A UTF-8 byte order mark is not JSON; encoding/json rejects it too.
	if d.peek() != '{' {
		if d.pos >= len(d.data) {
			return &DecodeError{Kind: KindInvalid, Msg: "empty body: want a JSON object"}
		}
		return d.syntax("the body must be a JSON object")
	}
	d.pos++
	seen := 0
	first := true
	for {
		c := d.peek()
		if c == '}' {
			d.pos++
			break
		}
		if !first {
			if err := d.expect(','); err != nil {
				return err
			}
		}
		first = false
		key, err := d.key()
		if err != nil {
			return err
		}
		var bit int
		switch string(key) {
		case "hostname":
			bit = oldTopHostname
		case "captured_at":
			bit = oldTopCapturedAt
		case "system_info":
			bit = oldTopSystemInfo
		case "processes":
			bit = oldTopProcesses
		default:
			if err := d.skipValue(0); err != nil {
				return err
			}
			continue
		}
		if seen&bit != 0 {
			d.bad("duplicate field %q", string(key))
			if err := d.skipValue(0); err != nil {
				return err
			}
			continue
		}
		seen |= bit
		switch bit {
		case oldTopHostname:
			err = d.hostname(out)
		case oldTopCapturedAt:
			err = d.capturedAt(out)
		case oldTopSystemInfo:
			err = d.systemInfo(out)
		case oldTopProcesses:
			err = d.processes(out)
		}
		if err != nil {
			return err
		}
	}
	d.skipSpace()
	if d.pos != len(d.data) {
		return d.syntax("data after the JSON object")
	}
	for _, f := range []struct {
		bit  int
		name string
	}{{oldTopHostname, "hostname"}, {oldTopCapturedAt, "captured_at"}, {oldTopSystemInfo, "system_info"}, {oldTopProcesses, "processes"}} {
		if seen&f.bit == 0 {
			d.bad("missing required field %q", f.name)
		}
	}
	return nil
}

// key reads an object key and the colon after it. The bytes are only
// valid until the next read; callers switch on string(key), which the
// compiler does without allocating (keys are most of a body's strings).
func (d *oldDecoder) key() ([]byte, error) {
	if d.peek() != '"' {
		return nil, d.syntax("want an object key")
	}
	k, err := d.strBytes()
	if err != nil {
		return nil, err
	}
	return k, d.expect(':')
}

func (d *oldDecoder) isNull() bool {
	if d.peek() == 'n' && len(d.data)-d.pos >= 4 && string(d.data[d.pos:d.pos+4]) == "null" {
		d.pos += 4
		return true
	}
	return false
}

func (d *oldDecoder) hostname(out *Decoded) error {
	if d.peek() != '"' {
		d.bad("hostname must be a string")
		return d.skipValue(0)
	}
	h, err := d.str()
	if err != nil {
		return err
	}
	if msg := CheckHostname(h); msg != "" {
		d.bad("%s", msg)
		return nil
	}
	// Its own copy: hostnames outlive the request in maps (streams,
	// intervals) and must not keep a whole string chunk alive.
	h = strings.Clone(h)
	out.Snapshot.Hostname = h
	d.hostnameSeen = true
	if d.opts.OnHostname != nil {
		if err := d.opts.OnHostname(h); err != nil {
			return err
		}
	}
	return nil
}

// CheckHostname returns why h is not an acceptable hostname, or "" when it
// is: 1-253 bytes of UTF-8 with no control characters (C0, DEL, C1).
func (d *oldDecoder) capturedAt(out *Decoded) error {
	if d.peek() != '"' {
		d.bad("captured_at must be an RFC 3339 string")
		return d.skipValue(0)
	}
	s, err := d.str()
	if err != nil {
		return err
	}
	t, msg := ParseTime(s)
	if msg != "" {
		d.bad("captured_at: %s", msg)
		return nil
	}
	out.CapturedAt = t
	out.Snapshot.CapturedAt = t.Format(CapturedAtFormat)
	return nil
}

// ParseTime parses an RFC 3339 time with any offset and returns it in UTC

func (d *oldDecoder) systemInfo(out *Decoded) error {
	if d.peek() != '{' {
		d.bad("system_info must be a JSON object")
		return d.skipValue(0)
	}
	start := d.pos
	if err := d.skipValue(0); err != nil {
		return err
	}
	raw := d.data[start:d.pos]
	// The object is stored as sent, but in its own memory (the body buffer
	// is reused) and with invalid UTF-8 replaced, as for every string.
	if utf8.Valid(raw) {
		out.Snapshot.SystemInfo = append([]byte(nil), raw...)
	} else {
		out.Snapshot.SystemInfo = oldFixUTF8(nil, raw)
	}
	return nil
}

func (d *oldDecoder) processes(out *Decoded) error {
	if d.isNull() {
		d.bad("processes must be an array, not null")
		return nil
	}
	if d.peek() != '[' {
		d.bad("processes must be an array")
		return d.skipValue(0)
	}
	d.pos++
	// Estimate the count from the body size so the slice grows at most a
	// few times (a process is rarely under 100 bytes).
	est := (len(d.data) - d.pos) / 100
	if est > d.opts.MaxProcesses {
		est = d.opts.MaxProcesses
	}
	procs := make([]Process, 0, est+1)
	n := 0
	for {
		c := d.peek()
		if c == ']' {
			d.pos++
			break
		}
		if n > 0 {
			if err := d.expect(','); err != nil {
				return err
			}
		}
		n++
		if n > d.opts.MaxProcesses && d.tooLarge == nil {
			d.tooLarge = &DecodeError{Kind: KindTooLarge, Msg: fmt.Sprintf("more than %d processes in one snapshot", d.opts.MaxProcesses)}
		}
		if d.failed() {
			// Keep scanning for syntax (and the hostname) only.
			if err := d.skipValue(0); err != nil {
				return err
			}
			continue
		}
		procs = append(procs, Process{})
		if err := d.process(&procs[len(procs)-1], n-1); err != nil {
			return err
		}
	}
	if !d.failed() {
		// Duplicate pids: sort a copy of the pids and compare neighbours,
		// O(n log n) with one small allocation whatever the pids' size
		// (Linux pids go up to 4M; a bitmap that big per request is not).
		pids := make([]int64, len(procs))
		for i := range procs {
			pids[i] = procs[i].PID
		}
		slices.Sort(pids)
		for i := 1; i < len(pids); i++ {
			if pids[i] == pids[i-1] {
				d.bad("duplicate pid %d", pids[i])
				return nil
			}
		}
		out.Snapshot.Processes = procs
	}
	return nil
}

const (
	oldPPID = 1 << iota
	oldPPPID
	oldPName
	oldPCPU
	oldPMem
	oldPCmdline
	oldPUsername
	oldPStatus
	oldPThreads
	oldPCreate
	oldPMemPct
)

func (d *oldDecoder) process(p *Process, i int) error {
	if d.peek() != '{' {
		d.bad("processes[%d] must be an object", i)
		return d.skipValue(0)
	}
	d.pos++
	seen := 0
	first := true
	for {
		c := d.peek()
		if c == '}' {
			d.pos++
			break
		}
		if !first {
			if err := d.expect(','); err != nil {
				return err
			}
		}
		first = false
		key, err := d.key()
		if err != nil {
			return err
		}
		var bit int
		var kname string // a constant: no allocation per field
		switch string(key) {
		case "pid":
			bit, kname = oldPPID, "pid"
		case "ppid":
			bit, kname = oldPPPID, "ppid"
		case "name":
			bit, kname = oldPName, "name"
		case "cpu_percent":
			bit, kname = oldPCPU, "cpu_percent"
		case "memory_mb":
			bit, kname = oldPMem, "memory_mb"
		case "cmdline":
			bit, kname = oldPCmdline, "cmdline"
		case "username":
			bit, kname = oldPUsername, "username"
		case "status":
			bit, kname = oldPStatus, "status"
		case "num_threads":
			bit, kname = oldPThreads, "num_threads"
		case "create_time":
			bit, kname = oldPCreate, "create_time"
		case "memory_percent":
			bit, kname = oldPMemPct, "memory_percent"
		default:
			if err := d.skipValue(0); err != nil {
				return err
			}
			continue
		}
		if seen&bit != 0 {
			d.bad("processes[%d]: duplicate field %q", i, string(key))
			if err := d.skipValue(0); err != nil {
				return err
			}
			continue
		}
		seen |= bit
		switch bit {
		case oldPPID, oldPPPID:
			v, ok, err := d.uint(i, kname, math.MaxInt64)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if bit == oldPPID {
				p.PID = v
			} else {
				p.PPID = v
			}
		case oldPThreads:
			if d.isNull() {
				continue
			}
			v, ok, err := d.uint(i, kname, math.MaxInt32)
			if err != nil {
				return err
			}
			if ok {
				p.NumThreads = int32(v)
			}
		case oldPCPU, oldPMem, oldPMemPct:
			if bit == oldPMemPct && d.isNull() {
				continue
			}
			v, ok, err := d.nonNegFloat(i, kname)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			switch bit {
			case oldPCPU:
				p.CPUPercent = v
			case oldPMem:
				p.MemoryMB = v
			default:
				p.MemoryPercent = v
			}
		case oldPName, oldPCmdline, oldPUsername, oldPStatus, oldPCreate:
			if bit != oldPName && d.isNull() {
				// null for an optional field means "not sent".
				seen &^= bit
				continue
			}
			if d.peek() != '"' {
				d.bad("processes[%d].%s must be a string", i, kname)
				if err := d.skipValue(0); err != nil {
					return err
				}
				continue
			}
			s, err := d.str()
			if err != nil {
				return err
			}
			switch bit {
			case oldPName:
				p.Name = s
			case oldPCmdline:
				// Pointers into one slab rather than an allocation each;
				// when the slab grows, earlier pointers keep the old
				// array alive and are never written again.
				if len(d.cmdlines) == cap(d.cmdlines) {
					d.cmdlines = make([]string, 0, max(64, cap(d.cmdlines)*2))
				}
				d.cmdlines = append(d.cmdlines, s)
				p.Cmdline = &d.cmdlines[len(d.cmdlines)-1]
			case oldPUsername:
				p.Username = s
			case oldPStatus:
				p.Status = s
			case oldPCreate:
				t, msg := ParseTime(s)
				if msg != "" {
					d.bad("processes[%d].create_time: %s", i, msg)
					continue
				}
				p.CreateTime = t.Format(CapturedAtFormat)
			}
		}
	}
	for _, f := range [...]struct {
		bit  int
		name string
	}{{oldPPID, "pid"}, {oldPPPID, "ppid"}, {oldPName, "name"}, {oldPCPU, "cpu_percent"}, {oldPMem, "memory_mb"}} {
		if seen&f.bit == 0 {
			d.bad("processes[%d]: missing required field %q", i, f.name)
			return nil
		}
	}
	return nil
}

// number scans a JSON number and returns its bytes and whether it is an
// integer (no fraction, no exponent).
func (d *oldDecoder) number() ([]byte, bool, error) {
	start := d.pos
	data := d.data
	i := d.pos
	if i < len(data) && data[i] == '-' {
		i++
	}
	if i >= len(data) {
		d.pos = i
		return nil, false, d.syntax("unexpected end of input in a number")
	}
	switch {
	case data[i] == '0':
		i++
	case data[i] >= '1' && data[i] <= '9':
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	default:
		d.pos = i
		return nil, false, d.syntax("invalid number")
	}
	integer := true
	if i < len(data) && data[i] == '.' {
		integer = false
		i++
		j := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		if i == j {
			d.pos = i
			return nil, false, d.syntax("invalid number: digits must follow '.'")
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		integer = false
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		if i == j {
			d.pos = i
			return nil, false, d.syntax("invalid number: digits must follow the exponent")
		}
	}
	d.pos = i
	return data[start:i], integer, nil
}

// uint reads a non-negative JSON integer no larger than limit. ok is false
// when a content error was recorded.
func (d *oldDecoder) uint(i int, key string, limit int64) (v int64, ok bool, err error) {
	c := d.peek()
	if c != '-' && (c < '0' || c > '9') {
		d.bad("processes[%d].%s must be a non-negative integer", i, key)
		return 0, false, d.skipValue(0)
	}
	num, integer, err := d.number()
	if err != nil {
		return 0, false, err
	}
	if !integer {
		d.bad("processes[%d].%s must be an integer, got %s", i, key, truncateForMsg(string(num)))
		return 0, false, nil
	}
	if num[0] == '-' {
		if string(num) == "-0" {
			return 0, true, nil
		}
		d.bad("processes[%d].%s must not be negative", i, key)
		return 0, false, nil
	}
	if len(num) > 19 {
		d.bad("processes[%d].%s is too large", i, key)
		return 0, false, nil
	}
	var n uint64
	for _, b := range num {
		n = n*10 + uint64(b-'0')
	}
	if n > uint64(limit) {
		d.bad("processes[%d].%s is too large", i, key)
		return 0, false, nil
	}
	return int64(n), true, nil
}

// nonNegFloat reads a non-negative finite JSON number.
func (d *oldDecoder) nonNegFloat(i int, key string) (float64, bool, error) {
	c := d.peek()
	if c != '-' && (c < '0' || c > '9') {
		d.bad("processes[%d].%s must be a number", i, key)
		return 0, false, d.skipValue(0)
	}
	num, integer, err := d.number()
	if err != nil {
		return 0, false, err
	}
	var v float64
	if f, ok := oldFastDecimal(num, integer); ok {
		v = f
	} else {
		v, err = strconv.ParseFloat(string(num), 64)
		if err != nil || math.IsInf(v, 0) {
			d.bad("processes[%d].%s is out of range", i, key)
			return 0, false, nil
		}
	}
	if v < 0 {
		d.bad("processes[%d].%s must not be negative", i, key)
		return 0, false, nil
	}
	if v == 0 {
		v = 0 // turn -0 into 0
	}
	return v, true, nil
}

// oldPow10 holds the powers of ten a float64 represents exactly.
var oldPow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// oldFastDecimal converts a plain non-negative decimal (no exponent) of at
// most 15 digits without strconv: the digits form an integer below 2^53
// and 10^k is exact, so one IEEE division is correctly rounded and gives
// exactly strconv.ParseFloat's result (Clinger's fast path, which strconv
// itself takes first). cpu_percent and memory_mb are such numbers in
// nearly every body; TestFastDecimal checks it against strconv.
func oldFastDecimal(num []byte, integer bool) (float64, bool) {
	if len(num) == 0 || num[0] == '-' || len(num) > 16 {
		return 0, false
	}
	var m uint64
	digits, frac := 0, -1
	for _, c := range num {
		switch {
		case c >= '0' && c <= '9':
			m = m*10 + uint64(c-'0')
			digits++
			if frac >= 0 {
				frac++
			}
		case c == '.' && !integer && frac < 0:
			frac = 0
		default:
			return 0, false // exponent or anything unexpected
		}
	}
	if digits > 15 {
		return 0, false
	}
	if frac <= 0 {
		return float64(m), true
	}
	return float64(m) / oldPow10[frac], true
}

// str reads a JSON string (the current byte is '"'). Invalid UTF-8 and
// lone surrogate escapes become U+FFFD, as encoding/json does.
func (d *oldDecoder) str() (string, error) {
	b, err := d.strBytes()
	if err != nil {
		return "", err
	}
	return d.makeString(b), nil
}

// makeString copies b into the oldDecoder's current chunk and returns a
// string over it: one allocation per 16 KiB of text instead of one per
// string (a 300-process body has ~1,000 strings; allocation was a fifth of
// decoding). A chunk is never written again below its length and never
// grown in place, so the strings handed out stay immutable, which is what
// unsafe.String requires.
func (d *oldDecoder) makeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > 1024 {
		return string(b)
	}
	if cap(d.chunk)-len(d.chunk) < len(b) {
		d.chunk = make([]byte, 0, 16<<10)
	}
	start := len(d.chunk)
	d.chunk = append(d.chunk, b...)
	return unsafe.String(&d.chunk[start], len(b))
}

// strBytes reads a JSON string and returns its bytes, which alias the
// input or the scratch buffer: valid until the next read.
func (d *oldDecoder) strBytes() ([]byte, error) {
	d.pos++ // opening quote
	data := d.data
	start := d.pos
	i := start
	// Fast path: plain ASCII without escapes, eight bytes at a time while
	// they are all plain (command lines are long), then one table lookup a
	// byte.
	for i+8 <= len(data) && oldPlain8(binary.LittleEndian.Uint64(data[i:])) {
		i += 8
	}
	for i < len(data) && oldPlainASCII[data[i]] {
		i++
	}
	if i < len(data) && data[i] == '"' {
		d.pos = i + 1
		return data[start:i], nil
	}
	buf := append(d.scratch[:0], data[start:i]...)
	for {
		if i >= len(data) {
			d.pos = i
			return nil, d.syntax("unexpected end of input in a string")
		}
		c := data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			d.scratch = buf
			return buf, nil
		case c < 0x20:
			d.pos = i
			return nil, d.syntax("control character 0x%02x in a string must be escaped", c)
		case c == '\\':
			i++
			if i >= len(data) {
				d.pos = i
				return nil, d.syntax("unexpected end of input in a string")
			}
			switch e := data[i]; e {
			case '"', '\\', '/':
				buf = append(buf, e)
				i++
			case 'b':
				buf = append(buf, '\b')
				i++
			case 'f':
				buf = append(buf, '\f')
				i++
			case 'n':
				buf = append(buf, '\n')
				i++
			case 'r':
				buf = append(buf, '\r')
				i++
			case 't':
				buf = append(buf, '\t')
				i++
			case 'u':
				r, n := oldHex4(data[i+1:])
				if n < 0 {
					d.pos = i
					return nil, d.syntax("invalid \\u escape")
				}
				i += 5
				if r >= 0xd800 && r < 0xdc00 {
					// A high surrogate wants a low one right after.
					if i+1 < len(data) && data[i] == '\\' && data[i+1] == 'u' {
						r2, n2 := oldHex4(data[i+2:])
						if n2 >= 0 && r2 >= 0xdc00 && r2 < 0xe000 {
							r = 0x10000 + (r-0xd800)<<10 + (r2 - 0xdc00)
							i += 6
						} else {
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				} else if r >= 0xdc00 && r < 0xe000 {
					r = utf8.RuneError
				}
				buf = utf8.AppendRune(buf, r)
			default:
				d.pos = i
				return nil, d.syntax("invalid escape \\%c", e)
			}
		case c < 0x80:
			buf = append(buf, c)
			i++
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				buf = append(buf, "\uFFFD"...)
			} else {
				buf = append(buf, data[i:i+size]...)
			}
			i += size
		}
	}
}

// oldPlain8 reports whether all eight bytes of w are oldPlainASCII: none has
// the high bit set, none is below 0x20, and none is '"' or '\\'. The
// usual SWAR tests: (x - 0x01..) & ^x & 0x80.. flags the zero bytes of x,
// exactly when no byte is >= 0x80 (checked first), so no borrow crosses
// a byte.
func oldPlain8(w uint64) bool {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	if w&high != 0 {
		return false
	}
	hasZero := func(x uint64) bool { return (x-ones)&^x&high != 0 }
	// Below 0x20: adding 0x60 to each byte (all < 0x80, so no carry out
	// of a byte) sets the high bit exactly for bytes >= 0x20.
	if (w+0x6060606060606060)&high != high {
		return false
	}
	return !hasZero(w^(ones*'"')) && !hasZero(w^(ones*'\\'))
}

// oldPlainASCII marks the bytes a string's fast path copies as they are.
var oldPlainASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func oldHex4(b []byte) (rune, int) {
	if len(b) < 4 {
		return 0, -1
	}
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, -1
		}
	}
	return r, 4
}

// oldMaxDepth bounds nesting inside skipped values so a body of 64 MiB of '['
// cannot exhaust the stack.
const oldMaxDepth = 512

// skipValue checks the syntax of one JSON value and moves past it.
func (d *oldDecoder) skipValue(depth int) error {
	if depth > oldMaxDepth {
		return d.syntax("nesting deeper than %d levels", oldMaxDepth)
	}
	switch c := d.peek(); c {
	case '{':
		d.pos++
		if d.peek() == '}' {
			d.pos++
			return nil
		}
		for {
			if _, err := d.key(); err != nil {
				return err
			}
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
			switch d.peek() {
			case ',':
				d.pos++
			case '}':
				d.pos++
				return nil
			default:
				return d.syntax("want ',' or '}'")
			}
		}
	case '[':
		d.pos++
		if d.peek() == ']' {
			d.pos++
			return nil
		}
		for {
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
			switch d.peek() {
			case ',':
				d.pos++
			case ']':
				d.pos++
				return nil
			default:
				return d.syntax("want ',' or ']'")
			}
		}
	case '"':
		return d.skipString()
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	case 0:
		if d.pos >= len(d.data) {
			return d.syntax("unexpected end of input")
		}
		return d.syntax("unexpected byte")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			_, _, err := d.number()
			return err
		}
		return d.syntax("unexpected character %q", c)
	}
}

func (d *oldDecoder) literal(lit string) error {
	if len(d.data)-d.pos >= len(lit) && string(d.data[d.pos:d.pos+len(lit)]) == lit {
		d.pos += len(lit)
		return nil
	}
	return d.syntax("invalid literal")
}

// skipString validates a string without building it.
func (d *oldDecoder) skipString() error {
	d.pos++
	data := d.data
	i := d.pos
	for i < len(data) {
		c := data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return nil
		case c == '\\':
			if i+1 >= len(data) {
				d.pos = i
				return d.syntax("unexpected end of input in a string")
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, n := oldHex4(data[i+2:]); n < 0 {
					d.pos = i
					return d.syntax("invalid \\u escape")
				}
				i += 6
			default:
				d.pos = i
				return d.syntax("invalid escape")
			}
		case c < 0x20:
			d.pos = i
			return d.syntax("control character 0x%02x in a string must be escaped", c)
		default:
			i++
		}
	}
	d.pos = i
	return d.syntax("unexpected end of input in a string")
}

// oldFixUTF8 appends b to dst with each invalid UTF-8 byte replaced by U+FFFD.
func oldFixUTF8(dst, b []byte) []byte {
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, b[:size]...)
		}
		b = b[size:]
	}
	return dst
}
