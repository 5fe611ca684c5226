package api

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// errInflight: the bodies being read at once already hold the whole
// in-flight budget; the request is answered 429 with Retry-After.
var errInflight = errors.New("ingest memory budget exhausted")

// byteBudget bounds the bytes that all ingest bodies being read at once
// hold, as sent and after decompression. MaxDecodedBytes stops one gzip
// bomb at the limit, but bombs read side by side (or many slow bodies,
// which are read before an ingest slot is taken) would each hold that much;
// with the budget, concurrent bodies cost at most the budget together, and
// ordinary ~20 KB snapshots never notice it.
type byteBudget struct {
	max  int64
	used atomic.Int64
	// peak is the most ever held at once, for tests.
	peak atomic.Int64
}

func (b *byteBudget) take(n int64) bool {
	u := b.used.Add(n)
	if u > b.max {
		b.used.Add(-n)
		return false
	}
	for p := b.peak.Load(); u > p && !b.peak.CompareAndSwap(p, u); p = b.peak.Load() {
	}
	return true
}

func (b *byteBudget) release(n int64) { b.used.Add(-n) }

// bodyBufs pools body buffers (as sent, and decompressed); bigger ones
// than maxPooledBuf are left to the GC.
var bodyBufs = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledBuf = 4 << 20

// firstRoom is the first capacity a body buffer is given once a byte has
// arrived (less when Content-Length says so): a slow client holds this
// much, not what its Content-Length claims.
const firstRoom = 16 << 10

// heldBuf is a body buffer whose capacity is charged to the in-flight
// budget as if it were new memory, a pooled buffer's included, so that
// the budget bounds what all requests hold whatever the pool hands out.
// It grows by doubling but never past the limit it is filled to, and
// release (once or more) gives back both the budget and the buffer.
type heldBuf struct {
	p       *[]byte
	buf     []byte // cap(buf) >= room
	room    int    // the capacity charged and usable
	budget  *byteBudget
	release func()
}

func newHeldBuf(b *byteBudget) *heldBuf {
	h := &heldBuf{p: bodyBufs.Get().(*[]byte), budget: b}
	h.buf = (*h.p)[:0]
	h.release = func() {
		if h.p == nil {
			return
		}
		b.release(int64(h.room))
		h.room = 0
		if cap(h.buf) <= maxPooledBuf {
			*h.p = h.buf[:0]
			bodyBufs.Put(h.p)
		}
		h.p, h.buf = nil, nil
	}
	return h
}

// charge makes n bytes of room count against the budget, without
// allocating (inflate.Gunzip allocates beyond cap(buf) itself).
func (h *heldBuf) charge(n int) bool {
	if n <= h.room {
		return true
	}
	if !h.budget.take(int64(n - h.room)) {
		return false
	}
	h.room = n
	return true
}

// reserve gives the buffer room for n bytes in all: charged, and
// allocated at exactly n when the buffer is smaller.
func (h *heldBuf) reserve(n int) bool {
	if !h.charge(n) {
		return false
	}
	if n > cap(h.buf) {
		next := make([]byte, len(h.buf), n)
		copy(next, h.buf)
		h.buf = next
	}
	return true
}

// fill appends what r holds until EOF, within limit bytes: past it,
// limitErr, with exactly limit bytes held. The room doubles from
// firstRoom as bytes arrive, up to size when it is known (> 0, the
// Content-Length: no growth nor slack for a body that says its size) and
// never past limit; a growth the budget refuses ends it with errInflight.
// Before each growth one byte is read, so that nothing is allocated for
// bytes that never come (an empty body, or the end of a full one).
func (h *heldBuf) fill(r io.Reader, limit, size int, limitErr error) error {
	var one [1]byte
	stalls := 0
	for {
		var n int
		var err error
		if len(h.buf) < h.room {
			n, err = r.Read(h.buf[len(h.buf):h.room])
			h.buf = h.buf[:len(h.buf)+n]
		} else {
			n, err = r.Read(one[:])
			if n > 0 {
				if len(h.buf) >= limit {
					return limitErr
				}
				want := max(2*h.room, firstRoom)
				if size > len(h.buf) {
					want = min(want, size)
				}
				if !h.reserve(min(want, limit)) {
					return errInflight
				}
				h.buf = append(h.buf, one[0])
			}
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		case n == 0:
			if stalls++; stalls > 100 {
				return io.ErrNoProgress
			}
		default:
			stalls = 0
		}
	}
}
