package ingest

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// TestCanonicalTime: whenever the create_time fast path answers, it
// answers exactly what ParseTime+Format gives, and it does answer for the
// form exporters send (UTC, "Z", 0-12 fraction digits, a valid date).
func TestCanonicalTime(t *testing.T) {
	plain := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$`)
	checked, fast := 0, 0
	check := func(s string) {
		t.Helper()
		checked++
		var buf [canonicalTimeLen]byte
		ok := canonicalTime([]byte(s), &buf)
		want, msg := snapshot.ParseTime(s)
		if ok {
			fast++
			if msg != "" {
				t.Fatalf("%q: fast path accepted what ParseTime rejects (%s)", s, msg)
			}
			if got := string(buf[:]); got != want.Format(snapshot.CapturedAtFormat) {
				t.Fatalf("%q: fast path %q, ParseTime+Format %q", s, got, want.Format(snapshot.CapturedAtFormat))
			}
		} else if msg == "" && plain.MatchString(s) {
			t.Fatalf("%q: the fast path declined an exporter's form", s)
		}
	}
	f := func(ss ...string) {
		t.Helper()
		for _, s := range ss {
			check(s)
		}
	}
	f("2026-11-25T17:00:00Z", "2026-11-25T17:00:00.1Z", "2026-11-25T17:00:00.12Z", "2026-11-25T17:00:00.123Z",
		"2026-11-25T17:00:00.1239Z", "2026-11-25T17:00:00.123456789Z", "2026-11-25T17:00:00.1234567891234Z",
		"0001-01-01T00:00:00Z", "0000-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999999Z",
		"2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z", "2000-02-29T12:00:00Z", "1900-02-29T12:00:00Z",
		"2026-04-31T00:00:00Z", "2026-12-31T24:00:00Z", "2026-12-31T23:60:00Z", "2026-12-31T23:59:60Z",
		"2026-00-10T00:00:00Z", "2026-13-10T00:00:00Z", "2026-01-00T00:00:00Z", "2026-01-32T00:00:00Z",
		"2026-11-25T17:00:00.Z", "2026-11-25T17:00:00,123Z", "2026-11-25T17:00:00.12aZ", "2026-11-25T17:00:00z",
		"2026-11-25t17:00:00Z", "2026-11-25T17:00:00+00:00", "2026-11-25T17:00:00.5-05:30", "2026-11-25T17:00:00ZZ",
		"2026-11-25T17:00:00", "2026-11-25 17:00:00Z", "+026-11-25T17:00:00Z", "2026-1-25T17:00:00Z",
		"2026-11-25T17:00:0Z", "-026-11-25T17:00:00Z", "2026-11-25T17:00:00.-1Z", "2026-11-25T17:00:00.+1Z", "")
	r := rand.New(rand.NewPCG(5, 6))
	fracs := []string{"", ".", ".0", ".9", ".09", ".999", ".1000", ".123456789", ".1234567899999", ",5", ".5a", ".-5"}
	zones := []string{"Z", "Z", "Z", "z", "+00:00", "-00:00", "+23:59", "-05:30", "+24:00", "ZZ", ""}
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
