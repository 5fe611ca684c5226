// Command procscope-aggregator receives snapshots from procscope exporters,
// stores them, and serves the JSON API, the web UI and its own /metrics.
//
// The default command serves; `hosts list|add|delete|reset-key` administer
// the store. main only assembles the parts (serve.go) and maps failures to
// exit codes, as the exporter does: 2 for a bad command line or
// configuration (the user's to fix), 1 for a failure at start or while
// running.
package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"

	"github.com/procscope/procscope/internal/cli"
)

func main() {
	cli.FillVersion()
	restrictUmask()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes, the same in both binaries.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// run parses args and runs the chosen command; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New("procscope-aggregator", "Stores procscope snapshots and serves the API and web UI. "+
		"Serving is the default command: the flags below configure it; `hosts ...` administer the store. "+
		"Every flag can also be set by the environment variable shown with it (a flag on the command line wins).")
	app.Version(version.Print("procscope-aggregator"))
	app.HelpFlag.Short('h')
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)

	logCfg := &promslog.Config{Writer: stderr}
	promslogflag.AddFlags(app, logCfg)
	storagePath := app.Flag("storage.path", "Directory of the snapshot database (created if missing).").
		Default("./data").String()
	postgresURL := app.Flag("storage.postgres-url", "Store snapshots, hosts and keys in this PostgreSQL database (postgres://USER@HOST:PORT/DATABASE?sslmode=...) instead of SQLite under --storage.path; several aggregators may share it. Give the password by PGPASSWORD, a PGPASSFILE or this flag's environment variable, never on the command line.").
		PlaceHolder("URL").Default("").String()
	shared := flagNames(app)
	sf := addServeFlags(app)
	var serverOnly []string
	for _, n := range flagNames(app) {
		if !slices.Contains(shared, n) {
			serverOnly = append(serverOnly, n)
		}
	}

	// serve stays a command, so that `procscope-aggregator serve ...` of
	// older scripts keeps working; its flags are the top-level ones.
	serveCmd := app.Command("serve", "Serve the API and the web UI (the default command; it takes the flags above).").Default()

	hostsCmd := app.Command("hosts", "Administer hosts (only --storage.path, --storage.postgres-url and --log.* apply).")
	listCmd := hostsCmd.Command("list", "List hosts with last seen time and latest snapshot.")
	addCmd := hostsCmd.Command("add", "Create a host and print its new API key, once (for closed or token enrollment).")
	addName := addCmd.Arg("name", "Hostname, exactly as its exporter reports it.").Required().String()
	deleteCmd := hostsCmd.Command("delete", "Delete a host, all its snapshots and its history series.")
	deleteName := deleteCmd.Arg("name", "Hostname, exactly as shown by `hosts list`.").Required().String()
	resetCmd := hostsCmd.Command("reset-key", "Give a host a new random API key and print it, once; the old key is refused at once (a running server needs no restart).")
	resetName := resetCmd.Arg("name", "Hostname, exactly as shown by `hosts list`.").Required().String()
	resetUnbind := resetCmd.Flag("unbind", "Instead, leave the host without a key: its next push binds the key it carries if enrollment admits it as it would a new host (open: any push; token: one with the enrollment token; closed: none).").Bool()

	backupCmdline := app.Command("backup", "Copy the database and the history store to a new directory, while the server runs or not (only --storage.path and --log.* apply). Restore: start the aggregator with --storage.path on it.")
	backupTo := backupCmdline.Flag("to", "The backup's directory; it must not exist (it appears, complete, at the end).").PlaceHolder("DIR").String()
	storageCmd := app.Command("storage", "Look after or move the storage (only --storage.path and --log.* apply).")
	checkCmd := storageCmd.Command("check", "Verify a store offline (the server stopped): the database's integrity, every snapshot's blobs, the history store; exit 1 on damage.")
	copyCmd := storageCmd.Command("copy", "Copy the SQLite store under --storage.path into PostgreSQL: hosts, key hashes and every snapshot, ids kept; resumable (run it again to copy what is new).")
	copyTo := copyCmd.Flag("to", "Destination: postgres://USER@HOST:PORT/DATABASE (the password from $PGPASSWORD or a PGPASSFILE, not here).").
		PlaceHolder("URL").Default("").String()

	var exited bool
	app.Terminate(func(int) { exited = true }) // --help and --version
	cmd, given, err := cli.Parse(app, args)
	if exited {
		return exitOK
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: %v (see --help)\n", err)
		return exitUsage
	}
	if cmd != serveCmd.FullCommand() {
		// A server flag given to an admin command would be ignored
		// silently; its variable in the environment is fine (a container
		// configured for serving runs `hosts list` too).
		for _, n := range serverOnly {
			if given[n] {
				_, _ = fmt.Fprintf(stderr, "procscope-aggregator: --%s configures the server; `%s` takes only --storage.path and --log.* (see --help)\n", n, cmd)
				return exitUsage
			}
		}
	}
	if err := checkPostgresURL(*postgresURL, flagInArgs(args, "storage.postgres-url")); err != nil {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: %v\n", err)
		return exitUsage
	}
	sf.postgresURL = *postgresURL
	if *postgresURL != "" && cmd == copyCmd.FullCommand() {
		_, _ = fmt.Fprintln(stderr, "procscope-aggregator: storage copy reads the SQLite store under --storage.path: drop --storage.postgres-url (and its variable) and give the destination with --to")
		return exitUsage
	}
	if *postgresURL != "" && (cmd == backupCmdline.FullCommand() || cmd == checkCmd.FullCommand()) {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: `%s` works on the SQLite store under --storage.path; a PostgreSQL store is backed up and checked with PostgreSQL's own tools (pg_dump, pg_basebackup, amcheck)\n", cmd)
		return exitUsage
	}
	loc := storageLoc{dir: *storagePath, pgURL: *postgresURL}
	logger := promslog.New(logCfg)

	switch cmd {
	case serveCmd.FullCommand():
		return serve(stderr, logger, *storagePath, sf)
	case listCmd.FullCommand():
		return hostsList(stdout, stderr, logger, loc)
	case addCmd.FullCommand():
		return hostsAdd(stdout, stderr, logger, loc, *addName)
	case deleteCmd.FullCommand():
		return hostsDelete(stdout, stderr, logger, loc, *deleteName)
	case resetCmd.FullCommand():
		return hostsResetKey(stdout, stderr, logger, loc, *resetName, *resetUnbind)
	case copyCmd.FullCommand():
		return storageCopy(stdout, stderr, logger, *storagePath, *copyTo, flagInArgs(args, "to"))
	case backupCmdline.FullCommand():
		return backupCmd(stdout, stderr, logger, *storagePath, *backupTo)
	case checkCmd.FullCommand():
		return storageCheck(stdout, stderr, logger, *storagePath)
	}
	_, _ = fmt.Fprintf(stderr, "procscope-aggregator: unknown command %q\n", strings.TrimSpace(cmd))
	return exitUsage
}

// flagNames lists the application's flags defined so far.
func flagNames(app *kingpin.Application) []string {
	var names []string
	for _, f := range app.Model().Flags {
		names = append(names, f.Name)
	}
	return names
}
