package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
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
		if hasExt(&p) {
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
		if p.PID%3 != 0 {
			p.Unit = fmt.Sprintf("system.slice/u%d.service", p.PID%17)
		}
		if p.PID%11 == 0 {
			p.ContainerID = fmt.Sprintf("%064x", p.PID)
			p.PodUID = "8a9b0c1d-2e3f-4a5b-8c7d-9e0f1a2b3c4d"
		}
		if p.PID == int64(step) {
			p.Unit = ""
		}
		switch {
		case p.PID%5 == 0: // refused: absent
		case rng.IntN(10) == 0:
			r, w := float64(rng.IntN(1<<20)), float64(rng.IntN(1<<16))/3
			p.ReadBytesPerSec, p.WriteBytesPerSec = &r, &w
		default:
			z := 0.0
			p.ReadBytesPerSec, p.WriteBytesPerSec = &z, &z
		}
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
}

// TestCodecExtAbsentIsNotZero: an absent rate and a rate of 0 stay apart.
func TestCodecExtAbsentIsNotZero(t *testing.T) {
	t.Parallel()
	z := 0.0
	procs := []snapshot.Process{{PID: 1, Name: "a", ReadBytesPerSec: &z}, {PID: 2, Name: "b", Unit: "u.service"}}
	got, err := decodeFull(encodeFull(procs))
	if err != nil {
		t.Fatal(err)
	}
	if got[0].ReadBytesPerSec == nil || *got[0].ReadBytesPerSec != 0 || got[0].WriteBytesPerSec != nil || got[1].ReadBytesPerSec != nil {
		t.Fatalf("rates read back as %+v", got)
	}
}

// TestCodecRates: every rate reads back bit for bit, short or not.
func TestCodecRates(t *testing.T) {
	t.Parallel()
	var procs []snapshot.Process
	for i, v := range []float64{0, 1, 10, 999, 1230, 4190000, 1e15, 1<<53 - 1, 1 << 53, 2.5, 1e300, 123456789} {
		v := v
		procs = append(procs, snapshot.Process{PID: int64(i + 1), ReadBytesPerSec: &v})
	}
	got, err := decodeFull(encodeFull(procs))
	if err != nil || !equalProcs(got, procs) {
		t.Fatalf("rates read back as %v, %v", got, err)
	}
	if n := len(appendRate(nil, procs[5].ReadBytesPerSec)); n != 2 {
		t.Errorf("4,190,000 takes %d bytes, want 2", n)
	}
}
