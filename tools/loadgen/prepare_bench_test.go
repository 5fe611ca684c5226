package main

import (
	"testing"
	"time"
)

// BenchmarkPrepareWorkload: making every body of a run before the push
// (gen.CompressTail per push, plus the expected process lists of the
// bodies compared in full), 20 hosts x 50 pushes of 300 processes. It
// guards the generator's encode path against changes in gen or the wire
// types.
func BenchmarkPrepareWorkload(b *testing.B) {
	cfg := config{hosts: 20, rate: 200, duration: 5 * time.Second, procs: 300, variants: 3, workload: "evolve", seed: 1, verifyContent: 25}
	for b.Loop() {
		if _, err := prepareWorkload(cfg); err != nil {
			b.Fatal(err)
		}
	}
}
