package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// openForAdmin opens an existing store; admin commands never create one
// (a typo in --storage.path must not yield an empty database and "no hosts").
func openForAdmin(stderr io.Writer, logger *slog.Logger, dir string) (*store.SQLite, int) {
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: no storage directory at %s (set --storage.path)\n", dir)
		return nil, 1
	}
	if err := checkStorage(dir); err != nil {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: %v\n", err)
		return nil, 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.OpenSQLite(ctx, dir, store.Options{Logger: logger, PruneInterval: -1})
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: opening storage at %s: %v\n", dir, err)
		return nil, 1
	}
	return st, 0
}

// printable quotes text that could mislead a terminal (control characters,
// invisible characters): hostnames are chosen by whoever holds a key.
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == '\t' {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}

func hostsList(stdout, stderr io.Writer, logger *slog.Logger, loc storageLoc) int {
	st, code := openAdmin(stderr, logger, loc)
	if st == nil {
		return code
	}
	defer func() { _ = st.Close() }()
	hosts, err := st.Hosts(context.Background())
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: listing hosts: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	// tabwriter buffers: a write error comes back from Flush below.
	_, _ = fmt.Fprintln(tw, "HOSTNAME\tLAST SEEN\tLATEST SNAPSHOT\tCAPTURED AT\tOS")
	for _, h := range hosts {
		latest, captured := "-", "-"
		if h.LatestSnapshotID > 0 {
			latest = strconv.FormatInt(h.LatestSnapshotID, 10)
			captured = h.LatestCapturedAt.UTC().Format(time.RFC3339)
		}
		osName := h.OS
		if osName == "" {
			osName = "-"
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable(h.Hostname),
			h.LastSeen.UTC().Format(time.RFC3339), latest, captured, printable(osName))
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	return 0
}

// checkName validates a hostname argument: bad usage is exit code 2.
func checkName(stderr io.Writer, name string) bool {
	if msg := snapshot.CheckHostname(name); msg != "" {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: %s\n", msg)
		return false
	}
	return true
}

// openForHost checks the hostname argument of a `hosts` command, then
// opens the store; with a nil store, code is the exit code.
func openForHost(stderr io.Writer, logger *slog.Logger, loc storageLoc, name string) (st adminStore, code int) {
	if !checkName(stderr, name) {
		return nil, 2
	}
	return openAdmin(stderr, logger, loc)
}

func hostsDelete(stdout, stderr io.Writer, logger *slog.Logger, loc storageLoc, name string) int {
	st, code := openForHost(stderr, logger, loc, name)
	if st == nil {
		return code
	}
	if err := st.DeleteHost(context.Background(), name); err != nil {
		_ = st.Close()
		return adminError(stderr, name, "deleting", err)
	}
	_, _ = fmt.Fprintf(stdout, "deleted host %s and all its snapshots\n", printable(name))
	code = deleteHistory(stdout, stderr, st, loc.dir, name)
	if err := st.Close(); err != nil {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: closing storage: %v\n", err)
		return 1
	}
	return code
}

// hostsResetKey gives a host a new random key, bound at once, and prints
// it once (like hostsAdd): nobody can take the host over between the
// reset and its exporter's next push, whatever the enrolment mode. With
// unbind the host is left without a key instead; the server then admits
// its next push only as it would a new host's (enroll.go), so that in
// token and closed mode nobody without the token can claim it.
func hostsResetKey(stdout, stderr io.Writer, logger *slog.Logger, loc storageLoc, name string, unbind bool) int {
	var key string
	var hash *[32]byte
	if !unbind {
		k, h, err := newHostKey()
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "procscope-aggregator: generating a key: %v\n", err)
			return 1
		}
		key, hash = k, &h
	}
	st, code := openForHost(stderr, logger, loc, name)
	if st == nil {
		return code
	}
	defer func() { _ = st.Close() }()
	if err := st.ResetKey(context.Background(), name, hash); err != nil {
		return adminError(stderr, name, "resetting the key of", err)
	}
	if unbind {
		_, _ = fmt.Fprintf(stdout, "host %s has no key now (a running aggregator sees it within a second): its next push binds the key it carries if the aggregator's enrollment admits it as a new host: any push in open mode, only one with the enrollment token in token mode, none in closed mode (there, run `hosts reset-key %s` without --unbind)\n",
			printable(name), printable(name))
		return 0
	}
	_, _ = fmt.Fprintf(stdout, `new API key of host %s, shown only this once (the aggregator keeps only its hash):
%s
The old key is refused from now on, by a running aggregator too (within a second, no restart needed).
%s`, printable(name), key, installHint(name))
	return 0
}

func adminError(stderr io.Writer, name, doing string, err error) int {
	if errors.Is(err, store.ErrNotFound) {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: no host named %s (see `hosts list`)\n", printable(name))
		return 1
	}
	_, _ = fmt.Fprintf(stderr, "procscope-aggregator: %s %s: %v\n", doing, printable(name), err)
	return 1
}
