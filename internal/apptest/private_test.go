package apptest

import (
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/procscope/procscope/tools/loadgen/gen"
)

// TestStoragePrivateUnderUmask0: started with umask 0000, the aggregator
// still leaves nothing in its storage readable by others: the directory,
// the SQLite database with its -wal and -shm, and the history store's
// directories and files (VictoriaMetrics creates them 0755/0644 and lets
// the umask decide; the aggregator sets its own).
func TestStoragePrivateUnderUmask0(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	storage := filepath.Join(dir, "data")
	probe := filepath.Join(dir, "umask-probe")
	wrapper := filepath.Join(dir, "umask0.sh")
	// exec keeps the PID: Start's signals reach the aggregator itself.
	script := "#!/bin/sh\numask 000\n: > '" + probe + "'\nexec '" + bin + "' \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	p, err := Start(wrapper, storage, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if fi, err := os.Stat(probe); err != nil || fi.Mode().Perm() != 0o666 {
		t.Fatalf("the wrapper did not run under umask 0000: probe %v %v", fi, err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for i, at := range []string{"2026-11-25T17:00:00Z", "2026-11-25T17:00:10Z"} {
		if code, _, err := post(client, p.URL, "key-private", gen.Body(20, "private", at, i > 0)); err != nil || code != 201 {
			t.Fatalf("ingest: %d %v", code, err)
		}
	}

	check := func(when string, want ...string) {
		t.Helper()
		seen := map[string]bool{}
		n := 0
		err := filepath.WalkDir(storage, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return nil // removed meanwhile (VictoriaMetrics merges parts)
			}
			n++
			rel, _ := filepath.Rel(storage, path)
			seen[rel] = true
			if fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s: %s is %v: readable by others", when, rel, fi.Mode())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !seen[w] {
				t.Errorf("%s: %s not found", when, w)
			}
		}
		t.Logf("%s: %d entries checked", when, n)
	}
	check("running", ".", "procscope.db", "procscope.db-wal", "procscope.db-shm", "history")
	if !p.Stop(30 * time.Second) {
		t.Fatalf("SIGTERM did not stop the aggregator cleanly:\n%s", p.Log())
	}
	check("stopped", ".", "procscope.db", "history")
}
