package ingest

import (
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
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

func TestDecodeUTF8Replacement(t *testing.T) {
	in := "{\"hostname\":\"h\xff\",\"captured_at\":\"2026-11-25T17:00:00Z\"," +
		"\"system_info\":{\"k\":\"v\xc3\"}," +
		"\"processes\":[{\"pid\":1,\"ppid\":0,\"name\":\"bad\xfe\xffname\",\"cpu_percent\":0,\"memory_mb\":0," +
		"\"cmdline\":\"\\ud800 lone \\ud83d\\ude00 pair \\u00e9\"}]}"
	d, err := Decode([]byte(in), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Snapshot.Hostname != "h\uFFFD" {
		t.Errorf("hostname %q", d.Snapshot.Hostname)
	}
	if got := d.Snapshot.Processes[0].Name; got != "bad\uFFFD\uFFFDname" {
		t.Errorf("name %q", got)
	}
	if got := *d.Snapshot.Processes[0].Cmdline; got != "\uFFFD lone 😀 pair é" {
		t.Errorf("cmdline %q", got)
	}
	if !utf8.Valid(d.Snapshot.SystemInfo) || !json.Valid(d.Snapshot.SystemInfo) {
		t.Errorf("system_info must become valid UTF-8 JSON: %q", d.Snapshot.SystemInfo)
	}
}
