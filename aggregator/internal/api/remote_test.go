package api

import (
	"testing"
	"time"
)

// A snapshot another aggregator stored reaches this one's live stream
// clients as an ingest here would, and a late one is not announced.
func TestPublishStored(t *testing.T) {
	e := newEnv(t, nil)
	sub := e.a.stream.subscribe("web<1>")
	if sub == nil {
		t.Fatal("no subscription")
	}
	defer e.a.stream.unsubscribe(sub)
	at := time.Date(2026, 11, 25, 17, 0, 2, 0, time.UTC)
	e.a.PublishStored(42, "web<1>", at)
	e.a.PublishStored(41, "web<1>", at.Add(-time.Minute)) // late: not news
	e.a.PublishStored(43, "other", at)
	select {
	case ev := <-sub.ch:
		if ev != (streamEvent{SnapshotID: 42, CapturedAt: "2026-11-25T17:00:02.000Z", Hostname: "web<1>"}) {
			t.Fatalf("event %+v", ev)
		}
	default:
		t.Fatal("no event")
	}
	select {
	case ev := <-sub.ch:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
	e.a.PublishStored(44, "web<1>", at.Add(time.Second))
	e.a.PublishStored(45, "web<1>", at.Add(2*time.Second))
	if e.a.seen.window("web<1>", time.Hour) != 3*time.Second {
		t.Fatalf("push interval not learned from other aggregators' snapshots: %s", e.a.seen.window("web<1>", time.Hour))
	}
}
