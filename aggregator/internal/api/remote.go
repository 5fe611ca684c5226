package api

import "time"

// PublishStored announces on the live stream a snapshot that another
// aggregator sharing this one's database stored (the PostgreSQL store
// hears of it through LISTEN/NOTIFY), as if it had been ingested here: a
// browser connected to any aggregator sees every host's new snapshots. It
// also teaches the host's push interval, which "online" is judged by.
func (a *API) PublishStored(snapshotID int64, hostname string, capturedAt time.Time) {
	a.seen.observe(hostname, capturedAt)
	a.stream.publish(streamEvent{SnapshotID: snapshotID, CapturedAt: formatTime(capturedAt), Hostname: hostname}, capturedAt)
}
