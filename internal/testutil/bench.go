package testutil

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ParallelLatencies runs op b.N times across b.RunParallel's goroutines and
// returns how long each call took, sorted, for percentiles. op gets a
// sequence number 1..b.N, unique across goroutines, from which callers
// derive which host sends and with which timestamp. A failing op is a
// b.Error and ends its goroutine's loop; its call is not counted.
//
// Each goroutine keeps its own slice and hands it over once, so gathering
// adds no lock to the timed path.
func ParallelLatencies(b *testing.B, op func(n int64) error) []time.Duration {
	var (
		seq atomic.Int64
		mu  sync.Mutex
		lat []time.Duration
	)
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		defer func() {
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
		for pb.Next() {
			n := seq.Add(1)
			t0 := time.Now()
			if err := op(n); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
	})
	slices.Sort(lat)
	return lat
}
