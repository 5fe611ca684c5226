package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/procscope/procscope/aggregator/internal/api"
	"github.com/procscope/procscope/aggregator/internal/store"
)

// The snapshot store is SQLite under --storage.path by default, or
// PostgreSQL with --storage.postgres-url, which several aggregators may
// share (docs/scaling.md).

// serverStore is what the server needs of either store.
type serverStore interface {
	store.Store
	store.EventStore
	deletionStore
}

// deletionStore is what the deletion watcher needs (deletions.go).
type deletionStore interface {
	HostDeletions(ctx context.Context, afterID int64) ([]store.HostDeletion, error)
	ForgetHostDeletion(ctx context.Context, id int64) error
}

// checkPostgresURL refuses a URL that is not postgres:// (or
// postgresql://), and one with a password given on the command line,
// where every user of the machine reads it in the process list.
func checkPostgresURL(raw string, onCommandLine bool) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		// Not the parse error: it would repeat the URL, password included.
		return errors.New("--storage.postgres-url: not a postgres://USER@HOST:PORT/DATABASE URL")
	}
	if _, hasPassword := u.User.Password(); (hasPassword || u.Query().Has("password")) && onCommandLine {
		return errors.New("--storage.postgres-url carries a password, which every user of this machine can read in the process list: " +
			"set it in $PROCSCOPE_STORAGE_POSTGRES_URL, $PGPASSWORD or a PGPASSFILE instead")
	}
	return nil
}

// flagInArgs reports whether --name was given on the command line (as
// --name=V or --name V), where a password in it would be public.
func flagInArgs(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--"+name || strings.HasPrefix(a, "--"+name+"=") {
			return true
		}
	}
	return false
}

// storageLoc is where the admin commands find the store.
type storageLoc struct{ dir, pgURL string }

// adminStore is what the `hosts` commands need of either store.
type adminStore interface {
	store.Store
	deletionStore
	AddHost(ctx context.Context, hostname string, keyHash [32]byte) error
}

// openAdmin opens the store the `hosts` commands administer: PostgreSQL
// with --storage.postgres-url (several servers may run on it meanwhile),
// else the SQLite store under --storage.path (openForAdmin).
func openAdmin(stderr io.Writer, logger *slog.Logger, loc storageLoc) (adminStore, int) {
	if loc.pgURL == "" {
		st, code := openForAdmin(stderr, logger, loc.dir)
		if st == nil {
			return nil, code
		}
		return st, code
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.OpenPostgres(ctx, loc.pgURL, store.Options{Logger: logger, PruneInterval: -1})
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: opening %s: %v\n", storeName("", loc.pgURL), err)
		return nil, exitFailed
	}
	return st, 0
}

// openStore opens PostgreSQL when pgURL is set (pg is then the same
// store), else SQLite in dir.
func openStore(ctx context.Context, dir, pgURL string, opts store.Options) (serverStore, *store.Postgres, error) {
	if pgURL != "" {
		pg, err := store.OpenPostgres(ctx, pgURL, opts)
		if err != nil {
			return nil, nil, err
		}
		return pg, pg, nil
	}
	st, err := store.OpenSQLite(ctx, dir, opts)
	if err != nil {
		return nil, nil, err
	}
	return st, nil, nil
}

// storeName names the store in logs, without the URL's password.
func storeName(dir, pgURL string) string {
	if pgURL == "" {
		return dir
	}
	if u, err := url.Parse(pgURL); err == nil {
		return u.Redacted()
	}
	return "postgres"
}

// listenOthers feeds the live stream with the snapshots other aggregators
// on the same PostgreSQL store, and drops what the API remembers of hosts
// they delete. The returned channel closes once it stopped (at once
// without PostgreSQL).
func listenOthers(ctx context.Context, pg *store.Postgres, a *api.API) <-chan struct{} {
	done := make(chan struct{})
	if pg == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		pg.Listen(ctx, func(n store.NewSnapshot) {
			a.PublishStored(n.SnapshotID, n.Hostname, n.CapturedAt)
		}, a.ForgetHost)
	}()
	return done
}
