package ingest

import (
	"encoding/binary"
	"unicode/utf8"
	"unsafe"
)

// str reads a JSON string (the current byte is '"'). Invalid UTF-8 and
// lone surrogate escapes become U+FFFD, as encoding/json does.
func (d *decoder) str() (string, error) {
	b, err := d.strBytes()
	if err != nil {
		return "", err
	}
	return d.makeString(b), nil
}

// makeString copies b into the decoder's current chunk and returns a
// string over it: one allocation per 16 KiB of text instead of one per
// string (a 300-process body has ~1,000 strings; allocation was a fifth of
// decoding). A chunk is never written again below its length and never
// grown in place, so the strings handed out stay immutable, which is what
// unsafe.String requires.
func (d *decoder) makeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > 1024 {
		return string(b)
	}
	if cap(d.chunk)-len(d.chunk) < len(b) {
		d.chunk = make([]byte, 0, 16<<10)
	}
	start := len(d.chunk)
	d.chunk = append(d.chunk, b...)
	return unsafe.String(&d.chunk[start], len(b))
}

// strBytes reads a JSON string and returns its bytes, which alias the
// input or the scratch buffer: valid until the next read.
func (d *decoder) strBytes() ([]byte, error) {
	d.pos++ // opening quote
	data := d.data
	start := d.pos
	i := start
	// Fast path: plain ASCII without escapes, eight bytes at a time while
	// they are all plain (command lines are long), then one table lookup a
	// byte.
	for i+8 <= len(data) && plain8(binary.LittleEndian.Uint64(data[i:])) {
		i += 8
	}
	for i < len(data) && plainASCII[data[i]] {
		i++
	}
	if i < len(data) && data[i] == '"' {
		d.pos = i + 1
		return data[start:i], nil
	}
	buf := append(d.scratch[:0], data[start:i]...)
	for {
		if i >= len(data) {
			d.pos = i
			return nil, d.syntax("unexpected end of input in a string")
		}
		c := data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			d.scratch = buf
			return buf, nil
		case c < 0x20:
			d.pos = i
			return nil, d.syntax("control character 0x%02x in a string must be escaped", c)
		case c == '\\':
			i++
			if i >= len(data) {
				d.pos = i
				return nil, d.syntax("unexpected end of input in a string")
			}
			switch e := data[i]; {
			case unescape[e] != 0:
				buf = append(buf, unescape[e])
				i++
			case e == 'u':
				r, n := hex4(data[i+1:])
				if n < 0 {
					d.pos = i
					return nil, d.syntax("invalid \\u escape")
				}
				i += 5
				if r >= 0xd800 && r < 0xdc00 {
					// A high surrogate wants a low one right after.
					if i+1 < len(data) && data[i] == '\\' && data[i+1] == 'u' {
						r2, n2 := hex4(data[i+2:])
						if n2 >= 0 && r2 >= 0xdc00 && r2 < 0xe000 {
							r = 0x10000 + (r-0xd800)<<10 + (r2 - 0xdc00)
							i += 6
						} else {
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				} else if r >= 0xdc00 && r < 0xe000 {
					r = utf8.RuneError
				}
				buf = utf8.AppendRune(buf, r)
			default:
				d.pos = i
				return nil, d.syntax("invalid escape \\%c", e)
			}
		case c < 0x80:
			buf = append(buf, c)
			i++
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				buf = append(buf, "\uFFFD"...)
			} else {
				buf = append(buf, data[i:i+size]...)
			}
			i += size
		}
	}
}

// plain8 reports whether all eight bytes of w are plainASCII: none has
// the high bit set, none is below 0x20, and none is '"' or '\\'. The
// usual SWAR tests: (x - 0x01..) & ^x & 0x80.. flags the zero bytes of x,
// exactly when no byte is >= 0x80 (checked first), so no borrow crosses
// a byte.
func plain8(w uint64) bool {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	if w&high != 0 {
		return false
	}
	hasZero := func(x uint64) bool { return (x-ones)&^x&high != 0 }
	// Below 0x20: adding 0x60 to each byte (all < 0x80, so no carry out
	// of a byte) sets the high bit exactly for bytes >= 0x20.
	if (w+0x6060606060606060)&high != high {
		return false
	}
	return !hasZero(w^(ones*'"')) && !hasZero(w^(ones*'\\'))
}

// plainASCII marks the bytes a string's fast path copies as they are.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func hex4(b []byte) (rune, int) {
	if len(b) < 4 {
		return 0, -1
	}
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, -1
		}
	}
	return r, 4
}

// skipString validates a string without building it.
func (d *decoder) skipString() error {
	d.pos++
	data := d.data
	i := d.pos
	for i < len(data) {
		c := data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return nil
		case c == '\\':
			if i+1 >= len(data) {
				d.pos = i
				return d.syntax("unexpected end of input in a string")
			}
			switch e := data[i+1]; {
			case unescape[e] != 0:
				i += 2
			case e == 'u':
				if _, n := hex4(data[i+2:]); n < 0 {
					d.pos = i
					return d.syntax("invalid \\u escape")
				}
				i += 6
			default:
				d.pos = i
				return d.syntax("invalid escape")
			}
		case c < 0x20:
			d.pos = i
			return d.syntax("control character 0x%02x in a string must be escaped", c)
		default:
			i++
		}
	}
	d.pos = i
	return d.syntax("unexpected end of input in a string")
}

// fixUTF8 appends b to dst with each invalid UTF-8 byte replaced by U+FFFD.
func fixUTF8(dst, b []byte) []byte {
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, b[:size]...)
		}
		b = b[size:]
	}
	return dst
}

// unescape maps the byte after a backslash to what it stands for, 0 for
// \u (read apart) and for anything that is not an escape.
var unescape = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}
