package push

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// fileSuffix marks a complete queued snapshot; temp files start with
// tmpPrefix and are never picked up, so a crash mid-write leaves no
// half-written snapshot behind, only a temp file removed at the next start.
const (
	fileSuffix = ".json.gz"
	tmpPrefix  = ".tmp-"
)

// Queue is a bounded FIFO of gzip'ed snapshots kept on disk, one file per
// snapshot, so that an outage of the aggregator or a restart of the
// exporter loses nothing within the bound. File names start with the
// capture time in zero-padded Unix nanoseconds, so a plain sort is oldest
// first. It is safe for concurrent use by one producer and one sender.
type Queue struct {
	dir string
	max int

	mu       sync.Mutex
	names    []string // sorted, oldest first
	inflight string   // being sent: never dropped under the sender's feet
	seq      uint64

	diskFullDrops atomic.Int64
}

// OpenQueue opens (creating it 0700 if needed) the queue directory, removes
// leftover temp files, and loads the snapshots a previous run left. If
// there are more than max, the oldest are deleted; dropped says how many.
func OpenQueue(dir string, max int) (q *Queue, dropped int, err error) {
	if max < 1 {
		return nil, 0, fmt.Errorf("queue size %d: must be at least 1", max)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, fmt.Errorf("queue dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("queue dir: %w", err)
	}
	q = &Queue{dir: dir, max: max}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, tmpPrefix):
			_ = os.Remove(filepath.Join(dir, name))
		case strings.HasSuffix(name, fileSuffix) && e.Type().IsRegular():
			q.names = append(q.names, name)
		}
	}
	slices.Sort(q.names)
	q.mu.Lock()
	dropped = q.trimLocked()
	q.mu.Unlock()
	return q, dropped, nil
}

// Len is the number of snapshots waiting.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.names)
}

// Oldest is the capture time of the oldest queued snapshot, read from its
// file name.
func (q *Queue) Oldest() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.names) == 0 {
		return time.Time{}, false
	}
	ns, err := strconv.ParseInt(q.names[0][:min(20, len(q.names[0]))], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// Put stores one snapshot durably: temp file, fsync, rename, fsync of the
// directory, so after Put returns the snapshot survives a crash or power
// loss. If the queue is then over its bound the oldest snapshots are
// deleted; dropped says how many.
//
// On a full file system (ENOSPC, EDQUOT) it deletes the oldest queued
// snapshot and tries again, until the new one fits or none is left to
// delete: the newest data is what a monitor wants. Those count in dropped
// too, and DiskFullDrops says how many there were.
func (q *Queue) Put(capturedAt time.Time, data []byte) (dropped int, err error) {
	for range 100_000 { // bounded: each round deletes a queued file
		d, err := q.put(capturedAt, data)
		dropped += d
		if err == nil || !isDiskFull(err) || !q.dropOldest() {
			return dropped, err
		}
		dropped++
		q.diskFullDrops.Add(1)
	}
	return dropped, errors.New("queue: no room on a full disk")
}

// DiskFullDrops counts the snapshots Put deleted to make room on a full
// file system.
func (q *Queue) DiskFullDrops() int64 { return q.diskFullDrops.Load() }

func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// dropOldest deletes the oldest queued snapshot not being sent; false
// when there is none.
func (q *Queue) dropOldest() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, name := range q.names {
		if name == q.inflight {
			continue
		}
		_ = os.Remove(filepath.Join(q.dir, name))
		q.names = slices.Delete(q.names, i, i+1)
		return true
	}
	return false
}

func (q *Queue) put(capturedAt time.Time, data []byte) (dropped int, err error) {
	q.mu.Lock()
	q.seq++
	seq := q.seq
	q.mu.Unlock()

	ns := max(capturedAt.UnixNano(), 0)
	name := fmt.Sprintf("%020d-%06d%s", ns, seq%1e6, fileSuffix)
	tmp, err := os.CreateTemp(q.dir, tmpPrefix+"*")
	if err != nil {
		return 0, fmt.Errorf("queue: %w", err)
	}
	tmpName := tmp.Name()
	defer func() { _ = os.Remove(tmpName) }() // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return 0, fmt.Errorf("queue: write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return 0, fmt.Errorf("queue: fsync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("queue: %w", err)
	}
	if err := os.Rename(tmpName, filepath.Join(q.dir, name)); err != nil {
		return 0, fmt.Errorf("queue: %w", err)
	}
	syncDir(q.dir)

	q.mu.Lock()
	defer q.mu.Unlock()
	// Almost always the newest; a clock stepped back lands in its place.
	i, _ := slices.BinarySearch(q.names, name)
	q.names = slices.Insert(q.names, i, name)
	return q.trimLocked(), nil
}

// trimLocked deletes the oldest snapshots beyond the bound, skipping the
// one being sent (its fate is decided by the send).
func (q *Queue) trimLocked() int {
	dropped := 0
	for len(q.names) > q.max {
		i := 0
		if q.names[0] == q.inflight && len(q.names) > 1 {
			i = 1
		}
		_ = os.Remove(filepath.Join(q.dir, q.names[i]))
		q.names = slices.Delete(q.names, i, i+1)
		dropped++
	}
	return dropped
}

// errEmpty is returned by Next when nothing is queued.
var errEmpty = errors.New("queue empty")

// Next reads the oldest snapshot and marks it in flight. The caller ends
// with Ack (delivered or given up) or Release (keep for a retry).
// A file that cannot be read is removed and reported as an error, so one
// bad file cannot block the queue.
func (q *Queue) Next() (name string, data []byte, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.names) > 0 {
		name = q.names[0]
		data, err = os.ReadFile(filepath.Join(q.dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			// Removed by someone else; not ours to count.
			q.names = q.names[1:]
			continue
		}
		if err != nil {
			_ = os.Remove(filepath.Join(q.dir, name))
			q.names = q.names[1:]
			return name, nil, fmt.Errorf("queue: unreadable snapshot %s removed: %w", name, err)
		}
		q.inflight = name
		return name, data, nil
	}
	return "", nil, errEmpty
}

// Ack removes a snapshot for good.
func (q *Queue) Ack(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.inflight == name {
		q.inflight = ""
	}
	if i, ok := slices.BinarySearch(q.names, name); ok {
		q.names = slices.Delete(q.names, i, i+1)
	}
	_ = os.Remove(filepath.Join(q.dir, name))
}

// Release ends a failed send; the snapshot stays first in line.
func (q *Queue) Release(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.inflight == name {
		q.inflight = ""
	}
}

// syncDir makes a rename durable; best effort because not every OS or
// filesystem can fsync a directory (Windows cannot).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
