package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// The reads of Store and EventStore, one function each for both engines
// (core.go says how).

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// CheckKey implements Store. A key reset or a host deleted by another
// process (the hosts admin command, another aggregator) is seen here
// within keyCheckTTL, and by the ingest itself at once.
func (c *core) CheckKey(ctx context.Context, hostname string, keyHash [32]byte) (KeyState, error) {
	if c.closed.Load() {
		return 0, ErrClosed
	}
	if v, ok := c.keyOK.Load(hostname); ok {
		kc := v.(*keyCheck)
		if time.Since(kc.at) < keyCheckTTL && keyMatches(kc.hash[:], keyHash) == nil {
			return KeyMatches, nil
		}
	}
	var stored []byte
	err := c.db.QueryRow(ctx, c.sql.keyHash, hostname).Scan(&stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return HostUnknown, nil
	case err != nil:
		return 0, fmt.Errorf("check key: %w", err)
	case stored == nil:
		// `hosts reset-key` unbound it: the next ingest binds a new key.
		return KeyUnbound, nil
	}
	if err := keyMatches(stored, keyHash); err != nil {
		return 0, err
	}
	c.keyOK.Store(hostname, &keyCheck{hash: keyHash, at: time.Now()})
	return KeyMatches, nil
}

// hostID is hostname's id; ErrNotFound when it is not stored.
func (c *core) hostID(ctx context.Context, q querier, hostname string) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, c.sql.hostID, hostname).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	return id, err
}

// Hosts implements Store.
func (c *core) Hosts(ctx context.Context) ([]Host, error) {
	tx, err := c.readTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	defer tx.end()
	rs, err := tx.Query(ctx, c.sql.hosts)
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	defer rs.Close()
	type latest struct {
		base sql.NullInt64
		sys  []byte
	}
	var out []Host
	var lat []latest
	// One set of destinations for every row (see metaScanner).
	var (
		hostname string
		lastSeen int64
		id       sql.NullInt64
		captured sql.NullInt64
		l        latest
	)
	dest := []any{&hostname, &lastSeen, &id, &captured, &l.base, &l.sys}
	for rs.Next() {
		if err := rs.Scan(dest...); err != nil {
			return nil, fmt.Errorf("list hosts: %w", err)
		}
		h := Host{Hostname: hostname, LastSeen: msTime(lastSeen)}
		if id.Valid {
			h.LatestSnapshotID = id.Int64
			h.LatestCapturedAt = msTime(captured.Int64)
		}
		out = append(out, h)
		lat = append(lat, l)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	for i := range out {
		if out[i].LatestSnapshotID == 0 {
			continue
		}
		sys, err := c.systemInfo(ctx, tx, lat[i].base, lat[i].sys)
		if err != nil {
			c.log.Warn("cannot read latest system_info", "hostname", out[i].Hostname, "snapshot_id", out[i].LatestSnapshotID, "err", err)
			continue
		}
		out[i].OS = osSummary(sys)
	}
	return out, nil
}

// osSummary is "distro version (name arch)" from a system_info document,
// or "" when it has none of those fields.
func osSummary(sys []byte) string {
	var v struct {
		OS OSInfo `json:"os"`
	}
	if json.Unmarshal(sys, &v) != nil {
		return ""
	}
	return v.OS.Line()
}

// OSInfo is system_info's "os" object, what an OS summary is made of.
type OSInfo struct {
	Name    string `json:"name"`
	Distro  string `json:"distro"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
}

// Line is "distro version (name arch)" leaving out what is empty: the OS
// summary of GET /api/v1/hosts (docs/api.md).
func (o OSInfo) Line() string {
	var parts, inner []string
	for _, p := range []string{o.Distro, o.Version} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	for _, p := range []string{o.Name, o.Arch} {
		if p != "" {
			inner = append(inner, p)
		}
	}
	out := strings.Join(parts, " ")
	if len(inner) > 0 {
		if out != "" {
			out += " "
		}
		out += "(" + strings.Join(inner, " ") + ")"
	}
	return out
}

// metaRow is one row of metaColumns: a snapshot's metadata before its
// system_info is rebuilt.
type metaRow struct {
	m    SnapshotMeta
	base sql.NullInt64
	sys  []byte
}

// metaScanner scans rows of metaColumns. Its destinations are made once
// for all the rows: the variables a Scan through an interface is given
// escape to the heap, which per row would cost an allocation a row.
type metaScanner struct {
	mr       metaRow
	captured int64
	dest     []any
}

func newMetaScanner() *metaScanner {
	s := &metaScanner{}
	s.dest = []any{&s.mr.m.ID, &s.mr.m.Hostname, &s.captured, &s.mr.m.ProcessCount, &s.mr.base, &s.mr.sys}
	return s
}

func (s *metaScanner) scan(r row) (metaRow, error) {
	err := r.Scan(s.dest...)
	s.mr.m.CapturedAt = msTime(s.captured)
	return s.mr, err
}

// meta rebuilds mr's system_info.
func (c *core) meta(ctx context.Context, q querier, mr metaRow) (SnapshotMeta, error) {
	info, err := c.systemInfo(ctx, q, mr.base, mr.sys)
	if err != nil {
		return mr.m, fmt.Errorf("snapshot %d: %w", mr.m.ID, err)
	}
	mr.m.SystemInfo = info
	return mr.m, nil
}

func (c *core) oneMeta(ctx context.Context, query string, args ...any) (SnapshotMeta, error) {
	tx, err := c.readTx(ctx)
	if err != nil {
		return SnapshotMeta{}, err
	}
	defer tx.end()
	mr, err := newMetaScanner().scan(tx.QueryRow(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return SnapshotMeta{}, ErrNotFound
	}
	if err != nil {
		return SnapshotMeta{}, err
	}
	return c.meta(ctx, tx, mr)
}

// Latest implements Store.
func (c *core) Latest(ctx context.Context, hostname string) (SnapshotMeta, error) {
	return c.oneMeta(ctx, c.sql.latest, hostname)
}

// Snapshot implements Store.
func (c *core) Snapshot(ctx context.Context, id int64) (SnapshotMeta, error) {
	return c.oneMeta(ctx, c.sql.snapshot, id)
}

// SnapshotAt implements Store.
func (c *core) SnapshotAt(ctx context.Context, hostname string, t time.Time) (SnapshotMeta, error) {
	return c.oneMeta(ctx, c.sql.at, hostname, t.UnixMilli())
}

// SnapshotsBetween implements Store.
func (c *core) SnapshotsBetween(ctx context.Context, hostname string, from, to time.Time, limit int) ([]SnapshotMeta, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit must be positive", ErrInvalid)
	}
	tx, err := c.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.end()
	rs, err := tx.Query(ctx, c.sql.between, hostname, from.UnixMilli(), to.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	defer rs.Close()
	var mrs []metaRow
	sc := newMetaScanner()
	for rs.Next() {
		mr, err := sc.scan(rs)
		if err != nil {
			return nil, fmt.Errorf("list snapshots: %w", err)
		}
		mrs = append(mrs, mr)
	}
	// Done with the rows before the keyframe queries: a transaction of
	// pgx runs one statement at a time.
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	out := make([]SnapshotMeta, len(mrs))
	for i, mr := range mrs {
		if out[i], err = c.meta(ctx, tx, mr); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Processes implements Store. The returned slice is the caller's; the
// strings (and Cmdline pointers) in it may be shared with a cache and must
// not be modified through the pointers.
func (c *core) Processes(ctx context.Context, id int64) ([]snapshot.Process, error) {
	tx, err := c.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.end()
	var base sql.NullInt64
	var blob, sysBlob []byte
	err = tx.QueryRow(ctx, c.sql.blobs, id).Scan(&base, &blob, &sysBlob)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read snapshot %d: %w", id, err)
	}
	if !base.Valid {
		// A keyframe: serve it from the cache, or decode and remember it
		// (deltas of the same keyframe will want it next).
		f, err := c.keyframe(ctx, tx, id, blob, sysBlob)
		if err != nil {
			return nil, fmt.Errorf("snapshot %d: %w", id, err)
		}
		return append([]snapshot.Process(nil), f.procs...), nil
	}
	f, err := c.keyframe(ctx, tx, base.Int64, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("snapshot %d: keyframe %d: %w", id, base.Int64, err)
	}
	procs, err := decodeProcsAgainst(blob, f)
	if err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", id, err)
	}
	return procs, nil
}

// keyframe returns keyframe id decoded, from the cache or from the database
// (procs/sys are its blobs when the caller already read them).
func (c *core) keyframe(ctx context.Context, q querier, id int64, procs, sys []byte) (*frame, error) {
	if f := c.cache.get(id); f != nil {
		return f, nil
	}
	if procs == nil || sys == nil {
		var base sql.NullInt64
		err := q.QueryRow(ctx, c.sql.blobs, id).Scan(&base, &procs, &sys)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("%w: keyframe %d is missing", errCorrupt, id)
		}
		if err != nil {
			return nil, err
		}
		if base.Valid {
			return nil, fmt.Errorf("%w: snapshot %d is not a keyframe", errCorrupt, id)
		}
	}
	f, err := decodeKeyframe(procs, sys)
	if err != nil {
		return nil, err
	}
	c.cache.put(id, f)
	return f, nil
}

// decodeKeyframe decodes a keyframe's two blobs.
func decodeKeyframe(procsBlob, sysBlob []byte) (*frame, error) {
	kind, raw, err := openBlob(procsBlob)
	if err != nil {
		return nil, err
	}
	if kind != blobFull {
		return nil, fmt.Errorf("%w: keyframe holds a delta", errCorrupt)
	}
	procs, err := decodeFull(raw)
	if err != nil {
		return nil, err
	}
	kind, sys, err := openBlob(sysBlob)
	if err != nil {
		return nil, err
	}
	if kind != blobFull {
		return nil, fmt.Errorf("%w: keyframe system_info is a delta", errCorrupt)
	}
	return &frame{procs: procs, sys: sys, sysTokens: sysTokens(sys)}, nil
}

// keyframeSys returns the system_info tokens of keyframe id without
// decoding its process list: listing hosts or snapshots needs only these.
func (c *core) keyframeSys(ctx context.Context, q querier, id int64) ([][]byte, error) {
	if f := c.cache.get(id); f != nil {
		return f.sysTokens, nil
	}
	if f := c.sysCache.get(id); f != nil {
		return f.sysTokens, nil
	}
	var base sql.NullInt64
	var blob []byte
	err := q.QueryRow(ctx, c.sql.sysBlob, id).Scan(&base, &blob)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: keyframe %d is missing", errCorrupt, id)
	}
	if err != nil {
		return nil, err
	}
	kind, sys, err := openBlob(blob)
	if err != nil {
		return nil, err
	}
	if base.Valid || kind != blobFull {
		return nil, fmt.Errorf("%w: snapshot %d is not a keyframe", errCorrupt, id)
	}
	f := &frame{sys: sys, sysTokens: sysTokens(sys)}
	c.sysCache.put(id, f)
	return f.sysTokens, nil
}

// systemInfo rebuilds a snapshot's system_info from its blob (and its
// keyframe's when the blob is a delta).
func (c *core) systemInfo(ctx context.Context, q querier, base sql.NullInt64, blob []byte) (json.RawMessage, error) {
	kind, raw, err := openBlob(blob)
	if err != nil {
		return nil, err
	}
	switch kind {
	case blobFull:
		// Both drivers scan into a buffer of the caller's own, and a
		// compressed blob is opened into a new one: raw is ours to return.
		return raw, nil
	case blobDelta:
		if !base.Valid {
			return nil, fmt.Errorf("%w: system_info delta without keyframe", errCorrupt)
		}
		toks, err := c.keyframeSys(ctx, q, base.Int64)
		if err != nil {
			return nil, err
		}
		return decodeSysDelta(raw, toks)
	default:
		return nil, errCorrupt
	}
}

// maxEventsLimit bounds one answer whatever the caller asks.
const maxEventsLimit = 10000

// Events implements EventStore.
func (c *core) Events(ctx context.Context, hostname string, q EventQuery) ([]Event, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	id, err := c.hostID(ctx, c.db, hostname)
	if errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	limit := q.Limit
	if limit <= 0 || limit > maxEventsLimit {
		limit = maxEventsLimit
	}
	query, args := c.sql.events, []any{id, q.From.UnixMilli(), q.To.UnixMilli(), limit}
	if q.Q != "" {
		// LIKE with its wildcards escaped is a substring test that
		// ignores (ASCII) case without lower() on every row.
		like := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q.Q) + "%"
		query, args = c.sql.eventsSearch, []any{id, q.From.UnixMilli(), q.To.UnixMilli(), like, like, like, limit}
	}
	if kinds := q.kindsSQL(); kinds != "" {
		// The condition holds no placeholder, so the numbered ones of
		// either dialect stay as they are.
		query = strings.Replace(query, " ORDER BY", kinds+" ORDER BY", 1)
	}
	rs, err := c.db.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	defer rs.Close()
	out := []Event{}
	// One set of destinations for every row (see metaScanner).
	var (
		at, kind, pid, ppid int64
		name                string
		unit, ctr           sql.NullString
		prev, started       sql.NullInt64
		cpu, mem            sql.NullFloat64
	)
	dest := []any{&at, &kind, &pid, &ppid, &name, &unit, &ctr, &prev, &started, &cpu, &mem}
	for rs.Next() {
		if err := rs.Scan(dest...); err != nil {
			return nil, fmt.Errorf("events: %w", err)
		}
		e := Event{At: msTime(at), Kind: EventKind(kind), PID: pid, PPID: ppid, Name: name,
			Unit: unit.String, ContainerID: ctr.String, PrevPID: prev.Int64, CPUPercent: cpu.Float64, MemoryMB: mem.Float64}
		if started.Valid {
			e.Started = msTime(started.Int64)
		}
		out = append(out, e)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return out, nil
}
