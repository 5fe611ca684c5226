-- 0001: hosts bound to key hashes, snapshots stored as keyframes and deltas.
--
-- A snapshot row either is a keyframe (base_id IS NULL: its blobs are complete)
-- or a delta against one keyframe of the same host (base_id set). The foreign
-- key on base_id has no ON DELETE action, so SQLite itself refuses to delete a
-- keyframe that a delta still needs: retention must re-encode first, and a bug
-- there fails loudly instead of orphaning data.
CREATE TABLE hosts (
    id           INTEGER PRIMARY KEY,
    -- BINARY collation: case-sensitive, exact, sorted bytewise (API.md).
    hostname     TEXT    NOT NULL UNIQUE,
    -- SHA-256 of the host's API key; NULL after a key reset, so the next
    -- ingest binds a new key.
    key_hash     BLOB    CHECK (key_hash IS NULL OR length(key_hash) = 32),
    created_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE snapshots (
    -- AUTOINCREMENT: ids are never reused, not even the id of the newest row
    -- after it was deleted or after a crash (sqlite_sequence is transactional).
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    host_id       INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    captured_ms   INTEGER NOT NULL,
    process_count INTEGER NOT NULL,
    base_id       INTEGER REFERENCES snapshots(id),
    sys           BLOB    NOT NULL,
    procs         BLOB    NOT NULL,
    -- Idempotency of ingest: one snapshot per host and millisecond.
    UNIQUE (host_id, captured_ms)
) STRICT;

-- Deltas of a keyframe (retention re-encodes them before deleting it).
CREATE INDEX snapshots_base ON snapshots(base_id) WHERE base_id IS NOT NULL;
-- A host's newest keyframe (rebuilding the delta base after a restart).
CREATE INDEX snapshots_keyframes ON snapshots(host_id, id) WHERE base_id IS NULL;
-- Retention scans by time across hosts.
CREATE INDEX snapshots_captured ON snapshots(captured_ms);
