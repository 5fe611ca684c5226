package store

// The attribution and I/O fields of a process (unit, container_id,
// pod_uid, read/write_bytes_per_sec, issue 15) ride in an optional trailer
// after the rows of a keyframe or delta, with its own string table: a
// blob without it (every blob stored before these fields existed, and
// every blob of an exporter that does not send them) is byte for byte
// what it was, and reads back without them. The blob kinds do not change.
//
// Trailer: string table, entry count, then column by column: each entry's
// row position as a gap from the previous entry's, each entry's mask of
// the fields it has, then every unit, container, pod, read and write rate
// of the entries whose mask has it. A keyframe lists the rows that have any field; a
// delta the rows whose fields differ from their base row's (a new row's
// from none). Strings are table ids ("" is a value, meaning absent);
// rates are appendRate's.

import (
	"encoding/binary"
	"math"

	"github.com/procscope/procscope/aggregator/snapshot"
)

const (
	xUnit = 1 << iota
	xContainer
	xPod
	xRead
	xWrite
	xAll = xUnit | xContainer | xPod | xRead | xWrite
)

// Rates are stored as uvarint(m<<4 | e) meaning m*10^e for whole numbers
// (exporters send three significant digits, so m < 1000 and this is two
// bytes), rateRaw and the 8 raw bytes of anything else, rateAbsent for
// absent (null), which is not 0.
const (
	rateRaw    = 14
	rateAbsent = 15
)

func sameRate(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Float64bits(*a) == math.Float64bits(*b)
}

// extDiff is the mask of fields of x that differ from b's (b zero: from a
// process without any).
func extDiff(x, b *snapshot.ProcessExt) uint64 {
	var m uint64
	if x.Unit != b.Unit {
		m |= xUnit
	}
	if x.ContainerID != b.ContainerID {
		m |= xContainer
	}
	if x.PodUID != b.PodUID {
		m |= xPod
	}
	if !sameRate(x.ReadBytesPerSec, b.ReadBytesPerSec) {
		m |= xRead
	}
	if !sameRate(x.WriteBytesPerSec, b.WriteBytesPerSec) {
		m |= xWrite
	}
	return m
}

func appendRate(b []byte, r *float64) []byte {
	if r == nil {
		return binary.AppendUvarint(b, rateAbsent)
	}
	v := *r
	if v >= 0 && v < 1<<53 && v == math.Trunc(v) && !math.Signbit(v) {
		m, e := uint64(v), uint64(0)
		for m >= 10 && m%10 == 0 && e < rateRaw-1 {
			m, e = m/10, e+1
		}
		return binary.AppendUvarint(b, m<<4|e)
	}
	b = binary.AppendUvarint(b, rateRaw)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// extEncoder collects a blob's trailer entries while its rows are written,
// column by column (gaps, masks, then each field), so that runs of equal
// masks and of zero rates are what the compressor sees.
type extEncoder struct {
	t    *strTable
	cols [2 + 5][]byte
	n    uint64
	last int
}

// add records row i (in output order) when mask is not 0.
func (e *extEncoder) add(i int, x *snapshot.ProcessExt, mask uint64) {
	if mask == 0 {
		return
	}
	if e.t == nil {
		e.t = newStrTable(8)
		e.last = -1
	}
	c := &e.cols
	c[0] = binary.AppendUvarint(c[0], uint64(i-e.last-1))
	e.last = i
	e.n++
	c[1] = binary.AppendUvarint(c[1], mask)
	if mask&xUnit != 0 {
		c[2] = binary.AppendUvarint(c[2], e.t.id(x.Unit))
	}
	if mask&xContainer != 0 {
		c[3] = binary.AppendUvarint(c[3], e.t.id(x.ContainerID))
	}
	if mask&xPod != 0 {
		c[4] = binary.AppendUvarint(c[4], e.t.id(x.PodUID))
	}
	if mask&xRead != 0 {
		c[5] = appendRate(c[5], x.ReadBytesPerSec)
	}
	if mask&xWrite != 0 {
		c[6] = appendRate(c[6], x.WriteBytesPerSec)
	}
}

// appendTo writes the trailer, nothing when no row had an entry.
func (e *extEncoder) appendTo(out []byte) []byte {
	if e.n == 0 {
		return out
	}
	out = e.t.appendTo(out)
	out = binary.AppendUvarint(out, e.n)
	for _, c := range e.cols {
		out = append(out, c...)
	}
	return out
}

// rate reads appendRate's output into a slab.
func (r *reader) rate(slab *[]float64) *float64 {
	tag := r.uvarint()
	if tag == rateAbsent || r.err != nil {
		return nil
	}
	var v float64
	switch e := tag & 15; {
	case tag == rateRaw:
		if len(r.b) < 8 {
			r.fail()
			return nil
		}
		v = math.Float64frombits(binary.LittleEndian.Uint64(r.b))
		r.b = r.b[8:]
	case e < rateRaw:
		v = float64(tag>>4) * math.Pow10(int(e))
	default:
		r.fail()
		return nil
	}
	if len(*slab) == cap(*slab) {
		*slab = make([]float64, 0, max(64, 2*cap(*slab)))
	}
	*slab = append(*slab, v)
	return &(*slab)[len(*slab)-1]
}

// decodeExt applies the trailer, if the rows are followed by one (what
// remains of r), to out, and returns out.
func decodeExt(r *reader, out []snapshot.Process) ([]snapshot.Process, error) {
	if len(r.b) == 0 {
		return out, nil
	}
	tab := r.readStrings()
	n := r.count()
	if r.err != nil {
		return nil, r.err
	}
	rows := make([]int, n)
	masks := make([]uint64, n)
	i := -1
	for k := range rows {
		i += 1 + int(r.uvarint())
		if r.err != nil || i < 0 || i >= len(out) {
			return nil, errCorrupt
		}
		rows[k] = i
	}
	for k := range masks {
		masks[k] = r.uvarint()
		if r.err != nil || masks[k] == 0 || masks[k]&^xAll != 0 {
			return nil, errCorrupt
		}
	}
	// Each listed row gets a ProcessExt of its own, a copy of what it
	// had: a delta row still shares its keyframe row's, which the
	// keyframe (cached, read by others) keeps.
	exts := make([]snapshot.ProcessExt, n)
	for k, i := range rows {
		exts[k] = out[i].Ext()
	}
	var slab []float64
	for bit := uint64(xUnit); bit <= xWrite; bit <<= 1 {
		for k, m := range masks {
			if m&bit == 0 {
				continue
			}
			x := &exts[k]
			switch bit {
			case xUnit:
				x.Unit = r.str(tab)
			case xContainer:
				x.ContainerID = r.str(tab)
			case xPod:
				x.PodUID = r.str(tab)
			case xRead:
				x.ReadBytesPerSec = r.rate(&slab)
			case xWrite:
				x.WriteBytesPerSec = r.rate(&slab)
			}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, errCorrupt
	}
	for k, i := range rows {
		// A delta may clear every field: nil, as for a process that
		// never had any.
		if exts[k] == (snapshot.ProcessExt{}) {
			out[i].ProcessExt = nil
		} else {
			out[i].ProcessExt = &exts[k]
		}
	}
	return out, nil
}
