package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestIngestNoCreate: an ingest told not to create its host is refused
// for an unknown hostname and stores nothing, while known hosts (and a
// host whose key was reset) still ingest.
func TestIngestNoCreate(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		s := be.open(t, Options{})
		ctx := context.Background()
		r := req("new-1", "key-new-1", t0)
		r.NoCreate = true
		if _, err := s.Ingest(ctx, r); !errors.Is(err, ErrUnknownHost) {
			t.Fatalf("NoCreate for an unknown host: %v, want ErrUnknownHost", err)
		}
		if st, _ := s.Stats(ctx); st.Hosts != 0 || st.Snapshots != 0 {
			t.Fatalf("a refused ingest stored something: %+v", st)
		}
		mustIngest(t, s, req("web-1", "key-web-1", t0))
		r = req("web-1", "key-web-1", t0.Add(time.Second))
		r.NoCreate = true
		mustIngest(t, s, r)
		if err := s.ResetKey(ctx, "web-1", nil); err != nil {
			t.Fatal(err)
		}
		r = req("web-1", "key-web-1-new", t0.Add(2*time.Second))
		r.NoCreate = true
		mustIngest(t, s, r)
	})
}

// TestIngestMaxHosts: new hosts stop at MaxHosts exactly, even when many
// arrive at once (the writer counts in its transaction); known hosts keep
// ingesting; a deleted host frees its place, also when another process
// deleted it.
func TestIngestMaxHosts(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		s := be.open(t, Options{})
		ctx := context.Background()
		const max = 5
		var wg sync.WaitGroup
		errs := make([]error, 40)
		for i := range errs {
			wg.Go(func() {
				r := req(fmt.Sprint("h", i), fmt.Sprint("key-h", i), t0)
				r.MaxHosts = max
				_, errs[i] = s.Ingest(ctx, r)
			})
		}
		wg.Wait()
		created := 0
		for i, err := range errs {
			switch {
			case err == nil:
				created++
			case !errors.Is(err, ErrTooManyHosts):
				t.Fatalf("ingest %d: %v", i, err)
			}
		}
		if st, _ := s.Stats(ctx); created != max || st.Hosts != max {
			t.Fatalf("%d created, %d hosts stored, want exactly %d", created, st.Hosts, max)
		}
		hosts, _ := s.Hosts(ctx)
		known := hosts[0].Hostname
		r := req(known, "key-"+known, t0.Add(time.Second))
		r.MaxHosts = max
		mustIngest(t, s, r)

		// Another process deletes a host: the writer's count follows.
		other := be.open(t, Options{})
		if err := other.DeleteHost(ctx, hosts[1].Hostname); err != nil {
			t.Fatal(err)
		}
		r = req("late-1", "key-late-1", t0)
		r.MaxHosts = max
		mustIngest(t, s, r)
		r = req("late-2", "key-late-2", t0)
		r.MaxHosts = max
		if _, err := s.Ingest(ctx, r); !errors.Is(err, ErrTooManyHosts) {
			t.Fatalf("a sixth host: %v", err)
		}
		// In-process delete and `hosts add` from another process count too.
		if err := s.DeleteHost(ctx, "late-1"); err != nil {
			t.Fatal(err)
		}
		if err := other.AddHost(ctx, "added", key("key-added")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Ingest(ctx, r); !errors.Is(err, ErrTooManyHosts) {
			t.Fatalf("after delete + add: %v", err)
		}
	})
}

// TestAddHost: `hosts add` creates a host bound to the key, refuses an
// existing or invalid name, and a running store (another connection)
// accepts the key at once and refuses others.
func TestAddHost(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		server := be.open(t, Options{})
		ctx := context.Background()
		// The server has read the file before: its writer caches what it saw.
		mustIngest(t, server, req("web-1", "key-web-1", t0))
		if ks, err := server.CheckKey(ctx, "db-1", key("key-db-1")); err != nil || ks != HostUnknown {
			t.Fatalf("before add: %v %v", ks, err)
		}

		admin := be.open(t, Options{})
		if err := admin.AddHost(ctx, "db-1", key("key-db-1")); err != nil {
			t.Fatal(err)
		}
		if err := admin.AddHost(ctx, "db-1", key("other")); !errors.Is(err, ErrHostExists) {
			t.Fatalf("adding it again: %v", err)
		}
		if err := admin.AddHost(ctx, "web-1", key("other")); !errors.Is(err, ErrHostExists) {
			t.Fatalf("adding a host that ingested: %v", err)
		}
		if err := admin.AddHost(ctx, "bad\nname", key("x")); !errors.Is(err, ErrInvalid) {
			t.Fatalf("invalid name: %v", err)
		}
		if err := admin.Close(); err != nil {
			t.Fatal(err)
		}

		if ks, err := server.CheckKey(ctx, "db-1", key("key-db-1")); err != nil || ks != KeyMatches {
			t.Fatalf("server's CheckKey after add: %v %v", ks, err)
		}
		if _, err := server.CheckKey(ctx, "db-1", key("squatter")); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("another key for the added host: %v", err)
		}
		r := req("db-1", "squatter", t0)
		if _, err := server.Ingest(ctx, r); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("ingest with another key: %v", err)
		}
		r = req("db-1", "key-db-1", t0)
		r.NoCreate = true // closed enrolment: the host exists now
		if res := mustIngest(t, server, r); !res.Created {
			t.Fatal("not created")
		}
	})
}

// TestHostDeletions: DeleteHost records the deletion in its transaction;
// it is listed until forgotten.
func TestHostDeletions(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		s := be.open(t, Options{})
		ctx := context.Background()
		mustIngest(t, s, req("web-1", "key-web-1", t0))
		mustIngest(t, s, req("web-2", "key-web-2", t0))
		if d, err := s.HostDeletions(ctx, 0); err != nil || len(d) != 0 {
			t.Fatalf("before any delete: %v %v", d, err)
		}
		if err := s.DeleteHost(ctx, "web-2"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteHost(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown host: %v", err)
		}
		d, err := s.HostDeletions(ctx, 0)
		if err != nil || len(d) != 1 || d[0].Hostname != "web-2" {
			t.Fatalf("deletions %+v %v", d, err)
		}
		if d, err := s.HostDeletions(ctx, d[0].ID); err != nil || len(d) != 0 {
			t.Fatalf("after its id: %v %v", d, err)
		}
		if err := s.ForgetHostDeletion(ctx, d[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := s.ForgetHostDeletion(ctx, d[0].ID); err != nil {
			t.Fatalf("forgetting twice: %v", err)
		}
		if d, err := s.HostDeletions(ctx, 0); err != nil || len(d) != 0 {
			t.Fatalf("after forget: %v %v", d, err)
		}
	})
}
