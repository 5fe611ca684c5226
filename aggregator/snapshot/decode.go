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
//   - Strictness: docs/api.md wants `1.0` and `"1"` rejected as pids, missing
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
	// Processes, when its capacity is enough for the body, is used for
	// Snapshot.Processes instead of a new slice, so that a caller decoding
	// many bodies can reuse one. Every element up to its capacity must be
	// the zero Process (clear it before passing it again).
	Processes []Process
}

// DefaultMaxProcesses is docs/api.md's default process limit per snapshot.
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

// Decode parses and validates one ingest body per docs/api.md. It never panics on
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

// peek returns the next non-space byte, or 0 at the end. The test for a
// byte above ' ' comes first and inlines: bodies from exporters have no
// spaces, and the call to skipSpace was a sixth of decoding.
func (d *decoder) peek() byte {
	if d.pos < len(d.data) {
		if c := d.data[d.pos]; c > ' ' {
			return c
		}
	}
	return d.peekSpace()
}

func (d *decoder) peekSpace() byte {
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
	procs := d.opts.Processes[:0]
	if cap(procs) < est+1 {
		procs = make([]Process, 0, est+1)
	}
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
		// Within capacity the next element is still zero (from make, or
		// cleared by the caller of a reused slice):
		// extend the slice instead of appending a zero Process, which
		// clears 120 bytes again (under write barriers while the GC runs).
		if len(procs) < cap(procs) {
			procs = procs[:len(procs)+1]
		} else {
			procs = append(procs, Process{})
		}
		if err := d.process(&procs[len(procs)-1], n-1); err != nil {
			return err
		}
	}
	if !d.failed() && !pidsAscending(procs) {
		// Duplicate pids: sort a copy of the pids and compare neighbours,
		// O(n log n) with one small allocation whatever the pids' size
		// (Linux pids go up to 4M; a bitmap that big per request is not).
		// Sorting finds the smallest duplicate, which the message names.
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
	}
	if !d.failed() {
		out.Snapshot.Processes = procs
	}
	return nil
}

// pidsAscending reports whether the pids strictly increase, which rules
// out duplicates without the sort. Exporters list processes in /proc's
// order, ascending pids, so this is the common case.
func pidsAscending(procs []Process) bool {
	for i := 1; i < len(procs); i++ {
		if procs[i].PID <= procs[i-1].PID {
			return false
		}
	}
	return true
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

// process reads one process object. Most of an ingest body's bytes are
// process objects written by encoding/json in the exporter: fields in a
// fixed order, no spaces, keys spelt plainly, integers and short
// decimals. Such an object is read by fastProcess in one pass; any other
// goes field by field below, where fieldKey, fastUint and fastFloat still
// take the plain cases. Every fast path falls back to the general code on
// anything unusual, so every input gets exactly the values and errors the
// general code gives (TestDecodeSameAsOld and FuzzDecodeSameAsOld check
// that against the decoder as it was before the fast paths).
func (d *decoder) process(p *Process, i int) error {
	if d.peek() != '{' {
		d.bad("processes[%d] must be an object", i)
		return d.skipValue(0)
	}
	if d.fastProcess(p) {
		return nil
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
			if c != ',' {
				return d.expect(',')
			}
			d.pos++
		}
		first = false
		bit, kname := d.fieldKey()
		if bit == 0 {
			key, err := d.key()
			if err != nil {
				return err
			}
			bit, kname = processField(key)
			if bit == 0 {
				if err := d.skipValue(0); err != nil {
					return err
				}
				continue
			}
		}
		if seen&bit != 0 {
			d.bad("processes[%d]: duplicate field %q", i, kname)
			if err := d.skipValue(0); err != nil {
				return err
			}
			continue
		}
		seen |= bit
		switch bit {
		case pPID, pPPID:
			v, ok := d.fastUint(math.MaxInt64)
			if !ok {
				var err error
				if v, ok, err = d.uint(i, kname, math.MaxInt64); err != nil {
					return err
				}
				if !ok {
					continue
				}
			}
			if bit == pPID {
				p.PID = v
			} else {
				p.PPID = v
			}
		case pThreads:
			v, ok := d.fastUint(math.MaxInt32)
			if !ok {
				if d.isNull() {
					continue
				}
				var err error
				if v, ok, err = d.uint(i, kname, math.MaxInt32); err != nil {
					return err
				}
				if !ok {
					continue
				}
			}
			p.NumThreads = int32(v)
		case pCPU, pMem, pMemPct:
			v, ok := d.fastFloat()
			if !ok {
				if bit == pMemPct && d.isNull() {
					continue
				}
				var err error
				if v, ok, err = d.nonNegFloat(i, kname); err != nil {
					return err
				}
				if !ok {
					continue
				}
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
			if d.pos >= len(d.data) || d.data[d.pos] != '"' {
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
			}
			if bit == pStatus {
				if st, n := statusLiteral(d.data[d.pos:]); n > 0 {
					p.Status = st
					d.pos += n
					continue
				}
			}
			b, err := d.strBytes()
			if err != nil {
				return err
			}
			switch bit {
			case pName:
				p.Name = d.makeString(b)
			case pCmdline:
				// Pointers into one slab rather than an allocation each;
				// when the slab grows, earlier pointers keep the old
				// array alive and are never written again.
				if len(d.cmdlines) == cap(d.cmdlines) {
					d.cmdlines = make([]string, 0, max(64, cap(d.cmdlines)*2))
				}
				d.cmdlines = append(d.cmdlines, d.makeString(b))
				p.Cmdline = &d.cmdlines[len(d.cmdlines)-1]
			case pUsername:
				p.Username = d.makeString(b)
			case pStatus:
				p.Status = status(b)
				if p.Status == "" {
					p.Status = d.makeString(b)
				}
			case pCreate:
				var buf [canonicalTimeLen]byte
				if canonicalTime(b, &buf) {
					p.CreateTime = d.makeString(buf[:])
					continue
				}
				t, msg := ParseTime(d.makeString(b))
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

// fastProcess reads a process object laid out exactly as exporters write
// it (encoding/json of Process: the fields in declaration order, optional
// ones in that order or absent, no spaces) in one straight pass, with no
// key lookup and no duplicate or presence bookkeeping, since that layout
// rules out both. On anything else (another order, an unknown field, a
// space, null, a value the general path would reject or word an error
// for) it clears p, moves back to the object's start and returns false,
// and process() reads the object the general way; strings (and a cmdline
// slot) it took stay unused in their chunk, which is harmless.
func (d *decoder) fastProcess(p *Process) bool {
	start := d.pos
	if d.fastFields(p) {
		return true
	}
	*p = Process{}
	d.pos = start
	return false
}

func (d *decoder) fastFields(p *Process) bool {
	data := d.data
	i := d.pos
	var ok bool
	// Constant comparisons of up to 16 bytes compile to a few wide loads.
	if len(data)-i < 7 || string(data[i:i+7]) != `{"pid":` {
		return false
	}
	if p.PID, i, ok = uintAt(data, i+7, math.MaxInt64); !ok {
		return false
	}
	if len(data)-i < 8 || string(data[i:i+8]) != `,"ppid":` {
		return false
	}
	if p.PPID, i, ok = uintAt(data, i+8, math.MaxInt64); !ok {
		return false
	}
	if len(data)-i < 8 || string(data[i:i+8]) != `,"name":` {
		return false
	}
	d.pos = i + 8
	b, ok := d.fastStr()
	if !ok {
		return false
	}
	p.Name = d.makeString(b)
	i = d.pos
	if len(data)-i < 15 || string(data[i:i+15]) != `,"cpu_percent":` {
		return false
	}
	if p.CPUPercent, i, ok = floatAt(data, i+15); !ok {
		return false
	}
	if len(data)-i < 13 || string(data[i:i+13]) != `,"memory_mb":` {
		return false
	}
	if p.MemoryMB, i, ok = floatAt(data, i+13); !ok {
		return false
	}
	if len(data)-i >= 11 && string(data[i:i+11]) == `,"cmdline":` {
		d.pos = i + 11
		if b, ok = d.fastStr(); !ok {
			return false
		}
		if len(d.cmdlines) == cap(d.cmdlines) {
			d.cmdlines = make([]string, 0, max(64, cap(d.cmdlines)*2))
		}
		d.cmdlines = append(d.cmdlines, d.makeString(b))
		p.Cmdline = &d.cmdlines[len(d.cmdlines)-1]
		i = d.pos
	}
	if len(data)-i >= 12 && string(data[i:i+12]) == `,"username":` {
		d.pos = i + 12
		if b, ok = d.fastStr(); !ok {
			return false
		}
		p.Username = d.makeString(b)
		i = d.pos
	}
	if len(data)-i >= 10 && string(data[i:i+10]) == `,"status":` {
		i += 10
		if st, n := statusLiteral(data[i:]); n > 0 {
			p.Status = st
			i += n
		} else {
			d.pos = i
			if b, ok = d.fastStr(); !ok {
				return false
			}
			if p.Status = status(b); p.Status == "" {
				p.Status = d.makeString(b)
			}
			i = d.pos
		}
	}
	if len(data)-i >= 15 && string(data[i:i+15]) == `,"num_threads":` {
		var v int64
		if v, i, ok = uintAt(data, i+15, math.MaxInt32); !ok {
			return false
		}
		p.NumThreads = int32(v)
	}
	if len(data)-i >= 15 && string(data[i:i+15]) == `,"create_time":` {
		d.pos = i + 15
		if b, ok = d.fastStr(); !ok {
			return false
		}
		var buf [canonicalTimeLen]byte
		if !canonicalTime(b, &buf) {
			return false
		}
		p.CreateTime = d.makeString(buf[:])
		i = d.pos
	}
	if len(data)-i >= 18 && string(data[i:i+16]) == `,"memory_percent` && data[i+16] == '"' && data[i+17] == ':' {
		v, j, ok := floatAt(data, i+18)
		if ok {
			p.MemoryPercent, i = v, j
		} else {
			// A full-precision float (17 digits, what exporters send
			// here) is beyond floatAt: strconv reads it as nonNegFloat
			// would, minus the error reporting (no sign, so never
			// negative; anything wrong goes to the general path).
			d.pos = i + 18
			if d.pos >= len(data) || data[d.pos] < '0' || data[d.pos] > '9' {
				return false
			}
			num, _, err := d.number()
			if err != nil {
				return false
			}
			v, err := strconv.ParseFloat(string(num), 64)
			if err != nil || math.IsInf(v, 0) {
				return false
			}
			p.MemoryPercent = v
			i = d.pos
		}
	}
	if i >= len(data) || data[i] != '}' {
		return false
	}
	d.pos = i + 1
	return true
}

// fastStr reads the string at the current byte for fastFields; false if
// there is none or it is malformed (the general path words the error).
func (d *decoder) fastStr() ([]byte, bool) {
	if d.pos >= len(d.data) || d.data[d.pos] != '"' {
		return nil, false
	}
	b, err := d.strBytes()
	return b, err == nil
}

// processField maps a process key to its bit and a constant name (no
// allocation per field); 0 for a key the contract does not know.
func processField(key []byte) (int, string) {
	switch string(key) {
	case "pid":
		return pPID, "pid"
	case "ppid":
		return pPPID, "ppid"
	case "name":
		return pName, "name"
	case "cpu_percent":
		return pCPU, "cpu_percent"
	case "memory_mb":
		return pMem, "memory_mb"
	case "cmdline":
		return pCmdline, "cmdline"
	case "username":
		return pUsername, "username"
	case "status":
		return pStatus, "status"
	case "num_threads":
		return pThreads, "num_threads"
	case "create_time":
		return pCreate, "create_time"
	case "memory_percent":
		return pMemPct, "memory_percent"
	}
	return 0, ""
}

// fieldKey is key+processField for the common case, a known key spelt
// plainly with the colon right after it (`"pid":`): it compares the bytes
// against constants, which the compiler turns into a few wide loads, and
// moves past them. It returns 0 and moves nothing for anything else
// (spaces, escapes, unknown keys, the end of input); the general key()
// then reads the key.
func (d *decoder) fieldKey() (int, string) {
	rest := d.data[d.pos:]
	if len(rest) < 6 || rest[0] != '"' {
		return 0, ""
	}
	bit, name := 0, ""
	switch rest[1] {
	case 'p':
		if string(rest[:6]) == `"pid":` {
			bit, name = pPID, "pid"
		} else if len(rest) >= 7 && string(rest[:7]) == `"ppid":` {
			bit, name = pPPID, "ppid"
		}
	case 'n':
		if len(rest) >= 7 && string(rest[:7]) == `"name":` {
			bit, name = pName, "name"
		} else if len(rest) >= 14 && string(rest[:14]) == `"num_threads":` {
			bit, name = pThreads, "num_threads"
		}
	case 'c':
		if len(rest) >= 14 && string(rest[:14]) == `"cpu_percent":` {
			bit, name = pCPU, "cpu_percent"
		} else if len(rest) >= 10 && string(rest[:10]) == `"cmdline":` {
			bit, name = pCmdline, "cmdline"
		} else if len(rest) >= 14 && string(rest[:14]) == `"create_time":` {
			bit, name = pCreate, "create_time"
		}
	case 'm':
		if len(rest) >= 12 && string(rest[:12]) == `"memory_mb":` {
			bit, name = pMem, "memory_mb"
		} else if len(rest) >= 17 && string(rest[:16]) == `"memory_percent"` && rest[16] == ':' {
			bit, name = pMemPct, "memory_percent"
		}
	case 'u':
		if len(rest) >= 11 && string(rest[:11]) == `"username":` {
			bit, name = pUsername, "username"
		}
	case 's':
		if len(rest) >= 9 && string(rest[:9]) == `"status":` {
			bit, name = pStatus, "status"
		}
	}
	if bit != 0 {
		d.pos += len(name) + 3
	}
	return bit, name
}

// statusLiteral matches the commonest statuses, quotes included, at the
// start of b and returns the constant and the bytes matched: no scan, no
// copy. 0 for anything else.
func statusLiteral(b []byte) (string, int) {
	if len(b) >= 10 && string(b[:10]) == `"sleeping"` {
		return "sleeping", 10
	}
	if len(b) >= 9 && string(b[:9]) == `"running"` {
		return "running", 9
	}
	if len(b) >= 6 && string(b[:6]) == `"idle"` {
		return "idle", 6
	}
	return "", 0
}

// status returns the exporters' status words as constants, so that the
// ~300 statuses of a body share a handful of strings instead of taking
// chunk space each; "" for any other text.
func status(b []byte) string {
	switch string(b) {
	case "sleeping":
		return "sleeping"
	case "running":
		return "running"
	case "idle":
		return "idle"
	case "disk-sleep":
		return "disk-sleep"
	case "stopped":
		return "stopped"
	case "zombie":
		return "zombie"
	}
	return ""
}

// fastUint reads a JSON integer from 0 to limit written plainly at the
// current byte: the digits are scanned and summed in one pass (number()
// then uint() walk them twice). It declines, moving nothing, whatever it
// does not read the way uint() would accept it (a sign, a fraction, an
// exponent, 19 digits or more, over limit, a space or another type); the
// caller then takes the general path, which also words the errors.
func (d *decoder) fastUint(limit uint64) (int64, bool) {
	v, i, ok := uintAt(d.data, d.pos, limit)
	if ok {
		d.pos = i
	}
	return v, ok
}

// uintAt is fastUint at data[i:]; it returns the value and where it ends.
func uintAt(data []byte, i int, limit uint64) (int64, int, bool) {
	if i >= len(data) {
		return 0, i, false
	}
	var n uint64
	switch c := data[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		n = uint64(c - '0')
		i++
		// 18 digits at most: below 10^18, so no overflow.
		end := min(len(data), i+17)
		for i < end && data[i] >= '0' && data[i] <= '9' {
			n = n*10 + uint64(data[i]-'0')
			i++
		}
	default:
		return 0, i, false
	}
	if i < len(data) {
		if c := data[i]; c == '.' || c == 'e' || c == 'E' || (c >= '0' && c <= '9') {
			return 0, i, false
		}
	}
	if n > limit {
		return 0, i, false
	}
	return int64(n), i, true
}

// fastFloat reads a non-negative decimal written plainly (no sign, no
// exponent) with at most 15 digits at the current byte, in one pass:
// the digits form an integer below 2^53 and 10^k (k <= 15) is exact, so
// one IEEE division is correctly rounded and equals strconv.ParseFloat's
// result (Clinger's fast path, as in fastDecimal). It declines, moving
// nothing, for anything else; the caller then takes the general path.
func (d *decoder) fastFloat() (float64, bool) {
	v, i, ok := floatAt(d.data, d.pos)
	if ok {
		d.pos = i
	}
	return v, ok
}

// floatAt is fastFloat at data[i:]; it returns the value and where it
// ends.
func floatAt(data []byte, i int) (float64, int, bool) {
	start := i
	if i >= len(data) {
		return 0, i, false
	}
	var m uint64
	switch c := data[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		// 16 digits stop the loop and fail the digit count below, so m
		// cannot overflow.
		end := min(len(data), i+16)
		for i < end && data[i] >= '0' && data[i] <= '9' {
			m = m*10 + uint64(data[i]-'0')
			i++
		}
	default:
		return 0, i, false
	}
	digits := i - start
	frac := 0
	if i < len(data) && data[i] == '.' {
		i++
		j := i
		end := min(len(data), i+16-digits)
		for i < end && data[i] >= '0' && data[i] <= '9' {
			m = m*10 + uint64(data[i]-'0')
			i++
		}
		frac = i - j
		if frac == 0 {
			return 0, i, false // "1." is a syntax error: let number() say so
		}
		digits += frac
	}
	if digits > 15 {
		return 0, i, false
	}
	if i < len(data) {
		if c := data[i]; c == 'e' || c == 'E' || (c >= '0' && c <= '9') {
			return 0, i, false
		}
	}
	if frac == 0 {
		return float64(m), i, true
	}
	return float64(m) / pow10[frac], i, true
}

// canonicalTime writes an RFC 3339 time in UTC ("Z", the form exporters
// send) to dst as ParseTime(s).Format(CapturedAtFormat) would, without
// building a time.Time: a create_time on every process made parse and
// format most of a body's decoding time. It checks the fields as Go's
// RFC 3339 parser does (month, day of that month in that year, hour,
// minute, second), truncates the fraction to milliseconds and rejects
// year 0 as ParseTime does. It returns false for any other form (an
// offset, a comma, missing digits...); the caller then parses the general
// way. TestCanonicalTime checks it against ParseTime+Format.
func canonicalTime(b []byte, dst *[canonicalTimeLen]byte) bool {
	const n = len("2006-01-02T15:04:05")
	if len(b) < n+1 || b[len(b)-1] != 'Z' ||
		b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return false
	}
	num := func(s []byte) int {
		v := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(b[0:4]), num(b[5:7]), num(b[8:10])
	hour, minute, sec := num(b[11:13]), num(b[14:16]), num(b[17:19])
	if year < 1 || month < 1 || month > 12 || day < 1 || day > DaysIn(month, year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return false
	}
	frac := b[n : len(b)-1]
	if len(frac) == 1 || (len(frac) > 1 && frac[0] != '.') {
		return false
	}
	copy(dst[:n], b[:n])
	dst[n] = '.'
	for k := range 3 {
		c := byte('0')
		if k+1 < len(frac) {
			c = frac[k+1]
		}
		dst[n+1+k] = c
	}
	for _, c := range frac[min(1, len(frac)):] {
		if c < '0' || c > '9' {
			return false
		}
	}
	dst[n+4] = 'Z'
	return true
}

// canonicalTimeLen is the length of a time in CapturedAtFormat in UTC.
const canonicalTimeLen = len("2006-01-02T15:04:05.000Z")

// DaysIn is the number of days of month (1-12) in year (proleptic
// Gregorian); the store's time encoding checks dates with it too.
func DaysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
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
