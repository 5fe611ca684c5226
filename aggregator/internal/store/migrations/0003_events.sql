-- 0003: process lifecycle events the aggregator derives from consecutive
-- snapshots of a host (issue 15). One narrow row per event: the kind as a
-- small integer, text only for the names, NULL for what a kind lacks.
-- Deleted with their host; pruned with the snapshots (an event older than
-- the host's oldest snapshot goes).
CREATE TABLE events (
    host_id      INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    at_ms        INTEGER NOT NULL,
    kind         INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 3), -- 1 started, 2 exited, 3 restarted
    pid          INTEGER NOT NULL,
    ppid         INTEGER NOT NULL,
    name         TEXT    NOT NULL,
    unit         TEXT,
    container_id TEXT,
    prev_pid     INTEGER, -- restarted: the pid that exited
    started_ms   INTEGER, -- exited: when the process started, if known
    cpu_percent  REAL,    -- exited: last CPU% and memory seen
    memory_mb    REAL,
    -- Clustered by host and time: a host's day is one sequential range,
    -- which a search (name LIKE) reads row by row. A process has at most
    -- one event of a kind in one snapshot.
    PRIMARY KEY (host_id, at_ms, pid, kind)
) STRICT, WITHOUT ROWID;
