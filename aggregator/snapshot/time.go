package snapshot

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// CapturedAtFormat is how times are returned: RFC 3339 in UTC with
// milliseconds.
const CapturedAtFormat = "2006-01-02T15:04:05.000Z07:00"

// ParseTime parses an RFC 3339 time with any offset and returns it in UTC
// truncated to milliseconds, or a message saying what is wrong.
func ParseTime(s string) (time.Time, string) {
	if sec, nsec, ok := ScanUTC(s); ok {
		return time.Unix(sec, int64(nsec)).UTC().Truncate(time.Millisecond), ""
	}
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

// ScanUTC reads an RFC 3339 time in the form exporters send, UTC written
// "Z" with an optional fraction of any length ("2006-01-02T15:04:05Z",
// "2006-01-02T15:04:05.999999999Z"), without time.Parse: with a
// create_time on every process, parsing and formatting times was most of
// the ingest decoder's work and of the store's row encoding, which both
// use this one path. It checks the fields as Go's RFC 3339 parser does
// (month, day of that month in that year, hour, minute, second; no leap
// second) and rejects year 0 as ParseTime does. It returns the seconds
// since the Unix epoch and the fraction in nanoseconds (digits past the
// ninth dropped, as time.Parse does), or ok false for any other form (an
// offset, a comma, a missing digit...), which callers then hand to
// ParseTime's general path. TestScanUTC checks it against time.Parse.
func ScanUTC[T string | []byte](s T) (sec int64, nsec int32, ok bool) {
	const n = len("2006-01-02T15:04:05")
	if len(s) < n+1 || s[len(s)-1] != 'Z' ||
		s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, 0, false
	}
	num := func(from, to int) int {
		v := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, second := num(11, 13), num(14, 16), num(17, 19)
	if year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 {
		return 0, 0, false
	}
	// The fraction: nothing, or '.' and at least one digit.
	frac := len(s) - 1 - n
	if frac == 1 || (frac > 1 && s[n] != '.') {
		return 0, 0, false
	}
	scale := int32(1e9)
	for i := n + 1; i < len(s)-1; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		if scale > 1 {
			scale /= 10
			nsec += int32(c-'0') * scale
		}
	}
	days := daysSinceEpoch(year, month, day)
	return days*86400 + int64(hour*3600+minute*60+second), nsec, true
}

// daysIn is the number of days of month (1-12) in year (proleptic
// Gregorian).
func daysIn(month, year int) int {
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

// daysSinceEpoch counts the days from 1970-01-01 to the date (proleptic
// Gregorian; Howard Hinnant's days_from_civil).
func daysSinceEpoch(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era*146097 + doe - 719468)
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
