package store

import (
	"container/list"
	"sync"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// frame is a decoded keyframe: what every delta of it is read against.
// Frames are immutable once built (a snapshot id's content never changes,
// even when retention re-encodes its blobs), so readers share them.
type frame struct {
	procs     []snapshot.Process
	sys       []byte
	sysTokens [][]byte
}

func (f *frame) rows() int { return len(f.procs) + 1 }

// frameCache is an LRU of decoded keyframes bounded by their total rows:
// the UI polls the latest snapshot of many hosts, and all their deltas
// share a handful of keyframes.
type frameCache struct {
	mu    sync.Mutex
	max   int
	rows  int
	order *list.List // front = most recently used; values are *cacheEntry
	byID  map[int64]*list.Element
}

type cacheEntry struct {
	id int64
	f  *frame
}

func newFrameCache(maxRows int) *frameCache {
	return &frameCache{max: maxRows, order: list.New(), byID: make(map[int64]*list.Element)}
}

func (c *frameCache) get(id int64) *frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[id]
	if !ok {
		return nil
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).f
}

func (c *frameCache) put(id int64, f *frame) {
	if f.rows() > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byID[id]; ok {
		return
	}
	c.byID[id] = c.order.PushFront(&cacheEntry{id: id, f: f})
	c.rows += f.rows()
	for c.rows > c.max {
		c.removeLocked(c.order.Back())
	}
}

// forget drops a keyframe that was deleted (its id is never reused, so this
// only frees memory early).
func (c *frameCache) forget(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byID[id]; ok {
		c.removeLocked(e)
	}
}

func (c *frameCache) removeLocked(e *list.Element) {
	ce := e.Value.(*cacheEntry)
	c.order.Remove(e)
	delete(c.byID, ce.id)
	c.rows -= ce.f.rows()
}
