package store

// The process-list and system_info encodings stored in the snapshots table.
//
// A host sends nearly the same process table every few seconds, so a snapshot
// is stored either as a keyframe (the complete list) or as a delta against
// the host's current keyframe: one varint per unchanged row, and only the
// fields that differ for the others. Both are then compressed (S2). A delta
// always refers to a keyframe, never to another delta, so reading any
// snapshot costs at most two blobs, however long the chain of snapshots.
//
// Numbers are exact: floats round-trip bit for bit (the API returns what was
// sent). Most values an exporter sends are short decimals (12.6, 0.4) or
// binary fractions (RSS/2^20), which encode as a small integer mantissa plus
// a power of ten; anything else is stored as its 8 raw bytes.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// Blob header byte: the low bits say what the blob is, the high bits how
// the rest is compressed: S2, or not at all (small blobs are kept raw when
// compression would only add its frame overhead).
//
// S2 rather than zstd: deltas are varints with little redundancy left, so
// zstd saved hardly more, and a keyframe's encoding is what a host's first
// push waits for, so a fleet starting together queued behind zstd's CPU
// (docs/performance.md, "Choices the figures made").
const (
	blobFull     = 1 // complete process list / complete system_info
	blobDelta    = 2 // delta against the keyframe in base_id
	blobS2       = 0x40
	blobKindMask = 0x3f
)

// Changed-field bits of a delta row.
const (
	fPPID = 1 << iota
	fName
	fCmdline
	fUsername
	fStatus
	fCreateTime
	fNumThreads
	fCPU
	fMem
	fMemPct
)

// Row kinds of a delta (the low 2 bits of a row header).
const (
	rowNext  = 0 // the base row after the previous one (header 0: unchanged)
	rowSkip  = 1 // another base row, at a signed offset from the expected one
	rowNew   = 2 // not in the base: every field follows
	rowShift = 2
)

var errCorrupt = errors.New("corrupt stored snapshot")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxDecodedBlob bounds what one blob may decompress to: a snapshot of the
// API's maximum 100,000 processes with long command lines stays well below.
const maxDecodedBlob = 256 << 20

var pow10 = [10]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// sealBlob prefixes raw with its kind byte, compressing it when that pays.
func sealBlob(kind byte, raw []byte) []byte {
	if len(raw) >= 64 {
		// An S2 block has no checksum of its own: a CRC-32C of the content follows it, so that a damaged blob is
		// refused rather than read back wrong.
		out := make([]byte, 1+s2.MaxEncodedLen(len(raw))+4)
		out[0] = kind | blobS2
		n := 1 + len(s2.Encode(out[1:], raw))
		if n+4 < 1+len(raw) {
			out = binary.LittleEndian.AppendUint32(out[:n], crc32.Checksum(raw, castagnoli))
			return out[: n+4 : n+4]
		}
	}
	out := make([]byte, 0, 1+len(raw))
	out = append(out, kind)
	return append(out, raw...)
}

// openBlob returns a blob's kind and raw content.
func openBlob(blob []byte) (byte, []byte, error) {
	if len(blob) == 0 {
		return 0, nil, errCorrupt
	}
	kind := blob[0] & blobKindMask
	switch blob[0] &^ blobKindMask {
	case 0:
		return kind, blob[1:], nil
	case blobS2:
		if len(blob) < 1+4 {
			return 0, nil, errCorrupt
		}
		body, sum := blob[1:len(blob)-4], binary.LittleEndian.Uint32(blob[len(blob)-4:])
		n, err := s2.DecodedLen(body)
		if err != nil || n > maxDecodedBlob {
			return 0, nil, fmt.Errorf("%w: s2 length %d: %v", errCorrupt, n, err)
		}
		raw, err := s2.Decode(make([]byte, n), body)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: %v", errCorrupt, err)
		}
		if crc32.Checksum(raw, castagnoli) != sum {
			return 0, nil, fmt.Errorf("%w: checksum mismatch", errCorrupt)
		}
		return kind, raw, nil
	default:
		return 0, nil, errCorrupt
	}
}

// --- writing ---

func appendVarint(b []byte, v int64) []byte   { return binary.AppendVarint(b, v) }
func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// appendFloat stores v exactly: as mantissa<<4|k meaning mantissa/10^k when
// that division gives back the very same bits, else tag 15 and the raw bits.
func appendFloat(b []byte, v float64) []byte {
	if v >= 0 && v < 1e15 && !math.Signbit(v) {
		for k := range pow10 {
			m := math.Round(v * pow10[k])
			if m >= 1<<53 {
				break
			}
			if m/pow10[k] == v {
				return binary.AppendUvarint(b, uint64(m)<<4|uint64(k))
			}
		}
	}
	b = binary.AppendUvarint(b, 15)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// appendFloatPred is appendFloat, or tag 14 and the XOR of v's bits with
// pred's when that is shorter: a value close to its prediction shares the
// sign, exponent and top mantissa bits, so the XOR is a small integer.
func appendFloatPred(b []byte, v, pred float64) []byte {
	start := len(b)
	b = appendFloat(b, v)
	if pred == 0 {
		return b
	}
	x := math.Float64bits(v) ^ math.Float64bits(pred)
	if 1+uvarintLen(x) < len(b)-start {
		b = append(b[:start], 14)
		b = binary.AppendUvarint(b, x)
	}
	return b
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// pctRatio predicts memory_percent from memory_mb: every process of a
// host divides by the same total memory, so the previous row's ratio
// predicts the next row's percentage to within a few units in the last
// place. Encoder and decoder update it from the same final row values.
type pctRatio float64

func (r pctRatio) predict(mem float64) float64 { return mem * float64(r) }

func (r *pctRatio) observe(p *snapshot.Process) {
	if p.MemoryMB > 0 && p.MemoryPercent > 0 {
		*r = pctRatio(p.MemoryPercent / p.MemoryMB)
	}
}

// canonicalTime returns the Unix nanoseconds of s when s is exactly what
// formatTime gives back for them (UTC, RFC 3339 with trimmed fractional
// seconds, as exporters send create_time): those are stored as a number.
func canonicalTime(s string) (int64, bool) {
	if ns, ok, sure := fixedTime(s); sure {
		return ns, ok
	}
	return slowCanonicalTime(s)
}

// slowCanonicalTime is canonicalTime by parsing and formatting (~400 ns).
func slowCanonicalTime(s string) (int64, bool) {
	if len(s) < 20 || len(s) > 30 || s[len(s)-1] != 'Z' {
		return 0, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 1678 || t.Year() > 2261 { // the range of UnixNano
		return 0, false
	}
	ns := t.UnixNano()
	if formatTime(ns) != s {
		return 0, false
	}
	return ns, true
}

// fixedTime answers canonicalTime for the two shapes nearly every stored
// create_time has, without time.Parse and Format (a keyframe has ~300 and
// they were a quarter of its encoding): "2006-01-02T15:04:05.000Z", what
// the ingest decoder makes of every create_time, and "2006-01-02T15:04:05Z".
// snapshot.ScanUTC, the ingest decoder's fast path too, reads them. sure
// is false for anything else, or anything unusual in them (a year outside
// 1970-2261), which the slow path decides.
func fixedTime(s string) (ns int64, ok, sure bool) {
	if len(s) != 20 && len(s) != 24 {
		return 0, false, false
	}
	sec, nsec, ok := snapshot.ScanUTC(s)
	if !ok || sec < 0 || sec >= fixedTimeEnd {
		return 0, false, false
	}
	if len(s) == 24 && s[22] == '0' {
		// RFC 3339 as formatTime writes it trims trailing zeros.
		return 0, false, true
	}
	return sec*1e9 + int64(nsec), true, true
}

// fixedTimeEnd is 2262-01-01 in Unix seconds: UnixNano ends in 2262, so
// fixedTime takes the years 1970-2261 and leaves the rest to the slow path.
var fixedTimeEnd = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

func formatTime(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

// rowEncoder carries what one blob's rows share: the string table, the
// previous create_time (times are stored as differences) and the memory
// ratio.
type rowEncoder struct {
	t        *strTable
	prevTime int64
	ratio    pctRatio
}

// appendTime: 0 for "", 1 and a difference for a canonical time, else
// 2 + a string id.
func (e *rowEncoder) appendTime(b []byte, s string) []byte {
	if s == "" {
		return appendUvarint(b, 0)
	}
	if ns, ok := canonicalTime(s); ok {
		b = appendUvarint(b, 1)
		b = appendVarint(b, ns-e.prevTime)
		e.prevTime = ns
		return b
	}
	return appendUvarint(b, 2+e.t.id(s))
}

// strTable numbers the distinct strings of one blob.
type strTable struct {
	idx  map[string]uint64
	list []string
}

func newStrTable(hint int) *strTable {
	return &strTable{idx: make(map[string]uint64, hint)}
}

func (t *strTable) id(s string) uint64 {
	if i, ok := t.idx[s]; ok {
		return i
	}
	i := uint64(len(t.list))
	t.idx[s] = i
	t.list = append(t.list, s)
	return i
}

func (t *strTable) appendTo(b []byte) []byte {
	b = appendUvarint(b, uint64(len(t.list)))
	for _, s := range t.list {
		b = appendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// cmdID is 0 for an absent command line, else its string id + 1: absent and
// "" are different things on the wire (docs/api.md).
func (t *strTable) cmdID(c *string) uint64 {
	if c == nil {
		return 0
	}
	return t.id(*c) + 1
}

// appendAllFields writes every field of p except the PID.
func (e *rowEncoder) appendAllFields(b []byte, p *snapshot.Process) []byte {
	t := e.t
	b = appendVarint(b, p.PPID)
	b = appendUvarint(b, t.id(p.Name))
	b = appendUvarint(b, t.cmdID(p.Cmdline))
	b = appendUvarint(b, t.id(p.Username))
	b = appendUvarint(b, t.id(p.Status))
	b = e.appendTime(b, p.CreateTime)
	b = appendVarint(b, int64(p.NumThreads))
	b = appendFloat(b, p.CPUPercent)
	b = appendFloat(b, p.MemoryMB)
	return appendFloatPred(b, p.MemoryPercent, e.ratio.predict(p.MemoryMB))
}

// encodeFull is the raw (uncompressed) keyframe encoding of procs:
// count, string table, then per row the PID as a difference from the
// previous PID and all other fields.
func encodeFull(procs []snapshot.Process) []byte {
	t := newStrTable(len(procs) / 2)
	e := &rowEncoder{t: t}
	body := make([]byte, 0, len(procs)*24)
	var prev int64
	var x extEncoder
	for i := range procs {
		p := &procs[i]
		body = appendVarint(body, p.PID-prev)
		prev = p.PID
		body = e.appendAllFields(body, p)
		e.ratio.observe(p)
		if p.HasExt() {
			x.add(i, p.ProcessExt, extDiff(p.ProcessExt, &snapshot.ProcessExt{}))
		}
	}
	out := appendUvarint(make([]byte, 0, len(body)+len(t.list)*16+8), uint64(len(procs)))
	out = t.appendTo(out)
	out = append(out, body...)
	return x.appendTo(out)
}

// baseIndex maps a keyframe's PIDs to row positions.
func baseIndex(base []snapshot.Process) map[int64]int {
	m := make(map[int64]int, len(base))
	for i := range base {
		m[base[i].PID] = i
	}
	return m
}

// encodeDelta is the raw delta of procs against base (idx from baseIndex).
// Rows are written in procs' order; each is a header varint (kind in the low
// bits, changed-field mask above) then only what changed.
func encodeDelta(procs, base []snapshot.Process, idx map[int64]int) []byte {
	t := newStrTable(8)
	e := &rowEncoder{t: t}
	body := make([]byte, 0, len(procs)+64)
	prev := -1
	var x extEncoder
	for i := range procs {
		p := &procs[i]
		j := prev + 1
		kind := uint64(rowNext)
		if j >= len(base) || base[j].PID != p.PID {
			k, ok := idx[p.PID]
			if !ok {
				body = appendUvarint(body, rowNew)
				body = appendVarint(body, p.PID)
				body = e.appendAllFields(body, p)
				e.ratio.observe(p)
				if p.HasExt() {
					x.add(i, p.ProcessExt, extDiff(p.ProcessExt, &snapshot.ProcessExt{}))
				}
				continue
			}
			kind = rowSkip
			j = k
		}
		b := &base[j]
		if p.ProcessExt != b.ProcessExt && (p.HasExt() || b.HasExt()) {
			pe, be := p.Ext(), b.Ext()
			x.add(i, &pe, extDiff(&pe, &be))
		}
		var mask uint64
		if p.PPID != b.PPID {
			mask |= fPPID
		}
		if p.Name != b.Name {
			mask |= fName
		}
		if !sameCmdline(p.Cmdline, b.Cmdline) {
			mask |= fCmdline
		}
		if p.Username != b.Username {
			mask |= fUsername
		}
		if p.Status != b.Status {
			mask |= fStatus
		}
		if p.CreateTime != b.CreateTime {
			mask |= fCreateTime
		}
		if p.NumThreads != b.NumThreads {
			mask |= fNumThreads
		}
		if math.Float64bits(p.CPUPercent) != math.Float64bits(b.CPUPercent) {
			mask |= fCPU
		}
		if math.Float64bits(p.MemoryMB) != math.Float64bits(b.MemoryMB) {
			mask |= fMem
		}
		if math.Float64bits(p.MemoryPercent) != math.Float64bits(b.MemoryPercent) {
			mask |= fMemPct
		}
		body = appendUvarint(body, mask<<rowShift|kind)
		if kind == rowSkip {
			body = appendVarint(body, int64(j-(prev+1)))
		}
		prev = j
		if mask&fPPID != 0 {
			body = appendVarint(body, p.PPID)
		}
		if mask&fName != 0 {
			body = appendUvarint(body, t.id(p.Name))
		}
		if mask&fCmdline != 0 {
			body = appendUvarint(body, t.cmdID(p.Cmdline))
		}
		if mask&fUsername != 0 {
			body = appendUvarint(body, t.id(p.Username))
		}
		if mask&fStatus != 0 {
			body = appendUvarint(body, t.id(p.Status))
		}
		if mask&fCreateTime != 0 {
			body = e.appendTime(body, p.CreateTime)
		}
		if mask&fNumThreads != 0 {
			body = appendVarint(body, int64(p.NumThreads))
		}
		if mask&fCPU != 0 {
			body = appendFloat(body, p.CPUPercent)
		}
		if mask&fMem != 0 {
			body = appendFloat(body, p.MemoryMB)
		}
		if mask&fMemPct != 0 {
			body = appendFloatPred(body, p.MemoryPercent, e.ratio.predict(p.MemoryMB))
		}
		e.ratio.observe(p)
	}
	out := appendUvarint(make([]byte, 0, len(body)+len(t.list)*16+8), uint64(len(procs)))
	out = t.appendTo(out)
	out = append(out, body...)
	return x.appendTo(out)
}

func sameCmdline(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// --- reading ---

// reader decodes varints from a blob, remembering the first error so that
// callers check once; corrupt data is an error, never a panic.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errCorrupt
	}
	r.b = nil
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) float() float64 { return r.floatPred(0) }

// floatPred reads appendFloatPred's output.
func (r *reader) floatPred(pred float64) float64 {
	return r.floatTag(r.uvarint(), pred)
}

// floatTag reads the rest of a float whose tag was read.
func (r *reader) floatTag(tag uint64, pred float64) float64 {
	k := tag & 15
	switch {
	case tag == 14:
		return math.Float64frombits(math.Float64bits(pred) ^ r.uvarint())
	case k == 15:
		if len(r.b) < 8 {
			r.fail()
			return 0
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
		r.b = r.b[8:]
		return v
	case k < uint64(len(pow10)):
		return float64(tag>>4) / pow10[k]
	default:
		r.fail()
		return 0
	}
}

// readStrings reads a string table; all its strings are substrings of one
// copy of the table's bytes, so a table costs two allocations, not one per
// string.
func (r *reader) readStrings() []string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) { // each string costs at least its length byte
		r.fail()
		return nil
	}
	type span struct{ off, len int }
	spans := make([]span, n)
	data := make([]byte, 0, len(r.b))
	for i := range spans {
		l := r.uvarint()
		if r.err != nil || l > uint64(len(r.b)) {
			r.fail()
			return nil
		}
		spans[i] = span{len(data), int(l)}
		data = append(data, r.b[:l]...)
		r.b = r.b[l:]
	}
	all := string(data)
	out := make([]string, n)
	for i, sp := range spans {
		out[i] = all[sp.off : sp.off+sp.len]
	}
	return out
}

func (r *reader) str(tab []string) string {
	i := r.uvarint()
	if i >= uint64(len(tab)) {
		r.fail()
		return ""
	}
	return tab[i]
}

// cmdline reads a cmdID; the returned pointers of equal ids are shared.
func (r *reader) cmdline(tab []string, ptrs []*string) *string {
	i := r.uvarint()
	if i == 0 {
		return nil
	}
	i--
	if i >= uint64(len(tab)) {
		r.fail()
		return nil
	}
	if ptrs[i] == nil {
		s := tab[i]
		ptrs[i] = &s
	}
	return ptrs[i]
}

func (r *reader) count() int {
	n := r.uvarint()
	// Every row costs at least one byte, which bounds the allocation a
	// corrupt count could ask for.
	if n > uint64(len(r.b)) {
		r.fail()
		return 0
	}
	return int(n)
}

// rowDecoder mirrors rowEncoder.
type rowDecoder struct {
	r        reader
	tab      []string
	ptrs     []*string // one *string per command line string, shared by rows
	prevTime int64
	ratio    pctRatio
	lastNs   int64 // the last time formatted, reused for equal times
	lastStr  string
}

// open reads what a keyframe and a delta start with, the row count and
// the string table, and makes the rows.
func (d *rowDecoder) open(raw []byte) ([]snapshot.Process, error) {
	d.r = reader{b: raw}
	n := d.r.count()
	d.tab = d.r.readStrings()
	if d.r.err != nil {
		return nil, d.r.err
	}
	d.ptrs = make([]*string, len(d.tab))
	return make([]snapshot.Process, n), nil
}

func (d *rowDecoder) time() string {
	tag := d.r.uvarint()
	switch tag {
	case 0:
		return ""
	case 1:
		d.prevTime += d.r.varint()
		if d.lastStr == "" || d.prevTime != d.lastNs {
			d.lastNs, d.lastStr = d.prevTime, formatTime(d.prevTime)
		}
		return d.lastStr
	}
	i := tag - 2
	if i >= uint64(len(d.tab)) {
		d.r.fail()
		return ""
	}
	return d.tab[i]
}

func (d *rowDecoder) allFields(p *snapshot.Process) {
	r := &d.r
	p.PPID = r.varint()
	p.Name = r.str(d.tab)
	p.Cmdline = r.cmdline(d.tab, d.ptrs)
	p.Username = r.str(d.tab)
	p.Status = r.str(d.tab)
	p.CreateTime = d.time()
	p.NumThreads = int32(r.varint())
	p.CPUPercent = r.float()
	p.MemoryMB = r.float()
	p.MemoryPercent = r.floatPred(d.ratio.predict(p.MemoryMB))
}

// decodeFull decodes encodeFull's output.
func decodeFull(raw []byte) ([]snapshot.Process, error) {
	var d rowDecoder
	out, err := d.open(raw)
	if err != nil {
		return nil, err
	}
	r := &d.r
	var prev int64
	for i := range out {
		p := &out[i]
		prev += r.varint()
		p.PID = prev
		d.allFields(p)
		if r.err != nil {
			return nil, r.err
		}
		d.ratio.observe(p)
	}
	return decodeExt(r, out)
}

// decodeDelta decodes encodeDelta's output against base.
func decodeDelta(raw []byte, base []snapshot.Process) ([]snapshot.Process, error) {
	var d rowDecoder
	out, err := d.open(raw)
	if err != nil {
		return nil, err
	}
	r, tab, ptrs := &d.r, d.tab, d.ptrs
	prev := -1
	for i := range out {
		p := &out[i]
		h := r.uvarint()
		kind := h & (1<<rowShift - 1)
		if kind == rowNew {
			p.PID = r.varint()
			d.allFields(p)
			if r.err != nil {
				return nil, r.err
			}
			d.ratio.observe(p)
			continue
		}
		j := prev + 1
		if kind == rowSkip {
			j += int(r.varint())
		} else if kind != rowNext {
			return nil, errCorrupt
		}
		if r.err != nil || j < 0 || j >= len(base) {
			return nil, errCorrupt
		}
		prev = j
		*p = base[j]
		mask := h >> rowShift
		if mask&fPPID != 0 {
			p.PPID = r.varint()
		}
		if mask&fName != 0 {
			p.Name = r.str(tab)
		}
		if mask&fCmdline != 0 {
			p.Cmdline = r.cmdline(tab, ptrs)
		}
		if mask&fUsername != 0 {
			p.Username = r.str(tab)
		}
		if mask&fStatus != 0 {
			p.Status = r.str(tab)
		}
		if mask&fCreateTime != 0 {
			p.CreateTime = d.time()
		}
		if mask&fNumThreads != 0 {
			p.NumThreads = int32(r.varint())
		}
		if mask&fCPU != 0 {
			p.CPUPercent = r.float()
		}
		if mask&fMem != 0 {
			p.MemoryMB = r.float()
		}
		if mask&fMemPct != 0 {
			p.MemoryPercent = r.floatPred(d.ratio.predict(p.MemoryMB))
		}
		if r.err != nil {
			return nil, r.err
		}
		d.ratio.observe(p)
	}
	return decodeExt(r, out)
}

// --- system_info ---

// sysTokens splits JSON text after every structural byte and quote. Two
// system_info documents from the same exporter have the same structure and
// differ in a few numbers, so their tokens line up one to one.
func sysTokens(b []byte) [][]byte {
	toks := make([][]byte, 0, len(b)/6)
	start := 0
	for i, c := range b {
		switch c {
		case ',', ':', '{', '}', '[', ']', '"':
			toks = append(toks, b[start:i+1])
			start = i + 1
		}
	}
	if start < len(b) {
		toks = append(toks, b[start:])
	}
	return toks
}

// encodeSysDelta lists the tokens of cur that differ from base (as gap from
// the previous changed token, then the new token). ok is false when the
// token counts differ or the delta would not be smaller than cur itself.
func encodeSysDelta(base [][]byte, cur []byte) (raw []byte, ok bool) {
	raw = make([]byte, 0, 64)
	i, prev, start := 0, 0, 0
	// Tokens of cur are compared as they are found (sysTokens would
	// allocate them all).
	tok := func(t []byte) bool {
		if i >= len(base) {
			return false
		}
		if !bytes.Equal(t, base[i]) {
			raw = appendUvarint(raw, uint64(i-prev))
			raw = appendUvarint(raw, uint64(len(t)))
			raw = append(raw, t...)
			prev = i
		}
		i++
		return len(raw) < len(cur)
	}
	for pos, c := range cur {
		switch c {
		case ',', ':', '{', '}', '[', ']', '"':
			if !tok(cur[start : pos+1]) {
				return nil, false
			}
			start = pos + 1
		}
	}
	if start < len(cur) && !tok(cur[start:]) {
		return nil, false
	}
	if i != len(base) {
		return nil, false
	}
	return raw, true
}

// decodeSysDelta rebuilds system_info from base's tokens and a delta.
func decodeSysDelta(raw []byte, base [][]byte) ([]byte, error) {
	r := &reader{b: raw}
	size := 0
	for _, t := range base {
		size += len(t)
	}
	out := make([]byte, 0, size+len(raw))
	next := 0 // first base token not yet copied
	prev := 0
	for len(r.b) > 0 {
		i := prev + int(r.uvarint())
		l := r.uvarint()
		if r.err != nil || i < next || i >= len(base) || l > uint64(len(r.b)) {
			return nil, errCorrupt
		}
		for ; next < i; next++ {
			out = append(out, base[next]...)
		}
		out = append(out, r.b[:l]...)
		r.b = r.b[l:]
		next = i + 1
		prev = i
	}
	for ; next < len(base); next++ {
		out = append(out, base[next]...)
	}
	return out, nil
}
