package api

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// appendProcess writes one element of GET /api/v1/snapshots/{id}/processes
// (processList). It is hand-written because this is the largest response
// the UI asks for (every few seconds, thousands of rows) and
// reflection-based encoding/json spends most of its time on per-field
// lookups; BenchmarkProcessesHandler measures both. The output is what
// encoding/json would produce for snapshot.Process (TestAppendProcesses
// checks that), including cmdline absent rather than null when not sent.
func appendProcess(b []byte, p *snapshot.Process) []byte {
	b = append(b, `{"pid":`...)
	b = strconv.AppendInt(b, p.PID, 10)
	b = append(b, `,"ppid":`...)
	b = strconv.AppendInt(b, p.PPID, 10)
	b = append(b, `,"name":`...)
	b = appendString(b, p.Name)
	b = append(b, `,"cpu_percent":`...)
	b = appendFloat(b, p.CPUPercent)
	b = append(b, `,"memory_mb":`...)
	b = appendFloat(b, p.MemoryMB)
	if p.Cmdline != nil {
		b = append(b, `,"cmdline":`...)
		b = appendString(b, *p.Cmdline)
	}
	if p.Username != "" {
		b = append(b, `,"username":`...)
		b = appendString(b, p.Username)
	}
	if p.Status != "" {
		b = append(b, `,"status":`...)
		b = appendString(b, p.Status)
	}
	if p.NumThreads != 0 {
		b = append(b, `,"num_threads":`...)
		b = strconv.AppendInt(b, int64(p.NumThreads), 10)
	}
	if p.CreateTime != "" {
		b = append(b, `,"create_time":`...)
		b = appendString(b, p.CreateTime)
	}
	if p.MemoryPercent != 0 {
		b = append(b, `,"memory_percent":`...)
		b = appendFloat(b, p.MemoryPercent)
	}
	if x := p.ProcessExt; x != nil {
		b = appendExt(b, x)
	}
	b = append(b, '}')
	return b
}

// appendExt writes the attribution and I/O fields that x has.
func appendExt(b []byte, x *snapshot.ProcessExt) []byte {
	if x.Unit != "" {
		b = append(b, `,"unit":`...)
		b = appendString(b, x.Unit)
	}
	if x.ContainerID != "" {
		b = append(b, `,"container_id":`...)
		b = appendString(b, x.ContainerID)
	}
	if x.PodUID != "" {
		b = append(b, `,"pod_uid":`...)
		b = appendString(b, x.PodUID)
	}
	if x.ReadBytesPerSec != nil {
		b = append(b, `,"read_bytes_per_sec":`...)
		b = appendFloat(b, *x.ReadBytesPerSec)
	}
	if x.WriteBytesPerSec != nil {
		b = append(b, `,"write_bytes_per_sec":`...)
		b = appendFloat(b, *x.WriteBytesPerSec)
	}
	return b
}

// appendFloat formats like encoding/json: shortest representation, with an
// exponent only for very small or large magnitudes. NaN and Inf cannot be
// ingested; they are written as 0 rather than breaking the document.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string the way encoding/json does:
// control characters, quotes and backslashes escaped, and <, >, & and
// U+2028/U+2029 escaped too, so that hostile process names stay inert even
// if a response is ever embedded in HTML or a script. Invalid UTF-8 becomes
// U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
