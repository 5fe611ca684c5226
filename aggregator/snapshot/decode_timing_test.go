package snapshot

import (
	"encoding/json"
	"testing"

	"github.com/procscope/procscope/aggregator/internal/loadgen/gen"
)

// BenchmarkDecode measures the hand-written decoder on a realistic
// 300-process body against encoding/json into the same types (the
// baseline, which does less: no presence checks, no duplicate pids).
//
//	go test -run '^$' -bench 'Decode' -benchmem -benchtime 2s ./aggregator/snapshot
func BenchmarkDecode(b *testing.B) {
	in := gen.Body(300, "web-1", "2026-11-25T17:00:00.123Z", true)
	b.Run("procscope", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(in, DecodeOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json_baseline", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			var s Snapshot
			if err := json.Unmarshal(in, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
