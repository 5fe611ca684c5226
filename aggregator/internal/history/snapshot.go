package history

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"
)

// Backups. VictoriaMetrics makes an instant snapshot of its storage with
// hard links (parts are immutable), under <dir>/snapshots/<name>; its data/
// subdirectories are symbolic links into the storage's own snapshot
// directories. Copying that tree, the links followed, gives a directory
// that opens as a history store of its own: a backup.

// Snapshot writes everything queued before the call (the history of every
// snapshot acknowledged so far), then takes a VictoriaMetrics snapshot. The
// caller copies dir (CopySnapshot) and then must call release, which
// deletes the snapshot (its hard links keep merged-away parts on disk).
func (h *History) Snapshot(timeout time.Duration) (dir string, release func() error, err error) {
	if h.storage == nil {
		return "", nil, errors.New("history: no embedded storage (remote write only)")
	}
	if err := h.Flush(timeout); err != nil {
		return "", nil, err
	}
	var name string
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("history: create snapshot: %v", r)
			}
		}()
		name = h.storage.MustCreateSnapshot()
	}()
	if err != nil {
		return "", nil, err
	}
	release = func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("history: delete snapshot %s: %v", name, r)
			}
		}()
		return h.storage.DeleteSnapshot(name)
	}
	return filepath.Join(h.dir, "snapshots", name), release, nil
}

// CopyProgress is called after every file CopySnapshot copied.
type CopyProgress func(files int, bytes int64)

// CopySnapshot copies the snapshot in src (Snapshot's dir) to dst, which
// must not exist, following the snapshot's symbolic links, and fsyncs
// every file and directory. dst then opens as a history store. It stops
// at the first error (dst is left for the caller to remove) or when
// cancelled returns true.
func CopySnapshot(src, dst string, progress CopyProgress, cancelled func() bool) error {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("history: copy snapshot: %s exists", dst)
	}
	files, total := 0, int64(0)
	var dirs []string
	err := walkFollow(src, dst, func(from, to string, d fs.FileInfo) error {
		if cancelled != nil && cancelled() {
			return errors.New("history: copy snapshot: cancelled")
		}
		if d.IsDir() {
			dirs = append(dirs, to)
			return os.MkdirAll(to, 0o700)
		}
		if !d.Mode().IsRegular() {
			return nil
		}
		n, err := copyFile(from, to)
		if err != nil {
			return err
		}
		files++
		total += n
		if progress != nil {
			progress(files, total)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Deepest first, so each directory's entries are durable before it.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syncPath(dirs[i]); err != nil {
			return err
		}
	}
	// VictoriaMetrics expects its snapshots directory (and creates the
	// rest of its layout itself).
	return os.MkdirAll(filepath.Join(dst, "snapshots"), 0o700)
}

// walkFollow walks src like filepath.Walk, but follows symbolic links to
// directories (a VictoriaMetrics snapshot is made of them), calling fn
// with each entry's path in src and the matching path under dst.
func walkFollow(src, dst string, fn func(from, to string, fi fs.FileInfo) error) error {
	fi, err := os.Stat(src) // follows a link
	if err != nil {
		return err
	}
	if err := fn(src, dst, fi); err != nil {
		return err
	}
	if !fi.IsDir() {
		return nil
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := walkFollow(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()), fn); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) (int64, error) {
	in, err := os.Open(from)
	if err != nil {
		return 0, err
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// deleteLeftoverSnapshots deletes the snapshots a backup left when the
// process holding the store died before it could release them: only the
// holder takes snapshots, and none outlives its process.
func deleteLeftoverSnapshots(s *storage.Storage, log *slog.Logger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("history: delete leftover snapshots: %v", r)
		}
	}()
	for _, name := range s.MustListSnapshots() {
		if err := s.DeleteSnapshot(name); err != nil {
			return err
		}
		log.Info("deleted a history snapshot left by an interrupted backup", "snapshot", name)
	}
	return nil
}
