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
		x := snapshot.ProcessExt{Unit: fmt.Sprintf("system.slice/svc-%d.service", i%20)}
		if i%7 == 0 {
			x.ContainerID = fmt.Sprintf("%064x", i/7)
			x.PodUID = fmt.Sprintf("8a9b0c1d-2e3f-4a5b-8c7d-%012x", i/14)
		}
		if i%5 != 4 { // else refused: absent
			rd, wr := 0.0, 0.0
			if i%10 == 0 {
				rd, wr = r.Float64()*1e6, float64(r.IntN(100)*4096)/2.0001
			}
			x.ReadBytesPerSec, x.WriteBytesPerSec = &rd, &wr
		}
		procs[i].SetExt(x)
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
	if x := p[0].Ext(); x.ReadBytesPerSec == nil || *x.ReadBytesPerSec != 0 || x.WriteBytesPerSec != nil {
		t.Errorf("pid 1: read %v write %v, want 0 and absent", x.ReadBytesPerSec, x.WriteBytesPerSec)
	}
	if p[1].ProcessExt != nil {
		t.Errorf("pid 2: rates %+v, want none (a nil ProcessExt)", *p[1].ProcessExt)
	}
}

// TestDecodeExtOnlyWhenSent: a process takes a ProcessExt only when it has
// a field of it, on the fast path (exporter layout) and the general one
// (another order), and "" or null for one reads as absent.
func TestDecodeExtOnlyWhenSent(t *testing.T) {
	t.Parallel()
	d, err := Decode([]byte(body(`[{"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0},`+
		`{"pid":2,"ppid":0,"name":"b","cpu_percent":0,"memory_mb":0,"unit":"","pod_uid":""},`+
		`{"name":"c","pid":3,"ppid":0,"cpu_percent":0,"memory_mb":0,"unit":"","read_bytes_per_sec":null},`+
		`{"pid":4,"ppid":0,"name":"d","cpu_percent":0,"memory_mb":0,"container_id":"c4","write_bytes_per_sec":2},`+
		`{"name":"e","pid":5,"ppid":0,"cpu_percent":0,"memory_mb":0,"pod_uid":"p5","unit":"u5"}]`)), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := d.Snapshot.Processes
	for _, i := range []int{0, 1, 2} {
		if p[i].ProcessExt != nil {
			t.Errorf("pid %d: %+v, want a nil ProcessExt", p[i].PID, *p[i].ProcessExt)
		}
	}
	if x := p[3].Ext(); x.ContainerID != "c4" || x.WriteBytesPerSec == nil || *x.WriteBytesPerSec != 2 || x.Unit != "" || x.ReadBytesPerSec != nil {
		t.Errorf("pid 4: %+v", x)
	}
	if x := p[4].Ext(); x.Unit != "u5" || x.PodUID != "p5" || x.ContainerID != "" {
		t.Errorf("pid 5: %+v", x)
	}
	if p[3].ProcessExt == p[4].ProcessExt {
		t.Error("two processes share one ProcessExt")
	}
}
