package snapshot

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestPlain8 checks the eight-byte fast path against the byte table: every
// byte value in every position among plain fillers, then random words.
func TestPlain8(t *testing.T) {
	want := func(b []byte) bool {
		for _, c := range b {
			if !plainASCII[c] {
				return false
			}
		}
		return true
	}
	check := func(b []byte) {
		t.Helper()
		if got := plain8(binary.LittleEndian.Uint64(b)); got != want(b) {
			t.Fatalf("plain8(%q) = %v, the table says %v", b, got, want(b))
		}
	}
	for pos := range 8 {
		for c := range 256 {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			check(b)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		var b [8]byte
		for i := range b {
			// Mostly printable ASCII, so that both answers are common.
			if r.IntN(10) == 0 {
				b[i] = byte(r.IntN(256))
			} else {
				b[i] = byte(0x20 + r.IntN(0x60))
			}
		}
		check(b[:])
	}
}
