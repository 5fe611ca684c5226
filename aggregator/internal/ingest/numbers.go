package ingest

import (
	"math"
	"strconv"
)

// fastUint reads a JSON integer from 0 to limit written plainly at the
// current byte: the digits are scanned and summed in one pass (number()
// then uint() walk them twice). It declines, moving nothing, whatever it
// does not read the way uint() would accept it (a sign, a fraction, an
// exponent, 19 digits or more, over limit, a space or another type); the
// caller then takes the general path, which also words the errors.
func (d *decoder) fastUint(limit uint64) (int64, bool) {
	v, i, ok := uintAt(d.data, d.pos, limit)
	if ok {
		d.pos = i
	}
	return v, ok
}

// uintAt is fastUint at data[i:]; it returns the value and where it ends.
func uintAt(data []byte, i int, limit uint64) (int64, int, bool) {
	if i >= len(data) {
		return 0, i, false
	}
	var n uint64
	switch c := data[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		n = uint64(c - '0')
		i++
		// 18 digits at most: below 10^18, so no overflow.
		end := min(len(data), i+17)
		for i < end && data[i] >= '0' && data[i] <= '9' {
			n = n*10 + uint64(data[i]-'0')
			i++
		}
	default:
		return 0, i, false
	}
	if i < len(data) {
		if c := data[i]; c == '.' || c == 'e' || c == 'E' || (c >= '0' && c <= '9') {
			return 0, i, false
		}
	}
	if n > limit {
		return 0, i, false
	}
	return int64(n), i, true
}

// fastFloat reads a non-negative decimal written plainly (no sign, no
// exponent) with at most 15 digits at the current byte, in one pass:
// the digits form an integer below 2^53 and 10^k (k <= 15) is exact, so
// one IEEE division is correctly rounded and equals strconv.ParseFloat's
// result (Clinger's fast path, as in fastDecimal). It declines, moving
// nothing, for anything else; the caller then takes the general path.
func (d *decoder) fastFloat() (float64, bool) {
	v, i, ok := floatAt(d.data, d.pos)
	if ok {
		d.pos = i
	}
	return v, ok
}

// floatAt is fastFloat at data[i:]; it returns the value and where it
// ends.
func floatAt(data []byte, i int) (float64, int, bool) {
	start := i
	if i >= len(data) {
		return 0, i, false
	}
	var m uint64
	switch c := data[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		// 16 digits stop the loop and fail the digit count below, so m
		// cannot overflow.
		end := min(len(data), i+16)
		for i < end && data[i] >= '0' && data[i] <= '9' {
			m = m*10 + uint64(data[i]-'0')
			i++
		}
	default:
		return 0, i, false
	}
	digits := i - start
	frac := 0
	if i < len(data) && data[i] == '.' {
		i++
		j := i
		end := min(len(data), i+16-digits)
		for i < end && data[i] >= '0' && data[i] <= '9' {
			m = m*10 + uint64(data[i]-'0')
			i++
		}
		frac = i - j
		if frac == 0 {
			return 0, i, false // "1." is a syntax error: let number() say so
		}
		digits += frac
	}
	if digits > 15 {
		return 0, i, false
	}
	if i < len(data) {
		if c := data[i]; c == 'e' || c == 'E' || (c >= '0' && c <= '9') {
			return 0, i, false
		}
	}
	if frac == 0 {
		return float64(m), i, true
	}
	return float64(m) / pow10[frac], i, true
}

// number scans a JSON number and returns its bytes and whether it is an
// integer (no fraction, no exponent).
func (d *decoder) number() ([]byte, bool, error) {
	start := d.pos
	data := d.data
	i := d.pos
	if i < len(data) && data[i] == '-' {
		i++
	}
	if i >= len(data) {
		d.pos = i
		return nil, false, d.syntax("unexpected end of input in a number")
	}
	switch {
	case data[i] == '0':
		i++
	case data[i] >= '1' && data[i] <= '9':
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	default:
		d.pos = i
		return nil, false, d.syntax("invalid number")
	}
	integer := true
	if i < len(data) && data[i] == '.' {
		integer = false
		i++
		j := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		if i == j {
			d.pos = i
			return nil, false, d.syntax("invalid number: digits must follow '.'")
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		integer = false
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		if i == j {
			d.pos = i
			return nil, false, d.syntax("invalid number: digits must follow the exponent")
		}
	}
	d.pos = i
	return data[start:i], integer, nil
}

// uint reads a non-negative JSON integer no larger than limit. ok is false
// when a content error was recorded.
func (d *decoder) uint(i int, key string, limit int64) (v int64, ok bool, err error) {
	c := d.peek()
	if c != '-' && (c < '0' || c > '9') {
		d.bad("processes[%d].%s must be a non-negative integer", i, key)
		return 0, false, d.skipValue(0)
	}
	num, integer, err := d.number()
	if err != nil {
		return 0, false, err
	}
	if !integer {
		// Client text kept short, as snapshot.ParseTime does; a number is
		// ASCII, so a byte count cuts no character.
		got := string(num)
		if len(got) > 64 {
			got = got[:64] + "..."
		}
		d.bad("processes[%d].%s must be an integer, got %s", i, key, got)
		return 0, false, nil
	}
	if num[0] == '-' {
		if string(num) == "-0" {
			return 0, true, nil
		}
		d.bad("processes[%d].%s must not be negative", i, key)
		return 0, false, nil
	}
	if len(num) > 19 {
		d.bad("processes[%d].%s is too large", i, key)
		return 0, false, nil
	}
	var n uint64
	for _, b := range num {
		n = n*10 + uint64(b-'0')
	}
	if n > uint64(limit) {
		d.bad("processes[%d].%s is too large", i, key)
		return 0, false, nil
	}
	return int64(n), true, nil
}

// nonNegFloat reads a non-negative finite JSON number.
func (d *decoder) nonNegFloat(i int, key string) (float64, bool, error) {
	c := d.peek()
	if c != '-' && (c < '0' || c > '9') {
		d.bad("processes[%d].%s must be a number", i, key)
		return 0, false, d.skipValue(0)
	}
	num, integer, err := d.number()
	if err != nil {
		return 0, false, err
	}
	var v float64
	if f, ok := fastDecimal(num, integer); ok {
		v = f
	} else {
		v, err = strconv.ParseFloat(string(num), 64)
		if err != nil || math.IsInf(v, 0) {
			d.bad("processes[%d].%s is out of range", i, key)
			return 0, false, nil
		}
	}
	if v < 0 {
		d.bad("processes[%d].%s must not be negative", i, key)
		return 0, false, nil
	}
	if v == 0 {
		v = 0 // turn -0 into 0
	}
	return v, true, nil
}

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// fastDecimal converts a plain non-negative decimal (no exponent) of at
// most 15 digits without strconv: the digits form an integer below 2^53
// and 10^k is exact, so one IEEE division is correctly rounded and gives
// exactly strconv.ParseFloat's result (Clinger's fast path, which strconv
// itself takes first). cpu_percent and memory_mb are such numbers in
// nearly every body; TestFastDecimal checks it against strconv.
func fastDecimal(num []byte, integer bool) (float64, bool) {
	if len(num) == 0 || num[0] == '-' || len(num) > 16 {
		return 0, false
	}
	var m uint64
	digits, frac := 0, -1
	for _, c := range num {
		switch {
		case c >= '0' && c <= '9':
			m = m*10 + uint64(c-'0')
			digits++
			if frac >= 0 {
				frac++
			}
		case c == '.' && !integer && frac < 0:
			frac = 0
		default:
			return 0, false // exponent or anything unexpected
		}
	}
	if digits > 15 {
		return 0, false
	}
	if frac <= 0 {
		return float64(m), true
	}
	return float64(m) / pow10[frac], true
}
