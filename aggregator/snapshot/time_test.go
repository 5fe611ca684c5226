package snapshot

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		got, msg := ParseTime(in)
		if want == "" {
			if msg == "" {
				t.Errorf("%q: want an error, got %v", in, got)
			}
			return
		}
		if msg != "" || got.Format(CapturedAtFormat) != want {
			t.Errorf("%q: got %v %q, want %s", in, got.Format(CapturedAtFormat), msg, want)
		}
	}
	f("2026-11-25T17:00:00Z", "2026-11-25T17:00:00.000Z")
	f("2026-11-25T17:00:00.123456789Z", "2026-11-25T17:00:00.123Z")
	f("2026-11-25T17:00:00.9999-05:30", "2026-11-25T22:30:00.999Z")
	f("2026-11-25T00:30:00+01:00", "2026-11-24T23:30:00.000Z")
	f("2026-11-25t17:00:00z", "") // Go's RFC 3339 parser wants upper case T and Z
	f("2026-13-25T17:00:00Z", "")
	f("", "")
	f("now", "")
}

// TestScanUTC: whenever the fast path answers, it answers what time.Parse
// (RFC 3339) gives, to the nanosecond; it declines what ParseTime rejects;
// and it does answer for the form exporters send (UTC, "Z", any number of
// fraction digits, a valid date).
func TestScanUTC(t *testing.T) {
	plain := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$`)
	checked, fast := 0, 0
	check := func(s string) {
		t.Helper()
		checked++
		sec, nsec, ok := ScanUTC(s)
		if sb, nb, okb := ScanUTC([]byte(s)); sb != sec || nb != nsec || okb != ok {
			t.Fatalf("%q: string and []byte answers differ", s)
		}
		want, err := time.Parse(time.RFC3339Nano, s)
		_, msg := ParseTime(s)
		if ok {
			fast++
			if err != nil || msg != "" {
				t.Fatalf("%q: fast path accepted what time.Parse (%v) or ParseTime (%s) rejects", s, err, msg)
			}
			if got := time.Unix(sec, int64(nsec)); !got.Equal(want) {
				t.Fatalf("%q: fast path %v, time.Parse %v", s, got.UTC(), want)
			}
		} else if msg == "" && plain.MatchString(s) {
			t.Fatalf("%q: the fast path declined an exporter's form", s)
		}
	}
	for _, s := range []string{"2026-11-25T17:00:00Z", "2026-11-25T17:00:00.1Z", "2026-11-25T17:00:00.123456789Z",
		"2026-11-25T17:00:00.1234567891234Z", "0001-01-01T00:00:00Z", "0000-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999999Z",
		"1969-12-31T23:59:59.5Z", "1970-01-01T00:00:00Z", "2262-04-11T23:47:16.854775807Z", "2262-04-12T00:00:00Z",
		"2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z", "2000-02-29T12:00:00Z", "1900-02-29T12:00:00Z",
		"2026-04-31T00:00:00Z", "2026-12-31T24:00:00Z", "2026-12-31T23:60:00Z", "2026-12-31T23:59:60Z",
		"2026-11-25T17:00:00.Z", "2026-11-25T17:00:00,123Z", "2026-11-25T17:00:00.12aZ", "2026-11-25T17:00:00z",
		"2026-11-25t17:00:00Z", "2026-11-25T17:00:00+00:00", "2026-11-25T17:00:00ZZ", "2026-11-25T17:00:00",
		"+026-11-25T17:00:00Z", "-026-11-25T17:00:00Z", "2026-1-25T17:00:00Z", ""} {
		check(s)
	}
	r := rand.New(rand.NewPCG(5, 6))
	fracs := []string{"", ".", ".0", ".9", ".09", ".999", ".1000", ".123456789", ".1234567899999", ",5", ".5a"}
	zones := []string{"Z", "Z", "Z", "z", "+00:00", "-05:30", "ZZ", ""}
	for range 100000 {
		s := fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d%s%s",
			r.IntN(10000), r.IntN(14), r.IntN(33), r.IntN(26), r.IntN(62), r.IntN(62),
			fracs[r.IntN(len(fracs))], zones[r.IntN(len(zones))])
		check(s)
		if r.IntN(4) == 0 { // and a byte changed somewhere
			b := []byte(s)
			const alphabet = "0123456789-:.TZ+ x\xff"
			b[r.IntN(len(b))] = alphabet[r.IntN(len(alphabet))]
			check(string(b))
		}
	}
	if fast < checked/10 {
		t.Fatalf("the fast path answered only %d of %d times", fast, checked)
	}
}
