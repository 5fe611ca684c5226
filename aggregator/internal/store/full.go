package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"
)

// ErrStorageFull: the file system holding the database is full. Nothing
// of the failed write was kept (SQLite rolled its transaction back); the
// HTTP layer answers 503 with Retry-After and exporters send it again.
var ErrStorageFull = errors.New("storage is full")

// noteFull turns a full-disk error into ErrStorageFull, logging the first
// of a run once; other errors pass unchanged.
func (s *SQLite) noteFull(err error) error {
	if err == nil || errors.Is(err, ErrStorageFull) || !isFull(err) {
		return err
	}
	if s.full.CompareAndSwap(false, true) {
		s.log.Error("storage is full: ingests are refused with 503 until space is freed; reads go on", "path", s.path, "err", err)
	}
	return fmt.Errorf("%w: %v", ErrStorageFull, err)
}

// spaceAgain is the free space that ends a run of full-disk errors: on a
// disk at its last bytes, a small commit that still fits would otherwise
// flip the state (and its log lines) with every batch.
const spaceAgain = 4 << 20

// noteSpace ends a run of full-disk errors: a commit went through and
// the file system has room again.
func (s *SQLite) noteSpace() {
	if !s.full.Load() {
		return
	}
	if free, ok := freeBytes(filepath.Dir(s.path)); ok && free < max(spaceAgain, uint64(s.opts.MinFreeBytes)) {
		return
	}
	if s.full.CompareAndSwap(true, false) {
		s.log.Info("storage has space again: ingests are accepted", "path", s.path)
	}
}

// Full reports whether the last write failed for a full disk (and none
// succeeded since): procscope_aggregator_storage_full.
func (s *SQLite) Full() bool { return s.full.Load() }

// spaceCheckEvery bounds how often Ingest asks the file system for its
// free space (one statfs).
const spaceCheckEvery = 500 * time.Millisecond

// checkSpace refuses ingests while less than Options.MinFreeBytes is free:
// the embedded history store beside the database turns read-only at the
// same margin, and needs what is left of it to write out the samples it
// holds in memory (VictoriaMetrics ends the process when such a write
// fails), so the database must not take that room first.
func (s *SQLite) checkSpace() error {
	if s.opts.MinFreeBytes <= 0 {
		return nil
	}
	now := time.Now().UnixNano()
	if last := s.spaceAt.Load(); now-last >= int64(spaceCheckEvery) && s.spaceAt.CompareAndSwap(last, now) {
		free, ok := freeBytes(filepath.Dir(s.path))
		s.spaceLow.Store(ok && free < uint64(s.opts.MinFreeBytes))
	}
	if !s.spaceLow.Load() {
		return nil
	}
	return s.noteFull(fmt.Errorf("less than %d bytes free (--storage.min-free-disk-space): %w", s.opts.MinFreeBytes, syscall.ENOSPC))
}
