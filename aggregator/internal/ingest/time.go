package ingest

import (
	"github.com/procscope/procscope/aggregator/snapshot"
)

// canonicalTime writes an RFC 3339 time in UTC ("Z", the form exporters
// send) to dst as snapshot.ParseTime(s).Format(CapturedAtFormat) would,
// without building a time.Time: with a create_time on every process, parse
// and format were most of a body's decoding. snapshot.ScanUTC checks the
// fields; the date and time are copied as sent and the fraction truncated
// to milliseconds. It returns false for any other form (an offset, a
// comma, missing digits...); the caller then parses the general way.
// TestCanonicalTime checks it against ParseTime+Format.
func canonicalTime(b []byte, dst *[canonicalTimeLen]byte) bool {
	_, nsec, ok := snapshot.ScanUTC(b)
	if !ok {
		return false
	}
	const n = len("2006-01-02T15:04:05")
	copy(dst[:n], b[:n])
	ms := nsec / 1e6
	dst[n] = '.'
	dst[n+1] = byte('0' + ms/100)
	dst[n+2] = byte('0' + ms/10%10)
	dst[n+3] = byte('0' + ms%10)
	dst[n+4] = 'Z'
	return true
}

// canonicalTimeLen is the length of a time in CapturedAtFormat in UTC.
const canonicalTimeLen = len("2006-01-02T15:04:05.000Z")

// capturedAt reads the top-level captured_at: any RFC 3339 time, kept as
// a time and as its canonical text.
func (d *decoder) capturedAt(out *Decoded) error {
	if d.peek() != '"' {
		d.bad("captured_at must be an RFC 3339 string")
		return d.skipValue(0)
	}
	s, err := d.str()
	if err != nil {
		return err
	}
	t, msg := snapshot.ParseTime(s)
	if msg != "" {
		d.bad("captured_at: %s", msg)
		return nil
	}
	out.CapturedAt = t
	out.Snapshot.CapturedAt = t.Format(snapshot.CapturedAtFormat)
	return nil
}
