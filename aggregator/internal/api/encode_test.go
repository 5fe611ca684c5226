package api

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/procscope/procscope/aggregator/internal/httpapi"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// TestAppendProcesses: the hand-written encoder writes what encoding/json
// writes, byte for byte, hostile and odd values included.
func TestAppendProcesses(t *testing.T) {
	s := func(v string) *string { return &v }
	f := func(v float64) *float64 { return &v }
	procs := []snapshot.Process{
		{PID: 1, PPID: 0, Name: "systemd", CPUPercent: 0.4, MemoryMB: 12.6, Cmdline: s("/sbin/init splash")},
		{PID: 2, Name: "", Cmdline: s("")},
		{PID: 3, PPID: 3, Name: "<script>alert('x')</script>&", Cmdline: s("a\"b\\c\nd\te\x01\x7f")},
		{PID: 4, Name: "bad\xffutf8 \u2028\u2029 日本 😀", CPUPercent: 1e-7, MemoryMB: 1e21},
		{PID: 5, Name: "n", CPUPercent: 123456789.125, MemoryMB: 5e-324, Username: "root", Status: "running",
			NumThreads: 7, CreateTime: "2026-11-25T17:00:00.000Z", MemoryPercent: 0.25},
		{PID: math.MaxInt64, PPID: math.MaxInt64, Name: "max", CPUPercent: 100, MemoryMB: 0.1 + 0.2},
		{PID: 6, Name: "io", ProcessExt: &snapshot.ProcessExt{Unit: "system.slice/a<b>\"\x1b.service", ContainerID: "c", PodUID: "p",
			ReadBytesPerSec: f(0), WriteBytesPerSec: f(2048.3333333333335)}},
		{PID: 7, Name: "io-read-only", ProcessExt: &snapshot.ProcessExt{ReadBytesPerSec: f(1e21)}},
		{PID: 8, Name: "empty-ext", ProcessExt: &snapshot.ProcessExt{}},
	}
	want, err := json.Marshal(procs)
	if err != nil {
		t.Fatal(err)
	}
	got := encodeProcesses(t, procs)
	if got != string(want) {
		t.Fatalf("encoder differs from encoding/json:\ngot  %s\nwant %s", got, want)
	}
	if encodeProcesses(t, nil) != "[]" {
		t.Fatal("an empty list must be []")
	}
	// A list of many pieces (sent chunked) is the same document.
	for i := range 5000 {
		procs = append(procs, snapshot.Process{PID: int64(i), Name: "worker <&>", CPUPercent: float64(i) / 3, Cmdline: s("/bin/w --i")})
	}
	if want, _ := json.Marshal(procs); encodeProcesses(t, procs) != string(want) {
		t.Fatal("a list sent in pieces differs from encoding/json")
	}
}

// encodeProcesses answers procs as the processes route does and returns
// the body without its final newline.
func encodeProcesses(t *testing.T, procs []snapshot.Process) string {
	t.Helper()
	rec := httptest.NewRecorder()
	httpapi.Adapter{}.Handle(func(*http.Request) (any, error) { return processList(procs), nil }).
		ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	body, ok := strings.CutSuffix(rec.Body.String(), "\n")
	if rec.Code != http.StatusOK || !ok {
		t.Fatalf("status %d, body %.100q", rec.Code, rec.Body.String())
	}
	return body
}
