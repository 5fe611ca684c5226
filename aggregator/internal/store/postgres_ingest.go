package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Group commit on PostgreSQL, as the SQLite writer does it: an ingest is
// encoded by its caller, then queued; pgFlushers goroutines each take
// what is waiting (up to Options.MaxBatch) and store it by one call of
// procscope_ingest_batch, one statement and one transaction (a few
// statements inside it whatever the batch's size, migration 0004), so that the
// commit, the WAL flush and the round trip are paid once per batch. Each
// caller is answered after the COMMIT (synchronous_commit must stay on: a
// 2xx means committed). While one batch commits, the next one gathers.

// pgFlushers is how many batches are in flight at once: one commits while
// the next gathers and is sent.
const pgFlushers = 2

// pgBatchTimeout bounds one batch's statement; its callers then get the
// error and their exporters send again.
const pgBatchTimeout = time.Minute

// pgBatcher is the group commit's state in Postgres.
type pgBatcher struct {
	jobs    chan *pgJob
	stopped chan struct{} // closed once every flusher has returned
	wg      sync.WaitGroup
	writes  atomic.Int64 // ingests committed (CommittedWrites)
	full    atomic.Bool  // the last batch failed for a full disk
	// perRow stores every batch by procscope_ingest_batch_rows, one
	// procscope_ingest call per ingest, as before migration 0004: the
	// baseline of BenchmarkIngestParallelPostgres.
	perRow atomic.Bool
}

// pgJob is one queued ingest: the snapshot encoded against base (nil: a
// keyframe), and procscope_ingest's answer once done is closed.
type pgJob struct {
	req        *IngestRequest
	base       *baseFrame
	procs, sys []byte

	status     string
	id, hostID pgtype.Int8
	err        error
	done       chan struct{}
}

// startBatcher starts the flushers; Close stops them (stopBatcher).
func (s *Postgres) startBatcher() {
	s.batch.jobs = make(chan *pgJob, s.opts.MaxBatch)
	s.batch.stopped = make(chan struct{})
	for range pgFlushers {
		s.batch.wg.Add(1)
		go s.flushLoop()
	}
}

// stopBatcher waits for the flushers, which finish the batch in flight
// and answer what is still queued with ErrClosed; s.quit must be closed.
func (s *Postgres) stopBatcher() {
	s.batch.wg.Wait()
	close(s.batch.stopped)
}

func (s *Postgres) flushLoop() {
	defer s.batch.wg.Done()
	batch := make([]*pgJob, 0, s.opts.MaxBatch)
	var args pgBatchArgs
	for {
		select {
		case <-s.quit:
			for {
				select {
				case j := <-s.batch.jobs:
					j.err = ErrClosed
					close(j.done)
				default:
					return
				}
			}
		case j := <-s.batch.jobs:
			batch = append(batch[:0], j)
		drain:
			for len(batch) < cap(batch) {
				select {
				case j := <-s.batch.jobs:
					batch = append(batch, j)
				default:
					break drain
				}
			}
			s.runBatch(batch, &args)
			clear(batch)
		}
	}
}

// pgBatchArgs are procscope_ingest_batch's arrays, reused batch after
// batch by one flusher.
type pgBatchArgs struct {
	hostnames        []string
	keys, sys, procs [][]byte
	captured, recv   []int64
	counts, maxHosts []int32
	bases            []pgtype.Int8
	noCreate         []bool
}

func (a *pgBatchArgs) fill(batch []*pgJob) {
	a.hostnames, a.keys, a.sys, a.procs = a.hostnames[:0], a.keys[:0], a.sys[:0], a.procs[:0]
	a.captured, a.recv, a.counts, a.maxHosts = a.captured[:0], a.recv[:0], a.counts[:0], a.maxHosts[:0]
	a.bases, a.noCreate = a.bases[:0], a.noCreate[:0]
	for _, j := range batch {
		r := j.req
		a.hostnames = append(a.hostnames, r.Hostname)
		a.keys = append(a.keys, r.KeyHash[:])
		a.captured = append(a.captured, r.CapturedAt.UnixMilli())
		a.counts = append(a.counts, int32(len(r.Processes)))
		base := pgtype.Int8{}
		if j.base != nil {
			base = pgtype.Int8{Int64: j.base.keyID, Valid: true}
		}
		a.bases = append(a.bases, base)
		a.sys = append(a.sys, j.sys)
		a.procs = append(a.procs, j.procs)
		a.recv = append(a.recv, r.ReceivedAt.UnixMilli())
		a.noCreate = append(a.noCreate, r.NoCreate)
		a.maxHosts = append(a.maxHosts, int32(r.MaxHosts))
	}
}

// runBatch stores batch in one transaction and answers each job after
// the COMMIT: the rows are read to the end of the statement, and pgx
// returns only once PostgreSQL reported the implicit transaction done.
func (s *Postgres) runBatch(batch []*pgJob, a *pgBatchArgs) {
	defer func() {
		for _, j := range batch {
			close(j.done)
		}
		clear(a.keys)
		clear(a.sys)
		clear(a.procs)
	}()
	a.fill(batch)
	ctx, cancel := context.WithTimeout(context.Background(), pgBatchTimeout)
	defer cancel()
	err := func() error {
		fn := "procscope_ingest_batch"
		if s.batch.perRow.Load() {
			fn = "procscope_ingest_batch_rows"
		}
		rows, err := s.pool.Query(ctx, `SELECT o_idx, o_status, o_snapshot_id, o_host_id FROM `+fn+`(
			$1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			a.hostnames, a.keys, a.captured, a.counts, a.bases, a.sys, a.procs, a.recv, a.noCreate, a.maxHosts)
		if err != nil {
			return err
		}
		defer rows.Close()
		var idx int32
		var status string
		var id, hostID pgtype.Int8
		for rows.Next() {
			if err := rows.Scan(&idx, &status, &id, &hostID); err != nil {
				return err
			}
			if idx < 1 || int(idx) > len(batch) {
				return fmt.Errorf("procscope_ingest_batch answered for ingest %d of %d", idx, len(batch))
			}
			j := batch[idx-1]
			j.status, j.id, j.hostID = status, id, hostID
		}
		rows.Close()
		return rows.Err()
	}()
	if err == nil {
		for _, j := range batch {
			if j.status == "" {
				err = errors.New("procscope_ingest_batch left an ingest unanswered")
			}
		}
	}
	if err != nil {
		err = s.noteFull(err)
		if s.closed.Load() {
			err = ErrClosed
		} else if !errors.Is(err, ErrStorageFull) {
			s.log.Error("storing a batch of snapshots failed, every ingest of it is refused", "snapshots", len(batch), "err", err)
		}
		for _, j := range batch {
			j.status, j.err = "", fmt.Errorf("store snapshot: %w", err)
		}
		return
	}
	s.commits.Add(1)
	s.batch.writes.Add(int64(len(batch)))
	if s.batch.full.CompareAndSwap(true, false) {
		s.log.Info("storage has space again: ingests are accepted")
	}
}

// pgDiskFull is SQLSTATE disk_full.
const pgDiskFull = "53100"

// noteFull turns PostgreSQL's disk_full into ErrStorageFull (503 with
// Retry-After: nothing of the batch was kept), logging the first of a run
// once; other errors pass unchanged.
func (s *Postgres) noteFull(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != pgDiskFull {
		return err
	}
	if s.batch.full.CompareAndSwap(false, true) {
		s.log.Error("PostgreSQL's storage is full: ingests are refused with 503 until space is freed; reads go on", "err", err)
	}
	return fmt.Errorf("%w: %v", ErrStorageFull, err)
}

// Full reports whether the last batch failed for a full disk (and none
// committed since): procscope_aggregator_storage_full.
func (s *Postgres) Full() bool { return s.batch.full.Load() }

// store queues j and waits for its answer (ErrClosed when it was queued
// after the flushers answered the last ones).
func (s *Postgres) store(ctx context.Context, j *pgJob) error {
	j.done = make(chan struct{})
	j.status, j.err = "", nil
	if err := handOver(ctx, s.batch.jobs, j, j.done, s.quit, s.batch.stopped); err != nil {
		return err
	}
	return j.err
}

// Ingest implements Store. The snapshot is encoded here, against the
// host's keyframe this process last stored or loaded, and stored by the
// group commit; procscope_ingest re-checks the key and the base inside the
// transaction.
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
	j, err := s.encode(ctx, req)
	if err != nil {
		return IngestResult{}, err
	}

	// A few rounds at most: a keyframe deleted under us (no_base) is
	// followed by a keyframe, which needs none; a host deleted under us
	// (retry) is created anew or refused.
	for range 4 {
		if err := s.store(ctx, j); err != nil {
			return IngestResult{}, err
		}
		switch j.status {
		case "created":
			id := j.id.Int64
			s.noteCreated(j)
			s.notePruneWork(req.CapturedAt.UnixMilli())
			s.announce(id, req.Hostname, req.CapturedAt.UnixMilli())
			return IngestResult{SnapshotID: id, Created: true}, nil
		case "exists":
			return IngestResult{SnapshotID: j.id.Int64, Created: false}, nil
		case "key_mismatch":
			return IngestResult{}, ErrKeyMismatch
		case "unknown_host":
			return IngestResult{}, ErrUnknownHost
		case "too_many_hosts":
			return IngestResult{}, ErrTooManyHosts
		case "no_base":
			if j.hostID.Valid && j.hostID.Int64 == j.base.hostID {
				// Retention deleted it (a deleted and re-created host
				// has another id: no surprise there).
				s.log.Warn("delta base disappeared, storing a keyframe", "hostname", req.Hostname, "keyframe_id", j.base.keyID)
			}
			s.bases.CompareAndDelete(req.Hostname, j.base)
			j.base = nil
			j.procs, j.sys = encodeFullPair(req)
		case "retry":
		default:
			return IngestResult{}, fmt.Errorf("store snapshot: unexpected status %q", j.status)
		}
	}
	return IngestResult{}, errors.New("store snapshot: the host changed under every attempt, retry")
}

// encode encodes req against the host's keyframe (or as a keyframe when
// it has none, or a new one is due).
func (s *Postgres) encode(ctx context.Context, req *IngestRequest) (*pgJob, error) {
	// As in SQLite: encoding is the ingest's CPU, GOMAXPROCS of them at once.
	if err := encodeSlot(ctx, s.encodeSem, s.quit); err != nil {
		return nil, err
	}
	defer func() { <-s.encodeSem }()
	base, err := s.base(ctx, req.Hostname)
	if err != nil {
		return nil, err
	}
	j := &pgJob{req: req}
	if base != nil && base.deltas.Load() < maxDeltas {
		j.procs, j.sys = encodeDeltaPair(base, req)
		if !base.keyframeDue(len(j.procs) + len(j.sys)) {
			j.base = base
		}
	}
	if j.base == nil {
		j.procs, j.sys = encodeFullPair(req)
	}
	return j, nil
}

// noteCreated counts a stored delta on its keyframe, or makes a stored
// keyframe the host's delta base.
func (s *Postgres) noteCreated(j *pgJob) {
	if j.base != nil {
		j.base.deltas.Add(1)
		j.base.sumBytes.Add(int64(len(j.procs) + len(j.sys)))
		return
	}
	kf := newKeyframe(j.req, len(j.procs)+len(j.sys))
	kf.hostID, kf.keyID = j.hostID.Int64, j.id.Int64
	s.bases.Store(j.req.Hostname, kf)
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
	b := keyframeBase(hostname, hostID, id, f, len(procBlob)+len(sysBlob))
	actual, _ := s.bases.LoadOrStore(hostname, b)
	return actual.(*baseFrame), nil
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
	return scanDeletions(rows)
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
