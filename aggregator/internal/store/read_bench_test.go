package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/procscope/procscope/internal/testutil"
)

// BenchmarkReads times every read path of the Store on both engines, on
// the same data (40 hosts x 12 snapshots of 300 processes, 2,000 events
// on one host), so that a change to the read code can be compared against
// its baseline binary in the same run. cpu-µs/op is this process's CPU
// time (user and system) per read, steadier than ns/op on a busy machine:
//
//	hosts              Hosts: every host with its latest system_info
//	latest, at         Latest and SnapshotAt of one host
//	between-12         SnapshotsBetween over a host's 12 snapshots
//	processes          Processes of a delta whose keyframe is cached
//	checkkey-unknown   CheckKey of an unknown host (a query every time)
//	events-2000        Events: a host's 2,000 newest
//	events-search      Events with a name search
func BenchmarkReads(b *testing.B) {
	const hosts, perHost, nEvents = 40, 12, 2000
	var reqs []*IngestRequest
	for i := range hosts {
		h := newFakeHost(uint64(i), fmt.Sprintf("host-%02d", i), 300)
		for range perHost {
			reqs = append(reqs, h.next())
		}
	}
	t0 := reqs[0].CapturedAt.Add(-time.Minute)
	var evs []Event
	for i := range nEvents {
		evs = append(evs, Event{At: t0.Add(time.Duration(i) * 10 * time.Millisecond), Kind: EventKind(1 + i%3),
			PID: int64(1000 + i), PPID: 1, Name: fmt.Sprintf("worker-%d", i%50), Unit: "app.service",
			PrevPID: int64(i), Started: t0, CPUPercent: 1.5, MemoryMB: 12})
	}
	run := func(b *testing.B, s Store) {
		ctx := context.Background()
		ids := make([]int64, 0, len(reqs))
		for _, r := range reqs { // in order: deltas against each host's first keyframe
			ids = append(ids, mustIngestTB(b, s, r))
		}
		if err := s.(EventStore).AddEvents(ctx, "host-00", evs); err != nil {
			b.Fatal(err)
		}
		last := ids[perHost-1] // host-00's newest
		if _, err := s.Processes(ctx, last); err != nil {
			b.Fatal(err)
		}
		check := func(b *testing.B, err error) {
			if err != nil {
				b.Fatal(err)
			}
		}
		// loop runs read b.N times and reports its CPU time per call.
		loop := func(b *testing.B, read func()) {
			b.ReportAllocs()
			cpu0 := testutil.SelfCPU()
			for b.Loop() {
				read()
			}
			b.ReportMetric(float64((testutil.SelfCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		}
		b.Run("hosts", func(b *testing.B) {
			loop(b, func() {
				hs, err := s.Hosts(ctx)
				check(b, err)
				if len(hs) != hosts || hs[0].OS == "" {
					b.Fatalf("%d hosts", len(hs))
				}
			})
		})
		b.Run("latest", func(b *testing.B) {
			loop(b, func() {
				_, err := s.Latest(ctx, "host-07")
				check(b, err)
			})
		})
		b.Run("at", func(b *testing.B) {
			at := reqs[7*perHost+5].CapturedAt
			loop(b, func() {
				_, err := s.SnapshotAt(ctx, "host-07", at)
				check(b, err)
			})
		})
		b.Run("between-12", func(b *testing.B) {
			loop(b, func() {
				ms, err := s.SnapshotsBetween(ctx, "host-07", t0, t0.Add(24*time.Hour), 100)
				check(b, err)
				if len(ms) != perHost {
					b.Fatalf("%d snapshots", len(ms))
				}
			})
		})
		b.Run("processes", func(b *testing.B) {
			loop(b, func() {
				_, err := s.Processes(ctx, last)
				check(b, err)
			})
		})
		b.Run("checkkey-unknown", func(b *testing.B) {
			loop(b, func() {
				st, err := s.CheckKey(ctx, "nobody", key("k"))
				check(b, err)
				if st != HostUnknown {
					b.Fatal(st)
				}
			})
		})
		b.Run("events-2000", func(b *testing.B) {
			loop(b, func() {
				got, err := s.(EventStore).Events(ctx, "host-00", EventQuery{From: t0, To: t0.Add(time.Hour)})
				check(b, err)
				if len(got) != nEvents {
					b.Fatalf("%d events", len(got))
				}
			})
		})
		b.Run("events-search", func(b *testing.B) {
			loop(b, func() {
				got, err := s.(EventStore).Events(ctx, "host-00", EventQuery{From: t0, To: t0.Add(time.Hour), Q: "WORKER-7"})
				check(b, err)
				if len(got) == 0 {
					b.Fatal("no events found")
				}
			})
		})
	}
	b.Run("sqlite", func(b *testing.B) { run(b, openTest(b, b.TempDir(), Options{})) })
	b.Run("postgres", func(b *testing.B) { run(b, openTestPostgres(b, testutil.PostgresURL(b), Options{})) })
}
