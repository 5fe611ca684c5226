package gen

import (
	"context"
	"testing"
	"time"
)

func TestWaitDue(t *testing.T) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	start := time.Now().Add(-time.Hour)
	// Push 1,000 at 500 a second is due two seconds after the start: long
	// past, so no wait.
	due, ok := WaitDue(context.Background(), timer, start, 1000, 500)
	if !ok || !due.Equal(start.Add(2*time.Second)) {
		t.Fatalf("due %v ok %v, want %v true", due, ok, start.Add(2*time.Second))
	}
	// A push an hour ahead returns at once when the context ends.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := WaitDue(ctx, timer, time.Now().Add(time.Hour), 0, 1); ok {
		t.Fatal("waited for a push after its context ended")
	}
}
