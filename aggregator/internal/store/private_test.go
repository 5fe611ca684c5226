//go:build unix

package store

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenMakesStoragePrivate: a storage directory made readable by others
// (mkdir under umask 022, an older version) is tightened to 0700 with a log
// line, and the database, its -wal and -shm are 0600 whatever the umask
// (this test's process keeps its usual 022).
func TestOpenMakesStoragePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	st, err := OpenSQLite(context.Background(), dir, Options{Logger: log, PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string, wantFiles ...string) {
		t.Helper()
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: storage directory %v %v, want 0700", when, fi.Mode(), err)
		}
		seen := map[string]bool{}
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == dir {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return nil // removed meanwhile
			}
			seen[d.Name()] = true
			if fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s: %s is %v: readable by others", when, p, fi.Mode())
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s: walking %s: %v", when, dir, err)
		}
		for _, f := range wantFiles {
			if !seen[f] {
				t.Errorf("%s: %s not found (have %v)", when, f, seen)
			}
		}
	}
	check("fresh", DBFile, DBFile+"-wal", DBFile+"-shm")
	if !strings.Contains(logs.String(), "made storage private") {
		t.Errorf("tightening the directory was not logged:\n%s", logs.String())
	}
	_ = st.Close()

	// An existing store left readable by others.
	_ = os.Chmod(dir, 0o755)
	_ = os.Chmod(filepath.Join(dir, DBFile), 0o644)
	logs.Reset()
	st, err = OpenSQLite(context.Background(), dir, Options{Logger: log, PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	check("reopened", DBFile)
	if n := strings.Count(logs.String(), "made storage private"); n != 2 {
		t.Errorf("want 2 log lines (directory and database), got %d:\n%s", n, logs.String())
	}
}
