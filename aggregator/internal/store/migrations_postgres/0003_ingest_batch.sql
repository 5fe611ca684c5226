-- 0003: group commit. One call stores a batch of ingests (element i of
-- every array is ingest i) in one transaction and one round trip; each is
-- procscope_ingest, with its own status, in the batch's order of
-- (hostname, position). The order matters: two batches touching the same
-- hosts take their row locks (a new host's unique index entry, the
-- last_seen update) in the same order and cannot deadlock, also across
-- aggregators.
--
-- A database error (a full disk, a lost connection) fails the whole batch
-- and nothing of it is committed; the aggregator answers every ingest of it
-- with that error and the exporters send again (idempotency).
CREATE FUNCTION procscope_ingest_batch(
    p_hostnames text[], p_keys bytea[], p_captured bigint[], p_counts integer[],
    p_bases bigint[], p_sys bytea[], p_procs bytea[], p_received bigint[],
    p_no_create boolean[], p_max_hosts integer[])
RETURNS TABLE (o_idx integer, o_status text, o_snapshot_id bigint, o_host_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
BEGIN
    FOR i IN SELECT k FROM generate_subscripts(p_hostnames, 1) AS k
             ORDER BY p_hostnames[k] COLLATE "C", k LOOP
        o_idx := i;
        SELECT r.o_status, r.o_snapshot_id, r.o_host_id INTO o_status, o_snapshot_id, o_host_id
            FROM procscope_ingest(p_hostnames[i], p_keys[i], p_captured[i], p_counts[i], p_bases[i],
                p_sys[i], p_procs[i], p_received[i], p_no_create[i], p_max_hosts[i]) AS r;
        RETURN NEXT;
    END LOOP;
END
$$;
