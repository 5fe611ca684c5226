package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// AddHost creates hostname bound to keyHash (`hosts add`: enrolment by an
// administrator). It is ErrHostExists when the hostname is stored already,
// and ErrInvalid for a hostname ingest would refuse. --hosts.max does not
// apply: the administrator decides.
func (s *SQLite) AddHost(ctx context.Context, hostname string, keyHash [32]byte) error {
	if err := checkHostname(hostname); err != nil {
		return err
	}
	return s.exec(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := s.opts.Now().UnixMilli()
		res, err := tx.ExecContext(ctx, `INSERT INTO hosts (hostname, key_hash, created_ms, last_seen_ms)
			VALUES (?, ?, ?, ?) ON CONFLICT (hostname) DO NOTHING`, hostname, keyHash[:], now, now)
		if err != nil {
			return fmt.Errorf("add host: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("add host: %w", err)
		} else if n == 0 {
			return ErrHostExists
		}
		s.hostAdded()
		return nil
	})
}

// HostDeletion is a deleted host whose history series may still exist.
type HostDeletion struct {
	ID        int64
	Hostname  string
	DeletedAt time.Time
}

// maxDeletionsListed bounds one HostDeletions answer; the rest follow in
// the next call, once these are forgotten.
const maxDeletionsListed = 1000

// HostDeletions lists recorded host deletions with an id above afterID,
// oldest first (at most maxDeletionsListed).
func (s *SQLite) HostDeletions(ctx context.Context, afterID int64) ([]HostDeletion, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	rows, err := s.rdb.QueryContext(ctx, "SELECT id, hostname, deleted_ms FROM deleted_hosts WHERE id > ? ORDER BY id LIMIT ?", afterID, maxDeletionsListed)
	if err != nil {
		return nil, fmt.Errorf("list host deletions: %w", err)
	}
	defer func() { _ = rows.Close() }()
	return scanDeletions(rows)
}

// rowSet is what database/sql's and pgx's query results share.
type rowSet interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// scanDeletions reads HostDeletions' rows (id, hostname, deleted_ms) of
// either store.
func scanDeletions(rows rowSet) ([]HostDeletion, error) {
	var out []HostDeletion
	for rows.Next() {
		var d HostDeletion
		var ms int64
		if err := rows.Scan(&d.ID, &d.Hostname, &ms); err != nil {
			return nil, fmt.Errorf("list host deletions: %w", err)
		}
		d.DeletedAt = msTime(ms)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list host deletions: %w", err)
	}
	return out, nil
}

// ForgetHostDeletion removes a recorded deletion once the host's history
// series are gone. Forgetting one that is gone already is not an error.
func (s *SQLite) ForgetHostDeletion(ctx context.Context, id int64) error {
	err := s.exec(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM deleted_hosts WHERE id = ?", id)
		return err
	})
	if err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("forget host deletion: %w", err)
	}
	return err
}
