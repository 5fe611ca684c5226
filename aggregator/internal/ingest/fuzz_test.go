package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/tools/loadgen/gen"
)

// FuzzDecode checks Decode's invariants on any input, and that what it
// accepts re-encodes and decodes to the same value; its seed corpus runs
// in every `go test`. Run it for real with `make fuzz` or
// go test -run '^$' -fuzz FuzzDecode -fuzztime 60s ./aggregator/internal/ingest
func FuzzDecode(f *testing.F) {
	seeds := []string{
		string(gen.Body(3, "web-1", "2026-11-25T17:00:00.123Z", true)),
		body(`[]`),
		body(`null`),
		body(`[` + okProc + `,` + okProc + `]`),
		body(`[{"pid":1.0}]`),
		body(`[{"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0,"unit":"a.service","container_id":"c","pod_uid":"p","read_bytes_per_sec":1.5,"write_bytes_per_sec":null}]`),
		"{\"hostname\":\"\xff\xfe\",\"captured_at\":\"2026-11-25T17:00:00+05:00\",\"system_info\":{},\"processes\":[]}",
		`{"hostname":"a\ud800","captured_at":"2026-11-25T17:00:00Z","system_info":{"a":[1,{"b":"\u0000"}]},"processes":[]}`,
		`{"processes":[{"pid":1,"ppid":1,"name":"x","cpu_percent":1e308,"memory_mb":-0}],"hostname":"z"}`,
		strings.Repeat("[", 600),
		`{"hostname":"h","hostname":"h"}`,
		``, `{`, `{"`, `{"hostname"`, `{"hostname":`, `"`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	// And every golden fixture under 4 KiB (the fuzzer crawls on big
	// seeds, minimising what it finds byte by byte).
	fixtures, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range fixtures {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) <= 4096 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var seen []string
		d, err := Decode(data, DecodeOptions{MaxProcesses: 50, OnHostname: func(h string) error {
			seen = append(seen, h)
			return nil
		}})
		if len(seen) > 1 {
			t.Fatalf("OnHostname called %d times", len(seen))
		}
		if len(seen) == 1 && (!d.HostnameSeen || snapshot.CheckHostname(seen[0]) != "") {
			t.Fatalf("OnHostname got %q (valid: %q), HostnameSeen %v", seen[0], snapshot.CheckHostname(seen[0]), d.HostnameSeen)
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Msg == "" || !utf8.ValidString(de.Msg) {
				t.Fatalf("error %v is not a DecodeError with a UTF-8 message", err)
			}
			return
		}
		// Success: the input was JSON, the values obey the contract, and
		// they survive a round trip through encoding/json unchanged.
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		s := d.Snapshot
		if snapshot.CheckHostname(s.Hostname) != "" || len(s.Processes) > 50 || !json.Valid(s.SystemInfo) || !utf8.Valid(s.SystemInfo) {
			t.Fatalf("accepted a snapshot that breaks the rules: %+v", s)
		}
		pids := map[int64]bool{}
		for _, p := range s.Processes {
			if p.ProcessExt != nil && !p.HasExt() {
				t.Fatalf("a ProcessExt with nothing in it: %+v", p)
			}
			x := p.Ext()
			if p.PID < 0 || p.PPID < 0 || p.CPUPercent < 0 || p.MemoryMB < 0 || pids[p.PID] {
				t.Fatalf("bad process %+v", p)
			}
			pids[p.PID] = true
			if !utf8.ValidString(p.Name) || (p.Cmdline != nil && !utf8.ValidString(*p.Cmdline)) ||
				!utf8.ValidString(x.Unit) || !utf8.ValidString(x.ContainerID) || !utf8.ValidString(x.PodUID) {
				t.Fatalf("invalid UTF-8 kept in %+v", p)
			}
			for _, r := range []*float64{x.ReadBytesPerSec, x.WriteBytesPerSec} {
				if r != nil && (*r < 0 || math.IsInf(*r, 0) || math.IsNaN(*r)) {
					t.Fatalf("bad I/O rate %v in %+v", *r, p)
				}
			}
		}
		// Without HTML escaping: json.Marshal would rewrite "&" in
		// system_info as \u0026, the same value in other bytes.
		var enc bytes.Buffer
		e := json.NewEncoder(&enc)
		e.SetEscapeHTML(false)
		if err := e.Encode(s); err != nil {
			t.Fatal(err)
		}
		again := enc.Bytes()
		d2, err := Decode(again, DecodeOptions{MaxProcesses: 50})
		if err != nil {
			t.Fatalf("re-decoding our own encoding failed: %v\n%s", err, again)
		}
		// The same value: Decode's normalisations (UTC times, fixed UTF-8)
		// are idempotent. system_info is kept as sent, and json.Marshal
		// compacts it, so it is compared compacted.
		var compact bytes.Buffer
		if err := json.Compact(&compact, s.SystemInfo); err != nil {
			t.Fatal(err)
		}
		s.SystemInfo = compact.Bytes()
		if !reflect.DeepEqual(d2.Snapshot, s) || !d2.CapturedAt.Equal(d.CapturedAt) {
			t.Fatalf("round trip changed the snapshot:\n%+v\n%+v", s, d2.Snapshot)
		}
	})
}
