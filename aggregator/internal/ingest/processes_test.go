package ingest

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/tools/loadgen/gen"
)

// TestFastProcessTakesExporterLayout: every process object of the three
// benchmark bodies, as encoding/json writes it (the exporter's layout),
// goes through the one-pass fast path, and comes out as encoding/json
// reads it (create_time normalised as the contract wants). The
// differential tests prove the fallback right; this proves the fast path
// is actually taken.
func TestFastProcessTakesExporterLayout(t *testing.T) {
	for name, in := range map[string][]byte{
		"evolve":     evolveBody(t, "web-1", 300, 3),
		"cmdline":    gen.Body(300, "web-1", "2026-11-25T17:00:00.123Z", true),
		"exporter":   exporterBody(t),
		"attributed": attributedBody(t),
	} {
		var s snapshot.Snapshot
		if err := json.Unmarshal(in, &s); err != nil {
			t.Fatal(err)
		}
		for _, want := range s.Processes {
			obj, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			d := decoder{data: append(obj, ']')}
			var got snapshot.Process
			if !d.fastProcess(&got) {
				t.Fatalf("%s: the fast path declined %s", name, obj)
			}
			if d.pos != len(obj) {
				t.Fatalf("%s: the fast path stopped at %d of %s", name, d.pos, obj)
			}
			if want.CreateTime != "" {
				ct, msg := snapshot.ParseTime(want.CreateTime)
				if msg != "" {
					t.Fatal(msg)
				}
				want.CreateTime = ct.Format(snapshot.CapturedAtFormat)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: fast path read %s as\n%+v, want\n%+v", name, obj, got, want)
			}
		}
	}
}

// TestDecodeReusesProcesses: a slice passed in DecodeOptions.Processes is
// used when big enough, and a reused (cleared) slice decodes exactly as a
// new one, even when the earlier body had fields the later one lacks.
func TestDecodeReusesProcesses(t *testing.T) {
	full := gen.Body(300, "web-1", "2026-11-25T17:00:00.123Z", true)
	bare := []byte(`{"hostname":"web-2","captured_at":"2026-11-25T17:00:01Z","system_info":{},` +
		`"processes":[{"pid":1,"ppid":0,"name":"init","cpu_percent":0,"memory_mb":1}]}`)
	buf := make([]snapshot.Process, 0, 2000)
	a, err := Decode(full, DecodeOptions{Processes: buf})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Snapshot.Processes) != 300 || &a.Snapshot.Processes[0] != &buf[:1][0] {
		t.Fatal("the slice passed in was not used")
	}
	if a.Snapshot.Processes[0].Cmdline == nil || a.Snapshot.Processes[0].Username == "" {
		t.Fatal("the first body should set cmdline and username")
	}
	clear(buf[:cap(buf)])
	b, err := Decode(bare, DecodeOptions{Processes: buf})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := Decode(bare, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.Snapshot.Processes, fresh.Snapshot.Processes) {
		t.Fatalf("reused slice decoded %+v, a new one %+v", b.Snapshot.Processes, fresh.Snapshot.Processes)
	}
	// Too small a slice is not an error: Decode allocates its own.
	small := make([]snapshot.Process, 0, 2)
	c, err := Decode(full, DecodeOptions{Processes: small})
	if err != nil || len(c.Snapshot.Processes) != 300 {
		t.Fatalf("small slice: %v, %d processes", err, len(c.Snapshot.Processes))
	}
}
