package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Ingest implements Store. The snapshot is encoded here, against the
// host's keyframe this process last stored or loaded, and stored by one
// call of procscope_ingest; PostgreSQL commits it before the call returns
// (synchronous_commit must stay on: a 2xx means committed).
func (s *Postgres) Ingest(ctx context.Context, req *IngestRequest) (IngestResult, error) {
	if s.closed.Load() {
		return IngestResult{}, ErrClosed
	}
	if err := checkRequest(req); err != nil {
		return IngestResult{}, err
	}
	if req.ReceivedAt.IsZero() {
		r := *req
		r.ReceivedAt = s.opts.Now()
		req = &r
	}
	// As in SQLite: encoding is the ingest's CPU, GOMAXPROCS of them at once.
	select {
	case s.encodeSem <- struct{}{}:
	case <-ctx.Done():
		return IngestResult{}, ctx.Err()
	case <-s.quit:
		return IngestResult{}, ErrClosed
	}
	base, err := s.base(ctx, req.Hostname)
	if err != nil {
		<-s.encodeSem
		return IngestResult{}, err
	}
	var procBlob, sysBlob []byte
	if base != nil && base.deltas.Load() < maxDeltas {
		procBlob, sysBlob = encodeDeltaPair(base, req)
		if base.keyframeDue(len(procBlob) + len(sysBlob)) {
			base = nil
		}
	} else {
		base = nil
	}
	if base == nil {
		procBlob, sysBlob = encodeFullPair(req)
	}
	<-s.encodeSem

	// A few rounds at most: a keyframe deleted under us (no_base) is
	// followed by a keyframe, which needs none; a host deleted under us
	// (retry) is created anew or refused.
	for range 4 {
		var baseID *int64
		if base != nil {
			baseID = &base.keyID
		}
		var status string
		var id, hostID *int64
		err := s.pool.QueryRow(ctx, `SELECT o_status, o_snapshot_id, o_host_id FROM procscope_ingest(
			$1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			req.Hostname, req.KeyHash[:], req.CapturedAt.UnixMilli(), len(req.Processes), baseID,
			sysBlob, procBlob, req.ReceivedAt.UnixMilli(), req.NoCreate, req.MaxHosts).
			Scan(&status, &id, &hostID)
		if err != nil {
			if s.closed.Load() {
				return IngestResult{}, ErrClosed
			}
			return IngestResult{}, fmt.Errorf("store snapshot: %w", err)
		}
		s.commits.Add(1)
		switch status {
		case "created":
			if base != nil {
				base.deltas.Add(1)
				base.sumBytes.Add(int64(len(procBlob) + len(sysBlob)))
			} else {
				kf := newKeyframe(req, len(procBlob)+len(sysBlob))
				kf.hostID, kf.keyID = *hostID, *id
				s.bases.Store(req.Hostname, kf)
			}
			s.notePruneWork(req.CapturedAt.UnixMilli())
			s.announce(*id, req.Hostname, req.CapturedAt.UnixMilli())
			return IngestResult{SnapshotID: *id, Created: true}, nil
		case "exists":
			return IngestResult{SnapshotID: *id, Created: false}, nil
		case "key_mismatch":
			return IngestResult{}, ErrKeyMismatch
		case "unknown_host":
			return IngestResult{}, ErrUnknownHost
		case "too_many_hosts":
			return IngestResult{}, ErrTooManyHosts
		case "no_base":
			if hostID != nil && *hostID == base.hostID {
				// Retention deleted it (a deleted and re-created host
				// has another id: no surprise there).
				s.log.Warn("delta base disappeared, storing a keyframe", "hostname", req.Hostname, "keyframe_id", base.keyID)
			}
			s.bases.CompareAndDelete(req.Hostname, base)
			base = nil
			procBlob, sysBlob = encodeFullPair(req)
		case "retry":
		default:
			return IngestResult{}, fmt.Errorf("store snapshot: unexpected status %q", status)
		}
	}
	return IngestResult{}, errors.New("store snapshot: the host changed under every attempt, retry")
}

// base returns the host's delta base: the keyframe this process last
// stored for it, or else its newest keyframe in the database (nil when it
// has none).
func (s *Postgres) base(ctx context.Context, hostname string) (*baseFrame, error) {
	if v, ok := s.bases.Load(hostname); ok {
		return v.(*baseFrame), nil
	}
	var id, hostID int64
	var procBlob, sysBlob []byte
	err := s.pool.QueryRow(ctx, `SELECT s.id, s.host_id, s.procs, s.sys FROM hosts h
		JOIN snapshots s ON s.host_id = h.id AND s.base_id IS NULL
		WHERE h.hostname = $1 ORDER BY s.id DESC LIMIT 1`, hostname).Scan(&id, &hostID, &procBlob, &sysBlob)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load keyframe: %w", err)
	}
	f, err := decodeKeyframe(procBlob, sysBlob)
	if err != nil {
		s.log.Error("cannot decode keyframe, starting a new one", "snapshot_id", id, "err", err)
		return nil, nil
	}
	b := &baseFrame{
		hostname:  hostname,
		hostID:    hostID,
		keyID:     id,
		procs:     f.procs,
		idx:       baseIndex(f.procs),
		sysTokens: f.sysTokens,
		keyBytes:  len(procBlob) + len(sysBlob),
	}
	actual, _ := s.bases.LoadOrStore(hostname, b)
	return actual.(*baseFrame), nil
}

func encodeFullPair(req *IngestRequest) (procs, sys []byte) {
	return sealBlob(blobFull, encodeFull(req.Processes)), sealBlob(blobFull, req.SystemInfo)
}

func encodeDeltaPair(b *baseFrame, req *IngestRequest) (procs, sys []byte) {
	procs = sealBlob(blobDelta, encodeDelta(req.Processes, b.procs, b.idx))
	if raw, ok := encodeSysDelta(b.sysTokens, req.SystemInfo); ok {
		sys = sealBlob(blobDelta, raw)
	} else {
		sys = sealBlob(blobFull, req.SystemInfo)
	}
	return procs, sys
}

func (s *Postgres) notePruneWork(captured int64) {
	for {
		cur := s.pruneLate.Load()
		if captured >= cur || s.pruneLate.CompareAndSwap(cur, captured) {
			return
		}
	}
}

// forgetHost drops what this process caches about hostname (another
// aggregator reset its key or deleted it).
func (s *Postgres) forgetHost(hostname string) {
	s.keyOK.Delete(hostname)
	s.bases.Delete(hostname)
}

// tx runs fn in a read-write transaction.
func (s *Postgres) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// DeleteHost implements Store.
func (s *Postgres) DeleteHost(ctx context.Context, hostname string) error {
	defer s.forgetHost(hostname)
	return s.tx(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, "DELETE FROM hosts WHERE hostname = $1 RETURNING id", hostname).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("delete host: %w", err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO deleted_hosts (hostname, deleted_ms) VALUES ($1, $2)",
			hostname, s.opts.Now().UnixMilli()); err != nil {
			return fmt.Errorf("delete host: record the deletion: %w", err)
		}
		// Other aggregators drop their caches of it at commit.
		if _, err := tx.Exec(ctx, "SELECT pg_notify('procscope_hosts', $1)", hostname); err != nil {
			return fmt.Errorf("delete host: %w", err)
		}
		return nil
	})
}

// ResetKey implements Store.
func (s *Postgres) ResetKey(ctx context.Context, hostname string, keyHash *[32]byte) error {
	var stored []byte // nil: NULL, unbound
	if keyHash != nil {
		stored = keyHash[:]
	}
	defer s.keyOK.Delete(hostname)
	s.keyOK.Delete(hostname)
	return s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE hosts SET key_hash = $2 WHERE hostname = $1", hostname, stored)
		if err != nil {
			return fmt.Errorf("reset key: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if _, err := tx.Exec(ctx, "SELECT pg_notify('procscope_hosts', $1)", hostname); err != nil {
			return fmt.Errorf("reset key: %w", err)
		}
		return nil
	})
}

// AddHost is SQLite.AddHost for PostgreSQL.
func (s *Postgres) AddHost(ctx context.Context, hostname string, keyHash [32]byte) error {
	if err := checkHostname(hostname); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	now := s.opts.Now().UnixMilli()
	tag, err := s.pool.Exec(ctx, `INSERT INTO hosts (hostname, key_hash, created_ms, last_seen_ms)
		VALUES ($1, $2, $3, $3) ON CONFLICT (hostname) DO NOTHING`, hostname, keyHash[:], now)
	if err != nil {
		return fmt.Errorf("add host: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrHostExists
	}
	return nil
}

// HostDeletions is SQLite.HostDeletions for PostgreSQL.
func (s *Postgres) HostDeletions(ctx context.Context, afterID int64) ([]HostDeletion, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	rows, err := s.pool.Query(ctx, "SELECT id, hostname, deleted_ms FROM deleted_hosts WHERE id > $1 ORDER BY id LIMIT $2",
		afterID, maxDeletionsListed)
	if err != nil {
		return nil, fmt.Errorf("list host deletions: %w", err)
	}
	defer rows.Close()
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

// ForgetHostDeletion is SQLite.ForgetHostDeletion for PostgreSQL.
func (s *Postgres) ForgetHostDeletion(ctx context.Context, id int64) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM deleted_hosts WHERE id = $1", id); err != nil {
		return fmt.Errorf("forget host deletion: %w", err)
	}
	return nil
}
