//go:build unix

package store

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// makePrivate takes group and other permissions off the storage directory
// and the database's files, logging what it tightened: a directory made by
// hand or by a deployment tool (mkdir under umask 022) would otherwise let
// every local user read the process tables. A failure (a directory owned
// by another user) is logged, not fatal: the files may still be private.
func makePrivate(dir string, log *slog.Logger) {
	for _, p := range []string{dir, filepath.Join(dir, DBFile), filepath.Join(dir, DBFile+"-wal"), filepath.Join(dir, DBFile+"-shm")} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			log.Warn("cannot check storage permissions", "path", p, "err", err)
			continue
		}
		mode := fi.Mode().Perm()
		if mode&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, mode&^0o077); err != nil {
			log.Warn("storage is readable by other users and cannot be made private", "path", p, "mode", mode.String(), "err", err)
			continue
		}
		log.Info("made storage private to the aggregator's user", "path", p, "was", mode.String(), "now", (mode &^ 0o077).String())
	}
}
