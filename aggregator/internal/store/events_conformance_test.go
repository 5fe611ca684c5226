package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// Lifecycle events round-trip the same through both stores: stored once,
// searched by name, newest first, pruned with the snapshots.
func TestEventsBothStores(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		s := be.open(t, Options{})
		ev, ok := s.(EventStore)
		if !ok {
			t.Fatal("not an EventStore")
		}
		ctx := context.Background()
		mustIngest(t, s, req("h", "k", t0))
		evs := []Event{
			{At: t0, Kind: EventStarted, PID: 10, PPID: 1, Name: "Nginx_1", Unit: "nginx.service", Started: t0.Add(-time.Second)},
			{At: t0.Add(time.Second), Kind: EventExited, PID: 11, PPID: 1, Name: "cron", Started: t0.Add(-time.Hour), CPUPercent: 1.5, MemoryMB: 3.25},
			{At: t0.Add(2 * time.Second), Kind: EventRestarted, PID: 12, PPID: 1, Name: "nginx", PrevPID: 10, ContainerID: "abc", Started: t0.Add(1500 * time.Millisecond)},
			{At: t0.Add(3 * time.Second), Kind: EventStarted, PID: 13, PPID: 1, Name: "no-create-time"},
		}
		if err := ev.AddEvents(ctx, "h", evs); err != nil {
			t.Fatal(err)
		}
		if err := ev.AddEvents(ctx, "h", evs[:1]); err != nil { // again: stored once
			t.Fatal(err)
		}
		if err := ev.AddEvents(ctx, "nope", evs); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown host: %v", err)
		}
		got, err := ev.Events(ctx, "h", EventQuery{From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
		if err != nil || len(got) != 4 || !reflect.DeepEqual(got[0], evs[3]) || !reflect.DeepEqual(got[1], evs[2]) || !reflect.DeepEqual(got[2], evs[1]) || !reflect.DeepEqual(got[3], evs[0]) {
			t.Fatalf("events = %+v, %v", got, err)
		}
		got, err = ev.Events(ctx, "h", EventQuery{From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Q: "NGINX_"})
		if err != nil || len(got) != 1 || got[0].PID != 10 {
			t.Fatalf("search: %+v, %v", got, err)
		}
		got, err = ev.Events(ctx, "h", EventQuery{From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Kinds: []EventKind{EventRestarted, EventExited}})
		if err != nil || len(got) != 2 || got[0].PID != 12 || got[1].PID != 11 {
			t.Fatalf("kinds: %+v, %v", got, err)
		}
		got, err = ev.Events(ctx, "h", EventQuery{From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Q: "nginx", Kinds: []EventKind{EventStarted}})
		if err != nil || len(got) != 1 || got[0].PID != 10 {
			t.Fatalf("kinds and search: %+v, %v", got, err)
		}
		if n, err := ev.PruneEvents(ctx); err != nil || n != 0 {
			t.Fatalf("prune with the snapshot there: %d, %v", n, err)
		}
		if err := s.DeleteHost(ctx, "h"); err != nil {
			t.Fatal(err)
		}
		if _, err := ev.Events(ctx, "h", EventQuery{To: t0}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("events of a deleted host: %v", err)
		}
	})
}
