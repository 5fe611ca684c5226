package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/procscope/procscope/aggregator/internal/history"
	"github.com/procscope/procscope/aggregator/internal/store"
)

// hostsAdd creates a host bound to a new random key and prints the key,
// once: only its SHA-256 is stored, like every key. It works while the
// server runs (another connection to the WAL database; the server reads
// hosts from the database, not from a cache that could miss it).
func hostsAdd(stdout, stderr io.Writer, logger *slog.Logger, loc storageLoc, name string) int {
	if !checkName(stderr, name) {
		return 2
	}
	key, hash, err := newHostKey()
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: generating a key: %v\n", err)
		return 1
	}
	st, code := openAdmin(stderr, logger, loc)
	if st == nil {
		return code
	}
	defer func() { _ = st.Close() }()
	if err := st.AddHost(context.Background(), name, hash); err != nil {
		if errors.Is(err, store.ErrHostExists) {
			_, _ = fmt.Fprintf(stderr, "procscope-aggregator: host %s exists already (see `hosts list`); to give it a new key, run `hosts reset-key %s`\n",
				printable(name), printable(name))
			return 1
		}
		return adminError(stderr, name, "adding", err)
	}
	_, _ = fmt.Fprintf(stdout, `added host %s. Its API key, shown only this once (the aggregator keeps only its hash):
%s
%s`, printable(name), key, installHint(name))
	return 0
}

// newHostKey is a random host key (32 bytes from crypto/rand, hex, as
// exporters generate theirs) and the SHA-256 the store keeps of it.
func newHostKey() (string, [32]byte, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", [32]byte{}, err
	}
	key := hex.EncodeToString(b[:])
	return key, sha256.Sum256([]byte(key)), nil
}

// installHint says how to give a printed key to the host's exporter.
func installHint(name string) string {
	return fmt.Sprintf(`Install it on %s: save the key in a file only the exporter can read (e.g. /etc/procscope/exporter-api-key, mode 0600)
and start the exporter with --push.api-key-file=/etc/procscope/exporter-api-key (or set PROCSCOPE_API_KEY).
`, printable(name))
}

// deleteHistory deletes the history series of every deleted host still
// recorded (the one just deleted, and any a running server did not get to)
// when no server holds the history store; otherwise the server does it
// within seconds, or at its next start.
func deleteHistory(stdout, stderr io.Writer, st deletionStore, dir, name string) int {
	histDir := filepath.Join(dir, "history")
	if _, err := os.Stat(histDir); err != nil {
		// No history store: nothing to delete, now or later.
		return forgetDeletions(stderr, st, nil)
	}
	if used, err := history.InUse(histDir); used || err != nil {
		_, _ = fmt.Fprintf(stdout, "its history series are deleted by the running server within seconds (it holds %s)\n", histDir)
		return 0
	}
	// Its own open and close log lines would only add noise here.
	h, err := history.Open(histDir, history.Options{})
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: its history series stay until the server's next start deletes them: opening %s: %v\n", histDir, err)
		return 1
	}
	total := 0
	code := forgetDeletions(stderr, st, func(d store.HostDeletion) error {
		n, err := h.DeleteHost(d.Hostname)
		if d.Hostname == name {
			total += n
		}
		return err
	})
	if err := h.Close(); err != nil {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: closing history: %v\n", err)
		return 1
	}
	if code == 0 {
		_, _ = fmt.Fprintf(stdout, "deleted its %d history series\n", total)
	}
	return code
}

// forgetDeletions runs del (if any) for every recorded host deletion and
// then forgets it.
func forgetDeletions(stderr io.Writer, st deletionStore, del func(store.HostDeletion) error) int {
	ctx := context.Background()
	var after int64
	for range 10_000 { // bounded: each round forgets what it listed
		dels, err := st.HostDeletions(ctx, after)
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "procscope-aggregator: listing host deletions: %v\n", err)
			return 1
		}
		if len(dels) == 0 {
			return 0
		}
		for _, d := range dels {
			after = d.ID
			if del != nil {
				if err := del(d); err != nil {
					_, _ = fmt.Fprintf(stderr, "procscope-aggregator: deleting the history of %s: %v\n", printable(d.Hostname), err)
					return 1
				}
			}
			if err := st.ForgetHostDeletion(ctx, d.ID); err != nil {
				_, _ = fmt.Fprintf(stderr, "procscope-aggregator: %v\n", err)
				return 1
			}
		}
	}
	return 0
}
