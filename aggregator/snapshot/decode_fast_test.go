package snapshot

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/procscope/procscope/tools/loadgen/gen"
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
		want, msg := ParseTime(s)
		if ok {
			fast++
			if msg != "" {
				t.Fatalf("%q: fast path accepted what ParseTime rejects (%s)", s, msg)
			}
			if got := string(buf[:]); got != want.Format(CapturedAtFormat) {
				t.Fatalf("%q: fast path %q, ParseTime+Format %q", s, got, want.Format(CapturedAtFormat))
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

// TestFastNumbers: fastUint and fastFloat, where they answer, read the
// same value and stop at the same byte as the general path (number, uint,
// nonNegFloat), and they answer for the plain numbers exporters write.
func TestFastNumbers(t *testing.T) {
	plainInt := regexp.MustCompile(`^(0|[1-9]\d{0,17})$`)
	plainDec := regexp.MustCompile(`^(0|[1-9]\d*)(\.\d+)?$`)
	check := func(num, after string) {
		t.Helper()
		in := []byte(num + after)
		for _, limit := range []int64{math.MaxInt64, math.MaxInt32} {
			fast := decoder{data: in}
			v, ok := fast.fastUint(uint64(limit))
			slow := decoder{data: in}
			sv, sok, serr := slow.uint(0, "pid", limit)
			if ok && (serr != nil || !sok || sv != v || slow.pos != fast.pos || slow.invalid != nil) {
				t.Fatalf("fastUint(%q, %d) = %d at %d; general path %d %v %v at %d", in, limit, v, fast.pos, sv, sok, serr, slow.pos)
			}
			if !ok && fast.pos != 0 {
				t.Fatalf("fastUint(%q) declined but moved to %d", in, fast.pos)
			}
			if !ok && sok && serr == nil && plainInt.MatchString(num) && !strings.ContainsAny(after[:min(1, len(after))], "0123456789.eE") {
				t.Fatalf("fastUint(%q, %d) declined a plain integer", in, limit)
			}
		}
		fast := decoder{data: in}
		v, ok := fast.fastFloat()
		slow := decoder{data: in}
		sv, sok, serr := slow.nonNegFloat(0, "cpu_percent")
		if ok && (serr != nil || !sok || math.Float64bits(sv) != math.Float64bits(v) || slow.pos != fast.pos || slow.invalid != nil) {
			t.Fatalf("fastFloat(%q) = %v at %d; general path %v %v %v at %d", in, v, fast.pos, sv, sok, serr, slow.pos)
		}
		if ok {
			if want, _ := strconv.ParseFloat(string(in[:fast.pos]), 64); want != v {
				t.Fatalf("fastFloat(%q) = %v, strconv %v", in, v, want)
			}
		}
		if !ok && fast.pos != 0 {
			t.Fatalf("fastFloat(%q) declined but moved to %d", in, fast.pos)
		}
		if !ok && plainDec.MatchString(num) && len(strings.ReplaceAll(num, ".", "")) <= 15 &&
			!strings.ContainsAny(after[:min(1, len(after))], "0123456789.eE") {
			t.Fatalf("fastFloat(%q) declined a plain decimal", in)
		}
	}
	afters := []string{"", ",", "}", "]", " ", "x", "0", ".", ".5", "e5", "E-1", "\"", "-"}
	f := func(nums ...string) {
		t.Helper()
		for _, n := range nums {
			for _, a := range afters {
				check(n, a)
			}
		}
	}
	f("0", "1", "9", "10", "01", "00", "-0", "-1", "-", "+1", ".5", "0.", "0.0", "0.5", "12.6", "99.99",
		"2147483647", "2147483648", "4294967296", "9223372036854775807", "9223372036854775808",
		"999999999999999999", "1000000000000000000", "18446744073709551616", "123456789012345678901234",
		"123456789012345", "1234567890123456", "1234567890.12345", "1234567890.123456", "0.000000000000001",
		"0.0000000000000001", "1e5", "1.5e2", "1E2", "1.", "1.e5", "0x10", "null", "true", "\"1\"", "")
	r := rand.New(rand.NewPCG(9, 10))
	for range 100000 {
		var sb strings.Builder
		if r.IntN(20) == 0 {
			sb.WriteByte('-')
		}
		ip := strconv.FormatUint(r.Uint64N(1<<r.IntN(64)), 10)
		sb.WriteString(ip)
		if r.IntN(2) == 0 {
			sb.WriteByte('.')
			for range r.IntN(18) {
				sb.WriteByte(byte('0' + r.IntN(10)))
			}
		}
		check(sb.String(), afters[r.IntN(len(afters))])
	}
}

// TestFastProcessTakesExporterLayout: every process object of the three
// benchmark bodies, as encoding/json writes it (the exporter's layout),
// goes through the one-pass fast path, and comes out as encoding/json
// reads it (create_time normalised as the contract wants). The
// differential tests prove the fallback right; this proves the fast path
// is actually taken.
func TestFastProcessTakesExporterLayout(t *testing.T) {
	for name, in := range map[string][]byte{
		"evolve":   evolveBody(t, "web-1", 300, 3),
		"cmdline":  gen.Body(300, "web-1", "2026-11-25T17:00:00.123Z", true),
		"exporter": exporterBody(t),
	} {
		var s Snapshot
		if err := json.Unmarshal(in, &s); err != nil {
			t.Fatal(err)
		}
		for _, want := range s.Processes {
			obj, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			d := decoder{data: append(obj, ']')}
			var got Process
			if !d.fastProcess(&got) {
				t.Fatalf("%s: the fast path declined %s", name, obj)
			}
			if d.pos != len(obj) {
				t.Fatalf("%s: the fast path stopped at %d of %s", name, d.pos, obj)
			}
			if want.CreateTime != "" {
				ct, msg := ParseTime(want.CreateTime)
				if msg != "" {
					t.Fatal(msg)
				}
				want.CreateTime = ct.Format(CapturedAtFormat)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: fast path read %s as\n%+v, want\n%+v", name, obj, got, want)
			}
		}
	}
}

// TestDecodeReusesProcesses: a slice passed in DecodeOptions.Processes is
// used when big enough, and a reused (cleared) slice decodes exactly as a
// new one, even when the earlier body had fields the later one lacks.
func TestDecodeReusesProcesses(t *testing.T) {
	full := gen.Body(300, "web-1", "2026-11-25T17:00:00.123Z", true)
	bare := []byte(`{"hostname":"web-2","captured_at":"2026-11-25T17:00:01Z","system_info":{},` +
		`"processes":[{"pid":1,"ppid":0,"name":"init","cpu_percent":0,"memory_mb":1}]}`)
	buf := make([]Process, 0, 2000)
	a, err := Decode(full, DecodeOptions{Processes: buf})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Snapshot.Processes) != 300 || &a.Snapshot.Processes[0] != &buf[:1][0] {
		t.Fatal("the slice passed in was not used")
	}
	if a.Snapshot.Processes[0].Cmdline == nil || a.Snapshot.Processes[0].Username == "" {
		t.Fatal("the first body should set cmdline and username")
	}
	clear(buf[:cap(buf)])
	b, err := Decode(bare, DecodeOptions{Processes: buf})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := Decode(bare, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.Snapshot.Processes, fresh.Snapshot.Processes) {
		t.Fatalf("reused slice decoded %+v, a new one %+v", b.Snapshot.Processes, fresh.Snapshot.Processes)
	}
	// Too small a slice is not an error: Decode allocates its own.
	small := make([]Process, 0, 2)
	c, err := Decode(full, DecodeOptions{Processes: small})
	if err != nil || len(c.Snapshot.Processes) != 300 {
		t.Fatalf("small slice: %v, %d processes", err, len(c.Snapshot.Processes))
	}
}
