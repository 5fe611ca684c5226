package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestResetKeyRotates: ResetKey with a key hash binds it at once, in this
// process and in another one holding the same store (the admin command
// while the server runs): the old key is refused by CheckKey and by the
// ingest itself, and the new one is accepted without binding anything.
func TestResetKeyRotates(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		s := be.open(t, Options{})
		admin := be.open(t, Options{})
		ctx := context.Background()
		oldKey, newKey, otherKey := key("old key"), key("new key"), key("other key")
		for i, rotator := range []Store{s, admin} {
			at := t0.Add(time.Duration(i) * time.Minute)
			r := req("web-1", "unused", at)
			r.KeyHash = oldKey
			mustIngest(t, s, r) // creates web-1, then its writer remembers it
			if _, err := s.CheckKey(ctx, "web-1", oldKey); err != nil {
				t.Fatal(err)
			}
			if err := rotator.ResetKey(ctx, "web-1", &newKey); err != nil {
				t.Fatal(err)
			}
			r = req("web-1", "unused", at.Add(time.Second))
			r.KeyHash = oldKey
			if _, err := s.Ingest(ctx, r); !errors.Is(err, ErrKeyMismatch) {
				t.Fatalf("rotated by %d: the old key ingests: %v", i, err)
			}
			r.KeyHash = otherKey
			r.NoCreate = true
			if _, err := s.Ingest(ctx, r); !errors.Is(err, ErrKeyMismatch) {
				t.Fatalf("rotated by %d: another key ingests: %v", i, err)
			}
			if state, err := s.CheckKey(ctx, "web-1", otherKey); !errors.Is(err, ErrKeyMismatch) {
				t.Fatalf("rotated by %d: CheckKey of another key: %v %v", i, state, err)
			}
			r.KeyHash = newKey
			mustIngest(t, s, r)
			if state, err := s.CheckKey(ctx, "web-1", newKey); err != nil || state != KeyMatches {
				t.Fatalf("rotated by %d: CheckKey of the new key: %v %v", i, state, err)
			}
			// Back to the old key for the next round.
			if err := s.ResetKey(ctx, "web-1", &oldKey); err != nil {
				t.Fatal(err)
			}
		}
		if n := be.queryInt(t, "SELECT count(*) FROM hosts WHERE key_hash IS NULL"); n != 0 {
			t.Fatalf("%d hosts left unbound by a rotation", n)
		}
		if err := s.ResetKey(ctx, "unknown", &newKey); !errors.Is(err, ErrNotFound) {
			t.Fatalf("rotating an unknown host: %v", err)
		}
	})
}
