package store

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/procscope/procscope/aggregator/snapshot"
)

func TestFloatEncodingExact(t *testing.T) {
	f := func(v float64, wantLen int) {
		t.Helper()
		b := appendFloat(nil, v)
		r := &reader{b: b}
		got := r.float()
		if r.err != nil || len(r.b) != 0 || math.Float64bits(got) != math.Float64bits(v) {
			t.Errorf("%v (%#x): got %v (%#x), err %v", v, math.Float64bits(v), got, math.Float64bits(got), r.err)
		}
		if wantLen > 0 && len(b) != wantLen {
			t.Errorf("%v: %d bytes, want %d", v, len(b), wantLen)
		}
	}
	f(0, 1)
	f(0.4, 1)        // 4<<4|1
	f(12.6, 2)       // 126<<4|1
	f(12.6171875, 5) // an RSS of 13230080 bytes in MiB: 126171875e-7
	f(100, 2)        // 100<<4|0
	pointOne, pointTwo := 0.1, 0.2
	f(pointOne+pointTwo, 9)    // 0.30000000000000004 has no short decimal form
	f(1.0/3, 9)                // raw
	f(math.Copysign(0, -1), 9) // -0 keeps its sign
	f(-1.5, 9)
	f(math.MaxFloat64, 9)
	f(math.SmallestNonzeroFloat64, 9)
	f(1e15, 9)
	f(math.Inf(1), 9)
	f(123456.789, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		f(math.Float64frombits(rng.Uint64()), 0)
		f(float64(rng.IntN(1e6))/100, 0)
	}
}

func TestFloatPredicted(t *testing.T) {
	f := func(v, pred float64) {
		t.Helper()
		b := appendFloatPred(nil, v, pred)
		r := &reader{b: b}
		got := r.floatPred(pred)
		if r.err != nil || len(r.b) != 0 || math.Float64bits(got) != math.Float64bits(v) {
			t.Errorf("%v pred %v: got %v, err %v", v, pred, got, r.err)
		}
		if len(b) > len(appendFloat(nil, v)) {
			t.Errorf("%v pred %v: prediction made it longer", v, pred)
		}
	}
	const total = 16 << 30
	var ratio pctRatio
	for i := 1; i < 2000; i++ {
		rss := uint64(i) * 40960
		p := snapshot.Process{MemoryMB: float64(rss) / (1 << 20), MemoryPercent: float64(rss) / total * 100}
		pred := ratio.predict(p.MemoryMB)
		f(p.MemoryPercent, pred)
		if i > 1 && len(appendFloatPred(nil, p.MemoryPercent, pred)) > 4 {
			t.Errorf("rss %d: predicted percentage takes %d bytes", rss, len(appendFloatPred(nil, p.MemoryPercent, pred)))
		}
		ratio.observe(&p)
	}
	f(5, 0)
	f(0, 7)
	f(math.NaN(), 1)
}

// TestFixedTimeSameAsSlow: wherever the fast path answers, it answers what
// parsing and formatting gives, for valid and broken strings of its shapes.
func TestFixedTimeSameAsSlow(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	digits := func(n, max int) string { return fmt.Sprintf("%0*d", n, rng.IntN(max)) }
	answered := 0
	for i := range 200_000 {
		s := fmt.Sprint(1900+rng.IntN(400)) + "-" + digits(2, 14) + "-" + digits(2, 33) + "T" + digits(2, 25) + ":" + digits(2, 61) + ":" + digits(2, 62)
		switch i % 3 {
		case 0:
			s += "Z"
		case 1:
			s += "." + digits(3, 1000) + "Z"
		default:
			s += "." + digits(3, 10)[:1] + "00Z"
		}
		if i%50 == 0 {
			b := []byte(s)
			b[rng.IntN(len(b))] = "x-:T.Z9"[rng.IntN(7)]
			s = string(b)
		}
		ns, ok, sure := fixedTime(s)
		if !sure {
			continue
		}
		answered++
		wantNs, wantOK := slowCanonicalTime(s)
		if ok != wantOK || (ok && ns != wantNs) {
			t.Fatalf("%q: fast %d %v, slow %d %v", s, ns, ok, wantNs, wantOK)
		}
	}
	if answered < 50_000 {
		t.Fatalf("the fast path answered only %d times", answered)
	}
}

func TestCanonicalTime(t *testing.T) {
	f := func(s string, canonical bool) {
		t.Helper()
		ns, ok := canonicalTime(s)
		if ok != canonical {
			t.Errorf("%q: canonical=%v, want %v", s, ok, canonical)
		}
		if ok && formatTime(ns) != s {
			t.Errorf("%q formats back as %q", s, formatTime(ns))
		}
	}
	f("2026-11-25T08:00:01.37Z", true)
	f("2026-11-25T08:00:01Z", true)
	f("1970-01-01T00:00:00Z", true)
	f("2026-11-25T08:00:01.370Z", false) // trailing zero: kept as text
	f("2026-11-25T09:00:01+01:00", false)
	f("2026-11-25 08:00:01Z", false)
	f("yesterday", false)
	f("", false)
	f("9999-12-31T23:59:59Z", false) // outside the nanosecond range
}

func TestSysDelta(t *testing.T) {
	f := func(base, cur string, wantDelta bool) {
		t.Helper()
		toks := sysTokens([]byte(base))
		if got := bytes.Join(toks, nil); string(got) != base {
			t.Fatalf("tokens of %q join to %q", base, got)
		}
		raw, ok := encodeSysDelta(toks, []byte(cur))
		if ok != wantDelta {
			t.Fatalf("%q -> %q: delta=%v, want %v", base, cur, ok, wantDelta)
		}
		if !ok {
			return
		}
		got, err := decodeSysDelta(raw, toks)
		if err != nil || string(got) != cur {
			t.Fatalf("%q -> %q: decoded %q, %v", base, cur, got, err)
		}
	}
	base := `{"cpu":{"usage_percent":12.5,"model":"x"},"memory":{"used_bytes":123456789,"total_bytes":16000000000},"load_average":{"load1":0.5}}`
	f(base, base, true)
	f(base, `{"cpu":{"usage_percent":3,"model":"x"},"memory":{"used_bytes":123456999,"total_bytes":16000000000},"load_average":{"load1":0.75}}`, true)
	f(base, `{"cpu":{"usage_percent":12.5,"model":"y, \"quoted\""},"memory":{"used_bytes":1,"total_bytes":16000000000},"load_average":{"load1":0.5}}`, false)
	f(`{}`, `{"a":1}`, false)
	f(`{"a":1}`, `["b",2]`, false) // not smaller than the document itself
}

// Delta and keyframe encodings round-trip random process tables, and
// corrupt or truncated blobs are errors, never panics.
func TestProcessCodecRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	h := newFakeHost(5, "x", 200)
	base := h.next().Processes
	idx := baseIndex(base)
	for i := range 200 {
		cur := h.next().Processes
		checkCodecStep(t, i, cur, base, idx, rng)
	}
}

// checkCodecStep checks one step of a random process table against its
// base: every tenth is reordered, so rows match away from their position;
// the keyframe and the delta round-trip, and 20 random corruptions of the
// delta are errors or garbage, never panics.
func checkCodecStep(t *testing.T, i int, cur, base []snapshot.Process, idx map[int64]int, rng *rand.Rand) {
	t.Helper()
	if i%10 == 0 {
		rng.Shuffle(len(cur), func(a, b int) { cur[a], cur[b] = cur[b], cur[a] })
	}
	full, err := decodeFull(encodeFull(cur))
	if err != nil || !equalProcs(full, cur) {
		t.Fatalf("step %d: keyframe round trip failed: %v", i, err)
	}
	raw := encodeDelta(cur, base, idx)
	got, err := decodeDelta(raw, base)
	if err != nil || !equalProcs(got, cur) {
		t.Fatalf("step %d: delta round trip failed: %v", i, err)
	}
	for range 20 {
		bad := bytes.Clone(raw)
		switch rng.IntN(3) {
		case 0:
			bad = bad[:rng.IntN(len(bad))]
		case 1:
			bad[rng.IntN(len(bad))] ^= byte(1 + rng.IntN(255))
		case 2:
			bad = append(bad, byte(rng.IntN(256)))
		}
		_, _ = decodeDelta(bad, base) // must not panic
		_, _ = decodeFull(bad)
	}
}

func equalProcs(a, b []snapshot.Process) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !sameCmdline(x.Cmdline, y.Cmdline) {
			return false
		}
		// Equal attribution and I/O, and nil on both sides or on neither:
		// an empty ProcessExt is never stored or read back.
		xe, ye := x.Ext(), y.Ext()
		if (x.ProcessExt == nil) != (y.ProcessExt == nil) || xe.Unit != ye.Unit || xe.ContainerID != ye.ContainerID || xe.PodUID != ye.PodUID ||
			!sameRate(xe.ReadBytesPerSec, ye.ReadBytesPerSec) || !sameRate(xe.WriteBytesPerSec, ye.WriteBytesPerSec) {
			return false
		}
		x.Cmdline, y.Cmdline = nil, nil
		x.ProcessExt, y.ProcessExt = nil, nil
		if x != y || math.Float64bits(x.CPUPercent) != math.Float64bits(y.CPUPercent) {
			return false
		}
	}
	return true
}

// FuzzDecode feeds arbitrary bytes to every decoder: stored data that was
// damaged must give an error, not a panic or a huge allocation.
func FuzzDecode(f *testing.F) {
	h := newFakeHost(9, "f", 20)
	base := h.next()
	cur := h.next()
	f.Add(encodeFull(cur.Processes))
	f.Add(encodeDelta(cur.Processes, base.Processes, baseIndex(base.Processes)))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	ext := append([]snapshot.Process(nil), cur.Processes...)
	addExt(ext, rand.New(rand.NewPCG(1, 1)), 3)
	f.Add(encodeFull(ext))
	f.Add(encodeDelta(ext, base.Processes, baseIndex(base.Processes)))
	toks := sysTokens(base.SystemInfo)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeFull(b)
		_, _ = decodeDelta(b, base.Processes)
		_, _ = decodeSysDelta(b, toks)
		_, _, _ = openBlob(b)
		_, _, _ = openBlob(append([]byte{blobS2 | blobFull}, b...))
	})
}

// TestBlobCompressions: deltas and keyframes are S2, small blobs raw, and
// both open to the same bytes; damaged or unknown ones are refused.
func TestBlobCompressions(t *testing.T) {
	raw := bytes.Repeat([]byte("delta rows of varints, with some repetition; "), 40)
	d := sealBlob(blobDelta, raw)
	f := sealBlob(blobFull, raw)
	if d[0] != blobDelta|blobS2 || f[0] != blobFull|blobS2 {
		t.Fatalf("headers %#x %#x, want S2 delta and keyframe", d[0], f[0])
	}
	small := sealBlob(blobDelta, []byte("tiny"))
	for name, blob := range map[string][]byte{"s2 delta": d, "s2 keyframe": f} {
		kind, got, err := openBlob(blob)
		if err != nil || !bytes.Equal(got, raw) || kind != blob[0]&blobKindMask {
			t.Fatalf("%s: kind %d, %d bytes, %v", name, kind, len(got), err)
		}
	}
	if kind, got, err := openBlob(small); err != nil || string(got) != "tiny" || kind != blobDelta {
		t.Fatalf("raw blob: %d %q %v", kind, got, err)
	}
	bad := bytes.Clone(d)
	bad[len(bad)/2] ^= 0xff
	// A development version stored zstd frames under the 0x80 bit; none
	// was released, so a whole, valid frame is as unknown as any other.
	enc, err := zstd.NewWriter(nil, zstd.WithZeroFrames(true))
	if err != nil {
		t.Fatal(err)
	}
	zstdBlob := append([]byte{blobDelta | 0x80}, enc.EncodeAll(raw, nil)...)
	_ = enc.Close()
	for name, blob := range map[string][]byte{
		"damaged s2":   bad,
		"cut s2":       d[:len(d)/2],
		"both bits":    append([]byte{blobDelta | blobS2 | 0x80}, d[1:]...),
		"zstd":         zstdBlob,
		"empty":        {},
		"huge s2 size": {blobDelta | blobS2, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		if _, _, err := openBlob(blob); err == nil {
			t.Fatalf("%s: opened without an error", name)
		}
	}
}
