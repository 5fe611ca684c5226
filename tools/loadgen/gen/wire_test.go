package gen

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// TestBodiesAreWireSnapshots: the bodies gen makes decode strictly (no
// unknown field anywhere) into snapshot.Snapshot and snapshot.SystemInfo,
// and encoding the decoded value gives the same bytes back, so the load
// generator sends exactly what the wire types describe.
func TestBodiesAreWireSnapshots(t *testing.T) {
	t.Parallel()
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
