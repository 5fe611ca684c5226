package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// TestCodecPreExtBlobs: a keyframe and a delta written by the codec before
// attribution and I/O existed (testdata/codec, made at commit 840171e)
// read back without those fields, and a table without them encodes to the
// very same bytes as before.
func TestCodecPreExtBlobs(t *testing.T) {
	t.Parallel()
	full, err := os.ReadFile("testdata/codec/pre-ext-full.bin")
	if err != nil {
		t.Fatal(err)
	}
	delta, err := os.ReadFile("testdata/codec/pre-ext-delta.bin")
	if err != nil {
		t.Fatal(err)
	}
	h := newFakeHost(11, "old", 50)
	base, cur := h.next().Processes, h.next().Processes
	gotBase, err := decodeFull(full)
	if err != nil || !equalProcs(gotBase, base) {
		t.Fatalf("old keyframe: %v", err)
	}
	gotCur, err := decodeDelta(delta, gotBase)
	if err != nil || !equalProcs(gotCur, cur) {
		t.Fatalf("old delta: %v", err)
	}
	for _, p := range append(gotBase, gotCur...) {
		if p.ProcessExt != nil {
			t.Fatalf("old blob read back with attribution or I/O: %+v", p)
		}
	}
	if !bytes.Equal(encodeFull(base), full) || !bytes.Equal(encodeDelta(cur, base, baseIndex(base)), delta) {
		t.Fatal("a table without the new fields no longer encodes as before")
	}
}

// addExt gives a fake host's processes attribution and I/O that change
// from one snapshot to the next as a real host's do: units fixed per PID,
// rates moving on a few processes, some absent, one process gaining and
// one losing its unit.
func addExt(procs []snapshot.Process, rng *rand.Rand, step int) {
	for i := range procs {
		p := &procs[i]
		x := p.Ext()
		if p.PID%3 != 0 {
			x.Unit = fmt.Sprintf("system.slice/u%d.service", p.PID%17)
		}
		if p.PID%11 == 0 {
			x.ContainerID = fmt.Sprintf("%064x", p.PID)
			x.PodUID = "8a9b0c1d-2e3f-4a5b-8c7d-9e0f1a2b3c4d"
		}
		if p.PID == int64(step) {
			x.Unit = ""
		}
		switch {
		case p.PID%5 == 0: // refused: absent
		case rng.IntN(10) == 0:
			r, w := float64(rng.IntN(1<<20)), float64(rng.IntN(1<<16))/3
			x.ReadBytesPerSec, x.WriteBytesPerSec = &r, &w
		default:
			z := 0.0
			x.ReadBytesPerSec, x.WriteBytesPerSec = &z, &z
		}
		p.SetExt(x)
	}
}

func TestCodecExtRandom(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	h := newFakeHost(7, "x", 200)
	base := h.next().Processes
	addExt(base, rng, 0)
	idx := baseIndex(base)
	for i := range 100 {
		cur := h.next().Processes
		if i%4 != 3 { // and every fourth one without: a downgraded exporter
			addExt(cur, rng, i)
		}
		checkCodecStep(t, i, cur, base, idx, rng)
	}
}

// TestCodecExtAbsentIsNotZero: an absent rate and a rate of 0 stay apart.
func TestCodecExtAbsentIsNotZero(t *testing.T) {
	t.Parallel()
	z := 0.0
	procs := []snapshot.Process{{PID: 1, Name: "a"}, {PID: 2, Name: "b"}}
	procs[0].SetExt(snapshot.ProcessExt{ReadBytesPerSec: &z})
	procs[1].SetExt(snapshot.ProcessExt{Unit: "u.service"})
	got, err := decodeFull(encodeFull(procs))
	if err != nil {
		t.Fatal(err)
	}
	if x, y := got[0].Ext(), got[1].Ext(); x.ReadBytesPerSec == nil || *x.ReadBytesPerSec != 0 || x.WriteBytesPerSec != nil || y.ReadBytesPerSec != nil {
		t.Fatalf("rates read back as %+v, %+v", x, y)
	}
}

// TestCodecRates: every rate reads back bit for bit, short or not.
func TestCodecRates(t *testing.T) {
	t.Parallel()
	var procs []snapshot.Process
	for i, v := range []float64{0, 1, 10, 999, 1230, 4190000, 1e15, 1<<53 - 1, 1 << 53, 2.5, 1e300, 123456789} {
		v := v
		p := snapshot.Process{PID: int64(i + 1)}
		p.SetExt(snapshot.ProcessExt{ReadBytesPerSec: &v})
		procs = append(procs, p)
	}
	got, err := decodeFull(encodeFull(procs))
	if err != nil || !equalProcs(got, procs) {
		t.Fatalf("rates read back as %v, %v", got, err)
	}
	if n := len(appendRate(nil, procs[5].ReadBytesPerSec)); n != 2 {
		t.Errorf("4,190,000 takes %d bytes, want 2", n)
	}
}

// TestCodecExtDeltaKeepsKeyframe: a delta row that keeps its keyframe row's
// attribution shares it, one that changes it gets its own (the decoded
// keyframe, cached and read by other requests, stays as it was), and one
// that loses every field reads back with none.
func TestCodecExtDeltaKeepsKeyframe(t *testing.T) {
	t.Parallel()
	r1, r2 := 100.0, 250.0
	base := []snapshot.Process{{PID: 1, Name: "a"}, {PID: 2, Name: "b"}, {PID: 3, Name: "c"}, {PID: 4, Name: "d"}}
	base[0].SetExt(snapshot.ProcessExt{Unit: "a.service", ReadBytesPerSec: &r1})
	base[1].SetExt(snapshot.ProcessExt{Unit: "b.service"})
	base[2].SetExt(snapshot.ProcessExt{ContainerID: "c3"})
	cur := slices.Clone(base)
	cur[0].SetExt(snapshot.ProcessExt{Unit: "a.service", ReadBytesPerSec: &r2}) // rate moved
	cur[2].SetExt(snapshot.ProcessExt{})                                        // lost its container
	cur[3].SetExt(snapshot.ProcessExt{PodUID: "p4"})                            // gained a pod

	gotBase, err := decodeFull(encodeFull(base))
	if err != nil || !equalProcs(gotBase, base) {
		t.Fatalf("keyframe: %v", err)
	}
	before := slices.Clone(gotBase)
	for i := range before {
		before[i].SetExt(gotBase[i].Ext()) // a deep copy
	}
	got, err := decodeDelta(encodeDelta(cur, base, baseIndex(base)), gotBase)
	if err != nil || !equalProcs(got, cur) {
		t.Fatalf("delta: %v: %+v", err, got)
	}
	if !equalProcs(gotBase, before) {
		t.Fatal("decoding a delta changed its keyframe's processes")
	}
	if got[1].ProcessExt != gotBase[1].ProcessExt {
		t.Error("an unchanged row does not share its keyframe row's attribution")
	}
	if got[2].ProcessExt != nil {
		t.Errorf("a row that lost every field reads back with %+v", *got[2].ProcessExt)
	}
}

// TestCodecExtBlobsUnchanged: keyframes and deltas of tables with
// attribution and I/O encode to the very bytes the codec wrote when those
// fields were declared in snapshot.Process itself (the digest was taken
// at commit 20407ad, before ProcessExt): stored blobs read the same.
func TestCodecExtBlobsUnchanged(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	h := newFakeHost(7, "x", 200)
	base := h.next().Processes
	addExt(base, rng, 0)
	sum := sha256.New()
	sum.Write(encodeFull(base))
	idx := baseIndex(base)
	for i := range 50 {
		cur := h.next().Processes
		if i%4 != 3 {
			addExt(cur, rng, i)
		}
		sum.Write(encodeDelta(cur, base, idx))
		sum.Write(encodeFull(cur))
	}
	const want = "edfd0ef29ae8246a24f9bf8ab98aadd7a5baa07adb1fc57ded9c7c6ce3680ca6"
	if got := hex.EncodeToString(sum.Sum(nil)); got != want {
		t.Errorf("blobs digest %s, want %s", got, want)
	}
}
