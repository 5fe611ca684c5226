// Command loadgen pushes realistic snapshots to an aggregator at a fixed
// rate, from many simulated hosts, and then reads back every acknowledged
// snapshot to prove none was lost.
//
//	go run ./aggregator/internal/loadgen -url http://127.0.0.1:8000 -hosts 200 -rate 2000 -duration 30s
//	go run ./aggregator/internal/loadgen -spawn -hosts 200 -rate 2000 -duration 30s   # builds and starts its own aggregator
//
// Bodies are gzip JSON of 300-process trees (package gen). To keep the
// generator's own CPU low on a machine it shares with the aggregator, each
// body is compressed once per host and variant, and only its head, with
// the hostname and a fresh captured_at, is made per request: a gzip stream
// may consist of several members that decompress as one (RFC 1952 2.2, and
// every gzip reader incl. Go's reads them so), so the head is a tiny
// "stored" (uncompressed) member written by hand and the pre-compressed
// rest follows it.
//
// It uses the standard flag package in a FlagSet inside run (no globals),
// so that the documented single-dash form works as in `go test`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/procscope/procscope/aggregator/internal/apptest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8000", "aggregator base URL")
	spawn := fs.Bool("spawn", false, "build the aggregator and start it on a temp dir and a free port (ignores -url)")
	fs.IntVar(&cfg.hosts, "hosts", 200, "simulated hosts")
	fs.Float64Var(&cfg.rate, "rate", 2000, "snapshots per second, all hosts together")
	fs.DurationVar(&cfg.duration, "duration", 30*time.Second, "how long to push")
	fs.IntVar(&cfg.procs, "procs", 300, "processes per snapshot")
	fs.IntVar(&cfg.variants, "variants", 3, "different process trees per host")
	fs.IntVar(&cfg.workers, "concurrency", 64, "requests in flight at most")
	fs.BoolVar(&cfg.cmdline, "cmdline", true, "send command lines")
	fs.StringVar(&cfg.keyPrefix, "key-prefix", "loadgen-key-", "API key prefix (key = prefix + hostname)")
	fs.StringVar(&cfg.hostPrefix, "host-prefix", "", "hostname prefix (default: load-<unix time>-)")
	fs.IntVar(&cfg.verifyContent, "verify-content-every", 25, "compare full process lists of every Nth acknowledged snapshot (0: none)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadgen: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if cfg.hosts < 1 || cfg.rate <= 0 || cfg.duration <= 0 || cfg.procs < 0 || cfg.variants < 1 || cfg.workers < 1 {
		fmt.Fprintln(stderr, "loadgen: -hosts, -rate, -duration, -variants and -concurrency must be positive")
		return 2
	}
	if cfg.hostPrefix == "" {
		cfg.hostPrefix = fmt.Sprintf("load-%d-", time.Now().Unix())
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *spawn {
		tmp, err := os.MkdirTemp("", "procscope-load-")
		if err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		fmt.Fprintln(stdout, "building the aggregator...")
		bin, err := apptest.Build(ctx, tmp)
		if err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		p, err := apptest.Start(bin, filepath.Join(tmp, "data"), 60*time.Second)
		if err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		defer func() {
			if !p.Stop(30 * time.Second) {
				fmt.Fprintf(stderr, "loadgen: the aggregator did not stop cleanly:\n%s", p.Log())
			}
		}()
		cfg.url = p.URL
		cfg.pid = p.PID()
		fmt.Fprintf(stdout, "aggregator pid %d at %s, storage in %s\n", p.PID(), p.URL, tmp)
	}

	aggCPU0 := procCPU(cfg.pid)
	selfCPU0 := selfCPU()
	res, err := load(ctx, cfg, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	res.print(stdout)
	// CPU time per snapshot is steadier than wall-clock rates on a shared
	// machine: 1e6 / (aggregator cpu-µs) is what one free core sustains.
	// (It covers the push and the read-back, so it is an upper bound.)
	if n := res.created + res.repeated; n > 0 {
		self := selfCPU() - selfCPU0
		if cfg.pid > 0 {
			agg := procCPU(cfg.pid) - aggCPU0
			fmt.Fprintf(stdout, "cpu: aggregator %.0f µs/snapshot, loadgen %.0f µs/snapshot (push and read-back)\n",
				float64(agg.Microseconds())/float64(n), float64(self.Microseconds())/float64(n))
		} else {
			fmt.Fprintf(stdout, "cpu: loadgen %.0f µs/snapshot (push and read-back)\n", float64(self.Microseconds())/float64(n))
		}
	}
	if res.errors > 0 || res.lost > 0 {
		return 1
	}
	return 0
}

// procCPU is a process's user+system CPU time from /proc (0 when unknown).
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
