package ingest

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/tools/loadgen/gen"
)

// body builds an ingest body with the given processes JSON and optional
// extra top-level members.
func body(procs string, extra ...string) string {
	parts := []string{
		`"hostname":"web-1"`,
		`"captured_at":"2026-11-25T17:00:00.123Z"`,
		`"system_info":{"os":{"name":"linux"}}`,
		`"processes":` + procs,
	}
	parts = append(parts, extra...)
	return "{" + strings.Join(parts, ",") + "}"
}

const okProc = `{"pid":1,"ppid":0,"name":"systemd","cpu_percent":0.4,"memory_mb":12.6}`

func TestDecodeValid(t *testing.T) {
	in := `{"hostname":"web-1","captured_at":"2026-11-25T18:00:00.1234567+01:00",
	  "system_info":{"os":{"name":"linux"},"cpu":{"model":"x\u00e9"}},
	  "processes":[
	    {"pid":1,"ppid":0,"name":"systemd","cpu_percent":0.4,"memory_mb":12.6,"cmdline":"/sbin/init splash"},
	    {"pid":2,"ppid":0,"name":"","cpu_percent":150,"memory_mb":0,"cmdline":"","username":"root",
	     "status":"sleeping","num_threads":3,"create_time":"2026-11-25T10:00:00+02:00","memory_percent":1.5},
	    {"pid":3,"ppid":3,"name":"self-parent","cpu_percent":0,"memory_mb":1e2,"cmdline":null}
	  ]}`
	d, err := Decode([]byte(in), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := d.Snapshot
	if s.Hostname != "web-1" {
		t.Errorf("hostname %q", s.Hostname)
	}
	if s.CapturedAt != "2026-11-25T17:00:00.123Z" {
		t.Errorf("captured_at %q, want UTC with milliseconds", s.CapturedAt)
	}
	if want := time.Date(2026, 11, 25, 17, 0, 0, 123e6, time.UTC); !d.CapturedAt.Equal(want) {
		t.Errorf("CapturedAt %v, want %v", d.CapturedAt, want)
	}
	if string(s.SystemInfo) != `{"os":{"name":"linux"},"cpu":{"model":"x\u00e9"}}` {
		t.Errorf("system_info not kept as sent: %s", s.SystemInfo)
	}
	if len(s.Processes) != 3 {
		t.Fatalf("got %d processes", len(s.Processes))
	}
	p0, p1, p2 := s.Processes[0], s.Processes[1], s.Processes[2]
	if p0.PID != 1 || p0.PPID != 0 || p0.Name != "systemd" || p0.CPUPercent != 0.4 || p0.MemoryMB != 12.6 ||
		p0.Cmdline == nil || *p0.Cmdline != "/sbin/init splash" {
		t.Errorf("process 0: %+v", p0)
	}
	if p1.Cmdline == nil || *p1.Cmdline != "" || p1.CPUPercent != 150 || p1.Username != "root" ||
		p1.Status != "sleeping" || p1.NumThreads != 3 || p1.CreateTime != "2026-11-25T08:00:00.000Z" || p1.MemoryPercent != 1.5 {
		t.Errorf("process 1: %+v", p1)
	}
	if p2.Cmdline != nil {
		t.Errorf("cmdline null must mean absent, got %q", *p2.Cmdline)
	}
	if p2.PID != 3 || p2.PPID != 3 || p2.MemoryMB != 100 {
		t.Errorf("process 2: %+v", p2)
	}
}

func TestDecodeEmptyProcessesAndUnknownFields(t *testing.T) {
	in := body(`[]`, `"agent":{"nested":[1,2,{"a":null}],"x":true}`, `"zzz":-1.5e3`)
	d, err := Decode([]byte(in), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Snapshot.Processes == nil || len(d.Snapshot.Processes) != 0 {
		t.Errorf("want an empty, non-nil process list, got %#v", d.Snapshot.Processes)
	}
	in = body(`[{"pid":5,"ppid":1,"name":"a","cpu_percent":0,"memory_mb":0,"future":{"deep":[[]]},"threads_v2":"x"}]`)
	d, err = Decode([]byte(in), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Snapshot.Processes) != 1 || d.Snapshot.Processes[0].PID != 5 {
		t.Errorf("unknown process fields must be ignored: %+v", d.Snapshot.Processes)
	}
}

// TestDecodeRejects: every rule of docs/api.md that turns a body into a 400 (or
// 413), with the message naming what is wrong.
func TestDecodeRejects(t *testing.T) {
	f := func(name, in string, kind ErrorKind, msgPart string) {
		t.Helper()
		_, err := Decode([]byte(in), DecodeOptions{MaxProcesses: 3})
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: want a DecodeError, got %v", name, err)
			return
		}
		if de.Kind != kind {
			t.Errorf("%s: kind %d, want %d (%s)", name, de.Kind, kind, de.Msg)
		}
		if !strings.Contains(de.Msg, msgPart) {
			t.Errorf("%s: message %q does not mention %q", name, de.Msg, msgPart)
		}
	}
	proc := func(fields string) string { return body(`[{` + fields + `}]`) }
	f("empty", ``, KindInvalid, "empty body")
	f("array", `[]`, KindInvalid, "JSON object")
	f("truncated", body(`[` + okProc)[:40], KindInvalid, "invalid JSON")
	f("trailing", body(`[]`)+`{}`, KindInvalid, "after the JSON object")
	f("missing hostname", `{"captured_at":"2026-11-25T17:00:00Z","system_info":{},"processes":[]}`, KindInvalid, `"hostname"`)
	f("missing captured_at", `{"hostname":"a","system_info":{},"processes":[]}`, KindInvalid, `"captured_at"`)
	f("missing system_info", `{"hostname":"a","captured_at":"2026-11-25T17:00:00Z","processes":[]}`, KindInvalid, `"system_info"`)
	f("missing processes", `{"hostname":"a","captured_at":"2026-11-25T17:00:00Z","system_info":{}}`, KindInvalid, `"processes"`)
	f("processes null", body(`null`), KindInvalid, "not null")
	f("processes object", body(`{}`), KindInvalid, "must be an array")
	f("system_info array", `{"hostname":"a","captured_at":"2026-11-25T17:00:00Z","system_info":[],"processes":[]}`, KindInvalid, "system_info")
	f("system_info null", `{"hostname":"a","captured_at":"2026-11-25T17:00:00Z","system_info":null,"processes":[]}`, KindInvalid, "system_info")
	f("hostname number", `{"hostname":1,"captured_at":"2026-11-25T17:00:00Z","system_info":{},"processes":[]}`, KindInvalid, "hostname")
	f("hostname empty", `{"hostname":"","captured_at":"2026-11-25T17:00:00Z","system_info":{},"processes":[]}`, KindInvalid, "empty")
	f("hostname 254 bytes", `{"hostname":"`+strings.Repeat("a", 254)+`","captured_at":"2026-11-25T17:00:00Z","system_info":{},"processes":[]}`, KindInvalid, "253")
	f("hostname C0", `{"hostname":"a\u0001b","captured_at":"2026-11-25T17:00:00Z","system_info":{},"processes":[]}`, KindInvalid, "U+0001")
	f("hostname newline", `{"hostname":"a\nb","captured_at":"2026-11-25T17:00:00Z","system_info":{},"processes":[]}`, KindInvalid, "U+000A")
	f("hostname DEL", `{"hostname":"a\u007fb","captured_at":"2026-11-25T17:00:00Z","system_info":{},"processes":[]}`, KindInvalid, "U+007F")
	f("hostname C1", `{"hostname":"a\u0085b","captured_at":"2026-11-25T17:00:00Z","system_info":{},"processes":[]}`, KindInvalid, "U+0085")
	f("raw control in string", "{\"hostname\":\"a\x01b\"}", KindInvalid, "control character")
	f("duplicate hostname", `{"hostname":"a","hostname":"b","captured_at":"2026-11-25T17:00:00Z","system_info":{},"processes":[]}`, KindInvalid, "duplicate field")
	f("captured_at not RFC 3339", `{"hostname":"a","captured_at":"2026-11-25 17:00:00","system_info":{},"processes":[]}`, KindInvalid, "RFC 3339")
	f("captured_at number", `{"hostname":"a","captured_at":1764090000,"system_info":{},"processes":[]}`, KindInvalid, "captured_at")
	f("captured_at no zone", `{"hostname":"a","captured_at":"2026-11-25T17:00:00","system_info":{},"processes":[]}`, KindInvalid, "RFC 3339")
	f("pid float", proc(`"pid":1.0,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0`), KindInvalid, "integer")
	f("pid exponent", proc(`"pid":1e2,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0`), KindInvalid, "integer")
	f("pid string", proc(`"pid":"1","ppid":0,"name":"a","cpu_percent":0,"memory_mb":0`), KindInvalid, "non-negative integer")
	f("pid negative", proc(`"pid":-1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0`), KindInvalid, "negative")
	f("pid overflow", proc(`"pid":9223372036854775808,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0`), KindInvalid, "too large")
	f("pid null", proc(`"pid":null,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0`), KindInvalid, "pid")
	f("ppid float", proc(`"pid":1,"ppid":0.5,"name":"a","cpu_percent":0,"memory_mb":0`), KindInvalid, "ppid")
	f("missing pid", proc(`"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0`), KindInvalid, `"pid"`)
	f("missing ppid", proc(`"pid":1,"name":"a","cpu_percent":0,"memory_mb":0`), KindInvalid, `"ppid"`)
	f("missing name", proc(`"pid":1,"ppid":0,"cpu_percent":0,"memory_mb":0`), KindInvalid, `"name"`)
	f("missing cpu", proc(`"pid":1,"ppid":0,"name":"a","memory_mb":0`), KindInvalid, `"cpu_percent"`)
	f("missing memory", proc(`"pid":1,"ppid":0,"name":"a","cpu_percent":0`), KindInvalid, `"memory_mb"`)
	f("name null", proc(`"pid":1,"ppid":0,"name":null,"cpu_percent":0,"memory_mb":0`), KindInvalid, "string")
	f("name number", proc(`"pid":1,"ppid":0,"name":5,"cpu_percent":0,"memory_mb":0`), KindInvalid, "string")
	f("cpu negative", proc(`"pid":1,"ppid":0,"name":"a","cpu_percent":-0.1,"memory_mb":0`), KindInvalid, "negative")
	f("cpu string", proc(`"pid":1,"ppid":0,"name":"a","cpu_percent":"1","memory_mb":0`), KindInvalid, "number")
	f("memory overflow", proc(`"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":1e999`), KindInvalid, "range")
	f("cmdline number", proc(`"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0,"cmdline":1`), KindInvalid, "cmdline")
	f("create_time bad", proc(`"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0,"create_time":"yesterday"`), KindInvalid, "create_time")
	f("num_threads float", proc(`"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0,"num_threads":1.5`), KindInvalid, "num_threads")
	f("duplicate field", proc(`"pid":1,"pid":2,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0`), KindInvalid, "duplicate field")
	f("process not object", body(`[1]`), KindInvalid, "must be an object")
	f("duplicate pid", body(`[`+okProc+`,{"pid":2,"ppid":1,"name":"b","cpu_percent":0,"memory_mb":0},`+okProc+`]`), KindInvalid, "duplicate pid 1")
	f("duplicate big pid", body(`[{"pid":99999999999,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0},{"pid":99999999999,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0}]`), KindInvalid, "duplicate pid")
	f("bad escape", `{"hostname":"a\x"}`, KindInvalid, "escape")
	f("leading zero", proc(`"pid":01,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0`), KindInvalid, "invalid JSON")
	f("deep nesting", body(`[]`, `"x":`+strings.Repeat("[", 10000)), KindInvalid, "nesting")
	f("too many processes", body(`[`+strings.TrimSuffix(strings.Repeat(okProc+",", 4), ",")+`]`), KindTooLarge, "more than 3 processes")
	// A size error outranks a content error found before it.
	f("too many after bad", body(`[{"pid":"x"},1,2,3,4]`), KindTooLarge, "more than 3")
}

func TestDecodeHostnameEdges(t *testing.T) {
	f := func(h string, ok bool) {
		t.Helper()
		in, _ := json.Marshal(h)
		_, err := Decode([]byte(body(`[]`, `"hostname2":`+string(in))[:0]+`{"hostname":`+string(in)+`,"captured_at":"2026-11-25T17:00:00Z","system_info":{},"processes":[]}`), DecodeOptions{})
		if (err == nil) != ok {
			t.Errorf("hostname %q: err %v, want ok=%v", h, err, ok)
		}
	}
	f(strings.Repeat("a", 253), true)
	f(strings.Repeat("é", 126), true) // 252 bytes
	f(strings.Repeat("é", 127), false)
	f("Web-1", true)
	f("with space", true)
	f("日本語ホスト", true)
	f("<script>alert(1)</script>", true) // hostile but legal: escaped on output
	f("a\tb", false)
	f("a\u009fb", false)
	f("a\u00a0b", true) // NBSP is not a control character
}

// TestDecodeHostnameCallbackOrder: the key check (OnHostname) runs even
// when the hostname comes after a content error, and its error wins.
func TestDecodeHostnameCallbackOrder(t *testing.T) {
	errKey := errors.New("key mismatch")
	in := `{"processes":[{"pid":"bad"}],"captured_at":"x","system_info":{},"hostname":"late"}`
	var got string
	_, err := Decode([]byte(in), DecodeOptions{OnHostname: func(h string) error { got = h; return errKey }})
	if got != "late" || !errors.Is(err, errKey) {
		t.Fatalf("callback saw %q, err %v; want late and the callback's error", got, err)
	}
	// A syntax error before the hostname: no callback, 400.
	got = ""
	_, err = Decode([]byte(`{"processes":[}],"hostname":"h"}`), DecodeOptions{OnHostname: func(h string) error { got = h; return errKey }})
	var de *DecodeError
	if got != "" || !errors.As(err, &de) {
		t.Fatalf("callback saw %q, err %v", got, err)
	}
	// An invalid hostname is never handed to the callback.
	called := false
	_, _ = Decode([]byte(`{"hostname":"","processes":[]}`), DecodeOptions{OnHostname: func(string) error { called = true; return nil }})
	if called {
		t.Error("callback called with an invalid hostname")
	}
}

// TestDecodeMatchesEncodingJSON: for valid bodies the hand-written decoder
// yields what encoding/json yields.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, n := range []int{0, 1, 300} {
		in := gen.Body(n, "host-a", "2026-11-25T17:00:00.123Z", true)
		d, err := Decode(in, DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var ref snapshot.Snapshot
		if err := json.Unmarshal(in, &ref); err != nil {
			t.Fatal(err)
		}
		if ref.Processes == nil {
			ref.Processes = []snapshot.Process{}
		}
		if !reflect.DeepEqual(ref.Processes, d.Snapshot.Processes) {
			t.Fatalf("n=%d: processes differ from encoding/json", n)
		}
		if string(ref.SystemInfo) != string(d.Snapshot.SystemInfo) || ref.Hostname != d.Snapshot.Hostname {
			t.Fatalf("n=%d: header differs", n)
		}
	}
}
