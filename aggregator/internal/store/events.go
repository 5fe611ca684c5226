package store

// Process lifecycle events (issue 15): what the aggregator derived from
// consecutive snapshots of a host (aggregator/internal/events), stored
// next to the snapshots and pruned with them.

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EventKind says what happened to a process.
type EventKind uint8

// The kinds, as stored (events.kind).
const (
	EventStarted   EventKind = 1
	EventExited    EventKind = 2
	EventRestarted EventKind = 3
)

// String is the kind's name in the API.
func (k EventKind) String() string {
	switch k {
	case EventStarted:
		return "started"
	case EventExited:
		return "exited"
	case EventRestarted:
		return "restarted"
	}
	return "unknown"
}

// Event is one start, exit or restart of a process on a host.
type Event struct {
	At          time.Time // the snapshot that showed it (ms precision)
	Kind        EventKind
	PID, PPID   int64
	Name        string
	Unit        string // "" when unknown
	ContainerID string
	// PrevPID is the pid that exited, for EventRestarted.
	PrevPID int64
	// Started is when the process started (its create_time; zero when
	// unknown). For EventExited its lifetime is At - Started; for the
	// others it tells the process from a later one reusing its pid.
	Started time.Time
	// CPUPercent and MemoryMB are the last seen, for EventExited.
	CPUPercent, MemoryMB float64
}

// EventQuery selects a host's events with From <= At <= To whose name,
// unit or container id contains Q (all when Q is "") and whose kind is one
// of Kinds (all when empty), newest first, at most Limit of them.
type EventQuery struct {
	From, To time.Time
	Q        string
	Kinds    []EventKind
	Limit    int
}

// kindsSQL is the condition for q.Kinds ("" for all). The kinds are
// numbers of this package's enum, written as SQL integers.
func (q EventQuery) kindsSQL() string {
	if len(q.Kinds) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(" AND kind IN (")
	for i, k := range q.Kinds {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(k)))
	}
	b.WriteByte(')')
	return b.String()
}

// EventStore keeps lifecycle events. It is separate from Store so that a
// backend can add it on its own; the SQLite store implements both.
type EventStore interface {
	// AddEvents stores events of a known host in one transaction;
	// ErrNotFound when the host is unknown (deleted meanwhile).
	AddEvents(ctx context.Context, hostname string, evs []Event) error
	// Events answers q for a host; ErrNotFound for an unknown host.
	Events(ctx context.Context, hostname string, q EventQuery) ([]Event, error)
	// PruneEvents deletes every event older than its host's oldest
	// snapshot (or of a host without snapshots) and says how many went.
	PruneEvents(ctx context.Context) (int64, error)
}

var _ EventStore = (*SQLite)(nil)

// eventArgs are the arguments of dialect.addEvent for e.
func eventArgs(hostID int64, e Event) []any {
	exited := e.Kind == EventExited
	var cpu, mem any
	if exited {
		cpu, mem = e.CPUPercent, e.MemoryMB
	}
	return []any{hostID, e.At.UnixMilli(), int64(e.Kind), e.PID, e.PPID, e.Name,
		nullStr(e.Unit), nullStr(e.ContainerID), nullInt(e.PrevPID, e.Kind == EventRestarted),
		nullInt(e.Started.UnixMilli(), !e.Started.IsZero()), cpu, mem}
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(v int64, ok bool) any {
	if !ok {
		return nil
	}
	return v
}

// AddEvents implements EventStore, through the writer like every write.
func (s *SQLite) AddEvents(ctx context.Context, hostname string, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	return s.exec(ctx, func(ctx context.Context, tx *sql.Tx) error {
		id, err := s.hostID(ctx, onSQL[*sql.Tx]{tx}, hostname)
		if err != nil {
			return fmt.Errorf("add events: %w", err)
		}
		st, err := tx.PrepareContext(ctx, s.sql.addEvent)
		if err != nil {
			return fmt.Errorf("add events: %w", err)
		}
		defer func() { _ = st.Close() }()
		for _, e := range evs {
			if _, err := st.ExecContext(ctx, eventArgs(id, e)...); err != nil {
				return fmt.Errorf("add events: %w", err)
			}
		}
		return nil
	})
}

// PruneEvents implements EventStore.
func (s *SQLite) PruneEvents(ctx context.Context) (int64, error) {
	var n int64
	err := s.exec(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.sql.pruneEvents)
		if err != nil {
			return fmt.Errorf("prune events: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
