package push

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/exporter/internal/collector"
)

func TestFromWalkAndEncode(t *testing.T) {
	cmd := "nginx -g daemon off;"
	w := &collector.Walk{
		Time:   time.Date(2026, 11, 25, 18, 0, 0, 123456789, time.FixedZone("CET", 3600)),
		System: snapshot.SystemInfo{OS: snapshot.OSInfo{Name: "linux"}},
		Processes: []collector.Process{
			{Process: snapshot.Process{PID: 1, Name: "init", CPUPercent: 0.5, MemoryMB: 3}},
			{Process: snapshot.Process{PID: 7, PPID: 1, Name: "nginx\n\"x\"", Cmdline: &cmd}},
			{Process: snapshot.Process{PID: 9, PPID: 1, Name: "idle"}},
		},
	}
	s, err := FromWalk(w, w.Processes[:2], "web-1", "procscope-exporter test")
	if err != nil {
		t.Fatal(err)
	}
	gz, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.NewDecoder(zr).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if got := string(raw["captured_at"]); got != `"2026-11-25T17:00:00.123Z"` {
		t.Errorf("captured_at %s, want UTC with milliseconds", got)
	}
	var sys snapshot.SystemInfo
	if err := json.Unmarshal(raw["system_info"], &sys); err != nil {
		t.Fatal(err)
	}
	if sys.ProcessCount != 3 || sys.Exporter != "procscope-exporter test" || sys.OS.Name != "linux" {
		t.Errorf("system_info %+v", sys)
	}
	var procs []map[string]any
	if err := json.Unmarshal(raw["processes"], &procs); err != nil {
		t.Fatal(err)
	}
	if len(procs) != 2 || procs[1]["name"] != "nginx\n\"x\"" || procs[1]["cmdline"] != cmd {
		t.Errorf("processes %v", procs)
	}
	if _, ok := procs[0]["cmdline"]; ok {
		t.Error("cmdline present for a process without one; docs/api.md wants it absent")
	}
}

func TestCheckHostname(t *testing.T) {
	f := func(h string, ok bool) {
		t.Helper()
		if err := CheckHostname(h); (err == nil) != ok {
			t.Errorf("CheckHostname(%q) = %v", h, err)
		}
	}
	f("web-1", true)
	f("Ünïcødé", true)
	f("", false)
	f(strings.Repeat("a", 253), true)
	f(strings.Repeat("a", 254), false)
	f("a\x00b", false)
	f("a\x7fb", false)
	f("a\u0085b", false)
	f("a\xffb", false)
}

func TestEncoderReuse(t *testing.T) {
	var e Encoder
	decode := func(b []byte) snapshot.Snapshot {
		t.Helper()
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		var s snapshot.Snapshot
		if err := json.NewDecoder(zr).Decode(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	mk := func(h string, n int) *snapshot.Snapshot {
		s := &snapshot.Snapshot{Hostname: h, CapturedAt: "2026-11-25T17:00:00.000Z", SystemInfo: json.RawMessage(`{}`)}
		for i := 0; i < n; i++ {
			s.Processes = append(s.Processes, snapshot.Process{PID: int64(i), Name: strings.Repeat("p", i%40)})
		}
		return s
	}
	b1, err := e.Encode(mk("first", 500))
	if err != nil {
		t.Fatal(err)
	}
	b2, err := e.Encode(mk("second", 3))
	if err != nil {
		t.Fatal(err)
	}
	// The first result must not be overwritten by the second encode.
	if s := decode(b1); s.Hostname != "first" || len(s.Processes) != 500 {
		t.Errorf("first: %s %d", s.Hostname, len(s.Processes))
	}
	if s := decode(b2); s.Hostname != "second" || len(s.Processes) != 3 {
		t.Errorf("second: %s %d", s.Hostname, len(s.Processes))
	}
}
