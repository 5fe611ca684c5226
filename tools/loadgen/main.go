// Command loadgen pushes realistic snapshots to an aggregator at a fixed
// rate, from many simulated hosts, and then reads back every acknowledged
// snapshot to prove none was lost.
//
//	go run ./tools/loadgen -url http://127.0.0.1:8000 -hosts 200 -rate 2000 -duration 30s
//	go run ./tools/loadgen -spawn -hosts 200 -rate 2000 -duration 30s   # builds and starts its own aggregator
//	go run ./tools/loadgen -spawn -compare-history -duration 10s           # history on, then off, same run
//	go run ./tools/loadgen -spawn -compare-history -rounds 3 -duration 10s # on/off/on/off... alternating
//	go run ./tools/loadgen -spawn -workload rotate -cmdline                # the old worst case
//
// Bodies are gzip JSON of 300-process trees (package gen). The default
// workload, -workload evolve, is what real exporters send: no command lines
// (--collect.cmdline is off by default) and each host's table evolving push
// by push (the busy ~15 % of processes with new CPU figures, memory
// drifting, a process starting or exiting every few pushes, system_info
// usage numbers moving), deterministic for -seed. -workload rotate -cmdline
// is the old worst case: each host cycles through -variants unrelated trees
// with command lines, so nearly every row differs from the host's previous
// snapshot.
//
// To keep the generator's own CPU low on a machine it shares with the
// aggregator, every body of the run is compressed before the timed push
// (with -spawn, once for all runs), and only its head, with the hostname
// and a fresh captured_at, is made per request: a gzip stream
// may consist of several members that decompress as one (RFC 1952 2.2, and
// every gzip reader incl. Go's reads them so), so the head is a tiny
// "stored" (uncompressed) member written by hand and the pre-compressed
// rest follows it. The push itself does not use net/http: each simulated
// host is one goroutine with one keep-alive connection and a minimal
// HTTP/1.1 client (pushconn.go) that writes a request with one writev and
// parses the answer in place, about a third of net/http's CPU per push
// (BenchmarkPushClient). The read-back uses net/http.
//
// It uses the standard flag package in a FlagSet inside run (no globals),
// so that the documented single-dash form works as in `go test`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/procscope/procscope/internal/apptest"
	"github.com/procscope/procscope/internal/testutil"
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
	compare := fs.Bool("compare-history", false, "with -spawn: run twice in a row, history on (the default) then --no-history, each on a fresh store, and print the ratio")
	rounds := fs.Int("rounds", 1, "with -spawn: repeat the run(s) this many times (with -compare-history alternating which goes first) and sum them up")
	comparePG := fs.Bool("compare-postgres", false, "with -spawn: run SQLite with one aggregator, PostgreSQL with one and with two aggregators (hosts split between them), all --no-history, on a PostgreSQL cluster of its own; print snapshots/s, latency, CPU per snapshot of the aggregators and of PostgreSQL, and bytes per snapshot in PostgreSQL")
	profile := fs.String("cpuprofile", "", "with -spawn: write the aggregator's CPU profile of the push phase to this file (.0, .1, ... suffixes, one a run, with -compare-history or -rounds)")
	fs.IntVar(&cfg.hosts, "hosts", 200, "simulated hosts")
	fs.Float64Var(&cfg.rate, "rate", 2000, "snapshots per second, all hosts together")
	fs.DurationVar(&cfg.duration, "duration", 30*time.Second, "how long to push")
	fs.IntVar(&cfg.procs, "procs", 300, "processes per snapshot")
	fs.StringVar(&cfg.workload, "workload", "evolve", "evolve: each host's process table changes a little each push, as on a real host; rotate: each host cycles through -variants unrelated trees (worst case)")
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed of the generated process tables (same seed, same bodies)")
	fs.IntVar(&cfg.variants, "variants", 3, "with -workload rotate: different process trees per host")
	fs.IntVar(&cfg.workers, "concurrency", 0, "requests in flight at most (0: one per host, as real exporters push; a host never has two in flight, it has one connection)")
	fs.BoolVar(&cfg.cmdline, "cmdline", false, "send command lines (the exporter does only with --collect.cmdline)")
	fs.StringVar(&cfg.keyPrefix, "key-prefix", "loadgen-key-", "API key prefix (key = prefix + hostname)")
	fs.StringVar(&cfg.hostPrefix, "host-prefix", "", "hostname prefix (default: load-<unix time>-)")
	fs.IntVar(&cfg.pushProcs, "push-procs", 1, "GOMAXPROCS of the generator during the push alone (0: unchanged); one is plenty and spares the runtime waking a second thread per request")
	fs.IntVar(&cfg.verifyContent, "verify-content-every", 25, "compare full process lists of every Nth acknowledged snapshot (0: none)")
	fs.BoolVar(&cfg.timeline, "timeline", false, "print the latency of each second of the push")
	warmup := fs.Duration("warmup", 0, "with -spawn: first push this long from other hosts, not counted, so that the measured push meets a running aggregator (0: none, the push meets a process just started)")
	selfProfile := fs.String("self-cpuprofile", "", "write the load generator's own CPU profile to this file")
	var extra stringsFlag
	addFailoverFlags(fs, &cfg.failover)
	fs.Var(&extra, "aggregator-flag", "with -spawn: one more flag for every spawned aggregator, e.g. -aggregator-flag=--storage.commit-interval=5ms (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		_, _ = fmt.Fprintf(stderr, "loadgen: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *rounds < 1 || *rounds > 100 {
		_, _ = fmt.Fprintln(stderr, "loadgen: -rounds must be between 1 and 100")
		return 2
	}
	if cfg.workers == 0 {
		// One connection per simulated host: with fewer, throughput is
		// capped at workers/latency however fast the aggregator is.
		cfg.workers = cfg.hosts
	}
	if cfg.hosts < 1 || cfg.rate <= 0 || cfg.duration <= 0 || cfg.procs < 0 || cfg.variants < 1 || cfg.workers < 1 {
		_, _ = fmt.Fprintln(stderr, "loadgen: -hosts, -rate, -duration, -variants and -concurrency must be positive")
		return 2
	}
	if *warmup < 0 {
		_, _ = fmt.Fprintln(stderr, "loadgen: -warmup must not be negative")
		return 2
	}
	if cfg.pushProcs < 0 {
		_, _ = fmt.Fprintln(stderr, "loadgen: -push-procs must not be negative")
		return 2
	}
	if cfg.workload != "evolve" && cfg.workload != "rotate" {
		_, _ = fmt.Fprintf(stderr, "loadgen: -workload must be evolve or rotate, not %q\n", cfg.workload)
		return 2
	}
	if err := cfg.failover.check(*spawn, cfg.url); err != nil {
		_, _ = fmt.Fprintln(stderr, "loadgen:", err)
		return 2
	}
	if cfg.hostPrefix == "" {
		cfg.hostPrefix = fmt.Sprintf("load-%d-", time.Now().Unix())
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *selfProfile != "" {
		f, err := os.Create(*selfProfile)
		if err != nil {
			_, _ = fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			_, _ = fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	if !*spawn {
		if *compare || *profile != "" || *rounds != 1 || len(extra) > 0 || *warmup != 0 {
			_, _ = fmt.Fprintln(stderr, "loadgen: -compare-history, -rounds, -cpuprofile, -aggregator-flag and -warmup need -spawn")
			return 2
		}
		r, err := runOnce(ctx, cfg, stdout)
		if err != nil {
			_, _ = fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		if r.res.errors > 0 || r.res.lost > 0 {
			return 1
		}
		return 0
	}

	tmp, err := os.MkdirTemp("", "procscope-load-")
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	_, _ = fmt.Fprintln(stdout, "building the aggregator...")
	bin, err := apptest.Build(ctx, tmp)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	// One workload for every run: the same bodies for history on and off.
	prepStart := time.Now()
	w, err := prepareWorkload(cfg)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	wb, wn := w.bytes()
	_, _ = fmt.Fprintf(stdout, "prepared %d %s bodies (%.1f KiB gzip each, %.0f MiB) of %d hosts in %s\n",
		wn, cfg.workload, float64(wb)/1024/float64(max(wn, 1)), float64(wb)/(1<<20), cfg.hosts, time.Since(prepStart).Round(time.Millisecond))
	cfg.prepared = w
	if *comparePG {
		return comparePostgres(ctx, bin, tmp, extra, *rounds, *warmup, cfg, stdout, stderr)
	}
	setups := []spawnSetup{{name: "history on (default)", args: extra}}
	if *compare {
		setups = append(setups, spawnSetup{name: "history off", args: append(slices.Clone(extra), "--no-history")})
	}
	// runs[setup] collects every round of that setup.
	runs := make([][]*runResult, len(setups))
	n := 0
	for round, i := range alternating(*rounds, len(setups)) {
		su := setups[i]
		c := cfg
		// Every run starts on an empty store; hostnames differ per run too.
		c.hostPrefix = fmt.Sprintf("%s%d-", cfg.hostPrefix, n)
		_, _ = fmt.Fprintf(stdout, "\n=== %s, round %d of %d ===\n", su.name, round+1, *rounds)
		prof := ""
		if *profile != "" {
			prof = *profile
			if n > 0 || len(setups) > 1 || *rounds > 1 {
				prof = fmt.Sprintf("%s.%d", *profile, n)
			}
		}
		r, err := runSpawned(ctx, bin, filepath.Join(tmp, fmt.Sprintf("data%d", n)), su.args, prof, *warmup, c, stdout, stderr)
		if err != nil {
			_, _ = fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		runs[i] = append(runs[i], r)
		n++
	}
	code := 0
	sums := make([]*runSum, len(setups))
	for i, rs := range runs {
		sums[i] = sumRuns(rs)
		if sums[i].errors > 0 || sums[i].lost > 0 {
			code = 1
		}
	}
	if len(runs) == 2 || *rounds > 1 {
		_, _ = fmt.Fprintf(stdout, "\nall rounds together:\n")
		for i, su := range setups {
			sums[i].print(stdout, su.name)
		}
	}
	if len(runs) == 2 {
		on, off := sums[0], sums[1]
		_, _ = fmt.Fprintf(stdout, "history on/off: snapshots/s %.0f / %.0f = %.2f; aggregator push CPU %.0f / %.0f µs = %.2f\n",
			on.rate(), off.rate(), on.rate()/off.rate(), on.aggCPU, off.aggCPU, on.aggCPU/off.aggCPU)
	}
	return code
}

// runSum adds up the rounds of one set-up: rates and CPU from the totals,
// percentiles over every latency of every round.
type runSum struct {
	acked, errors, lost int
	elapsed             time.Duration
	aggCPU, selfCPU     float64 // µs per acknowledged snapshot
	lat                 []time.Duration
}

func sumRuns(rs []*runResult) *runSum {
	s := &runSum{}
	var agg, self float64
	for _, r := range rs {
		n := r.res.created + r.res.repeated
		s.acked += n
		s.errors += r.res.errors
		s.lost += r.res.lost
		s.elapsed += r.res.elapsed
		agg += r.aggPushCPU * float64(n)
		self += r.selfPushCPU * float64(n)
		s.lat = append(s.lat, r.res.lat...)
	}
	if s.acked > 0 {
		s.aggCPU, s.selfCPU = agg/float64(s.acked), self/float64(s.acked)
	}
	slices.Sort(s.lat)
	return s
}

func (s *runSum) rate() float64 { return float64(s.acked) / s.elapsed.Seconds() }

func (s *runSum) print(w io.Writer, name string) {
	pct := func(p float64) time.Duration {
		if len(s.lat) == 0 {
			return 0
		}
		return s.lat[min(len(s.lat)-1, int(p*float64(len(s.lat))))].Round(10 * time.Microsecond)
	}
	_, _ = fmt.Fprintf(w, "%s: %d acknowledged in %s, %.0f snapshots/s, p50 %s p99 %s, errors %d, lost %d, cpu µs/snapshot aggregator %.0f loadgen %.0f\n",
		name, s.acked, s.elapsed.Round(time.Millisecond), s.rate(), pct(.5), pct(.99), s.errors, s.lost, s.aggCPU, s.selfCPU)
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (f *stringsFlag) String() string     { return strings.Join(*f, " ") }
func (f *stringsFlag) Set(v string) error { *f = append(*f, v); return nil }

// alternating yields (round, set-up) for rounds rounds of n set-ups, the
// order reversed every other round, so that a change in the machine's
// other load does not always favour the same set-up.
func alternating(rounds, n int) iter.Seq2[int, int] {
	return func(yield func(int, int) bool) {
		for round := range rounds {
			for k := range n {
				i := k
				if round%2 == 1 {
					i = n - 1 - k
				}
				if !yield(round, i) {
					return
				}
			}
		}
	}
}

type spawnSetup struct {
	name string
	args []string
}

// runResult is one load run with the CPU time per acknowledged snapshot
// of the push phase alone (the read-back is not ingest).
type runResult struct {
	res                     *result
	aggPushCPU, selfPushCPU float64 // µs per acknowledged snapshot
}

// runSpawned starts the aggregator on its own storage directory, runs the
// load against it, and stops it. With prof set it records a CPU profile of
// the aggregator during the push phase (through the hidden
// --debug.pprof-address listener) into that file.
func runSpawned(ctx context.Context, bin, storage string, args []string, prof string, warmup time.Duration, cfg config, stdout, stderr io.Writer) (*runResult, error) {
	var pprofAddr string
	if prof != "" {
		// A free port for the pprof listener; the tiny window between
		// closing it here and the aggregator binding it is acceptable
		// for a profiling run.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		pprofAddr = ln.Addr().String()
		_ = ln.Close()
		args = append(slices.Clone(args), "--debug.pprof-address="+pprofAddr)
	}
	// Every simulated host is new and pushes from 127.0.0.1: the
	// aggregator's enrolment limits (60 new hosts a minute per client,
	// 10,000 hosts) would refuse most of them, unless set here.
	for _, lim := range []string{"--hosts.enroll-rate=0", "--hosts.max=0"} {
		name, _, _ := strings.Cut(lim, "=")
		if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, name+"=") }) {
			args = append(slices.Clone(args), lim)
		}
	}
	p, err := apptest.Start(bin, storage, 60*time.Second, args...)
	if err != nil {
		return nil, err
	}
	defer func() {
		if !p.Stop(30 * time.Second) {
			_, _ = fmt.Fprintf(stderr, "loadgen: the aggregator did not stop cleanly:\n%s", p.Log())
		}
	}()
	cfg.url = p.URL
	cfg.pid = p.PID()
	_, _ = fmt.Fprintf(stdout, "aggregator pid %d at %s %v\n", p.PID(), p.URL, args)
	if warmup > 0 {
		// Other hosts first, at the same rate and not counted, so that the
		// push measures a running aggregator: a new process spends its
		// first second growing its heap and faulting in memory (on this
		// VM a fresh page is dear), which a run then blames on the first
		// hosts. The measured hosts are still new to it.
		w := cfg
		w.duration = warmup
		w.hostPrefix = cfg.hostPrefix + "warmup-"
		w.timeline = false
		w.verifyContent = 0
		start := time.Now()
		wr, err := load(ctx, w, io.Discard)
		if err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
		_, _ = fmt.Fprintf(stdout, "warm-up: %d snapshots from %d other hosts in %s, not counted (p99 %s, errors %d)\n",
			wr.created+wr.repeated, cfg.hosts, time.Since(start).Round(time.Millisecond), wr.pct(.99).Round(10*time.Microsecond), wr.errors)
		if wr.errors > 0 || wr.lost > 0 {
			return nil, fmt.Errorf("warm-up: %d errors, %d lost", wr.errors, wr.lost)
		}
	}

	profDone := make(chan error, 1)
	if prof != "" {
		secs := max(int(cfg.duration.Seconds()), 1)
		go func() { profDone <- fetchProfile(ctx, "http://"+pprofAddr, secs, prof) }()
	} else {
		profDone <- nil
	}
	r, err := runOnce(ctx, cfg, stdout)
	if perr := <-profDone; perr != nil {
		_, _ = fmt.Fprintln(stderr, "loadgen: cpu profile:", perr)
	} else if prof != "" {
		_, _ = fmt.Fprintf(stdout, "aggregator cpu profile of the push written to %s (go tool pprof -top %s)\n", prof, prof)
	}
	return r, err
}

// fetchProfile saves secs seconds of the aggregator's CPU profile.
func fetchProfile(ctx context.Context, base string, secs int, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof answered %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// runOnce runs one load and prints its result and the CPU time per
// snapshot of the push phase: steadier than wall-clock rates on a shared
// machine (1e6 / aggregator µs is what one free core sustains).
func runOnce(ctx context.Context, cfg config, stdout io.Writer) (*runResult, error) {
	var aggCPU0, selfCPU0, aggPush, selfPush time.Duration
	var commits0, commits1 writerCounts
	cfg.pushStart = func() {
		aggCPU0, selfCPU0 = aggCPU(cfg.pid), testutil.SelfCPU()
		commits0 = scrapeCommits(ctx, cfg.url)
		if cfg.onPushStart != nil {
			cfg.onPushStart()
		}
	}
	cfg.pushDone = func() {
		aggPush, selfPush = aggCPU(cfg.pid)-aggCPU0, testutil.SelfCPU()-selfCPU0
		commits1 = scrapeCommits(ctx, cfg.url)
		if cfg.onPushDone != nil {
			cfg.onPushDone()
		}
	}
	res, err := load(ctx, cfg, stdout)
	if err != nil {
		return nil, err
	}
	res.print(stdout)
	r := &runResult{res: res}
	if n := res.created + res.repeated; n > 0 {
		r.aggPushCPU = float64(aggPush.Microseconds()) / float64(n)
		r.selfPushCPU = float64(selfPush.Microseconds()) / float64(n)
		if cfg.pid > 0 {
			_, _ = fmt.Fprintf(stdout, "cpu during the push: aggregator %.0f µs/snapshot, loadgen %.0f µs/snapshot, together %.0f\n",
				r.aggPushCPU, r.selfPushCPU, r.aggPushCPU+r.selfPushCPU)
		} else {
			_, _ = fmt.Fprintf(stdout, "cpu during the push: loadgen %.0f µs/snapshot\n", r.selfPushCPU)
		}
	}
	if c := commits1.commits - commits0.commits; commits0.ok && commits1.ok && c > 0 {
		_, _ = fmt.Fprintf(stdout, "store writer during the push: %.0f commits, %.1f writes per commit\n",
			c, (commits1.writes-commits0.writes)/c)
	}
	if n := res.created + res.repeated; commits0.ok && commits1.ok && n > 0 && commits1.samples > 0 {
		_, _ = fmt.Fprintf(stdout, "history during the push: %.1f samples written per snapshot\n",
			(commits1.samples-commits0.samples)/float64(n))
	}
	return r, nil
}

// writerCounts are the aggregator's group-commit counters and the history
// samples it wrote (0 with history off).
type writerCounts struct {
	ok                       bool
	commits, writes, samples float64
}

// scrapeCommits reads the store writer's counters from the aggregator's
// /metrics (ok is false when it cannot).
func scrapeCommits(ctx context.Context, base string) writerCounts {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return writerCounts{}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return writerCounts{}
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return writerCounts{}
	}
	var wc writerCounts
	found := 0
	for line := range strings.Lines(string(b)) {
		name, val, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "procscope_aggregator_store_commits_total":
			wc.commits = v
			found++
		case "procscope_aggregator_store_committed_writes_total":
			wc.writes = v
			found++
		case `procscope_aggregator_history_samples_total{result="written"}`:
			wc.samples = v
		}
	}
	wc.ok = found == 2
	return wc
}

// aggCPU is the aggregator's CPU time so far, 0 when it is not ours to
// read (no --aggregator.pid, or it has gone): the report then says 0.
func aggCPU(pid int) time.Duration {
	d, _ := testutil.ProcCPU(pid)
	return d
}
