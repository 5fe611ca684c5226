package api

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// ErrNotReady is returned by a LazyStore before Set.
var ErrNotReady = errors.New("storage is not open yet")

// LazyStore is a store.Store that is filled in once the real store has
// opened. The server starts listening (and answers 503) before a slow
// database open finishes, and parts that need the store at construction
// time (routes added with Options.Mount) can be given this one.
type LazyStore struct {
	p atomic.Pointer[storeBox]
}

type storeBox struct{ s store.Store }

var _ store.Store = (*LazyStore)(nil)

// Set makes st the store; it is meant to be called once.
func (l *LazyStore) Set(st store.Store) { l.p.Store(&storeBox{st}) }

// Get returns the store, or nil before Set.
func (l *LazyStore) Get() store.Store {
	if b := l.p.Load(); b != nil {
		return b.s
	}
	return nil
}

func (l *LazyStore) get() (store.Store, error) {
	if st := l.Get(); st != nil {
		return st, nil
	}
	return nil, ErrNotReady
}

// Ingest implements store.Store.
func (l *LazyStore) Ingest(ctx context.Context, req *store.IngestRequest) (store.IngestResult, error) {
	st, err := l.get()
	if err != nil {
		return store.IngestResult{}, err
	}
	return st.Ingest(ctx, req)
}

// CheckKey implements store.Store.
func (l *LazyStore) CheckKey(ctx context.Context, hostname string, keyHash [32]byte) (store.KeyState, error) {
	st, err := l.get()
	if err != nil {
		return 0, err
	}
	return st.CheckKey(ctx, hostname, keyHash)
}

// Hosts implements store.Store.
func (l *LazyStore) Hosts(ctx context.Context) ([]store.Host, error) {
	st, err := l.get()
	if err != nil {
		return nil, err
	}
	return st.Hosts(ctx)
}

// Latest implements store.Store.
func (l *LazyStore) Latest(ctx context.Context, hostname string) (store.SnapshotMeta, error) {
	st, err := l.get()
	if err != nil {
		return store.SnapshotMeta{}, err
	}
	return st.Latest(ctx, hostname)
}

// Snapshot implements store.Store.
func (l *LazyStore) Snapshot(ctx context.Context, id int64) (store.SnapshotMeta, error) {
	st, err := l.get()
	if err != nil {
		return store.SnapshotMeta{}, err
	}
	return st.Snapshot(ctx, id)
}

// Processes implements store.Store.
func (l *LazyStore) Processes(ctx context.Context, id int64) ([]snapshot.Process, error) {
	st, err := l.get()
	if err != nil {
		return nil, err
	}
	return st.Processes(ctx, id)
}

// SnapshotsBetween implements store.Store.
func (l *LazyStore) SnapshotsBetween(ctx context.Context, hostname string, from, to time.Time, limit int) ([]store.SnapshotMeta, error) {
	st, err := l.get()
	if err != nil {
		return nil, err
	}
	return st.SnapshotsBetween(ctx, hostname, from, to, limit)
}

// SnapshotAt implements store.Store.
func (l *LazyStore) SnapshotAt(ctx context.Context, hostname string, t time.Time) (store.SnapshotMeta, error) {
	st, err := l.get()
	if err != nil {
		return store.SnapshotMeta{}, err
	}
	return st.SnapshotAt(ctx, hostname, t)
}

// DeleteHost implements store.Store.
func (l *LazyStore) DeleteHost(ctx context.Context, hostname string) error {
	st, err := l.get()
	if err != nil {
		return err
	}
	return st.DeleteHost(ctx, hostname)
}

// ResetKey implements store.Store.
func (l *LazyStore) ResetKey(ctx context.Context, hostname string, keyHash *[32]byte) error {
	st, err := l.get()
	if err != nil {
		return err
	}
	return st.ResetKey(ctx, hostname, keyHash)
}

// Stats implements store.Store.
func (l *LazyStore) Stats(ctx context.Context) (store.Stats, error) {
	st, err := l.get()
	if err != nil {
		return store.Stats{}, err
	}
	return st.Stats(ctx)
}

// Close implements store.Store; it closes the real store if there is one.
func (l *LazyStore) Close() error {
	if st := l.Get(); st != nil {
		return st.Close()
	}
	return nil
}
