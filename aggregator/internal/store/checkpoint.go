package store

import (
	"context"
	"time"
)

// Checkpoints copy the WAL back into the database file. SQLite's automatic
// checkpoint runs inside the COMMIT that crosses its threshold, which made
// that commit (and every ingest waiting on it) tens of milliseconds slower
// and set the ingest p99. The writer's connection has it disabled; this
// loop runs a PASSIVE checkpoint from its own connection instead, which
// never blocks the writer or readers, and the WAL is reused from its start
// once a checkpoint has caught up.

// checkpointEvery is the pause between two checkpoints.
const checkpointEvery = time.Second

func (s *SQLite) checkpointLoop() {
	defer close(s.ckDone)
	t := time.NewTicker(checkpointEvery)
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
			s.log.Warn("wal checkpoint failed", "err", err)
		}
	}
}
