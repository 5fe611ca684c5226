package collector

// Pure parsers of the procfs text that github.com/prometheus/procfs does
// not parse for us: the per-process hot path (stat, cmdline, getdents),
// uptime, os-release and mount path escapes. Reading lives in
// proc_linux.go and sysinfo_linux.go; everything here takes bytes and
// returns values so each format has its own table test on fixtures
// (testdata/proc).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// procStat is what one /proc/PID/stat line holds that a walk needs.
type procStat struct {
	// Comm points into the buffer that was parsed: copy it before keeping it.
	Comm       []byte
	State      byte
	PPID       int64
	UTime      uint64 // clock ticks
	STime      uint64 // clock ticks
	NumThreads int64
	StartTime  uint64 // clock ticks after boot
	// RSSPages is field 24, the same get_mm_rss() figure that statm's
	// "resident" shows (file + anon + shmem pages), so statm need not be
	// opened at all: one file per process instead of two.
	RSSPages int64
}

var errShortStat = errors.New("stat line too short")

// parseStat parses /proc/PID/stat. The command name sits between the first
// '(' and the LAST ')' and may itself hold spaces and parentheses (a
// process can name itself "(sd-pam) x)"), so the fields are counted from
// the last ')'.
func parseStat(b []byte) (procStat, error) {
	var s procStat
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return s, errors.New("stat line has no (comm)")
	}
	s.Comm = b[open+1 : closing]
	rest := b[closing+1:]
	// Field numbers as in proc(5): 3 is the state, right after the comm.
	field := 2
	for len(rest) > 0 {
		for len(rest) > 0 && rest[0] == ' ' {
			rest = rest[1:]
		}
		if len(rest) == 0 {
			break
		}
		end := 0
		for end < len(rest) && rest[end] != ' ' && rest[end] != '\n' {
			end++
		}
		tok := rest[:end]
		rest = rest[end:]
		if len(rest) > 0 && rest[0] == '\n' {
			rest = rest[:0]
		}
		field++
		var err error
		switch field {
		case 3:
			if len(tok) != 1 {
				return s, fmt.Errorf("bad state %q", tok)
			}
			s.State = tok[0]
		case 4:
			s.PPID, err = parseInt(tok)
		case 14:
			s.UTime, err = parseUint(tok)
		case 15:
			s.STime, err = parseUint(tok)
		case 20:
			s.NumThreads, err = parseInt(tok)
		case 22:
			s.StartTime, err = parseUint(tok)
		case 24:
			s.RSSPages, err = parseInt(tok)
			if err == nil {
				return s, nil
			}
		}
		if err != nil {
			return s, fmt.Errorf("stat field %d: %w", field, err)
		}
	}
	return s, errShortStat
}

// parseUint parses a decimal without allocating (strconv needs a string).
func parseUint(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > 20 {
		return 0, fmt.Errorf("bad number %q", b)
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad number %q", b)
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, fmt.Errorf("number %q overflows", b)
		}
		n = n*10 + d
	}
	return n, nil
}

func parseInt(b []byte) (int64, error) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	u, err := parseUint(b)
	if err != nil {
		return 0, err
	}
	if u > 1<<63-1 {
		return 0, fmt.Errorf("number %q overflows", b)
	}
	if neg {
		return -int64(u), nil
	}
	return int64(u), nil
}

// appendDirentPIDs appends the PIDs named by the linux_dirent64 records in
// buf (what getdents64 filled) to pids, skipping every name that is not a
// positive decimal (self, net, sys...). It allocates nothing beyond pids.
func appendDirentPIDs(pids []int32, buf []byte) []int32 {
	// struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; }
	const nameOff = 19
	for len(buf) >= nameOff {
		reclen := int(binary.NativeEndian.Uint16(buf[16:18]))
		if reclen < nameOff || reclen > len(buf) {
			break
		}
		name := buf[nameOff:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		buf = buf[reclen:]
		if len(name) == 0 || len(name) > 10 || name[0] == '0' {
			continue
		}
		n, err := parseUint(name)
		if err != nil || n > 1<<31-1 {
			continue
		}
		pids = append(pids, int32(n))
	}
	return pids
}

// commLen is TASK_COMM_LEN-1: the kernel cuts the comm of user processes
// to 15 bytes.
const commLen = 15

// fullName is the process name to show: the comm, unless the kernel cut it
// to 15 bytes and argv[0]'s basename starts with it, when the basename is
// the full name (what ps -o comm cannot show but psutil/gopsutil do).
// cmdline is /proc/PID/cmdline (NUL-separated).
func fullName(comm, cmdline []byte) string {
	if len(comm) != commLen || len(cmdline) == 0 {
		return string(comm)
	}
	argv0, rest, _ := bytes.Cut(cmdline, []byte{0})
	// Programs that rewrite their argv into one space-separated string
	// (setproctitle) leave no further NUL-separated arguments; the name is
	// then the first word.
	if len(bytes.Trim(rest, "\x00")) == 0 {
		if i := bytes.IndexByte(argv0, ' '); i >= 0 {
			argv0 = argv0[:i]
		}
	}
	base := argv0
	if i := bytes.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	if len(base) > len(comm) && bytes.HasPrefix(base, comm) {
		return string(base)
	}
	return string(comm)
}

// cmdlineString turns /proc/PID/cmdline (NUL-separated, usually
// NUL-terminated) into the space-separated form ps shows.
func cmdlineString(b []byte) string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) > maxCmdline {
		b = b[:maxCmdline]
	}
	s := []byte(string(b)) // copy: b is a reused buffer
	for i, c := range s {
		if c == 0 {
			s[i] = ' '
		}
	}
	return string(s)
}

// procStatus maps the state letter of /proc/PID/stat to psutil's status
// names (the wire "status") and to the one-word state of /metrics.
func procStatus(c byte) (status, state string) {
	switch c {
	case 'R':
		return "running", "running"
	case 'S':
		return "sleeping", "sleeping"
	case 'D':
		return "disk-sleep", "disk-sleep"
	case 'T':
		return "stopped", "stopped"
	case 't':
		return "tracing-stop", "stopped"
	case 'Z':
		return "zombie", "zombie"
	case 'X', 'x':
		return "dead", "other"
	case 'I':
		return "idle", "idle"
	case 'K':
		return "wake-kill", "other"
	case 'W':
		return "waking", "other"
	case 'P':
		return "parked", "other"
	}
	return "unknown", "other"
}

// parseUptime parses the first number of /proc/uptime (seconds).
func parseUptime(b []byte) (float64, error) {
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0, errors.New("empty uptime")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad uptime %q", f[0])
	}
	return v, nil
}

// unescapeOctal undoes the kernel's mangle() of mount paths (\040 is a space).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				sb.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		sb.WriteByte(s[i])
	}
	return sb.String()
}

// parseOSRelease parses os-release(5): KEY=value lines, values optionally
// quoted.
func parseOSRelease(b []byte) map[string]string {
	out := map[string]string{}
	for line := range bytes.Lines(b) {
		k, v, ok := strings.Cut(strings.TrimSpace(string(line)), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `"'`)
		}
		out[k] = v
	}
	return out
}

// parseIO reads read_bytes and write_bytes from /proc/PID/io: the bytes
// the process made the storage layer fetch and send (page cache hits and
// writes later cancelled by truncation included, as iotop shows them).
// false when either line is missing.
func parseIO(b []byte) (read, write uint64, ok bool) {
	var haveR, haveW bool
	for len(b) > 0 {
		var line []byte
		line, b = cutLine(b)
		var dst *uint64
		switch {
		case len(line) > 12 && string(line[:12]) == "read_bytes: ":
			dst, haveR, line = &read, true, line[12:]
		case len(line) > 13 && string(line[:13]) == "write_bytes: ":
			dst, haveW, line = &write, true, line[13:]
		default:
			continue
		}
		var v uint64
		for _, c := range line {
			if c < '0' || c > '9' || v > (1<<64-1)/10-10 {
				return 0, 0, false
			}
			v = v*10 + uint64(c-'0')
		}
		*dst = v
	}
	return read, write, haveR && haveW
}
