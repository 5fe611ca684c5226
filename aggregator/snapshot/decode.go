package snapshot

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// This file is the aggregator's ingest decoder. It is a hand-written,
// single-pass scanner over the whole (already decompressed) body instead of
// encoding/json for three reasons:
//
//   - Speed: ingest is the aggregator's hot path (thousands of 300-process
//     snapshots a second). encoding/json with reflection plus the presence
//     checks the contract needs (a second pass, or pointer fields) is several
//     times slower; see BenchmarkDecode* in decode_timing_test.go.
//   - Strictness: API.md wants `1.0` and `"1"` rejected as pids, missing
//     required fields reported by name, duplicate pids and duplicate keys
//     caught, and invalid UTF-8 replaced (not rejected). All of that falls
//     out of one scan for free.
//   - Ordering of answers: the HTTP layer must answer 403 (wrong key for the
//     host) before 413 and 400, yet the hostname is inside the body. The
//     scanner reports the hostname through a callback the moment it is read
//     and keeps scanning after content errors, so the key is checked whenever
//     the hostname can be found at all.

// ErrorKind classifies a decoding failure so the HTTP layer can choose the
// status code.
type ErrorKind int

const (
	// KindInvalid is malformed JSON or content that breaks a rule (400).
	KindInvalid ErrorKind = iota
	// KindTooLarge is a body over a configured limit, e.g. too many
	// processes (413).
	KindTooLarge
)

// DecodeError is a client error found while decoding an ingest body. Its
// message is safe to show to the client: it never echoes raw body bytes.
type DecodeError struct {
	Kind ErrorKind
	Msg  string
}

func (e *DecodeError) Error() string { return e.Msg }

// DecodeOptions tunes Decode.
type DecodeOptions struct {
	// MaxProcesses is the largest number of processes accepted (413 above
	// it); 0 means DefaultMaxProcesses.
	MaxProcesses int
	// OnHostname, when set, is called once with the hostname as soon as a
	// valid one is read. A non-nil error stops decoding and is returned
	// as-is: the HTTP layer checks the host's key here.
	OnHostname func(hostname string) error
}

// DefaultMaxProcesses is API.md's default process limit per snapshot.
const DefaultMaxProcesses = 100000

// MaxHostnameBytes is the longest hostname accepted, in bytes of UTF-8.
const MaxHostnameBytes = 253

// Decoded is a validated ingest body.
type Decoded struct {
	// Snapshot holds the body's values. Its CapturedAt is normalised to UTC
	// with milliseconds (CapturedAtFormat); SystemInfo is the object as sent
	// (with invalid UTF-8 replaced), in its own memory.
	Snapshot Snapshot
	// CapturedAt is Snapshot.CapturedAt parsed and truncated to milliseconds.
	CapturedAt time.Time
	// HostnameSeen reports that a valid hostname was read (and OnHostname
	// called), even when Decode failed later.
	HostnameSeen bool
}

// CapturedAtFormat is how times are returned: RFC 3339 in UTC with
// milliseconds.
const CapturedAtFormat = "2006-01-02T15:04:05.000Z07:00"

// Decode parses and validates one ingest body per API.md. It never panics on
// any input (FuzzDecode checks that). On failure the error is a
// *DecodeError, or the error OnHostname returned.
//
// Content errors (a bad field) do not stop the scan at once: the first one is
// kept and the scan goes on checking syntax only, so that the hostname is
// found even when it comes after the fault, and a size error (413) found
// later still wins over a content error (400), as the contract orders them.
func Decode(data []byte, opts DecodeOptions) (*Decoded, error) {
	if opts.MaxProcesses <= 0 {
		opts.MaxProcesses = DefaultMaxProcesses
	}
	d := decoder{data: data, opts: opts}
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

type decoder struct {
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

func (d *decoder) syntax(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &DecodeError{Kind: KindInvalid, Msg: fmt.Sprintf("invalid JSON at byte %d: %s", d.pos, msg)}
}

// bad records a content error (400) and lets the scan continue.
func (d *decoder) bad(format string, args ...any) {
	if d.invalid == nil {
		d.invalid = &DecodeError{Kind: KindInvalid, Msg: fmt.Sprintf(format, args...)}
	}
}

func (d *decoder) failed() bool { return d.invalid != nil || d.tooLarge != nil }

func (d *decoder) skipSpace() {
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
func (d *decoder) peek() byte {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return 0
	}
	return d.data[d.pos]
}

func (d *decoder) expect(c byte) error {
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
	topHostname = 1 << iota
	topCapturedAt
	topSystemInfo
	topProcesses
)

func (d *decoder) document(out *Decoded) error {
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
			bit = topHostname
		case "captured_at":
			bit = topCapturedAt
		case "system_info":
			bit = topSystemInfo
		case "processes":
			bit = topProcesses
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
		case topHostname:
			err = d.hostname(out)
		case topCapturedAt:
			err = d.capturedAt(out)
		case topSystemInfo:
			err = d.systemInfo(out)
		case topProcesses:
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
	}{{topHostname, "hostname"}, {topCapturedAt, "captured_at"}, {topSystemInfo, "system_info"}, {topProcesses, "processes"}} {
		if seen&f.bit == 0 {
			d.bad("missing required field %q", f.name)
		}
	}
	return nil
}

// key reads an object key and the colon after it. The bytes are only
// valid until the next read; callers switch on string(key), which the
// compiler does without allocating (keys are most of a body's strings).
func (d *decoder) key() ([]byte, error) {
	if d.peek() != '"' {
		return nil, d.syntax("want an object key")
	}
	k, err := d.strBytes()
	if err != nil {
		return nil, err
	}
	return k, d.expect(':')
}

func (d *decoder) isNull() bool {
	if d.peek() == 'n' && len(d.data)-d.pos >= 4 && string(d.data[d.pos:d.pos+4]) == "null" {
		d.pos += 4
		return true
	}
	return false
}

func (d *decoder) hostname(out *Decoded) error {
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
func CheckHostname(h string) string {
	if h == "" {
		return "hostname must not be empty"
	}
	if len(h) > MaxHostnameBytes {
		return fmt.Sprintf("hostname is %d bytes long, the limit is %d", len(h), MaxHostnameBytes)
	}
	if !utf8.ValidString(h) {
		return "hostname must be valid UTF-8"
	}
	for _, r := range h {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return fmt.Sprintf("hostname contains the control character U+%04X", r)
		}
	}
	return ""
}

func (d *decoder) capturedAt(out *Decoded) error {
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
// truncated to milliseconds, or a message saying what is wrong.
func ParseTime(s string) (time.Time, string) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Sprintf("%q is not an RFC 3339 time", truncateForMsg(s))
	}
	// Years outside 0000-9999 cannot be written back as RFC 3339.
	t = t.UTC().Truncate(time.Millisecond)
	if t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, fmt.Sprintf("%q is out of range", truncateForMsg(s))
	}
	return t, ""
}

// truncateForMsg keeps client text in error messages short.
func truncateForMsg(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func (d *decoder) systemInfo(out *Decoded) error {
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
		out.Snapshot.SystemInfo = fixUTF8(nil, raw)
	}
	return nil
}

func (d *decoder) processes(out *Decoded) error {
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
	pPID = 1 << iota
	pPPID
	pName
	pCPU
	pMem
	pCmdline
	pUsername
	pStatus
	pThreads
	pCreate
	pMemPct
)

func (d *decoder) process(p *Process, i int) error {
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
			bit, kname = pPID, "pid"
		case "ppid":
			bit, kname = pPPID, "ppid"
		case "name":
			bit, kname = pName, "name"
		case "cpu_percent":
			bit, kname = pCPU, "cpu_percent"
		case "memory_mb":
			bit, kname = pMem, "memory_mb"
		case "cmdline":
			bit, kname = pCmdline, "cmdline"
		case "username":
			bit, kname = pUsername, "username"
		case "status":
			bit, kname = pStatus, "status"
		case "num_threads":
			bit, kname = pThreads, "num_threads"
		case "create_time":
			bit, kname = pCreate, "create_time"
		case "memory_percent":
			bit, kname = pMemPct, "memory_percent"
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
		case pPID, pPPID:
			v, ok, err := d.uint(i, kname, math.MaxInt64)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if bit == pPID {
				p.PID = v
			} else {
				p.PPID = v
			}
		case pThreads:
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
		case pCPU, pMem, pMemPct:
			if bit == pMemPct && d.isNull() {
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
			case pCPU:
				p.CPUPercent = v
			case pMem:
				p.MemoryMB = v
			default:
				p.MemoryPercent = v
			}
		case pName, pCmdline, pUsername, pStatus, pCreate:
			if bit != pName && d.isNull() {
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
			case pName:
				p.Name = s
			case pCmdline:
				// Pointers into one slab rather than an allocation each;
				// when the slab grows, earlier pointers keep the old
				// array alive and are never written again.
				if len(d.cmdlines) == cap(d.cmdlines) {
					d.cmdlines = make([]string, 0, max(64, cap(d.cmdlines)*2))
				}
				d.cmdlines = append(d.cmdlines, s)
				p.Cmdline = &d.cmdlines[len(d.cmdlines)-1]
			case pUsername:
				p.Username = s
			case pStatus:
				p.Status = s
			case pCreate:
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
	}{{pPID, "pid"}, {pPPID, "ppid"}, {pName, "name"}, {pCPU, "cpu_percent"}, {pMem, "memory_mb"}} {
		if seen&f.bit == 0 {
			d.bad("processes[%d]: missing required field %q", i, f.name)
			return nil
		}
	}
	return nil
}

// number scans a JSON number and returns its bytes and whether it is an
// integer (no fraction, no exponent).
func (d *decoder) number() ([]byte, bool, error) {
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
func (d *decoder) uint(i int, key string, limit int64) (v int64, ok bool, err error) {
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
func (d *decoder) nonNegFloat(i int, key string) (float64, bool, error) {
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
	if f, ok := fastDecimal(num, integer); ok {
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

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// fastDecimal converts a plain non-negative decimal (no exponent) of at
// most 15 digits without strconv: the digits form an integer below 2^53
// and 10^k is exact, so one IEEE division is correctly rounded and gives
// exactly strconv.ParseFloat's result (Clinger's fast path, which strconv
// itself takes first). cpu_percent and memory_mb are such numbers in
// nearly every body; TestFastDecimal checks it against strconv.
func fastDecimal(num []byte, integer bool) (float64, bool) {
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
	return float64(m) / pow10[frac], true
}

// str reads a JSON string (the current byte is '"'). Invalid UTF-8 and
// lone surrogate escapes become U+FFFD, as encoding/json does.
func (d *decoder) str() (string, error) {
	b, err := d.strBytes()
	if err != nil {
		return "", err
	}
	return d.makeString(b), nil
}

// makeString copies b into the decoder's current chunk and returns a
// string over it: one allocation per 16 KiB of text instead of one per
// string (a 300-process body has ~1,000 strings; allocation was a fifth of
// decoding). A chunk is never written again below its length and never
// grown in place, so the strings handed out stay immutable, which is what
// unsafe.String requires.
func (d *decoder) makeString(b []byte) string {
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
func (d *decoder) strBytes() ([]byte, error) {
	d.pos++ // opening quote
	data := d.data
	start := d.pos
	i := start
	// Fast path: plain ASCII without escapes, eight bytes at a time while
	// they are all plain (command lines are long), then one table lookup a
	// byte.
	for i+8 <= len(data) && plain8(binary.LittleEndian.Uint64(data[i:])) {
		i += 8
	}
	for i < len(data) && plainASCII[data[i]] {
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
				r, n := hex4(data[i+1:])
				if n < 0 {
					d.pos = i
					return nil, d.syntax("invalid \\u escape")
				}
				i += 5
				if r >= 0xd800 && r < 0xdc00 {
					// A high surrogate wants a low one right after.
					if i+1 < len(data) && data[i] == '\\' && data[i+1] == 'u' {
						r2, n2 := hex4(data[i+2:])
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

// plain8 reports whether all eight bytes of w are plainASCII: none has
// the high bit set, none is below 0x20, and none is '"' or '\\'. The
// usual SWAR tests: (x - 0x01..) & ^x & 0x80.. flags the zero bytes of x,
// exactly when no byte is >= 0x80 (checked first), so no borrow crosses
// a byte.
func plain8(w uint64) bool {
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

// plainASCII marks the bytes a string's fast path copies as they are.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func hex4(b []byte) (rune, int) {
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

// maxDepth bounds nesting inside skipped values so a body of 64 MiB of '['
// cannot exhaust the stack.
const maxDepth = 512

// skipValue checks the syntax of one JSON value and moves past it.
func (d *decoder) skipValue(depth int) error {
	if depth > maxDepth {
		return d.syntax("nesting deeper than %d levels", maxDepth)
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

func (d *decoder) literal(lit string) error {
	if len(d.data)-d.pos >= len(lit) && string(d.data[d.pos:d.pos+len(lit)]) == lit {
		d.pos += len(lit)
		return nil
	}
	return d.syntax("invalid literal")
}

// skipString validates a string without building it.
func (d *decoder) skipString() error {
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
				if _, n := hex4(data[i+2:]); n < 0 {
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

// fixUTF8 appends b to dst with each invalid UTF-8 byte replaced by U+FFFD.
func fixUTF8(dst, b []byte) []byte {
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
