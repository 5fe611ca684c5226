//go:build unix

package history

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/fs"
)

// InUse reports whether another process (a running server) holds the
// history store in dir: VictoriaMetrics locks its directory, and opening
// it while locked would end in the lib's fatal panic and log noise. A
// missing directory or lock file is not in use.
func InUse(dir string) (bool, error) {
	f, err := os.Open(filepath.Join(dir, fs.FlockFilename))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer func() { _ = f.Close() }()
	// flock locks belong to the open file: this one is released with it.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return true, nil
		}
		return false, err
	}
	return false, syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
