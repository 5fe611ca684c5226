package inflate

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/procscope/procscope/tools/loadgen/gen"
)

// need skips (or, with REQUIRE_E2E set, fails) when libdeflate is missing.
func need(t testing.TB) {
	t.Helper()
	if ok, err := Available(); !ok {
		if os.Getenv("REQUIRE_E2E") != "" {
			t.Fatalf("REQUIRE_E2E is set but libdeflate is not usable: %v (install Debian's libdeflate0)", err)
		}
		t.Skipf("SKIPPING: libdeflate is not usable here (%v); ingest uses its streaming gunzip instead", err)
	}
}

func gz(t testing.TB, level int, parts ...[]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, p := range parts {
		w, err := gzip.NewWriterLevel(&b, level)
		if err != nil {
			t.Fatal(err)
		}
		w.Name = "member" // FNAME set: libdeflate must skip it
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// reference is what the streaming reader makes of src (nil on error).
func reference(src []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil
	}
	return out
}

func always(int) bool { return true }

func TestGunzipMatchesStreamingReader(t *testing.T) {
	need(t)
	r := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(r.IntN(256))
	}
	body := gen.Body(300, "web-1", "2026-11-25T17:00:00.000Z", true)
	cases := map[string][]byte{
		"one member":         gz(t, 6, body),
		"stored":             gz(t, gzip.NoCompression, body),
		"head and tail":      append(gen.StoredMember([]byte(`{"hostname":"x",`)), gz(t, 9, body[1:])...),
		"empty member":       gz(t, 6, nil),
		"three members":      gz(t, 1, body[:10], nil, body[10:]),
		"incompressible":     gz(t, 6, random),
		"ISIZE understates":  gz(t, 6, body[:100], body), // first guess from the last member only
		"many small members": gz(t, 6, bytes.Split(body[:2000], []byte(","))...),
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			want := reference(src)
			if want == nil {
				t.Fatal("the reference reader rejects the case itself")
			}
			got, err := Gunzip(nil, src, 64<<20, always)
			if err != nil {
				t.Fatalf("Gunzip: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d (content differs)", len(got), len(want))
			}
		})
	}
}

func TestGunzipRejects(t *testing.T) {
	need(t)
	good := gz(t, 6, gen.Body(50, "web-1", "2026-11-25T17:00:00.000Z", false))
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		return b
	}
	cases := map[string][]byte{
		"empty":            {},
		"not gzip":         []byte(`{"hostname":"web-1"}`),
		"truncated":        good[:len(good)-5],
		"bad crc":          flip(len(good) - 6),
		"bad isize":        flip(len(good) - 2),
		"bad data":         flip(len(good) / 2),
		"trailing garbage": append(bytes.Clone(good), "junk"...),
		"trailing zeros":   append(bytes.Clone(good), 0, 0, 0, 0),
		"header only":      good[:10],
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := Gunzip(nil, src, 64<<20, always)
			if err == nil {
				// Whatever libdeflate accepts, the streaming reader must
				// accept identically, or ingest would answer differently.
				if want := reference(src); want == nil || !bytes.Equal(got, want) {
					t.Fatalf("accepted %d bytes the streaming reader rejects or reads differently", len(got))
				}
				return
			}
			if !errors.Is(err, ErrBad) {
				t.Fatalf("err %v, want ErrBad", err)
			}
		})
	}
}

func TestGunzipLimits(t *testing.T) {
	need(t)
	body := bytes.Repeat([]byte(`{"pid":1,"name":"a"},`), 10000) // 210,000 bytes
	src := gz(t, 6, body)
	if _, err := Gunzip(nil, src, len(body)-1, always); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one byte over the limit: err %v, want ErrTooLarge", err)
	}
	got, err := Gunzip(nil, src, len(body), always)
	if err != nil || len(got) != len(body) {
		t.Fatalf("exactly the limit: %d bytes, %v", len(got), err)
	}
	// A lying ISIZE (claims 4 GiB - 1) must not make it allocate that.
	lie := bytes.Clone(src)
	copy(lie[len(lie)-4:], []byte{0xff, 0xff, 0xff, 0xff})
	var asked []int
	_, err = Gunzip(nil, lie, 1<<20, func(c int) bool { asked = append(asked, c); return true })
	if err == nil {
		t.Fatal("a wrong ISIZE was accepted")
	}
	for _, c := range asked {
		if c > 1<<20 {
			t.Fatalf("asked for %d bytes with a limit of 1 MiB", c)
		}
	}
	// A truncated body (its last 4 bytes are no ISIZE then) is refused,
	// after at most two buffers: the first guess and the limit.
	asked = asked[:0]
	if _, err := Gunzip(nil, src[:len(src)-5], 1<<20, func(c int) bool { asked = append(asked, c); return true }); !errors.Is(err, ErrBad) {
		t.Fatalf("truncated: err %v, want ErrBad", err)
	}
	if len(asked) > 2 {
		t.Fatalf("truncated body: %d buffers (%v), want at most 2", len(asked), asked)
	}
	// A refused grow stops it.
	if _, err := Gunzip(nil, src, 64<<20, func(int) bool { return false }); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("refused grow: err %v, want ErrTooLarge", err)
	}
	// A bigger dst (a pooled buffer) does not lift the limit, and its
	// capacity is asked of grow like new memory.
	pooled := make([]byte, 0, 4<<20)
	if out, err := Gunzip(pooled, src, len(body)-1, always); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one byte over the limit into a bigger dst: %d bytes, err %v, want ErrTooLarge", len(out), err)
	}
	asked = asked[:0]
	got, err = Gunzip(pooled, src, len(body), func(c int) bool { asked = append(asked, c); return true })
	if err != nil || len(got) != len(body) || &got[0] != &pooled[:1][0] {
		t.Fatalf("into a bigger dst: %d bytes, %v (or dst not reused)", len(got), err)
	}
	if len(asked) == 0 || asked[len(asked)-1] < len(body) || asked[len(asked)-1] > len(body)+len(src) {
		t.Fatalf("grow asked %v for a %d-byte body in a %d-byte dst", asked, len(body), cap(pooled))
	}
	if _, err := Gunzip(pooled, src, 64<<20, func(int) bool { return false }); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("refused grow with a big dst: err %v, want ErrTooLarge", err)
	}
	// A gzip bomb stops at the limit.
	bomb := gz(t, 9, make([]byte, 50<<20))
	if _, err := Gunzip(nil, bomb, 4<<20, always); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("bomb: err %v, want ErrTooLarge", err)
	}
}

// BenchmarkGunzip compares libdeflate with klauspost/compress's streaming
// reader (the baseline, and the fallback) on a realistic body: the load
// generator's evolving 300-process host, no command lines.
//
//	go test -run '^$' -bench Gunzip -count 5 ./aggregator/internal/inflate
func BenchmarkGunzip(b *testing.B) {
	h := gen.NewHost(300, 7, false, 0)
	for range 5 {
		h.Step()
	}
	tail, err := gen.CompressTail(h.SystemInfo(), h.Processes(), gzip.DefaultCompression)
	if err != nil {
		b.Fatal(err)
	}
	src := append(gen.HeadMember(gen.QuoteHostname("web-1"), "2026-11-25T17:00:00.000Z"), tail...)
	want := reference(src)
	b.Run("libdeflate", func(b *testing.B) {
		need(b)
		b.SetBytes(int64(len(want)))
		var out []byte
		for b.Loop() {
			out, err = Gunzip(out[:0], src, 64<<20, always)
			if err != nil || len(out) != len(want) {
				b.Fatal(err)
			}
		}
	})
	b.Run("klauspost_streaming_baseline", func(b *testing.B) {
		b.SetBytes(int64(len(want)))
		zr, _ := gzip.NewReader(bytes.NewReader(src))
		var out bytes.Buffer
		for b.Loop() {
			out.Reset()
			if err := zr.Reset(bytes.NewReader(src)); err != nil {
				b.Fatal(err)
			}
			if _, err := out.ReadFrom(zr); err != nil || out.Len() != len(want) {
				b.Fatal(err)
			}
		}
	})
}
