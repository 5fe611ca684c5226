package api

import (
	"errors"
	"io"
	"sync/atomic"
)

// errInflight: the bodies being read at once already hold the whole
// in-flight budget; the request is answered 429 with Retry-After.
var errInflight = errors.New("ingest memory budget exhausted")

// byteBudget bounds the bytes that all ingest bodies being read at once
// hold after decompression. MaxDecodedBytes stops one gzip bomb at the
// limit, but MaxConcurrent bombs read side by side would each hold that much
// (32 x 64 MiB = 2 GiB by default); with the budget, concurrent bombs cost
// at most the budget together, and ordinary ~20 KB snapshots never notice it.
type byteBudget struct {
	max  int64
	used atomic.Int64
}

func (b *byteBudget) take(n int64) bool {
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *byteBudget) release(n int64) { b.used.Add(-n) }

// budgetReader takes from the budget every byte it hands over; release
// gives all of it back once the body is no longer held.
type budgetReader struct {
	r     io.Reader
	b     *byteBudget
	taken int64
}

func (br *budgetReader) Read(p []byte) (int, error) {
	n, err := br.r.Read(p)
	if n > 0 {
		if !br.b.take(int64(n)) {
			return 0, errInflight
		}
		br.taken += int64(n)
	}
	return n, err
}

func (br *budgetReader) release() {
	br.b.release(br.taken)
	br.taken = 0
}
