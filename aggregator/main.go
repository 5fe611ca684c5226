// Command procscope-aggregator receives snapshots from procscope exporters,
// stores them, and serves the JSON API, the web UI and its own /metrics.
//
// The default command serves; `hosts list|add|delete|reset-key` administer
// the store. main only assembles the parts (serve.go) and maps failures to exit
// codes: 2 for bad usage, 1 for anything else.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
)

func main() {
	restrictUmask()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args and runs the chosen command; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New("procscope-aggregator", "Stores procscope snapshots and serves the API and web UI.")
	app.Version(version.Print("procscope-aggregator"))
	app.HelpFlag.Short('h')
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)

	logCfg := &promslog.Config{Writer: stderr}
	promslogflag.AddFlags(app, logCfg)
	storagePath := app.Flag("storage.path", "Directory of the snapshot database (created if missing).").
		Default("./data").String()

	serveCmd := app.Command("serve", "Serve the API and the web UI (the default).").Default()
	sf := addServeFlags(serveCmd)

	hostsCmd := app.Command("hosts", "Administer hosts.")
	listCmd := hostsCmd.Command("list", "List hosts with last seen time and latest snapshot.")
	addCmd := hostsCmd.Command("add", "Create a host and print its new API key, once (for closed or token enrollment).")
	addName := addCmd.Arg("name", "Hostname, exactly as its exporter reports it.").Required().String()
	deleteCmd := hostsCmd.Command("delete", "Delete a host, all its snapshots and its history series.")
	deleteName := deleteCmd.Arg("name", "Hostname, exactly as shown by `hosts list`.").Required().String()
	resetCmd := hostsCmd.Command("reset-key", "Unbind a host's API key, at once (a running server needs no restart): the next ingest for the host binds the key it carries, whatever it is.")
	resetName := resetCmd.Arg("name", "Hostname, exactly as shown by `hosts list`.").Required().String()

	var exited bool
	app.Terminate(func(int) { exited = true }) // --help and --version
	cmd, err := app.Parse(args)
	if exited {
		return 0
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "procscope-aggregator: %v (see --help)\n", err)
		return 2
	}
	logger := promslog.New(logCfg)

	switch cmd {
	case serveCmd.FullCommand():
		return serve(logger, *storagePath, sf)
	case listCmd.FullCommand():
		return hostsList(stdout, stderr, logger, *storagePath)
	case addCmd.FullCommand():
		return hostsAdd(stdout, stderr, logger, *storagePath, *addName)
	case deleteCmd.FullCommand():
		return hostsDelete(stdout, stderr, logger, *storagePath, *deleteName)
	case resetCmd.FullCommand():
		return hostsResetKey(stdout, stderr, logger, *storagePath, *resetName)
	}
	_, _ = fmt.Fprintf(stderr, "procscope-aggregator: unknown command %q\n", cmd)
	return 2
}
