package snapshot

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestProcessExtWire: a Process marshals to the very bytes it did when
// every field was declared in it (the fields of ProcessExt last, in their
// order), with ProcessExt nil (its fields absent), partly or wholly set;
// unmarshalling gives a nil ProcessExt when none of its fields is sent and
// an allocated one when any is.
func TestProcessExtWire(t *testing.T) {
	cmd, zero, rate := "nginx -g daemon off;", 0.0, 1536.5
	base := Process{PID: 7, PPID: 1, Name: "nginx", CPUPercent: 1.5, MemoryMB: 20, Cmdline: &cmd,
		Username: "www", Status: "sleeping", NumThreads: 2, CreateTime: "2026-01-02T03:04:05Z", MemoryPercent: 0.25}
	const head = `{"pid":7,"ppid":1,"name":"nginx","cpu_percent":1.5,"memory_mb":20,"cmdline":"nginx -g daemon off;",` +
		`"username":"www","status":"sleeping","num_threads":2,"create_time":"2026-01-02T03:04:05Z","memory_percent":0.25`
	for _, c := range []struct {
		name string
		ext  ProcessExt
		want string
	}{
		{"none", ProcessExt{}, head + `}`},
		{"unit", ProcessExt{Unit: "system.slice/nginx.service"}, head + `,"unit":"system.slice/nginx.service"}`},
		{"read 0", ProcessExt{ReadBytesPerSec: &zero}, head + `,"read_bytes_per_sec":0}`},
		{"all", ProcessExt{Unit: "u", ContainerID: "c", PodUID: "p", ReadBytesPerSec: &rate, WriteBytesPerSec: &zero},
			head + `,"unit":"u","container_id":"c","pod_uid":"p","read_bytes_per_sec":1536.5,"write_bytes_per_sec":0}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := base
			p.SetExt(c.ext)
			if (p.ProcessExt == nil) != (c.ext == ProcessExt{}) || p.HasExt() != (p.ProcessExt != nil) {
				t.Fatalf("SetExt(%+v) left %v", c.ext, p.ProcessExt)
			}
			got, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Fatalf("wire form\n%s\nwant\n%s", got, c.want)
			}
			var back Process
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatal(err)
			}
			if (back.ProcessExt == nil) != (p.ProcessExt == nil) || !reflect.DeepEqual(back, p) {
				t.Errorf("round trip %+v (ext %v), want %+v (ext %v)", back, back.ProcessExt, p, p.ProcessExt)
			}
		})
	}
}

// TestProcessExtNilSafe: the accessors of a Process without ProcessExt (an
// original agent's) read zero and never panic.
func TestProcessExtNilSafe(t *testing.T) {
	var p Process
	if p.HasExt() || p.Ext() != (ProcessExt{}) {
		t.Errorf("zero Process: HasExt %v, Ext %+v", p.HasExt(), p.Ext())
	}
	p.SetExt(ProcessExt{})
	if p.ProcessExt != nil {
		t.Error("SetExt of nothing allocated a ProcessExt")
	}
	p.ProcessExt = &ProcessExt{}
	if p.HasExt() {
		t.Error("an empty ProcessExt counts as attribution")
	}
	// SetExt copies: two processes set from one value do not share it.
	var q Process
	x := ProcessExt{Unit: "a"}
	p.SetExt(x)
	q.SetExt(x)
	q.Unit = "b"
	if p.Unit != "a" {
		t.Errorf("SetExt shared its ProcessExt: %q", p.Unit)
	}
}
