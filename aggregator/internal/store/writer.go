package store

import (
	"bytes"
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// Group commit: every write goes through one goroutine, which takes the
// ingests waiting in s.jobs (up to MaxBatch) and stores them in one
// transaction, each inside its own savepoint so that a rejected one changes
// nothing while the others still commit. Each caller is answered only after
// COMMIT returned, so an acknowledged snapshot is durable; one fsync then
// covers the whole batch instead of one per snapshot.

// maxDeltas caps the deltas of one keyframe even when they stay small, so
// that re-encoding them (retention, when the keyframe ages out) stays cheap.
const maxDeltas = 1000

// job is one unit of work for the writer: an ingest or an admin/pruning
// function.
type job struct {
	ingest *IngestRequest
	pre    *preEncoded
	fn     func(ctx context.Context, tx *sql.Tx) error
	res    IngestResult
	err    error
	done   chan struct{}
}

// writerState is owned by the writer goroutine.
type writerState struct {
	// hosts is the delta base of each host (by host id), rebuilt lazily
	// from the database after a restart or a failed commit.
	hosts map[int64]*hostState
	// rows caches each host's row (id and key hash) by hostname, so that
	// an ingest of a known host does not read it again. It is cleared
	// when a batch fails and whenever another connection (an admin command
	// in another process) committed a change: dataVersion.
	rows map[string]hostRow
	// dataVersion is PRAGMA data_version as the writer's connection last
	// read it; it moves only when another connection commits.
	dataVersion int64
	// versionChanges counts the batches that found data_version moved.
	versionChanges int64
	// hostCount is the number of hosts as of the writer's transaction, or
	// -1 when unknown (read again when a new host needs it). Cleared with
	// rows, since another connection may have added or deleted hosts.
	hostCount int64
}

// hostRow is what the writer knows of a host's row.
type hostRow struct {
	id  int64
	key []byte // nil after a key reset
}

// baseFrame is a host's current keyframe, decoded: the base its next
// snapshots are encoded against. Immutable, so callers encode against it
// on their own goroutines (in s.bases) while the writer only stores.
type baseFrame struct {
	hostname  string
	hostID    int64
	keyID     int64
	procs     []snapshot.Process
	idx       map[int64]int
	sysTokens [][]byte
	keyBytes  int // the keyframe's blob sizes

	// The running cost of the deltas stored against it, written by the
	// writer; callers read them to guess whether a keyframe is due.
	sumBytes atomic.Int64 // the blob sizes of its deltas so far
	deltas   atomic.Int64
}

// keyframeDue reports whether a snapshot whose delta costs size bytes
// should be a keyframe instead. A new keyframe starts once the delta costs
// more than the average cost per snapshot of the current keyframe's run so
// far: from then on that average would only grow (deltas grow as the host
// drifts away from its keyframe).
func (b *baseFrame) keyframeDue(size int) bool {
	n := b.deltas.Load()
	return n >= maxDeltas || int64(size)*(n+1) > int64(b.keyBytes)+b.sumBytes.Load()
}

// hostState is the writer's view of a host.
type hostState struct {
	*baseFrame
}

// preEncoded is a snapshot encoded by its caller: as a delta against base,
// which the writer uses when base is still the host's current keyframe,
// and as a keyframe when one looked due.
type preEncoded struct {
	base               *baseFrame
	procs, sys         []byte
	fullProcs, fullSys []byte
	// keyframe is the base the snapshot becomes when stored as a keyframe
	// (hostname, host and snapshot ids still to fill in), built beside
	// fullProcs: the writer is serial, its callers are not.
	keyframe *baseFrame
}

// newKeyframe builds the in-memory base of req stored as a keyframe whose
// blobs take keyBytes; the writer fills in the ids.
func newKeyframe(req *IngestRequest, keyBytes int) *baseFrame {
	procs := append([]snapshot.Process(nil), req.Processes...)
	return &baseFrame{
		hostname:  req.Hostname,
		procs:     procs,
		idx:       baseIndex(procs),
		sysTokens: sysTokens(bytes.Clone(req.SystemInfo)),
		keyBytes:  keyBytes,
	}
}

func (s *SQLite) setState(st *hostState) {
	s.w.hosts[st.hostID] = st
	s.bases.Store(st.hostname, st.baseFrame)
}

func (s *SQLite) dropState(hostID int64) {
	if st, ok := s.w.hosts[hostID]; ok {
		s.bases.CompareAndDelete(st.hostname, st.baseFrame)
		delete(s.w.hosts, hostID)
	}
}

func (s *SQLite) clearStates() {
	clear(s.w.hosts)
	clear(s.w.rows)
	s.bases.Clear()
	s.w.hostCount = -1
}

// countHosts returns the number of hosts in tx, cached until clearStates.
func (s *SQLite) countHosts(ctx context.Context, tx *sql.Tx) (int64, error) {
	if s.w.hostCount < 0 {
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM hosts").Scan(&s.w.hostCount); err != nil {
			s.w.hostCount = -1
			return 0, fmt.Errorf("count hosts: %w", err)
		}
	}
	return s.w.hostCount, nil
}

// hostAdded and hostRemoved keep the cached count exact.
func (s *SQLite) hostAdded() {
	if s.w.hostCount >= 0 {
		s.w.hostCount++
	}
}

func (s *SQLite) hostRemoved() {
	if s.w.hostCount > 0 {
		s.w.hostCount--
	}
}

// encodeFullPair encodes req as a keyframe.
func encodeFullPair(req *IngestRequest) (procs, sys []byte) {
	return sealBlob(blobFull, encodeFull(req.Processes)), sealBlob(blobFull, req.SystemInfo)
}

// encodeDeltaPair encodes req against b.
func encodeDeltaPair(b *baseFrame, req *IngestRequest) (procs, sys []byte) {
	procs = sealBlob(blobDelta, encodeDelta(req.Processes, b.procs, b.idx))
	if raw, ok := encodeSysDelta(b.sysTokens, req.SystemInfo); ok {
		sys = sealBlob(blobDelta, raw)
	} else {
		sys = sealBlob(blobFull, req.SystemInfo)
	}
	return procs, sys
}

// keyframeBase is the delta base of keyframe id of a host, read back from
// the database (f decoded from blobs of keyBytes).
func keyframeBase(hostname string, hostID, id int64, f *frame, keyBytes int) *baseFrame {
	return &baseFrame{
		hostname:  hostname,
		hostID:    hostID,
		keyID:     id,
		procs:     f.procs,
		idx:       baseIndex(f.procs),
		sysTokens: f.sysTokens,
		keyBytes:  keyBytes,
	}
}

func (s *SQLite) writeLoop() {
	defer close(s.done)
	batch := make([]*job, 0, s.opts.MaxBatch)
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	var last time.Time // when the previous batch was taken
	for {
		select {
		case <-s.quit:
			return
		case <-s.ckTail:
			s.finishCheckpoint()
		case j := <-s.jobs:
			batch = append(batch[:0], j)
			// Commits start at most every CommitInterval: a write arriving
			// sooner after the previous batch waits for the rest of it and
			// shares its fsync with the writes arriving meanwhile. A lone
			// push (the previous batch long ago) is committed at once;
			// under load the commit rate, not the snapshot rate, sets the
			// writer's CPU (PostgreSQL's commit_delay has the same aim).
			if d := s.opts.CommitInterval - time.Since(last); d > 0 {
				batch = s.gather(batch, wait, d)
			}
		drain:
			for len(batch) < s.opts.MaxBatch {
				select {
				case j := <-s.jobs:
					batch = append(batch, j)
				default:
					break drain
				}
			}
			last = time.Now()
			s.runBatch(batch)
			clear(batch)
		}
	}
}

// gather adds the jobs arriving within d to batch, up to MaxBatch.
func (s *SQLite) gather(batch []*job, wait *time.Timer, d time.Duration) []*job {
	wait.Reset(d)
	defer wait.Stop()
	for len(batch) < s.opts.MaxBatch {
		select {
		case j := <-s.jobs:
			batch = append(batch, j)
		case <-wait.C:
			return batch
		case <-s.quit:
			return batch
		}
	}
	return batch
}

// runBatch runs jobs in one transaction and answers each after COMMIT.
func (s *SQLite) runBatch(batch []*job) {
	ctx := context.Background()
	defer func() {
		for _, j := range batch {
			close(j.done)
		}
	}()
	failAll := func(err error) {
		err = s.noteFull(err)
		for _, j := range batch {
			if j.err == nil {
				j.err = err
			}
		}
		// State may point at rows that were never committed.
		s.clearStates()
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		failAll(fmt.Errorf("begin transaction: %w", err))
		return
	}
	var version int64
	if err := s.stmt(ctx, tx, s.stmts.dataVersion).QueryRowContext(ctx).Scan(&version); err != nil {
		_ = tx.Rollback()
		failAll(fmt.Errorf("read data_version: %w", err))
		return
	}
	if version != s.w.dataVersion {
		// Another connection changed the file (or this is the first
		// batch): what the writer remembers of it may be stale.
		s.clearStates()
		s.w.dataVersion = version
		s.w.versionChanges++
	}
	for _, j := range batch {
		if j.ingest != nil {
			// An ingest needs no savepoint of its own: it either fails
			// before writing anything (a wrong key, a constraint that
			// rolls back its statement), or with a database error after
			// a write, which fails the whole batch; its callers retry.
			var dirty bool
			j.res, j.err, dirty = s.ingestTx(ctx, tx, j.ingest, j.pre)
			if j.err != nil && dirty {
				_ = tx.Rollback()
				if !isFull(j.err) { // a full disk is logged once, by noteFull
					s.log.Error("ingest failed after a write, rolling back its batch", "jobs", len(batch), "err", j.err)
				}
				failAll(fmt.Errorf("batch rolled back: %w", j.err))
				return
			}
			continue
		}
		if _, err := s.stmt(ctx, tx, s.stmts.savepoint).ExecContext(ctx); err != nil {
			_ = tx.Rollback()
			failAll(fmt.Errorf("savepoint: %w", err))
			return
		}
		j.err = j.fn(ctx, tx)
		if j.err != nil {
			if _, err := s.stmt(ctx, tx, s.stmts.rollbackTo).ExecContext(ctx); err != nil {
				_ = tx.Rollback()
				failAll(fmt.Errorf("rollback to savepoint: %w", err))
				return
			}
		}
		if _, err := s.stmt(ctx, tx, s.stmts.release).ExecContext(ctx); err != nil {
			_ = tx.Rollback()
			failAll(fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		if !isFull(err) {
			s.log.Error("commit failed", "jobs", len(batch), "err", err)
		}
		failAll(fmt.Errorf("commit: %w", err))
		return
	}
	s.commits.Add(1)
	s.committed.Add(int64(len(batch)))
	s.noteSpace()
}

// submit hands j to the writer and waits for its answer.
func (s *SQLite) submit(ctx context.Context, j *job) error {
	if s.closed.Load() {
		return ErrClosed
	}
	j.done = make(chan struct{})
	if err := handOver(ctx, s.jobs, j, j.done, s.quit, nil); err != nil {
		return err
	}
	return j.err
}

// handOver sends j on jobs and waits until done is closed: ctx's error
// when it ends first (the job may still commit; a retry then finds it,
// idempotency), ErrClosed when quit is closed before j is taken or stopped
// (nil: never) before it is answered.
func handOver[J any](ctx context.Context, jobs chan<- J, j J, done <-chan struct{}, quit, stopped <-chan struct{}) error {
	select {
	case jobs <- j:
	case <-ctx.Done():
		return ctx.Err()
	case <-quit:
		return ErrClosed
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stopped:
		return ErrClosed
	}
}

// encodeSlot takes one of sem's slots (GOMAXPROCS encoders at once);
// release it with <-sem.
func encodeSlot(ctx context.Context, sem chan struct{}, quit <-chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-quit:
		return ErrClosed
	}
}

// Ingest implements Store.
func (s *SQLite) Ingest(ctx context.Context, req *IngestRequest) (IngestResult, error) {
	if s.closed.Load() {
		return IngestResult{}, ErrClosed
	}
	if err := checkRequest(req); err != nil {
		return IngestResult{}, err
	}
	if err := s.checkSpace(); err != nil { // full.go
		return IngestResult{}, err
	}
	if req.ReceivedAt.IsZero() {
		r := *req
		r.ReceivedAt = s.opts.Now()
		req = &r
	}
	j := &job{ingest: req}
	// Encoding is most of an ingest's CPU: do it here, in parallel across
	// callers, against the host's current keyframe, and leave the writer
	// only the storing.
	// At most GOMAXPROCS callers encode at once: with hundreds of them
	// runnable, the writer goroutine would wait behind all of them for
	// CPU, and every ingest would wait for the writer.
	if err := encodeSlot(ctx, s.encodeSem, s.quit); err != nil {
		return IngestResult{}, err
	}
	j.pre = &preEncoded{}
	full := true
	if v, ok := s.bases.Load(req.Hostname); ok {
		b := v.(*baseFrame)
		j.pre.base = b
		j.pre.procs, j.pre.sys = encodeDeltaPair(b, req)
		full = b.keyframeDue(len(j.pre.procs) + len(j.pre.sys))
	}
	if full {
		j.pre.fullProcs, j.pre.fullSys = encodeFullPair(req)
		j.pre.keyframe = newKeyframe(req, len(j.pre.fullProcs)+len(j.pre.fullSys))
	}
	<-s.encodeSem
	if err := s.submit(ctx, j); err != nil {
		return IngestResult{}, err
	}
	return j.res, nil
}

// checkRequest enforces what the store itself relies on; the HTTP layer
// validates the wire format before.
func checkRequest(req *IngestRequest) error {
	if req == nil {
		return fmt.Errorf("%w: no request", ErrInvalid)
	}
	if err := checkHostname(req.Hostname); err != nil {
		return err
	}
	if req.CapturedAt.IsZero() {
		return fmt.Errorf("%w: captured_at is missing", ErrInvalid)
	}
	if !req.SystemInfoIsObject {
		si := bytes.TrimLeft(req.SystemInfo, " \t\r\n")
		if len(si) == 0 || si[0] != '{' || !json.Valid(req.SystemInfo) {
			return fmt.Errorf("%w: system_info must be a JSON object", ErrInvalid)
		}
	}
	// Deltas match rows by PID, so PIDs must be unique. Exporters send them
	// in ascending order, which proves it without a map.
	ascending := true
	for i := range req.Processes {
		p := &req.Processes[i]
		if p.PID < 0 || p.PPID < 0 {
			return fmt.Errorf("%w: process %d: pid and ppid must not be negative", ErrInvalid, i)
		}
		if i > 0 && p.PID <= req.Processes[i-1].PID {
			ascending = false
		}
	}
	if ascending {
		return nil
	}
	seen := make(map[int64]struct{}, len(req.Processes))
	for i := range req.Processes {
		pid := req.Processes[i].PID
		if _, dup := seen[pid]; dup {
			return fmt.Errorf("%w: pid %d appears twice", ErrInvalid, pid)
		}
		seen[pid] = struct{}{}
	}
	return nil
}

// checkHostname applies the ingest rule (snapshot.CheckHostname) again:
// the store is also written by the admin commands.
func checkHostname(h string) error {
	if msg := snapshot.CheckHostname(h); msg != "" {
		return fmt.Errorf("%w: %s", ErrInvalid, msg)
	}
	return nil
}

func keyMatches(stored []byte, keyHash [32]byte) error {
	if len(stored) != len(keyHash) || subtle.ConstantTimeCompare(stored, keyHash[:]) != 1 {
		return ErrKeyMismatch
	}
	return nil
}

// ingestTx stores one snapshot inside the batch transaction. dirty reports
// that it failed after writing something, which only a rollback of the
// whole transaction undoes.
func (s *SQLite) ingestTx(ctx context.Context, tx *sql.Tx, req *IngestRequest, pre *preEncoded) (res IngestResult, err error, dirty bool) {
	received := req.ReceivedAt.UnixMilli()
	created := false // the host row is new, made by this ingest
	row, known := s.w.rows[req.Hostname]
	if !known {
		err = s.stmt(ctx, tx, s.stmts.selectHost).QueryRowContext(ctx, req.Hostname).Scan(&row.id, &row.key)
		if errors.Is(err, sql.ErrNoRows) {
			// A new hostname: enrolment first. Both checks run here, in
			// the writer's transaction, one ingest after the other, so
			// concurrent new hosts cannot together pass MaxHosts.
			if req.NoCreate {
				return IngestResult{}, ErrUnknownHost, dirty
			}
			if req.MaxHosts > 0 {
				n, err := s.countHosts(ctx, tx)
				if err != nil {
					return IngestResult{}, err, dirty
				}
				if n >= int64(req.MaxHosts) {
					return IngestResult{}, ErrTooManyHosts, dirty
				}
			}
			// The key binding is decided by the UNIQUE constraint on
			// hostname: the first INSERT wins, every other one does
			// nothing and compares with what is stored. This holds even
			// with several writers on one file.
			dirty = true
			var hr sql.Result
			hr, err = s.stmt(ctx, tx, s.stmts.insertHost).ExecContext(ctx,
				req.Hostname, req.KeyHash[:], received, received)
			if err != nil {
				return IngestResult{}, fmt.Errorf("insert host: %w", err), dirty
			}
			if n, _ := hr.RowsAffected(); n == 1 {
				// This ingest created the host: its key is ours, and it
				// has no keyframe yet.
				created = true
				s.hostAdded()
				row.key = req.KeyHash[:]
				row.id, err = hr.LastInsertId()
			} else {
				err = s.stmt(ctx, tx, s.stmts.selectHost).QueryRowContext(ctx, req.Hostname).Scan(&row.id, &row.key)
			}
		}
		if err != nil {
			return IngestResult{}, fmt.Errorf("read host: %w", err), dirty
		}
		s.w.rows[strings.Clone(req.Hostname)] = row
	}
	hostID := row.id
	if row.key == nil {
		// The key was reset: this ingest binds the new one.
		dirty = true
		if _, err := tx.ExecContext(ctx, "UPDATE hosts SET key_hash = ? WHERE id = ? AND key_hash IS NULL",
			req.KeyHash[:], hostID); err != nil {
			return IngestResult{}, fmt.Errorf("bind key: %w", err), dirty
		}
		s.w.rows[req.Hostname] = hostRow{id: hostID, key: req.KeyHash[:]}
	} else if err := keyMatches(row.key, req.KeyHash); err != nil {
		return IngestResult{}, err, dirty
	}

	captured := req.CapturedAt.UnixMilli()
	var st *hostState
	if !created {
		if st, err = s.hostState(ctx, tx, hostID, req.Hostname); err != nil {
			return IngestResult{}, err, dirty
		}
	}
	var (
		baseID          any // nil: a keyframe
		procBlob, sysBl []byte
	)
	if st != nil && st.deltas.Load() < maxDeltas {
		if pre != nil && pre.base == st.baseFrame && pre.procs != nil {
			procBlob, sysBl = pre.procs, pre.sys
		} else {
			procBlob, sysBl = encodeDeltaPair(st.baseFrame, req)
		}
		if !st.keyframeDue(len(procBlob) + len(sysBl)) {
			baseID = st.keyID
		}
	}
	var key *baseFrame // the new keyframe's base, when it is one
	if baseID == nil {
		if pre != nil && pre.fullProcs != nil {
			procBlob, sysBl, key = pre.fullProcs, pre.fullSys, pre.keyframe
		} else {
			procBlob, sysBl = encodeFullPair(req)
		}
	}
	// Insert first: a retry of a stored snapshot (same host and capture
	// time) fails on the UNIQUE constraint, which rolls back only this
	// statement, and is answered with the stored id (idempotency).
	sr, err := s.stmt(ctx, tx, s.stmts.insertSnapshot).ExecContext(ctx,
		hostID, captured, len(req.Processes), baseID, sysBl, procBlob)
	if isUniqueViolation(err) {
		var existing int64
		if err := s.stmt(ctx, tx, s.stmts.selectSnapshot).QueryRowContext(ctx, hostID, captured).Scan(&existing); err != nil {
			return IngestResult{}, fmt.Errorf("look up snapshot: %w", err), dirty
		}
		// Nothing new is stored, but it is an accepted request from a
		// live host with the right key, so last_seen moves.
		if err := s.touchHost(ctx, tx, hostID, received); err != nil {
			return IngestResult{}, err, true
		}
		return IngestResult{SnapshotID: existing, Created: false}, nil, dirty
	}
	if baseID != nil && isForeignKeyViolation(err) {
		// The keyframe vanished under us: another process on the same file
		// (an admin command) deleted it. Store a keyframe instead.
		s.log.Warn("delta base disappeared, storing a keyframe", "hostname", req.Hostname, "keyframe_id", baseID)
		s.dropState(hostID)
		baseID, st, key = nil, nil, nil
		procBlob, sysBl = encodeFullPair(req)
		sr, err = s.stmt(ctx, tx, s.stmts.insertSnapshot).ExecContext(ctx,
			hostID, captured, len(req.Processes), nil, sysBl, procBlob)
	}
	if err != nil {
		return IngestResult{}, fmt.Errorf("insert snapshot: %w", err), dirty
	}
	dirty = true
	id, err := sr.LastInsertId()
	if err != nil {
		return IngestResult{}, fmt.Errorf("insert snapshot: %w", err), dirty
	}
	if err := s.touchHost(ctx, tx, hostID, received); err != nil {
		return IngestResult{}, err, dirty
	}

	// Only now, with every statement done, does the in-memory state move.
	if baseID != nil {
		st.deltas.Add(1)
		st.sumBytes.Add(int64(len(procBlob) + len(sysBl)))
	} else {
		if key == nil {
			key = newKeyframe(req, len(procBlob)+len(sysBl))
		}
		key.hostID, key.keyID = hostID, id
		s.setState(&hostState{baseFrame: key})
	}
	s.notePruneWork(captured)
	return IngestResult{SnapshotID: id, Created: true}, nil, dirty
}

func (s *SQLite) touchHost(ctx context.Context, tx *sql.Tx, hostID, received int64) error {
	if _, err := s.stmt(ctx, tx, s.stmts.touchHost).ExecContext(ctx, received, hostID); err != nil {
		return fmt.Errorf("update last_seen: %w", err)
	}
	return nil
}

// hostState returns the host's delta base, loading its newest keyframe
// when the writer has none in memory; nil when the host has no keyframe.
func (s *SQLite) hostState(ctx context.Context, tx *sql.Tx, hostID int64, hostname string) (*hostState, error) {
	if st, ok := s.w.hosts[hostID]; ok {
		return st, nil
	}
	var id int64
	var procBlob, sysBlob []byte
	err := tx.QueryRowContext(ctx, `SELECT id, procs, sys FROM snapshots
		WHERE host_id = ? AND base_id IS NULL ORDER BY id DESC LIMIT 1`, hostID).Scan(&id, &procBlob, &sysBlob)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load keyframe: %w", err)
	}
	f, err := s.decodeFrame(procBlob, sysBlob)
	if err != nil {
		// A keyframe we cannot read must not become the base of new data.
		s.log.Error("cannot decode keyframe, starting a new one", "snapshot_id", id, "err", err)
		return nil, nil
	}
	st := &hostState{baseFrame: keyframeBase(hostname, hostID, id, f, len(procBlob)+len(sysBlob))}
	s.setState(st)
	return st, nil
}

// stmts are the writer's prepared statements (preparing each statement
// anew was a fifth of the writer's time).
type stmts struct {
	savepoint, rollbackTo, release    *sql.Stmt
	insertHost, selectHost, touchHost *sql.Stmt
	selectSnapshot, insertSnapshot    *sql.Stmt
	dataVersion                       *sql.Stmt
	all                               []*sql.Stmt
}

func (s *SQLite) prepare(ctx context.Context) error {
	p := func(dst **sql.Stmt, query string) error {
		st, err := s.wdb.PrepareContext(ctx, query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", query, err)
		}
		*dst = st
		s.stmts.all = append(s.stmts.all, st)
		return nil
	}
	return errors.Join(
		p(&s.stmts.savepoint, "SAVEPOINT job"),
		p(&s.stmts.rollbackTo, "ROLLBACK TO job"),
		p(&s.stmts.release, "RELEASE job"),
		p(&s.stmts.insertHost, `INSERT INTO hosts (hostname, key_hash, created_ms, last_seen_ms)
			VALUES (?, ?, ?, ?) ON CONFLICT (hostname) DO NOTHING`),
		p(&s.stmts.selectHost, "SELECT id, key_hash FROM hosts WHERE hostname = ?"),
		p(&s.stmts.touchHost, "UPDATE hosts SET last_seen_ms = max(last_seen_ms, ?) WHERE id = ?"),
		p(&s.stmts.selectSnapshot, "SELECT id FROM snapshots WHERE host_id = ? AND captured_ms = ?"),
		p(&s.stmts.dataVersion, "PRAGMA data_version"),
		p(&s.stmts.insertSnapshot, `INSERT INTO snapshots (host_id, captured_ms, process_count, base_id, sys, procs)
			VALUES (?, ?, ?, ?, ?, ?)`),
	)
}

// stmt binds a prepared statement to the batch transaction (on the same,
// single connection it is reused, not prepared again).
func (s *SQLite) stmt(ctx context.Context, tx *sql.Tx, st *sql.Stmt) *sql.Stmt {
	return tx.StmtContext(ctx, st)
}

// exec runs fn in the writer (admin commands share its transactions).
func (s *SQLite) exec(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.submit(ctx, &job{fn: fn})
}

// DeleteHost implements Store.
func (s *SQLite) DeleteHost(ctx context.Context, hostname string) error {
	defer s.keyOK.Delete(hostname) // as in ResetKey
	return s.exec(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, "SELECT id FROM hosts WHERE hostname = ?", hostname).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("delete host: %w", err)
		}
		// ON DELETE CASCADE removes its snapshots in the same statement;
		// the keyframe foreign key is checked at the statement's end, when
		// deltas and keyframes are gone together.
		if _, err := tx.ExecContext(ctx, "DELETE FROM hosts WHERE id = ?", id); err != nil {
			return fmt.Errorf("delete host: %w", err)
		}
		// In the same transaction: the host's history series are deleted
		// by whoever holds the history store, now or at its next start.
		if _, err := tx.ExecContext(ctx, "INSERT INTO deleted_hosts (hostname, deleted_ms) VALUES (?, ?)",
			hostname, s.opts.Now().UnixMilli()); err != nil {
			return fmt.Errorf("delete host: record the deletion: %w", err)
		}
		s.hostRemoved()
		s.dropState(id)
		delete(s.w.rows, hostname)
		// Before the commit: no CheckKey may trust the old key after it.
		s.keyOK.Delete(hostname)
		return nil
	})
}

// ResetKey implements Store.
func (s *SQLite) ResetKey(ctx context.Context, hostname string, keyHash *[32]byte) error {
	var stored any // NULL: unbound
	if keyHash != nil {
		stored = keyHash[:]
	}
	// And again after the commit: a CheckKey racing the transaction may
	// have read the old key before it committed.
	defer s.keyOK.Delete(hostname)
	return s.exec(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE hosts SET key_hash = ? WHERE hostname = ?", stored, hostname)
		if err != nil {
			return fmt.Errorf("reset key: %w", err)
		}
		delete(s.w.rows, hostname)
		// Before the commit: no CheckKey may trust the old key after it.
		s.keyOK.Delete(hostname)
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("reset key: %w", err)
		} else if n == 0 {
			return ErrNotFound
		}
		return nil
	})
}
