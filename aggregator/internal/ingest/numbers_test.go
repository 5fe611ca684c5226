package ingest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestFastDecimal: the fast path gives exactly strconv's float for every
// decimal it accepts, and declines what it cannot do exactly.
func TestFastDecimal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(s string) {
		t.Helper()
		want, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("bad test input %q", s)
		}
		integer := !strings.ContainsAny(s, ".eE")
		got, ok := fastDecimal([]byte(s), integer)
		if ok && got != want {
			t.Fatalf("%s: fast path %v, strconv %v", s, got, want)
		}
	}
	for _, s := range []string{"0", "0.0", "12.6", "0.1", "0.3", "99.99", "123456789012345", "1234567890.12345",
		"0.000000000000001", "999999999999999", "4503599627370497", "1e5", "1.5E-3", "100.00"} {
		check(s)
	}
	for range 200000 {
		ip := r.Uint64N(1 << r.IntN(50))
		fr := r.Uint64N(1000000)
		check(fmt.Sprintf("%d.%0*d", ip, 1+r.IntN(6), fr%uint64(math.Pow10(1+r.IntN(6)))))
		check(strconv.FormatUint(ip, 10))
	}
	if _, ok := fastDecimal([]byte("1234567890123456"), true); ok {
		t.Error("16 digits must go to strconv")
	}
	if _, ok := fastDecimal([]byte("1e3"), false); ok {
		t.Error("exponents must go to strconv")
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
