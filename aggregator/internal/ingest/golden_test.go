package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
)

var update = flag.Bool("update", false, "rewrite testdata/decode/*.golden from the current decoder")

// goldenDir holds the decoder's fixtures: NAME.json is an ingest body
// exactly as sent (bytes, not necessarily valid JSON or UTF-8), NAME.golden
// what Decode makes of it. The bodies are the cases the frozen pre-speed-work
// decoder was once compared against (edge numbers, escapes and invalid UTF-8,
// timestamps, nulls, missing and duplicate fields, callback refusals) and,
// as mut-*.json, mutations of them that reach distinct errors (a byte
// replaced, dropped, repeated or cut; picked once and kept). Regenerate the
// outputs after an intended change with
//
//	go test -run TestDecodeGolden -update ./aggregator/internal/ingest
//
// and review the diff: every changed line is a change a client can see.
const goldenDir = "testdata/decode"

// goldenResult is what a client can see of one Decode call.
type goldenResult struct {
	Error        string   `json:"error,omitempty"`
	Kind         string   `json:"kind,omitempty"` // invalid (400), too_large (413), callback (the key check's error)
	HostnameSeen bool     `json:"hostname_seen"`
	OnHostname   []string `json:"on_hostname,omitempty"`
	CapturedAt   string   `json:"captured_at,omitempty"` // Decoded.CapturedAt, RFC 3339 with nanoseconds
	// Snapshot is Decoded.Snapshot without system_info, which SystemInfo
	// holds as the exact bytes kept.
	Snapshot   *snapshot.Snapshot `json:"snapshot"`
	SystemInfo *string            `json:"system_info_bytes,omitempty"`
	// Max3 is the error with MaxProcesses 3 (the process limit's path).
	Max3 string `json:"max_processes_3_error,omitempty"`
}

// errKeyRefused stands for the HTTP layer's key check failing: hostnames
// starting with "x" are refused.
var errKeyRefused = errors.New("key refused")

func goldenDecode(in []byte, maxProcs int) (*Decoded, []string, error) {
	var calls []string
	d, err := Decode(in, DecodeOptions{MaxProcesses: maxProcs, OnHostname: func(h string) error {
		calls = append(calls, h)
		if strings.HasPrefix(h, "x") {
			return errKeyRefused
		}
		return nil
	}})
	return d, calls, err
}

func errKind(err error) string {
	var de *DecodeError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errKeyRefused):
		return "callback"
	case errors.As(err, &de) && de.Kind == KindTooLarge:
		return "too_large"
	case errors.As(err, &de) && de.Kind == KindInvalid:
		return "invalid"
	}
	return "other"
}

func goldenOf(in []byte) []byte {
	d, calls, err := goldenDecode(in, 1000)
	r := goldenResult{HostnameSeen: d.HostnameSeen, OnHostname: calls, Kind: errKind(err)}
	if err != nil {
		r.Error = err.Error()
	}
	if !d.CapturedAt.IsZero() {
		r.CapturedAt = d.CapturedAt.Format(time.RFC3339Nano)
	}
	s := d.Snapshot
	if s.SystemInfo != nil {
		raw := string(s.SystemInfo)
		r.SystemInfo = &raw
	}
	s.SystemInfo = nil
	r.Snapshot = &s
	if _, _, err := goldenDecode(in, 3); err != nil {
		r.Max3 = errKind(err) + ": " + err.Error()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// TestDecodeGolden decodes every fixture and compares what a client can
// see (values, error and its kind, byte offsets included, the OnHostname
// calls) with the golden file.
func TestDecodeGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) < 50 {
		t.Fatalf("only %d fixtures in %s", len(inputs), goldenDir)
	}
	for _, path := range inputs {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got := goldenOf(in)
			golden := strings.TrimSuffix(path, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("decoding %s:\n got %s\nwant %s", path, got, want)
			}
		})
	}
}
