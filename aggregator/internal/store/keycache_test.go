package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestCheckKeyCache: CheckKey remembers a key it found stored, but the
// memory never accepts another key, is dropped by ResetKey and DeleteHost,
// and expires, so a key changed by another process on the same file
// (the hosts admin command) is seen within keyCheckTTL.
func TestCheckKeyCache(t *testing.T) {
	forEachStore(t, func(t *testing.T, be *backend) {
		s := be.open(t, Options{})
		ctx := context.Background()
		a, b := req("web-1", "a", t0).KeyHash, req("web-1", "b", t0).KeyHash
		mustIngest(t, s, req("web-1", "a", t0))
		for range 3 {
			if _, err := s.CheckKey(ctx, "web-1", a); err != nil {
				t.Fatalf("right key: %v", err)
			}
			if _, err := s.CheckKey(ctx, "web-1", b); !errors.Is(err, ErrKeyMismatch) {
				t.Fatalf("wrong key with the right one remembered: %v", err)
			}
		}

		// In-process reset: the next CheckKey sees the unbound host at once.
		if err := s.ResetKey(ctx, "web-1", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CheckKey(ctx, "web-1", b); err != nil {
			t.Fatalf("new key right after ResetKey: %v", err)
		}
		mustIngest(t, s, req("web-1", "b", t0.Add(time.Second)))
		if _, err := s.CheckKey(ctx, "web-1", a); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("old key after rebinding: %v", err)
		}
		if _, err := s.CheckKey(ctx, "web-1", b); err != nil {
			t.Fatalf("bound key: %v", err)
		}

		// Another writer on the same file binds key a for web-1 (deleting and
		// re-creating the host); this process still remembers b, but only
		// for keyCheckTTL, and its ingest transaction refuses b at once.
		other := be.open(t, Options{})
		if err := other.DeleteHost(ctx, "web-1"); err != nil {
			t.Fatal(err)
		}
		mustIngest(t, other, req("web-1", "a", t0.Add(2*time.Second)))
		if _, err := s.Ingest(ctx, req("web-1", "b", t0.Add(3*time.Second))); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("ingest with the key bound only in the remembered check: %v", err)
		}
		deadline := time.Now().Add(keyCheckTTL + 5*time.Second)
		for _, err := s.CheckKey(ctx, "web-1", b); err == nil; _, err = s.CheckKey(ctx, "web-1", b) {
			if time.Now().After(deadline) {
				t.Fatal("CheckKey kept accepting a key replaced by another process")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := s.CheckKey(ctx, "web-1", a); err != nil {
			t.Fatalf("key bound by the other process: %v", err)
		}
	})
}
