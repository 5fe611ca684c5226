package gen

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// TestProcessIsTheWireType: gen.Process is a copy of snapshot.Process (see
// its comment), so every one of its fields must be a field of the wire type
// with the same name, type and JSON tag, in the same order.
func TestProcessIsTheWireType(t *testing.T) {
	g, w := reflect.TypeFor[Process](), reflect.TypeFor[snapshot.Process]()
	for i := range g.NumField() {
		gf := g.Field(i)
		if i >= w.NumField() {
			t.Fatalf("gen.Process.%s: snapshot.Process has only %d fields", gf.Name, w.NumField())
		}
		wf := w.Field(i)
		if gf.Name != wf.Name || gf.Type != wf.Type || gf.Tag.Get("json") != wf.Tag.Get("json") {
			t.Errorf("field %d: gen %s %s `%s`, snapshot %s %s `%s`",
				i, gf.Name, gf.Type, gf.Tag, wf.Name, wf.Type, wf.Tag)
		}
	}
}

// TestBodiesAreWireSnapshots: the bodies gen makes decode strictly (no
// unknown field anywhere) into snapshot.Snapshot and snapshot.SystemInfo,
// and encoding the decoded value gives the same bytes back, so the load
// generator sends exactly what the wire types describe.
func TestBodiesAreWireSnapshots(t *testing.T) {
	strict := func(t *testing.T, b []byte, v any) {
		t.Helper()
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		if err := d.Decode(v); err != nil {
			t.Fatalf("%v in %.300s", err, b)
		}
	}
	h := NewHost(60, 3, true, 5*time.Second)
	for range 20 {
		h.Step()
	}
	for name, body := range map[string][]byte{
		"Body":                 Body(60, "web-1", "2026-11-25T17:00:00.123Z", true),
		"Body without cmdline": Body(60, "web-2", "2026-11-25T17:00:00Z", false),
		"Host":                 BodyOf("web-3", "2026-11-25T17:00:00Z", h.Processes()),
	} {
		t.Run(name, func(t *testing.T) {
			var s snapshot.Snapshot
			strict(t, body, &s)
			again, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, body) {
				t.Fatalf("re-encoded body differs:\n got %.300s\nwant %.300s", again, body)
			}
		})
	}
	for name, si := range map[string]string{"SystemInfo": SystemInfo, "Host.SystemInfo": h.SystemInfo()} {
		t.Run(name, func(t *testing.T) {
			var v snapshot.SystemInfo
			strict(t, []byte(si), &v)
			if v.ProcessCount == 0 || v.Memory.TotalBytes == 0 || v.OS.Name != "linux" {
				t.Fatalf("decoded %+v", v)
			}
		})
	}
}
