package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

type stored struct {
	req *IngestRequest
	id  int64
}

// TestRetentionTiers ingests 30 hours of one snapshot a minute for two
// hosts, prunes with an injected clock, and checks the tiers, then moves
// the clock on (tiers shift, a late replay lands in thinned time) and
// checks again. Every surviving snapshot must still read back exactly as
// sent, which fails if pruning broke a delta's keyframe.
func TestRetentionTiers(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		var nowMs atomic.Int64
		start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		nowMs.Store(start.Add(30 * time.Hour).UnixMilli())
		opts := Options{
			RetentionRaw: time.Hour,
			RetentionMid: 6 * time.Hour,
			Retention:    24 * time.Hour,
			PruneBatch:   50, // many small transactions
			PrunePause:   -1, // no pause
			Now:          func() time.Time { return time.UnixMilli(nowMs.Load()) },
		}
		s := be.open(t, opts)
		ctx := context.Background()

		var all []stored
		add := func(reqs []*IngestRequest) {
			ids := ingestAll(t, s, reqs)
			for i, r := range reqs {
				all = append(all, stored{r, ids[i]})
			}
		}
		var reqs []*IngestRequest
		for _, host := range []*fakeHost{newFakeHost(1, "a", 40), newFakeHost(2, "b", 25)} {
			for i := range 30 * 60 {
				r := host.next()
				r.CapturedAt = start.Add(time.Duration(i)*time.Minute + time.Duration(i%7)*time.Second)
				reqs = append(reqs, r)
			}
		}
		add(reqs)

		check := func(label string) {
			t.Helper()
			n, err := s.Prune(ctx)
			if err != nil {
				t.Fatalf("%s: prune: %v", label, err)
			}
			if again, err := s.Prune(ctx); err != nil || again != 0 {
				t.Fatalf("%s: second prune deleted %d, %v", label, again, err)
			}
			now := nowMs.Load()
			rawEdge, midEdge, oldEdge := now-time.Hour.Milliseconds(), now-6*time.Hour.Milliseconds(), now-24*time.Hour.Milliseconds()
			live := map[int64]bool{}
			for _, id := range be.queryInts(t, "SELECT id FROM snapshots") {
				live[id] = true
			}

			type bucket struct {
				host string
				b    int64
			}
			first := map[bucket]stored{} // earliest ingested snapshot of each bucket
			kept := map[bucket]int{}
			for _, st := range all {
				c := st.req.CapturedAt.UnixMilli()
				switch {
				case c < oldEdge:
					if live[st.id] {
						t.Fatalf("%s: snapshot %d older than retention survived", label, st.id)
					}
					continue
				case c >= rawEdge:
					if !live[st.id] {
						t.Fatalf("%s: snapshot %d within raw retention was deleted", label, st.id)
					}
					continue
				}
				size := time.Hour.Milliseconds()
				lo, hi := oldEdge, midEdge
				if c >= midEdge {
					size, lo, hi = 5*time.Minute.Milliseconds(), midEdge, rawEdge
				}
				b := alignDown(c, time.Duration(size)*time.Millisecond)
				if b < lo || b+size > hi {
					continue // a bucket cut by a tier edge: checked by the pass below
				}
				k := bucket{st.req.Hostname, b}
				if f, ok := first[k]; !ok || c < f.req.CapturedAt.UnixMilli() {
					first[k] = st
				}
				if live[st.id] {
					kept[k]++
				}
			}
			for k, f := range first {
				if kept[k] != 1 || !live[f.id] {
					t.Fatalf("%s: bucket %s@%s keeps %d snapshots (first %d live=%v)", label, k.host, msTime(k.b), kept[k], f.id, live[f.id])
				}
			}
			// Everything that survived reads back as sent.
			for _, st := range all {
				if live[st.id] {
					checkProcesses(t, s, st.id, st.req.Processes)
					m, err := s.Snapshot(ctx, st.id)
					if err != nil || string(m.SystemInfo) != string(st.req.SystemInfo) {
						t.Fatalf("%s: snapshot %d system_info: %v", label, st.id, err)
					}
				}
			}
			stats, err := s.Stats(ctx)
			if err != nil || stats.Snapshots != int64(len(live)) {
				t.Fatalf("%s: stats %+v, %v; %d live", label, stats, err, len(live))
			}
			t.Logf("%s: pruned %d, %d left", label, n, len(live))
		}
		deltas := deltaIDs(t, be)
		check("first pass")
		// A delta whose keyframe was pruned becomes a keyframe itself: unless
		// one did, the pass above did not exercise delta chains.
		rebased, after := 0, deltaIDs(t, be)
		for id := range deltas {
			if _, still := after[id]; !still && liveID(t, be, id) {
				rebased++
			}
		}
		if rebased == 0 {
			t.Fatal("no delta was rebased: the test does not exercise delta chains")
		}

		// Later: tiers move, new snapshots come, and a replay arrives late into
		// time that was already thinned (it is earlier than the snapshot kept
		// for its bucket, so it becomes the one kept).
		nowMs.Add((3*time.Hour + 30*time.Minute).Milliseconds())
		reqs = nil
		h := newFakeHost(3, "a", 40)
		for i := range 100 {
			r := h.next()
			r.CapturedAt = start.Add(30*time.Hour + time.Duration(i)*2*time.Minute)
			reqs = append(reqs, r)
		}
		late := h.next()
		// In the 5-minute tier (27.5h..32.5h after start), earlier than the
		// snapshot kept for its bucket (28h10m03s).
		late.CapturedAt = start.Add(28*time.Hour + 10*time.Minute)
		reqs = append(reqs, late)
		add(reqs)
		check("second pass")
		for _, st := range all {
			if st.req == late {
				if _, err := s.Processes(ctx, st.id); err != nil {
					t.Fatalf("late replay: %v", err)
				}
			}
		}
		if st, _ := s.Stats(ctx); st.RowsPruned == 0 {
			t.Fatal("RowsPruned is 0")
		}
	})
}

// TestFileStaysBounded runs 12 simulated hours at one snapshot a minute
// with 2 hours of retention: once retention holds, freed pages are reused
// and the file stops growing. Deleting a host then gives its pages back.
func TestFileStaysBounded(t *testing.T) {
	var nowMs atomic.Int64
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s := openTest(t, t.TempDir(), Options{
		RetentionRaw: 30 * time.Minute,
		Retention:    2 * time.Hour,
		PrunePause:   -1,
		Now:          func() time.Time { return time.UnixMilli(nowMs.Load()) },
	})
	ctx := context.Background()
	pages := func() int64 {
		var n int64
		if err := s.wdb.QueryRow("PRAGMA page_count").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	hosts := []*fakeHost{newFakeHost(1, "a", 150), newFakeHost(2, "b", 150)}
	var atThree int64
	for minute := range 12 * 60 {
		now := start.Add(time.Duration(minute) * time.Minute)
		nowMs.Store(now.UnixMilli())
		var reqs []*IngestRequest
		for _, h := range hosts {
			r := h.next()
			r.CapturedAt = now
			reqs = append(reqs, r)
		}
		ingestAll(t, s, reqs)
		if minute%30 == 29 {
			if _, err := s.Prune(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if minute == 3*60 {
			atThree = pages()
		}
	}
	end := pages()
	t.Logf("pages after 3h: %d, after 12h: %d", atThree, end)
	if end > atThree*5/4 {
		t.Fatalf("file grew from %d to %d pages under steady retention", atThree, end)
	}

	if err := s.DeleteHost(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	var free int64
	_ = s.wdb.QueryRow("PRAGMA freelist_count").Scan(&free)
	if after := pages(); after >= end || free*4 > after {
		t.Fatalf("after deleting a host: %d pages (%d free), was %d", after, free, end)
	}
}

// The background pruner runs on its own: expired snapshots disappear
// without anyone calling Prune.
func TestBackgroundPruner(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
		s := be.open(t, Options{
			RetentionRaw:  time.Hour,
			Retention:     2 * time.Hour,
			PruneInterval: 20 * time.Millisecond,
			Now:           func() time.Time { return now },
		})
		h := newFakeHost(1, "a", 20)
		var reqs []*IngestRequest
		for i := range 50 {
			r := h.next()
			r.CapturedAt = now.Add(-3*time.Hour + time.Duration(i)*time.Second) // all expired
			reqs = append(reqs, r)
		}
		fresh := h.next()
		fresh.CapturedAt = now
		reqs = append(reqs, fresh)
		ingestAll(t, s, reqs)
		deadline := time.Now().Add(20 * time.Second)
		for {
			st, err := s.Stats(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st.Snapshots == 1 && st.RowsPruned == 50 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("background pruner did not prune: %+v", st)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if m, err := s.Latest(context.Background(), "a"); err != nil || !m.CapturedAt.Equal(fresh.CapturedAt) {
			t.Fatalf("latest after pruning: %+v, %v", m, err)
		}
	})
}

// deltaIDs are the snapshots stored as deltas against a keyframe.
func deltaIDs(t *testing.T, be *backend) map[int64]struct{} {
	t.Helper()
	ids := map[int64]struct{}{}
	for _, id := range be.queryInts(t, "SELECT id FROM snapshots WHERE base_id IS NOT NULL") {
		ids[id] = struct{}{}
	}
	return ids
}

func liveID(t *testing.T, be *backend, id int64) bool {
	t.Helper()
	return be.queryInt(t, fmt.Sprintf("SELECT count(*) FROM snapshots WHERE id = %d", id)) == 1
}
