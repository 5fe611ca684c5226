package gen

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"
)

// TestGzipPartsIsTheBody: head member + pre-compressed tail decompress to
// exactly BodyOf, with any reader that follows RFC 1952 (Go's does).
func TestGzipPartsIsTheBody(t *testing.T) {
	t.Parallel()
	procs := Processes(300, Seed("host-1", 2), true)
	p, err := NewGzipParts("host-1", procs)
	if err != nil {
		t.Fatal(err)
	}
	at := "2026-11-25T17:00:00.123Z"
	zr, err := gzip.NewReader(io.MultiReader(bytes.NewReader(p.Head(at)), bytes.NewReader(p.Tail)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if want := BodyOf("host-1", at, procs); !bytes.Equal(got, want) {
		t.Fatalf("decompressed body differs:\n got %.200s\nwant %.200s", got, want)
	}
}

func TestProcessesTree(t *testing.T) {
	t.Parallel()
	procs := Processes(300, 7, false)
	if len(procs) != 300 {
		t.Fatalf("%d processes", len(procs))
	}
	seen := map[int64]bool{}
	for _, p := range procs {
		if seen[p.PID] {
			t.Fatalf("duplicate pid %d", p.PID)
		}
		seen[p.PID] = true
		if p.Cmdline != nil {
			t.Fatal("cmdline sent though not asked for")
		}
	}
	for _, p := range procs {
		if p.PPID != 0 && !seen[p.PPID] {
			t.Fatalf("pid %d has unknown parent %d", p.PID, p.PPID)
		}
	}
	if len(Processes(0, 1, true)) != 0 || len(Processes(1, 1, true)) != 1 {
		t.Fatal("small trees")
	}
}
