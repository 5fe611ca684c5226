-- 0002: deletions of hosts whose history series are still to be deleted.
--
-- `hosts delete` runs in its own process, often while the server holds the
-- history store (VictoriaMetrics locks its directory). The deletion is
-- recorded here in the same transaction as the host's rows; whoever can
-- open the history store (the admin command when no server runs, else the
-- server, which polls this table) deletes the series and then the row.
CREATE TABLE deleted_hosts (
    id         INTEGER PRIMARY KEY,
    hostname   TEXT    NOT NULL,
    deleted_ms INTEGER NOT NULL
) STRICT;
