package history

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fillAndClose writes some history into dir and closes it, so that its
// parts are files on disk.
func fillAndClose(t *testing.T, dir string) {
	t.Helper()
	h, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour)
	for i := range 500 {
		h.Add(testRequest("web-1", base.Add(time.Duration(i)*time.Second), float64(i%100), nil))
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCheckReadsEverySample(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "history")
	fillAndClose(t, dir)
	h := openTest(t, dir, Options{})
	rep, err := h.Check()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Series == 0 || rep.Samples < 500 {
		t.Fatalf("check read %+v", rep)
	}
	t.Logf("%+v", rep)
}

// A damaged part file never crashes the process: either Open refuses the
// store with an error naming the file, or Check, reading every block,
// reports it.
func TestDamagedPart(t *testing.T) {
	for _, tc := range []struct {
		glob     string
		truncate bool // else every byte flipped
		atOpen   bool
	}{
		{"data/small/*/*/metaindex.bin", true, true},
		{"data/small/*/*/metaindex.bin", false, true},
		{"data/small/*/*/metadata.json", false, true},
		{"data/small/*/parts.json", false, true},
		{"data/indexdb/*/*/metaindex.bin", false, true},
		{"data/small/*/*/index.bin", true, false},
		{"data/small/*/*/values.bin", false, false},
		{"data/small/*/*/timestamps.bin", true, false},
	} {
		t.Run(fmt.Sprintf("%s/truncate=%v", tc.glob, tc.truncate), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "history")
			fillAndClose(t, dir)
			m, _ := filepath.Glob(filepath.Join(dir, tc.glob))
			if len(m) == 0 {
				t.Fatalf("no %s", tc.glob)
			}
			fi, err := os.Stat(m[0])
			if err != nil {
				t.Fatal(err)
			}
			if tc.truncate {
				err = os.Truncate(m[0], fi.Size()/2)
			} else {
				var b []byte
				b, err = os.ReadFile(m[0])
				for i := range b {
					b[i] ^= 0x5a
				}
				if err == nil {
					err = os.WriteFile(m[0], b, 0o600)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			h, err := Open(dir, Options{})
			if tc.atOpen {
				if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), m[0]) {
					t.Fatalf("open: %v, want ErrDamaged naming %s", err, m[0])
				}
				return
			}
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer func() { _ = h.Close() }()
			if _, err := h.Check(); err == nil {
				t.Fatal("check found no damage")
			}
		})
	}
}
