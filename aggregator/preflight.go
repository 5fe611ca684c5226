package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/procscope/procscope/aggregator/internal/store"
)

// listen opens every --web.listen-address at once, before the storage is
// touched, so that a port in use stops the start with a clear message and
// leaves no storage directory behind. Systemd sockets and vsock addresses
// are left to the toolkit (nil listeners): it opens those itself.
func listen(cfg *web.FlagConfig) ([]net.Listener, error) {
	if cfg.WebSystemdSocket != nil && *cfg.WebSystemdSocket {
		return nil, nil
	}
	var ls []net.Listener
	for _, addr := range *cfg.WebListenAddresses {
		if strings.HasPrefix(addr, "vsock://") {
			closeAll(ls)
			return nil, nil
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll(ls)
			return nil, fmt.Errorf("--web.listen-address=%s: %w", addr, err)
		}
		ls = append(ls, l)
	}
	if len(ls) == 0 {
		return nil, errors.New("no --web.listen-address")
	}
	return ls, nil
}

// listenHint says what to do about a listen error, in words.
func listenHint(err error) string {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return "the port is in use by another process (another aggregator?): stop it, or choose another --web.listen-address"
	case errors.Is(err, syscall.EACCES):
		return "not allowed to bind this port (ports below 1024 need root or CAP_NET_BIND_SERVICE): choose another --web.listen-address"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no network interface of this machine has this address: choose another --web.listen-address"
	}
	return "check --web.listen-address"
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		_ = l.Close()
	}
}

// checkStorage creates the storage directory as the store would and proves
// it writable, so that a read-only or unwritable place is reported as such,
// with the flag to change, instead of as the error of whichever file SQLite
// or the history store happens to create first ("unable to open database
// file").
func checkStorage(dir string) error {
	if dir == "" {
		return errors.New("--storage.path is empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return storageError(dir, err)
	}
	probe, err := os.CreateTemp(dir, ".write-check-")
	if err != nil {
		return storageError(dir, err)
	}
	if err := probe.Close(); err != nil {
		_ = os.Remove(probe.Name())
		return storageError(dir, err)
	}
	if err := os.Remove(probe.Name()); err != nil {
		return storageError(dir, err)
	}
	db := filepath.Join(dir, store.DBFile)
	f, err := os.OpenFile(db, os.O_RDWR, 0)
	switch {
	case err == nil:
		_ = f.Close()
	case !errors.Is(err, fs.ErrNotExist):
		return storageError(dir, err)
	}
	return nil
}

// storageError names the flag, the cause in words, and the way out.
func storageError(dir string, err error) error {
	why := "cannot be written"
	switch {
	case errors.Is(err, syscall.EROFS):
		why = "is on a read-only file system"
	case errors.Is(err, fs.ErrPermission):
		why = fmt.Sprintf("is not writable by this user (uid %d)", os.Getuid())
	case errors.Is(err, syscall.ENOTDIR):
		why = "is below a file, not a directory"
	case errors.Is(err, syscall.ENOSPC):
		why = "is on a full file system"
	}
	return fmt.Errorf("--storage.path=%s %s (%w): choose another --storage.path, or make it a directory this user can write", dir, why, err)
}
