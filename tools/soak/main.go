// Command soak runs the real aggregator for a long time under a steady
// load, with retention shortened so that pruning runs, and records how
// its memory, goroutines, open files and storage evolve: the figures of
// issue 16 ("every curve flat after warm-up").
//
//	go run ./tools/soak                                  # 1h at 500/s from 200 hosts, docs/soak.{csv,png}
//	go run ./tools/soak -duration 20m -warmup 5m -csv /tmp/s.csv -png /tmp/s.png
//	go run ./tools/soak -replot -csv docs/soak.csv -png docs/soak.png  # redraw from a CSV
//
// It builds the aggregator, starts it on a fresh storage directory and a
// free loopback port, pushes the load (the evolving process tables of
// tools/loadgen/gen), and every -interval samples the aggregator's RSS
// (/proc/PID/status), Go heap in use and goroutines (its /metrics), open
// fds (/proc/PID/fd), and the disk use of its database and of its history
// store, one CSV row each (flushed as it goes). At the end it stops the
// aggregator, draws the chart and prints the verdict: heap and RSS at the
// end against their value after -warmup, the goroutine and fd range after
// it, the largest database. It exits 1 when a curve was not flat.
//
// The standard flag package in a FlagSet inside run (no globals), as
// tools/loadgen, so the documented single-dash form works.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/procscope/procscope/internal/apptest"
	"github.com/procscope/procscope/internal/testutil"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type config struct {
	duration, interval, warmup, window time.Duration
	rate                               float64
	hosts, procs, bodies               int
	seed                               uint64
	retentionRaw, retention            time.Duration
	csvPath, pngPath                   string
	bin, storage                       string
	extra                              []string
}

type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, " ") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.DurationVar(&cfg.duration, "duration", time.Hour, "how long to push")
	fs.DurationVar(&cfg.interval, "interval", 10*time.Second, "time between two samples")
	fs.DurationVar(&cfg.warmup, "warmup", 10*time.Minute, "the verdict compares the end with the first sample after this")
	fs.DurationVar(&cfg.window, "window", 5*time.Minute, "the verdict compares means over this long, after -warmup and at the end: one sample catches one moment of a GC cycle (the heap in use swings by half between them), so a window needs tens of samples to resolve 10 %")
	fs.Float64Var(&cfg.rate, "rate", 500, "snapshots per second, all hosts together")
	fs.IntVar(&cfg.hosts, "hosts", 200, "simulated hosts")
	fs.IntVar(&cfg.procs, "procs", 300, "processes per snapshot")
	fs.IntVar(&cfg.bodies, "bodies", 16, "steps of its evolving process table each host plays forwards and backwards")
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed of the generated process tables")
	fs.DurationVar(&cfg.retentionRaw, "retention.raw", 5*time.Minute, "the aggregator's --storage.retention.raw")
	fs.DurationVar(&cfg.retention, "retention", 15*time.Minute, "the aggregator's --storage.retention")
	fs.StringVar(&cfg.csvPath, "csv", "docs/soak.csv", "samples go to this CSV")
	fs.StringVar(&cfg.pngPath, "png", "docs/soak.png", "the chart goes to this PNG (empty: none)")
	fs.StringVar(&cfg.bin, "bin", "", "aggregator binary to run (default: build ./aggregator)")
	fs.StringVar(&cfg.storage, "storage", "", "storage directory, kept afterwards (default: a temp dir, removed)")
	replot := fs.Bool("replot", false, "no run: draw -png and print the verdict from an existing -csv")
	var extra stringsFlag
	fs.Var(&extra, "aggregator-flag", "one more flag for the aggregator (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.extra = extra
	if fs.NArg() > 0 {
		_, _ = fmt.Fprintf(stderr, "soak: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if cfg.duration <= 0 || cfg.interval <= 0 || cfg.warmup < 0 || cfg.window <= 0 || cfg.rate <= 0 || cfg.hosts < 1 || cfg.procs < 1 || cfg.bodies < 1 ||
		cfg.retentionRaw <= 0 || cfg.retention <= 0 {
		_, _ = fmt.Fprintln(stderr, "soak: -duration, -interval, -rate, -hosts, -procs, -bodies and the retentions must be positive")
		return 2
	}
	if *replot {
		return replotCSV(cfg, stdout, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	samples, err := soak(ctx, cfg, stdout)
	if err != nil && !errors.Is(err, context.Canceled) {
		_, _ = fmt.Fprintln(stderr, "soak:", err)
		return 1
	}
	return report(cfg, samples, stdout, stderr)
}

func replotCSV(cfg config, stdout, stderr io.Writer) int {
	f, err := os.Open(cfg.csvPath)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "soak:", err)
		return 1
	}
	samples, err := readCSV(f)
	_ = f.Close()
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "soak: %s: %v\n", cfg.csvPath, err)
		return 1
	}
	return report(cfg, samples, stdout, stderr)
}

// report draws the chart and prints the verdict; 1 when not flat.
func report(cfg config, samples []sample, stdout, stderr io.Writer) int {
	if cfg.pngPath != "" && len(samples) >= 2 {
		title := fmt.Sprintf("procscope-aggregator soak: %.0f snapshots/s from %d hosts, retention %s (raw %s)",
			cfg.rate, cfg.hosts, cfg.retention, cfg.retentionRaw)
		if err := writeChartFile(cfg.pngPath, samples, title); err != nil {
			_, _ = fmt.Fprintln(stderr, "soak:", err)
			return 1
		}
		_, _ = fmt.Fprintln(stdout, "chart:", cfg.pngPath)
	}
	s, err := summarize(samples, cfg.warmup, cfg.window)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "soak:", err)
		return 1
	}
	s.print(stdout)
	if why := s.flat(); len(why) > 0 {
		_, _ = fmt.Fprintln(stdout, "NOT FLAT: "+strings.Join(why, "; "))
		return 1
	}
	_, _ = fmt.Fprintln(stdout, "flat: RSS, heap in use, goroutines and open fds within 10% from warm-up to the end, no failed push")
	return 0
}

func writeChartFile(path string, samples []sample, title string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeChart(f, samples, title, 1200, 1400); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// soak runs the aggregator under the load for cfg.duration and returns
// every sample taken (also when ctx ends early: what was measured).
func soak(ctx context.Context, cfg config, out io.Writer) ([]sample, error) {
	tmp, err := os.MkdirTemp("", "procscope-soak-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	bin := cfg.bin
	if bin == "" {
		_, _ = fmt.Fprintln(out, "building the aggregator...")
		if bin, err = apptest.Build(ctx, tmp); err != nil {
			return nil, err
		}
	}
	storage := cfg.storage
	if storage == "" {
		storage = filepath.Join(tmp, "data")
	}
	if err := os.MkdirAll(storage, 0o750); err != nil {
		return nil, err
	}
	period := time.Duration(float64(time.Second) * float64(cfg.hosts) / cfg.rate)
	hosts, err := prepareHosts(cfg.hosts, cfg.procs, cfg.bodies, cfg.seed, fmt.Sprintf("soak-%d-", time.Now().Unix()), period)
	if err != nil {
		return nil, err
	}
	runtime.GC()
	// The pushing needs a fraction of a core; one P keeps the generator
	// from spreading over the cores the aggregator runs on.
	runtime.GOMAXPROCS(1)

	csvFile, err := os.Create(cfg.csvPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = csvFile.Close() }()
	cw, err := newCSVWriter(csvFile)
	if err != nil {
		return nil, err
	}

	// 200 hosts enrol in the first second: no per-client enrolment limit
	// (all come from 127.0.0.1) nor host cap, as tools/loadgen.
	args := append([]string{"--storage.retention.raw=" + cfg.retentionRaw.String(), "--storage.retention=" + cfg.retention.String(),
		"--hosts.enroll-rate=0", "--hosts.max=0"}, cfg.extra...)
	p, err := apptest.Start(bin, storage, time.Minute, args...)
	if err != nil {
		return nil, err
	}
	defer func() {
		if !p.Stop(time.Minute) {
			_, _ = fmt.Fprintf(out, "the aggregator did not stop cleanly; its log ends:\n%s\n", tail(p.Log(), 2000))
		}
	}()
	_, _ = fmt.Fprintf(out, "aggregator pid %d at %s, storage %s; pushing %.0f/s from %d hosts for %s, a sample every %s to %s\n",
		p.PID(), p.URL, storage, cfg.rate, cfg.hosts, cfg.duration, cfg.interval, cfg.csvPath)

	var c counts
	pushCtx, stopPush := context.WithTimeout(ctx, cfg.duration)
	defer stopPush()
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		pushAll(pushCtx, p.URL+"/api/v1/ingest", hosts, cfg.rate, &c)
	}()
	sm := &sampler{pid: p.PID(), url: p.URL, storage: storage, client: &http.Client{Timeout: 10 * time.Second},
		cpu: testutil.ProcCPU}
	var samples []sample
	start := time.Now()
	take := func() error {
		s, err := sm.take(ctx, time.Since(start), c.ok.Load(), c.failed.Load())
		if err != nil {
			return err
		}
		samples = append(samples, s)
		if err := cw.write(s); err != nil {
			return err
		}
		_, _ = fmt.Fprintf(out, "%6s rss %6.1f MiB heap %6.1f MiB goroutines %4d fds %4d db %7.1f MiB history %7.1f MiB stored %7d pruned %8d pushed %8d failed %d\n",
			s.Elapsed.Round(time.Second), float64(s.RSSBytes)/mib, float64(s.HeapInuse)/mib, s.Goroutines, s.FDs,
			float64(s.DBBytes)/mib, float64(s.HistoryBytes)/mib, s.Snapshots, s.Pruned, s.Pushed, s.Failed)
		return nil
	}
	if err := take(); err != nil {
		return samples, err
	}
	tick := time.NewTicker(cfg.interval)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-tick.C:
		case <-pushed:
			// The load is over: a sample now would show connections
			// closing, not the steady state.
			done = true
			continue
		case <-p.Done():
			return samples, fmt.Errorf("the aggregator exited during the run; its log ends:\n%s", tail(p.Log(), 4000))
		}
		if ctx.Err() != nil {
			<-pushed
			return samples, ctx.Err()
		}
		if pushCtx.Err() != nil {
			// The tick came as the load ended: its sample would show
			// the connections closing, not the steady state.
			<-pushed
			break
		}
		if err := take(); err != nil {
			stopPush()
			<-pushed
			return samples, err
		}
	}
	if n := c.failed.Load(); n > 0 {
		c.mu.Lock()
		_, _ = fmt.Fprintf(out, "%d pushes failed, the first: %s\n", n, c.firstErr)
		c.mu.Unlock()
	}
	return samples, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
