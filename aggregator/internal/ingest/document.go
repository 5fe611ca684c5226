// Package ingest decodes and validates the body of POST /api/v1/ingest
// (docs/api.md) into the wire types of package snapshot. It is a
// hand-written, single-pass scanner over the whole (already decompressed)
// body instead of encoding/json for three reasons:
//
//   - Speed: ingest is the aggregator's hot path (thousands of 300-process
//     snapshots a second). encoding/json with reflection plus the presence
//     checks the contract needs (a second pass, or pointer fields) is
//     several times slower. Against github.com/valyala/fastjson (what
//     VictoriaMetrics uses) decoding the same document with the same
//     rules, this decoder wins by more than the 2x that would justify
//     keeping hand-written JSON (figures in docs/performance.md):
//     go test -run '^$' -bench 'Decode/' -benchmem -count 5 ./aggregator/internal/ingest
//     It also reads the host numbers history keeps while it checks
//     system_info (sysinfo.go), so that nothing scans it a second time.
//   - Strictness: docs/api.md wants `1.0` and `"1"` rejected as pids,
//     missing required fields reported by name, duplicate pids and
//     duplicate keys caught, and invalid UTF-8 replaced (not rejected). All
//     of that falls out of one scan for free.
//   - Ordering of answers: the HTTP layer must answer 403 (wrong key for
//     the host) before 413 and 400, yet the hostname is inside the body.
//     The scanner reports the hostname through a callback the moment it is
//     read and keeps scanning after content errors, so the key is checked
//     whenever the hostname can be found at all.
//
// The files follow the body: document.go the top-level object and JSON
// syntax, processes.go the process table, sysinfo.go the numbers of
// system_info that history keeps, numbers.go, strings.go and time.go the
// values. Every fast path falls back to a general one on
// anything unusual; testdata/decode pins what a client sees for each
// fixture (TestDecodeGolden) and the fast-path tests compare each fast
// path with its general one.
package ingest

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/procscope/procscope/aggregator/snapshot"
)

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
	Processes []snapshot.Process
}

// DefaultMaxProcesses is docs/api.md's default process limit per snapshot.
const DefaultMaxProcesses = 100000

// Decoded is a validated ingest body.
type Decoded struct {
	// Snapshot holds the body's values. Its CapturedAt is normalised to UTC
	// with milliseconds (snapshot.CapturedAtFormat); SystemInfo is the
	// object as sent (with invalid UTF-8 replaced), in its own memory.
	Snapshot snapshot.Snapshot
	// CapturedAt is Snapshot.CapturedAt parsed and truncated to milliseconds.
	CapturedAt time.Time
	// System holds the numbers of system_info that history keeps, read
	// while system_info was checked (sysinfo.go).
	System SystemNumbers
	// HostnameSeen reports that a valid hostname was read (and OnHostname
	// called), even when Decode failed later.
	HostnameSeen bool
}

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
	// cmdlines backs the Process.Cmdline pointers, floats the I/O rates,
	// exts the ProcessExt pointers.
	cmdlines []string
	floats   []float64
	exts     []snapshot.ProcessExt
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
	for first := true; ; first = false {
		done, err := d.nextMember(first)
		if err != nil {
			return err
		}
		if done {
			break
		}
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
	if msg := snapshot.CheckHostname(h); msg != "" {
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

func (d *decoder) systemInfo(out *Decoded) error {
	if d.peek() != '{' {
		d.bad("system_info must be a JSON object")
		return d.skipValue(0)
	}
	start := d.pos
	if err := d.sysObject(&out.System); err != nil {
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
		return d.members(func([]byte) error { return d.skipValue(depth + 1) })
	case '[':
		_, err := d.elements(func(int) error { return d.skipValue(depth + 1) })
		return err
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

// members walks an object (the current byte is '{'), the syntax checks and
// errors of skipValue's (which walks its objects with it); member reads one
// value after its key.
func (d *decoder) members(member func(key []byte) error) error {
	d.pos++ // '{'
	if d.peek() == '}' {
		d.pos++
		return nil
	}
	for {
		key, err := d.key()
		if err != nil {
			return err
		}
		if err := member(key); err != nil {
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
}

// elements walks an array (the current byte is '['), with the syntax
// checks and errors of skipValue's (which walks its arrays with it);
// element reads the value at index i. It returns how many it read.
func (d *decoder) elements(element func(i int) error) (int, error) {
	d.pos++ // '['
	if d.peek() == ']' {
		d.pos++
		return 0, nil
	}
	for i := 0; ; i++ {
		if err := element(i); err != nil {
			return i, err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return i + 1, nil
		default:
			return i, d.syntax("want ',' or ']'")
		}
	}
}

// nextMember starts the next member of an object whose '{' was read: done
// at the closing '}' (read), else past the ',' that comes before every
// member but the first.
func (d *decoder) nextMember(first bool) (done bool, err error) {
	if d.peek() == '}' {
		d.pos++
		return true, nil
	}
	if !first {
		return false, d.expect(',')
	}
	return false, nil
}

func (d *decoder) literal(lit string) error {
	if len(d.data)-d.pos >= len(lit) && string(d.data[d.pos:d.pos+len(lit)]) == lit {
		d.pos += len(lit)
		return nil
	}
	return d.syntax("invalid literal")
}
