package store

import (
	"context"
	"time"
)

// Checkpoints copy the WAL back into the database file. SQLite's automatic
// checkpoint runs inside the COMMIT that crosses its threshold, so that
// commit, and every ingest waiting on it, pays for copying the whole WAL
// (docs/performance.md, "Choices the figures made"). The writer's connection
// has it disabled; this loop runs a PASSIVE checkpoint from its own
// connection instead, which never blocks the writer or readers.
//
// A passive checkpoint alone is not enough under sustained ingest: it copies
// the frames that were in the WAL when it started, but the WAL is reused
// from its start only when every frame has been copied at the moment the
// next write begins, and with a commit every few milliseconds new frames are
// always there by then. The WAL then grew without end, and every commit paid
// for allocating and zeroing new file blocks (docs/performance.md, "The WAL
// under sustained ingest"). So once the background checkpoint has copied the
// bulk, the writer itself, between two batches, copies the few frames
// committed meanwhile (no new writes can race it), and its next
// transaction starts the WAL again from the beginning.

// defaultCheckpointEvery is the pause between two checkpoints.
const defaultCheckpointEvery = time.Second

func (s *SQLite) checkpointLoop() {
	defer close(s.ckDone)
	t := time.NewTicker(s.opts.checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var busy, logFrames, done int
		err := s.ckdb.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &done)
		cancel()
		if err != nil {
			if !isFull(err) { // a full disk is the writer's to report, once
				s.log.Warn("wal checkpoint failed", "err", err)
			}
			continue
		}
		if logFrames > 0 {
			// Ask the writer to finish it; one request pending is enough.
			select {
			case s.ckTail <- struct{}{}:
			default:
			}
		}
	}
}

// finishCheckpoint copies what the background checkpoint left in the WAL,
// on the writer's connection between two transactions, so that the next
// transaction restarts the WAL (unless a reader still reads an old part).
func (s *SQLite) finishCheckpoint() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var busy, logFrames, done int
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &done); err != nil && !isFull(err) {
		s.log.Warn("wal checkpoint failed", "err", err)
	}
}
