package apptest

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// copyTree copies a stopped store for damaging.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			return os.MkdirAll(to, 0o700)
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, 0o600)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func storageCheck(t *testing.T, bin, dir string) (int, string) {
	t.Helper()
	out, err := exec.Command(bin, "storage", "check", "--storage.path="+dir).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

// TestCorruptionRefusedAndChecked: a damaged database page or history
// part stops the server at start with one error naming the file and the
// way out, and `storage check` reports the damage (exit 1) where it
// passes the sound store.
func TestCorruptionRefusedAndChecked(t *testing.T) {
	bin := binary(t)
	storage := t.TempDir()
	p, err := Start(bin, storage, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	push := startPushing(t, p.URL, 3, time.Now().Add(-2*time.Hour).Truncate(time.Second).UTC())
	waitAcked(t, push, 150)
	push.halt()
	if !p.Stop(30 * time.Second) {
		t.Fatalf("server did not stop cleanly:\n%s", p.Log())
	}
	if code, out := storageCheck(t, bin, storage); code != 0 || !strings.Contains(out, "storage check: ok") {
		t.Fatalf("sound store: exit %d\n%s", code, out)
	}

	t.Run("database page", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "store")
		copyTree(t, storage, dir)
		dbPath := filepath.Join(dir, "procscope.db")
		db, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		var root, pageSize int64
		err = db.QueryRow("SELECT (SELECT rootpage FROM sqlite_master WHERE name = 'snapshots'), (SELECT page_size FROM pragma_page_size)").Scan(&root, &pageSize)
		_ = db.Close()
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(dbPath, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		// The b-tree page header of the snapshots table's root page.
		if _, err := f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, (root-1)*pageSize); err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
		code, msg := runTimed(t, bin, nil, "--web.listen-address=127.0.0.1:0", "--storage.path="+dir)
		if code != 1 || strings.Count(msg, "level=ERROR") != 1 || !strings.Contains(msg, "the database is damaged: refusing to start") || !strings.Contains(msg, dbPath) || !strings.Contains(msg, "backup") {
			t.Fatalf("refusal does not name the file and the way out:\n%s", msg)
		}
		code, out := storageCheck(t, bin, dir)
		if code != 1 || !strings.Contains(out, "DAMAGED") || !strings.Contains(out, "recovery:") {
			t.Fatalf("storage check on the damaged database: exit %d\n%s", code, out)
		}
		t.Logf("storage check:\n%s", out)
	})

	for _, tc := range []struct {
		name, glob string
		truncate   bool
		atStart    bool
	}{
		{"history metaindex", "history/data/small/*/*/metaindex.bin", false, true},
		{"history index", "history/data/small/*/*/index.bin", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			copyTree(t, storage, dir)
			m, _ := filepath.Glob(filepath.Join(dir, tc.glob))
			if len(m) == 0 {
				t.Fatalf("no %s", tc.glob)
			}
			b, err := os.ReadFile(m[0])
			if err != nil {
				t.Fatal(err)
			}
			if tc.truncate {
				b = b[:len(b)/2]
			} else {
				for i := range b {
					b[i] ^= 0x5a
				}
			}
			if err := os.WriteFile(m[0], b, 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.atStart {
				code, msg := runTimed(t, bin, nil, "--web.listen-address=127.0.0.1:0", "--storage.path="+dir)
				if code != 1 || strings.Count(msg, "level=ERROR") != 1 || !strings.Contains(msg, "the history store is damaged: refusing to start") || !strings.Contains(msg, m[0]) || strings.Contains(msg, "goroutine ") {
					t.Fatalf("refusal does not name the file and the way out, or crashed:\n%s", msg)
				}
			}
			code, out := storageCheck(t, bin, dir)
			if code != 1 || !strings.Contains(out, fmt.Sprintf("history %s: DAMAGED", filepath.Join(dir, "history"))) {
				t.Fatalf("storage check on the damaged history: exit %d\n%s", code, out)
			}
		})
	}
}
