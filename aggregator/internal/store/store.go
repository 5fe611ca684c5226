// Package store keeps what the aggregator was sent: hosts bound to key
// hashes, and snapshots (system details and compressed process lists).
//
// Store is the narrow interface the HTTP layer uses. SQLite (the embedded
// default) and Postgres (several aggregators sharing one database)
// implement it with the same tables and blobs; they read with one piece of
// code (core.go, read.go) and differ in how they write.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/procscope/procscope/aggregator/internal/ingest"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// Errors the HTTP layer maps to status codes.
var (
	// ErrKeyMismatch: the host exists and is bound to another key (403).
	ErrKeyMismatch = errors.New("api key does not match this host")
	// ErrNotFound: unknown host or snapshot (404).
	ErrNotFound = errors.New("not found")
	// ErrUnknownHost: the hostname is not stored and the ingest asked not
	// to create it (IngestRequest.NoCreate: enrolment refused it).
	ErrUnknownHost = errors.New("unknown host")
	// ErrTooManyHosts: creating the host would exceed IngestRequest.MaxHosts.
	ErrTooManyHosts = errors.New("too many hosts")
	// ErrHostExists: AddHost for a hostname that is already stored.
	ErrHostExists = errors.New("host exists")
)

// KeyState is what CheckKey found for a hostname and a key.
type KeyState uint8

const (
	// KeyMatches: the host exists and is bound to this key.
	KeyMatches KeyState = iota
	// KeyUnbound: the host exists without a key (after `hosts reset-key
	// --unbind`): its next ingest binds one, if enrolment admits it.
	KeyUnbound
	// HostUnknown: no such host; an ingest would create it.
	HostUnknown
)

// IngestRequest is a validated snapshot ready to store.
type IngestRequest struct {
	Hostname string
	// KeyHash is the SHA-256 of the presented API key; keys are never stored
	// in clear. Compared in constant time.
	KeyHash    [32]byte
	CapturedAt time.Time // UTC; stored with millisecond precision
	SystemInfo json.RawMessage
	// System is what the ingest decoder read of SystemInfo for history
	// (nil: no host numbers), so that nothing scans SystemInfo again.
	System    *ingest.SystemNumbers
	Processes []snapshot.Process
	// ReceivedAt becomes the host's last_seen.
	ReceivedAt time.Time
	// NoCreate refuses an unknown hostname with ErrUnknownHost instead of
	// creating it (enrolment closed, or no valid enrolment token). The
	// writer decides, so a host deleted between the HTTP layer's CheckKey
	// and this ingest is not silently re-created.
	NoCreate bool
	// MaxHosts, when positive, refuses to create a host while MaxHosts
	// hosts exist (ErrTooManyHosts). The writer counts inside its
	// transaction, one ingest after another, so ingests never take the
	// count past it; `hosts add` is not bounded by it.
	MaxHosts int
	// SystemInfoIsObject says the caller already knows SystemInfo is a
	// valid JSON object (snapshot.Decode checked it), sparing the store
	// its own check of every byte again.
	SystemInfoIsObject bool
}

// IngestResult says what Ingest did.
type IngestResult struct {
	SnapshotID int64
	// Created is false when (hostname, captured_at) was already stored: the
	// request was a retry and nothing new was written (answer 200, not 201).
	Created bool
}

// Host is one monitored machine.
type Host struct {
	Hostname         string
	LastSeen         time.Time
	LatestSnapshotID int64 // 0 when none
	LatestCapturedAt time.Time
	OS               string // operating system summary taken from the latest system_info
}

// SnapshotMeta describes one stored snapshot without its process list.
type SnapshotMeta struct {
	ID           int64
	Hostname     string
	CapturedAt   time.Time
	ProcessCount int
	SystemInfo   json.RawMessage
}

// Store is everything the HTTP layer needs from storage. Implementations
// are safe for concurrent use.
type Store interface {
	// Ingest stores a snapshot durably before it returns (a kill -9 the next
	// instant loses nothing acknowledged). The first ingest of an unknown
	// hostname binds it to KeyHash; when two race with different keys, a
	// database constraint lets exactly one win and the other gets
	// ErrKeyMismatch. Another key for a known host is ErrKeyMismatch and
	// changes nothing, not even last_seen.
	Ingest(ctx context.Context, req *IngestRequest) (IngestResult, error)
	// CheckKey reports whether keyHash may ingest for hostname: the host's
	// state (a matching key, a host without a key, an unknown host) or
	// ErrKeyMismatch. It stores nothing.
	CheckKey(ctx context.Context, hostname string, keyHash [32]byte) (KeyState, error)

	// Hosts lists hosts sorted by hostname bytewise.
	Hosts(ctx context.Context) ([]Host, error)
	// Latest is the host's snapshot with the newest captured_at (ties: the
	// higher id); ErrNotFound for an unknown host or one without snapshots.
	Latest(ctx context.Context, hostname string) (SnapshotMeta, error)
	// Snapshot returns one snapshot's metadata; ErrNotFound when unknown.
	Snapshot(ctx context.Context, id int64) (SnapshotMeta, error)
	// Processes returns one snapshot's process list as stored; ErrNotFound
	// when unknown.
	Processes(ctx context.Context, id int64) ([]snapshot.Process, error)
	// SnapshotsBetween lists a host's snapshots with from <= captured_at <=
	// to, oldest first, at most limit of them.
	SnapshotsBetween(ctx context.Context, hostname string, from, to time.Time, limit int) ([]SnapshotMeta, error)
	// SnapshotAt is the host's snapshot at or just before t; ErrNotFound
	// when there is none.
	SnapshotAt(ctx context.Context, hostname string, t time.Time) (SnapshotMeta, error)

	// DeleteHost removes a host and all its snapshots (admin command), and
	// records the deletion so that whoever holds the history store also
	// deletes the host's series (HostDeletions).
	DeleteHost(ctx context.Context, hostname string) error
	// ResetKey binds a host to keyHash at once, replacing its key (`hosts
	// reset-key`); a running server refuses the old key within
	// keyCheckTTL, and its ingest transaction at once. A nil keyHash
	// unbinds the host instead (`hosts reset-key --unbind`): its next
	// ingest binds the key it carries, which the API admits only as it
	// would a new host (enrolment).
	ResetKey(ctx context.Context, hostname string, keyHash *[32]byte) error

	// Stats reports sizes for /metrics.
	Stats(ctx context.Context) (Stats, error)
	// Close flushes and closes the store.
	Close() error
}

// Stats is what the aggregator's /metrics reports about storage.
type Stats struct {
	Hosts         int
	Snapshots     int64
	DatabaseBytes int64
	RowsPruned    int64 // cumulative since the store was opened
	// Commits and CommittedWrites count the writer's transactions and the
	// writes (ingests, admin changes) they carried since the store was
	// opened: their ratio is the group-commit batch size.
	Commits, CommittedWrites int64
}
