package ingest

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/procscope/procscope/aggregator/snapshot"
)

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
		procs = make([]snapshot.Process, 0, est+1)
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
			procs = append(procs, snapshot.Process{})
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
func pidsAscending(procs []snapshot.Process) bool {
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
	pUnit
	pContainer
	pPod
	pRead
	pWrite
)

// process reads one process object. Most of an ingest body's bytes are
// process objects written by encoding/json in the exporter: fields in a
// fixed order, no spaces, keys spelt plainly, integers and short
// decimals. Such an object is read by fastProcess in one pass; any other
// goes field by field below, where fieldKey, fastUint and fastFloat still
// take the plain cases. Every fast path falls back to the general code on
// anything unusual, so every input gets exactly the values and errors the
// general code gives (the fixtures of TestDecodeGolden, made when a frozen
// copy of the decoder before the fast paths still checked every one, and
// TestFastProcessTakesExporterLayout, TestFastNumbers, TestCanonicalTime).
func (d *decoder) process(p *snapshot.Process, i int) error {
	if d.peek() != '{' {
		d.bad("processes[%d] must be an object", i)
		return d.skipValue(0)
	}
	if d.fastProcess(p) {
		return nil
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
		case pRead, pWrite:
			// Optional and nullable: null or absent is "unknown", which
			// is not 0 (docs/api.md).
			if d.isNull() {
				seen &^= bit
				continue
			}
			v, ok := d.fastFloat()
			if !ok {
				var err error
				if v, ok, err = d.nonNegFloat(i, kname); err != nil {
					return err
				}
				if !ok {
					continue
				}
			}
			if bit == pRead {
				d.ext(p).ReadBytesPerSec = d.floatPtr(v)
			} else {
				d.ext(p).WriteBytesPerSec = d.floatPtr(v)
			}
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
		case pName, pCmdline, pUsername, pStatus, pCreate, pUnit, pContainer, pPod:
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
			case pUnit, pContainer, pPod:
				d.setExtString(p, bit, b)
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
				t, msg := snapshot.ParseTime(d.makeString(b))
				if msg != "" {
					d.bad("processes[%d].create_time: %s", i, msg)
					continue
				}
				p.CreateTime = t.Format(snapshot.CapturedAtFormat)
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
func (d *decoder) fastProcess(p *snapshot.Process) bool {
	start := d.pos
	if d.fastFields(p) {
		return true
	}
	*p = snapshot.Process{}
	d.pos = start
	return false
}

func (d *decoder) fastFields(p *snapshot.Process) bool {
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
	if i < len(data) && data[i] == '}' {
		d.pos = i + 1
		return true
	}
	// Attribution and I/O, in declaration order, each optional.
	for _, f := range [...]struct {
		key string
		bit int
	}{{`,"unit":`, pUnit}, {`,"container_id":`, pContainer}, {`,"pod_uid":`, pPod}} {
		if len(data)-i >= len(f.key) && string(data[i:i+len(f.key)]) == f.key {
			d.pos = i + len(f.key)
			if b, ok = d.fastStr(); !ok {
				return false
			}
			d.setExtString(p, f.bit, b)
			i = d.pos
		}
	}
	for _, f := range [...]struct {
		key string
		bit int
	}{{`,"read_bytes_per_sec":`, pRead}, {`,"write_bytes_per_sec":`, pWrite}} {
		if len(data)-i >= len(f.key) && string(data[i:i+len(f.key)]) == f.key {
			v, j, ok := d.fullFloatAt(i + len(f.key))
			if !ok {
				return false
			}
			if f.bit == pRead {
				d.ext(p).ReadBytesPerSec = d.floatPtr(v)
			} else {
				d.ext(p).WriteBytesPerSec = d.floatPtr(v)
			}
			i = j
		}
	}
	if i >= len(data) || data[i] != '}' {
		return false
	}
	d.pos = i + 1
	return true
}

// ext returns p's ProcessExt, taking a new one from a slab (as cmdlines
// are) the first time: processes without attribution or I/O keep a nil
// pointer, so a table of them costs no more than before those fields.
func (d *decoder) ext(p *snapshot.Process) *snapshot.ProcessExt {
	if p.ProcessExt == nil {
		if len(d.exts) == cap(d.exts) {
			d.exts = make([]snapshot.ProcessExt, 0, max(64, cap(d.exts)*2))
		}
		d.exts = d.exts[:len(d.exts)+1]
		p.ProcessExt = &d.exts[len(d.exts)-1]
	}
	return p.ProcessExt
}

// setExtString sets unit, container_id or pod_uid (bit) to the JSON
// string b; "" is what an absent field reads as, so it takes no
// ProcessExt.
func (d *decoder) setExtString(p *snapshot.Process, bit int, b []byte) {
	if len(b) == 0 {
		return
	}
	s := d.makeString(b)
	switch bit {
	case pUnit:
		d.ext(p).Unit = s
	case pContainer:
		d.ext(p).ContainerID = s
	default:
		d.ext(p).PodUID = s
	}
}

// fullFloatAt reads a non-negative number at data[i:] for fastFields:
// floatAt's short decimals, else strconv for the full-precision floats
// exporters send (what nonNegFloat reads, minus the error reporting; an
// unusual number goes to the general path). It moves d.pos.
func (d *decoder) fullFloatAt(i int) (float64, int, bool) {
	data := d.data
	if v, j, ok := floatAt(data, i); ok {
		return v, j, true
	}
	d.pos = i
	if d.pos >= len(data) || data[d.pos] < '0' || data[d.pos] > '9' {
		return 0, 0, false
	}
	num, _, err := d.number()
	if err != nil {
		return 0, 0, false
	}
	v, err := strconv.ParseFloat(string(num), 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, 0, false
	}
	return v, d.pos, true
}

// floatPtr returns a pointer to v from a slab, as cmdlines are: one
// allocation per 256 values rather than one each.
func (d *decoder) floatPtr(v float64) *float64 {
	if len(d.floats) == cap(d.floats) {
		d.floats = make([]float64, 0, max(256, cap(d.floats)*2))
	}
	d.floats = append(d.floats, v)
	return &d.floats[len(d.floats)-1]
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
	case "unit":
		return pUnit, "unit"
	case "container_id":
		return pContainer, "container_id"
	case "pod_uid":
		return pPod, "pod_uid"
	case "read_bytes_per_sec":
		return pRead, "read_bytes_per_sec"
	case "write_bytes_per_sec":
		return pWrite, "write_bytes_per_sec"
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
