package gen

import (
	"context"
	"time"
)

// WaitDue waits on timer (stopped or drained, as after time.NewTimer and
// a receive) until push seq of a run is due: the run started at start and
// sends rate pushes a second, all hosts together, push k of host hi being
// seq k*hosts+hi, so that the hosts take turns evenly. It returns the due
// time, and false when ctx ended first.
func WaitDue(ctx context.Context, timer *time.Timer, start time.Time, seq int, rate float64) (time.Time, bool) {
	due := start.Add(time.Duration(float64(seq) / rate * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		timer.Reset(d)
		select {
		case <-timer.C:
		case <-ctx.Done():
			return due, false
		}
	}
	return due, ctx.Err() == nil
}
