-- 0002: process lifecycle events (SQLite's 0003, issue 15).
CREATE TABLE events (
    host_id      bigint  NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    at_ms        bigint  NOT NULL,
    kind         smallint NOT NULL CHECK (kind BETWEEN 1 AND 3), -- 1 started, 2 exited, 3 restarted
    pid          bigint  NOT NULL,
    ppid         bigint  NOT NULL,
    name         text    NOT NULL,
    unit         text,
    container_id text,
    prev_pid     bigint,
    started_ms   bigint,
    cpu_percent  double precision,
    memory_mb    double precision,
    PRIMARY KEY (host_id, at_ms, pid, kind)
);
