package store

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Several aggregators on one database learn of each other's writes
// through LISTEN/NOTIFY: stored snapshots on procscope_snapshots, deleted
// hosts and reset keys on procscope_hosts. Notifications are delivered at
// commit, so a listener never hears of a snapshot it cannot read yet.
//
// A snapshot is announced after its ingest committed, by one transaction
// per announceEvery for all of them, not inside the ingest: a transaction
// that NOTIFYs takes a database-wide lock from its commit record until the
// WAL is flushed, which serialized every ingest's fsync (73 snapshots/s
// instead of 2,000 with fsync on, tools/loadgen -compare-postgres). An
// aggregator killed in between loses only the announcement (the live
// stream misses one event; the snapshot is stored).

// announceEvery is how long announcements gather before they are sent:
// well inside the live stream's 1 s promise.
const announceEvery = 50 * time.Millisecond

// announce queues a stored snapshot for the other aggregators; when the
// queue is full it is dropped (only a live event is lost).
func (s *Postgres) announce(id int64, hostname string, capturedMS int64) {
	p, _ := json.Marshal(noteSnapshot{id, hostname, capturedMS})
	select {
	case s.notes <- string(p):
	default:
	}
}

// noteSnapshot is one announced snapshot.
type noteSnapshot struct {
	ID   int64  `json:"id"`
	Host string `json:"host"`
	MS   int64  `json:"ms"`
}

// notePayload is one NOTIFY on procscope_snapshots: the snapshots one
// process stored, as many as fit in one payload. Every listener receives
// every notification, its own included, so one per snapshot cost each
// listening aggregator and its backend ~70 CPU-µs a snapshot
// (BenchmarkIngestParallelPostgres, postgres-listen).
type notePayload struct {
	Origin    string         `json:"origin"`
	Snapshots []noteSnapshot `json:"snapshots"`
	// The one-snapshot form of earlier versions.
	noteSnapshot
}

// maxNotePayload keeps a payload under PostgreSQL's limit of 8,000 bytes.
const maxNotePayload = 7900

// packNotes joins the queued announcements (JSON objects) into as few
// payloads as fit.
func (s *Postgres) packNotes(batch []string) []string {
	var out []string
	head := `{"origin":"` + s.origin + `","snapshots":[`
	var b strings.Builder
	for _, n := range batch {
		if b.Len() > 0 && b.Len()+len(n)+2 > maxNotePayload {
			b.WriteString("]}")
			out = append(out, b.String())
			b.Reset()
		}
		if b.Len() == 0 {
			b.WriteString(head)
		} else {
			b.WriteByte(',')
		}
		b.WriteString(n)
	}
	if b.Len() > 0 {
		b.WriteString("]}")
		out = append(out, b.String())
	}
	return out
}

// announceLoop sends the queued announcements until Close.
func (s *Postgres) announceLoop() {
	defer close(s.notesDone)
	t := time.NewTicker(announceEvery)
	defer t.Stop()
	var batch []string
	for {
		select {
		case <-s.quit:
			s.sendNotes(batch)
			return
		case p := <-s.notes:
			batch = append(batch, p)
			continue
		case <-t.C:
		}
		batch = s.sendNotes(batch)
	}
}

func (s *Postgres) sendNotes(batch []string) []string {
	if len(batch) == 0 {
		return batch
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.pool.Exec(ctx, "SELECT pg_notify('procscope_snapshots', p) FROM unnest($1::text[]) AS p", s.packNotes(batch)); err != nil {
		s.log.Warn("cannot announce snapshots to other aggregators", "snapshots", len(batch), "err", err)
	}
	return batch[:0]
}

// NewSnapshot is a snapshot another aggregator stored.
type NewSnapshot struct {
	SnapshotID int64
	Hostname   string
	CapturedAt time.Time
}

// Listen delivers, until ctx ends, the snapshots other aggregators store
// (onSnapshot) and the hosts they delete or reset (onHost, after this
// store dropped its own caches of the host). It holds one connection of
// its own and reconnects after a failure; what is notified while it is
// disconnected is not delivered (the live stream only misses events).
func (s *Postgres) Listen(ctx context.Context, onSnapshot func(NewSnapshot), onHost func(hostname string)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, onSnapshot, onHost, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("listening for other aggregators' snapshots failed, reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (s *Postgres) listenOnce(ctx context.Context, onSnapshot func(NewSnapshot), onHost func(string), connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN procscope_snapshots; LISTEN procscope_hosts"); err != nil {
		return err
	}
	connected()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		switch n.Channel {
		case "procscope_hosts":
			s.forgetHost(n.Payload)
			if onHost != nil {
				onHost(n.Payload)
			}
		case "procscope_snapshots":
			var p notePayload
			if json.Unmarshal([]byte(n.Payload), &p) != nil || p.Origin == s.origin {
				continue // our own: the API announced it already
			}
			if len(p.Snapshots) == 0 && p.ID != 0 {
				p.Snapshots = []noteSnapshot{p.noteSnapshot}
			}
			// Another process's keyframe may now be the host's newest;
			// ours stays a valid base, nothing to drop.
			if onSnapshot != nil {
				for _, sn := range p.Snapshots {
					onSnapshot(NewSnapshot{SnapshotID: sn.ID, Hostname: sn.Host, CapturedAt: msTime(sn.MS)})
				}
			}
		}
	}
}
