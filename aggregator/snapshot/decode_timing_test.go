package snapshot

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/procscope/procscope/tools/loadgen/gen"
)

// evolveBody is the body the load generator's default workload (-workload
// evolve) sends for one host of n processes after a few pushes (300 in the
// load generator): processes without
// command lines, members in the exporter's order, encoding/json's output.
// It is made the way the load generator makes it (head member + tail
// member, gunzipped here as the aggregator does), so the decoder sees the
// exact bytes.
func evolveBody(tb testing.TB, host string, n, steps int) []byte {
	tb.Helper()
	h := gen.NewHost(n, gen.Seed(host, 0), false, 5*time.Second)
	for range steps {
		h.Step()
	}
	tail, err := gen.CompressTail(h.SystemInfo(), h.Processes(), gzip.BestSpeed)
	if err != nil {
		tb.Fatal(err)
	}
	gz := append(gen.HeadMember(gen.QuoteHostname(host), "2026-11-25T17:00:05.000Z"), tail...)
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		tb.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// exporterBody is evolveBody with the two fields a real Linux exporter adds
// that the load generator leaves out: create_time (RFC 3339 with trimmed
// nanoseconds, time.RFC3339Nano) and memory_percent (a full-precision
// float). It shows what the slower paths (create_time parsing, strconv for
// 17-digit floats) cost.
func exporterBody(tb testing.TB) []byte {
	tb.Helper()
	var s Snapshot
	if err := json.Unmarshal(evolveBody(tb, "web-1", 300, 3), &s); err != nil {
		tb.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	boot := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	for i := range s.Processes {
		p := &s.Processes[i]
		// Jiffies are 10 ms: a start time has at most two decimals.
		start := boot.Add(time.Duration(r.Int64N(int64(5*24*time.Hour/(10*time.Millisecond)))) * 10 * time.Millisecond)
		p.CreateTime = start.Format(time.RFC3339Nano)
		p.MemoryPercent = p.MemoryMB * (1 << 20) / 16777216000 * 100
	}
	b, err := json.Marshal(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkDecode measures the decoder on three 300-process bodies against
// the decoder as it was before the speed work (old, decode_old_test.go) and
// encoding/json into the same types (which does less: no presence checks,
// no duplicate pids). Compare new with old inside one run: the machine is
// shared, so absolute figures drift between runs. The names are key=value
// so that benchstat can put the decoders side by side:
//
//	go test -run '^$' -bench 'Decode/.*/dec=(procscope|old)' -benchmem -count 8 ./aggregator/snapshot >/tmp/dec.txt
//	benchstat -col /dec /tmp/dec.txt
func BenchmarkDecode(b *testing.B) {
	bodies := []struct {
		name string
		in   []byte
	}{
		// The load generator's realistic default: no command lines.
		{"evolve", evolveBody(b, "web-1", 300, 3)},
		// The old benchmark body: command lines on every process.
		{"cmdline", gen.Body(300, "web-1", "2026-11-25T17:00:00.123Z", true)},
		// What a Linux exporter sends: create_time and memory_percent too.
		{"exporter", exporterBody(b)},
	}
	for _, body := range bodies {
		in := body.in
		b.Run("body="+body.name+"/dec=old", func(b *testing.B) {
			benchDecode(b, in, func() error { _, err := oldDecode(in, DecodeOptions{}); return err })
		})
		b.Run("body="+body.name+"/dec=procscope", func(b *testing.B) {
			benchDecode(b, in, func() error { _, err := Decode(in, DecodeOptions{}); return err })
		})
		b.Run("body="+body.name+"/dec=encoding_json_baseline", func(b *testing.B) {
			benchDecode(b, in, func() error { var s Snapshot; return json.Unmarshal(in, &s) })
		})
	}
}

// benchDecode times decode on in. Besides wall time it reports cpu-ns/op,
// the process's CPU time (GC included) per decode: other people's load on
// the shared machine stretches wall time, much less CPU time.
func benchDecode(b *testing.B, in []byte, decode func() error) {
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	cpu0, ok := processCPU()
	for b.Loop() {
		if err := decode(); err != nil {
			b.Fatal(err)
		}
	}
	if cpu1, ok1 := processCPU(); ok && ok1 {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
}
