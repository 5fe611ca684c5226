package ingest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// attributedBody is exporterBody with what a current exporter adds:
// units, containers and pods on some processes, full-precision I/O rates
// (0 on most, absent on some: the kernel refused them).
func attributedBody(tb testing.TB) []byte {
	tb.Helper()
	var s snapshot.Snapshot
	if err := json.Unmarshal(exporterBody(tb), &s); err != nil {
		tb.Fatal(err)
	}
	attribute(s.Processes, 5)
	b, err := json.Marshal(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// attribute fills attribution and I/O as a host with 20 units and a few
// containers would send them.
func attribute(procs []snapshot.Process, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 6))
	for i := range procs {
		p := &procs[i]
		p.Unit = fmt.Sprintf("system.slice/svc-%d.service", i%20)
		if i%7 == 0 {
			p.ContainerID = fmt.Sprintf("%064x", i/7)
			p.PodUID = fmt.Sprintf("8a9b0c1d-2e3f-4a5b-8c7d-%012x", i/14)
		}
		if i%5 == 4 {
			continue // refused: absent
		}
		rd, wr := 0.0, 0.0
		if i%10 == 0 {
			rd, wr = r.Float64()*1e6, float64(r.IntN(100)*4096)/2.0001
		}
		p.ReadBytesPerSec, p.WriteBytesPerSec = &rd, &wr
	}
}

// FuzzDecode's invariants for the new fields are in fuzz_test.go; this
// checks that absent and 0 stay apart through Decode.
func TestDecodeIOAbsentIsNotZero(t *testing.T) {
	t.Parallel()
	d, err := Decode([]byte(body(`[{"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0,"read_bytes_per_sec":0},`+
		`{"pid":2,"ppid":0,"name":"b","cpu_percent":0,"memory_mb":0,"write_bytes_per_sec":null}]`)), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := d.Snapshot.Processes
	if p[0].ReadBytesPerSec == nil || *p[0].ReadBytesPerSec != 0 || p[0].WriteBytesPerSec != nil {
		t.Errorf("pid 1: read %v write %v, want 0 and absent", p[0].ReadBytesPerSec, p[0].WriteBytesPerSec)
	}
	if p[1].ReadBytesPerSec != nil || p[1].WriteBytesPerSec != nil {
		t.Errorf("pid 2: rates %v %v, want both absent", p[1].ReadBytesPerSec, p[1].WriteBytesPerSec)
	}
}
