package snapshot

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// flatProcess is Process as it was before ProcessExt: every field declared
// in place. Its JSON is the wire contract the embedded pointer must keep.
type flatProcess struct {
	PID              int64    `json:"pid"`
	PPID             int64    `json:"ppid"`
	Name             string   `json:"name"`
	CPUPercent       float64  `json:"cpu_percent"`
	MemoryMB         float64  `json:"memory_mb"`
	Cmdline          *string  `json:"cmdline,omitempty"`
	Username         string   `json:"username,omitempty"`
	Status           string   `json:"status,omitempty"`
	NumThreads       int32    `json:"num_threads,omitempty"`
	CreateTime       string   `json:"create_time,omitempty"`
	MemoryPercent    float64  `json:"memory_percent,omitempty"`
	Unit             string   `json:"unit,omitempty"`
	ContainerID      string   `json:"container_id,omitempty"`
	PodUID           string   `json:"pod_uid,omitempty"`
	ReadBytesPerSec  *float64 `json:"read_bytes_per_sec,omitempty"`
	WriteBytesPerSec *float64 `json:"write_bytes_per_sec,omitempty"`
}

func flat(p Process) flatProcess {
	x := p.Ext()
	return flatProcess{p.PID, p.PPID, p.Name, p.CPUPercent, p.MemoryMB, p.Cmdline, p.Username, p.Status,
		p.NumThreads, p.CreateTime, p.MemoryPercent, x.Unit, x.ContainerID, x.PodUID, x.ReadBytesPerSec, x.WriteBytesPerSec}
}

// TestProcessExtWire: a Process marshals to the very bytes of the flat
// layout, with ProcessExt nil (its fields absent), partly or wholly set;
// unmarshalling gives a nil ProcessExt when none of its fields is sent and
// an allocated one when any is.
func TestProcessExtWire(t *testing.T) {
	cmd, zero, rate := "nginx -g daemon off;", 0.0, 1536.5
	base := Process{PID: 7, PPID: 1, Name: "nginx", CPUPercent: 1.5, MemoryMB: 20, Cmdline: &cmd,
		Username: "www", Status: "sleeping", NumThreads: 2, CreateTime: "2026-01-02T03:04:05Z", MemoryPercent: 0.25}
	for _, c := range []struct {
		name string
		ext  ProcessExt
	}{
		{"none", ProcessExt{}},
		{"unit", ProcessExt{Unit: "system.slice/nginx.service"}},
		{"read 0", ProcessExt{ReadBytesPerSec: &zero}},
		{"all", ProcessExt{Unit: "u", ContainerID: "c", PodUID: "p", ReadBytesPerSec: &rate, WriteBytesPerSec: &zero}},
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
			want, err := json.Marshal(flat(p))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("wire form\n%s\nwant\n%s", got, want)
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
