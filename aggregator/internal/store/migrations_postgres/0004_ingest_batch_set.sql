-- 0004: a batch of ingests of known hosts in a few statements instead of
-- a procscope_ingest call per ingest.
--
-- In 0003 every ingest ran six statements of PostgreSQL's executor (the
-- call itself, the host's lock, the keyframe's lock, the INSERT, the
-- last_seen UPDATE, and the loop's own), each with its executor start-up
-- and tear-down, and a WAL record for each lock and update
-- (pg_stat_statements, perf). In the steady state every host of a batch
-- exists with its key bound, and the batch takes six statements whatever
-- its size, and one last_seen update per host (10-15 % less PostgreSQL
-- CPU per snapshot, BenchmarkPostgresBatchFunctions). Anything else (a new host, a wrong key, an unbound key, a
-- refused one) goes through the per-ingest loop of 0003, now
-- procscope_ingest_batch_rows, with the same statuses as before.
--
-- Lock order, against deadlocks also across aggregators: the fast path
-- takes every host row of the batch FOR NO KEY UPDATE in hostname order
-- before it writes anything, and procscope_ingest now takes the host row
-- in that same mode (it was FOR KEY SHARE, and the last_seen UPDATE took
-- NO KEY UPDATE at the end anyway), so that every batch holds a host's
-- row before it inserts that host's snapshots, and waits for host rows in
-- hostname order. The fast path checks without locks first and goes to
-- the loop before taking any lock when a row needs it; only when a host
-- changes between that check and the lock (a key reset, a deletion) does
-- the loop run with the locks held, and PostgreSQL would then end a cycle,
-- if one formed, with a deadlock error: the batch is refused and sent
-- again (idempotency).
ALTER FUNCTION procscope_ingest_batch(text[], bytea[], bigint[], integer[], bigint[], bytea[], bytea[],
    bigint[], boolean[], integer[]) RENAME TO procscope_ingest_batch_rows;

CREATE OR REPLACE FUNCTION procscope_ingest(
    p_hostname text, p_key bytea, p_captured bigint, p_count integer,
    p_base bigint, p_sys bytea, p_procs bytea, p_received bigint,
    p_no_create boolean, p_max_hosts integer,
    OUT o_status text, OUT o_snapshot_id bigint, OUT o_host_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_key bytea;
    v_n   bigint;
BEGIN
    SELECT h.id, h.key_hash INTO o_host_id, v_key FROM hosts h
        WHERE h.hostname = p_hostname FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        IF p_no_create THEN
            o_status := 'unknown_host';
            RETURN;
        END IF;
        IF p_max_hosts > 0 THEN
            -- New hosts one at a time, so that concurrent ones cannot
            -- together pass the bound.
            PERFORM pg_advisory_xact_lock(7277630617190401);
            SELECT count(*) INTO v_n FROM hosts;
            IF v_n >= p_max_hosts THEN
                o_status := 'too_many_hosts';
                RETURN;
            END IF;
        END IF;
        INSERT INTO hosts (hostname, key_hash, created_ms, last_seen_ms)
            VALUES (p_hostname, p_key, p_received, p_received)
            ON CONFLICT (hostname) DO NOTHING RETURNING id INTO o_host_id;
        IF FOUND THEN
            v_key := p_key;
        ELSE
            SELECT h.id, h.key_hash INTO o_host_id, v_key FROM hosts h
                WHERE h.hostname = p_hostname FOR NO KEY UPDATE;
            IF NOT FOUND THEN
                o_status := 'retry';
                RETURN;
            END IF;
        END IF;
    END IF;
    IF v_key IS NULL THEN
        -- `hosts reset-key` unbound it: this ingest binds its key (the
        -- row is ours: no other can bind one meanwhile).
        UPDATE hosts SET key_hash = p_key WHERE id = o_host_id AND key_hash IS NULL;
        IF FOUND THEN
            v_key := p_key;
        ELSE
            SELECT h.key_hash INTO v_key FROM hosts h WHERE h.id = o_host_id;
        END IF;
    END IF;
    -- Not constant-time: both sides are SHA-256 digests, and learning a
    -- prefix of a digest brings no key closer.
    IF v_key IS DISTINCT FROM p_key THEN
        o_status := 'key_mismatch';
        o_host_id := NULL;
        RETURN;
    END IF;
    IF p_base IS NOT NULL THEN
        PERFORM 1 FROM snapshots s
            WHERE s.id = p_base AND s.host_id = o_host_id AND s.base_id IS NULL FOR KEY SHARE;
        IF NOT FOUND THEN
            SELECT s.id INTO o_snapshot_id FROM snapshots s
                WHERE s.host_id = o_host_id AND s.captured_ms = p_captured;
            IF NOT FOUND THEN
                o_status := 'no_base';
                RETURN;
            END IF;
        END IF;
    END IF;
    IF o_snapshot_id IS NULL THEN
        INSERT INTO snapshots (host_id, captured_ms, process_count, base_id, sys, procs)
            VALUES (o_host_id, p_captured, p_count, p_base, p_sys, p_procs)
            ON CONFLICT (host_id, captured_ms) DO NOTHING RETURNING id INTO o_snapshot_id;
        IF FOUND THEN
            o_status := 'created';
        END IF;
    END IF;
    IF o_status IS NULL THEN
        IF o_snapshot_id IS NULL THEN
            SELECT s.id INTO o_snapshot_id FROM snapshots s
                WHERE s.host_id = o_host_id AND s.captured_ms = p_captured;
        END IF;
        o_status := 'exists';
    END IF;
    -- A retry is an accepted request from a live host too: last_seen moves.
    UPDATE hosts SET last_seen_ms = greatest(last_seen_ms, p_received) WHERE id = o_host_id;
END
$$;

CREATE FUNCTION procscope_ingest_batch(
    p_hostnames text[], p_keys bytea[], p_captured bigint[], p_counts integer[],
    p_bases bigint[], p_sys bytea[], p_procs bytea[], p_received bigint[],
    p_no_create boolean[], p_max_hosts integer[])
RETURNS TABLE (o_idx integer, o_status text, o_snapshot_id bigint, o_host_id bigint)
LANGUAGE plpgsql
-- Plan each statement once per connection: a custom plan for every batch
-- (the default, for the arrays' sizes) cost more CPU than the statements
-- themselves, and the generic plans are the index lookups wanted anyway.
SET plan_cache_mode = force_generic_plan
-- A generic plan is made once, with the statistics of that moment: on a
-- young table that may be a sequential scan per lookup, kept for the
-- connection's life. Every statement here is a keyed lookup.
SET enable_seqscan = off
AS $$
DECLARE
    v_bad     boolean;
    v_locked  boolean := false;
    v_created bigint[];
    v_nobase  integer[];
BEGIN
    -- Is every ingest of an existing host, its key bound and the one
    -- given? First without a lock, then again holding the host rows.
    LOOP
        SELECT coalesce(bool_or((SELECT h.key_hash FROM hosts h WHERE h.hostname = u.hn) IS DISTINCT FROM u.k), true)
            INTO v_bad FROM unnest(p_hostnames, p_keys) AS u(hn, k);
        EXIT WHEN v_bad OR v_locked;
        PERFORM 1 FROM hosts h WHERE h.hostname = ANY (p_hostnames)
            ORDER BY h.hostname FOR NO KEY UPDATE;
        v_locked := true;
    END LOOP;
    IF v_bad THEN
        RETURN QUERY SELECT * FROM procscope_ingest_batch_rows(p_hostnames, p_keys, p_captured, p_counts,
            p_bases, p_sys, p_procs, p_received, p_no_create, p_max_hosts);
        RETURN;
    END IF;

    -- The keyframes the deltas are encoded against stay until the commit
    -- (retention waits); one gone already makes its delta no_base. By the
    -- primary key alone: with "base_id IS NULL" here the planner may walk
    -- the whole partial index of keyframes instead.
    PERFORM 1 FROM snapshots s WHERE s.id = ANY (p_bases) ORDER BY s.id FOR KEY SHARE;
    -- unnest and the scalar subqueries keep the plans to index lookups
    -- per ingest whatever the tables' statistics say (a hash join would
    -- read every host and keyframe, batch after batch).
    WITH u AS (
        SELECT u.idx, h.id AS host_id, u.hn, u.cap, u.cnt, u.base, u.sys, u.procs,
            (u.base IS NULL OR coalesce((SELECT s.base_id IS NULL AND s.host_id = h.id
                FROM snapshots s WHERE s.id = u.base), false)) AS has_base
        FROM unnest(p_hostnames, p_captured, p_counts, p_bases, p_sys, p_procs)
            WITH ORDINALITY AS u(hn, cap, cnt, base, sys, procs, idx)
        JOIN hosts h ON h.hostname = u.hn
    ), ins AS (
        -- In the batch's order: of two copies of one snapshot, the first
        -- is created and the second exists.
        INSERT INTO snapshots (host_id, captured_ms, process_count, base_id, sys, procs)
        SELECT u.host_id, u.cap, u.cnt, u.base, u.sys, u.procs FROM u WHERE u.has_base
        ORDER BY u.hn, u.idx
        ON CONFLICT (host_id, captured_ms) DO NOTHING
        RETURNING id
    )
    SELECT (SELECT array_agg(ins.id) FROM ins), (SELECT array_agg(u.idx) FROM u WHERE NOT u.has_base)
        INTO v_created, v_nobase;

    -- A statement of its own, so that it sees the rows just inserted, and
    -- those a concurrent transaction committed while the INSERT waited for
    -- it (ON CONFLICT DO NOTHING skipped them).
    RETURN QUERY
    WITH r AS (
        SELECT u.idx, h.id AS host_id, u.recv, NOT (u.idx = ANY (coalesce(v_nobase, '{}'))) AS has_base,
            (SELECT s.id FROM snapshots s WHERE s.host_id = h.id AND s.captured_ms = u.cap) AS sid
        FROM unnest(p_hostnames, p_captured, p_received) WITH ORDINALITY AS u(hn, cap, recv, idx)
        JOIN hosts h ON h.hostname = u.hn
    ), c AS (
        SELECT r.*, coalesce(r.sid = ANY (coalesce(v_created, '{}')) AND r.has_base
            AND r.idx = min(r.idx) FILTER (WHERE r.has_base) OVER (PARTITION BY r.sid), false) AS created
        FROM r
    ), seen AS (
        -- A retry is an accepted request from a live host too: last_seen
        -- moves, once per host and batch.
        UPDATE hosts h SET last_seen_ms = greatest(h.last_seen_ms, m.recv)
        FROM (SELECT c.host_id, max(c.recv) AS recv FROM c WHERE c.sid IS NOT NULL GROUP BY c.host_id) AS m
        WHERE h.id = m.host_id
    )
    SELECT c.idx::integer,
        CASE WHEN c.created THEN 'created' WHEN c.sid IS NOT NULL THEN 'exists' ELSE 'no_base' END,
        c.sid, c.host_id
    FROM c;
END
$$;
