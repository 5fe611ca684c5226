package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/procscope/procscope/internal/apptest"
	"github.com/procscope/procscope/internal/testutil"
)

// comparePostgres is -compare-postgres: the same workload against SQLite
// with one aggregator, PostgreSQL with one, and PostgreSQL with two (the
// hosts split between them, as a load balancer would), each on a fresh
// store, -rounds times alternating the order. History is off in all of
// them: the comparison is of the snapshot store. The PostgreSQL cluster
// is this run's own (fsync on, loopback, a free port), and its CPU is its
// process group's (postmaster and backends) during the push.
func comparePostgres(ctx context.Context, bin, tmp string, extra []string, rounds int, warmup time.Duration, cfg config, stdout, stderr io.Writer) int {
	_, _ = fmt.Fprintf(stdout, "starting a PostgreSQL cluster of its own (fsync on); load average %s\n", loadAvg())
	pg, err := testutil.StartPostgres(ctx, testutil.PostgresOptions{Durable: true})
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	defer pg.Stop()
	args := append(slices.Clone(extra), "--no-history")
	type setup struct {
		name string
		pg   bool
		aggs int
	}
	setups := []setup{{"sqlite, 1 aggregator", false, 1}, {"postgres, 1 aggregator", true, 1}, {"postgres, 2 aggregators", true, 2}}
	sums := make([]*pgSum, len(setups))
	for i := range sums {
		sums[i] = &pgSum{}
	}
	n := 0
	for round, i := range alternating(rounds, len(setups)) {
		su := setups[i]
		c := cfg
		c.hostPrefix = fmt.Sprintf("%s%d-", cfg.hostPrefix, n)
		_, _ = fmt.Fprintf(stdout, "\n=== %s, round %d of %d ===\n", su.name, round+1, rounds)
		var err error
		if su.pg {
			err = runPostgresSetup(ctx, bin, filepath.Join(tmp, fmt.Sprintf("data%d", n)), args, pg, su.aggs, warmup, c, sums[i], stdout, stderr)
		} else {
			var r *runResult
			r, err = runSpawned(ctx, bin, filepath.Join(tmp, fmt.Sprintf("data%d", n)), args, "", warmup, c, stdout, stderr)
			if err == nil {
				sums[i].add(0, r)
				sums[i].elapsed += r.res.elapsed
			}
		}
		if err != nil {
			_, _ = fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		n++
	}
	_, _ = fmt.Fprintf(stdout, "\nall rounds together (%d hosts, %.0f snapshots/s offered, %s each, --no-history, load average %s):\n",
		cfg.hosts, cfg.rate, cfg.duration, loadAvg())
	names := make([]string, len(setups))
	for i, su := range setups {
		names[i] = su.name
	}
	printPGTable(stdout, names, sums)
	code := 0
	for i := range setups {
		if sums[i].errors > 0 || sums[i].lost > 0 {
			code = 1
		}
	}
	if sums[0].aggCPU() > 0 {
		_, _ = fmt.Fprintf(stdout, "aggregator CPU per snapshot, postgres/sqlite: 1 aggregator %.2f, 2 aggregators %.2f\n",
			sums[1].aggCPU()/sums[0].aggCPU(), sums[2].aggCPU()/sums[0].aggCPU())
	}
	return code
}

// pgSum adds up the rounds of one set-up.
type pgSum struct {
	acked, errors, lost int
	elapsed             time.Duration
	aggUS, pgUS         float64 // µs, all rounds
	perAggUS            []float64
	perAggN             []int
	bytes, rows         int64 // PostgreSQL relation sizes and snapshot rows
	lat                 []time.Duration
}

// add counts aggregator i's run (the caller adds the elapsed time: two
// aggregators push at once).
func (s *pgSum) add(i int, r *runResult) {
	n := r.res.created + r.res.repeated
	s.acked += n
	s.errors += r.res.errors
	s.lost += r.res.lost
	s.aggUS += r.aggPushCPU * float64(n)
	for len(s.perAggUS) <= i {
		s.perAggUS, s.perAggN = append(s.perAggUS, 0), append(s.perAggN, 0)
	}
	s.perAggUS[i] += r.aggPushCPU * float64(n)
	s.perAggN[i] += n
	s.lat = append(s.lat, r.res.lat...)
}

func (s *pgSum) aggCPU() float64 {
	if s.acked == 0 {
		return 0
	}
	return s.aggUS / float64(s.acked)
}

// printPGTable prints one row per set-up: the figures issue 14 asks for.
func printPGTable(w io.Writer, names []string, sums []*pgSum) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "set-up\tacked\tsnapshots/s\tp50\tp99\terrors\tlost\taggregator µs/snapshot (each)\tPostgreSQL µs/snapshot\tbytes/snapshot in PostgreSQL\t")
	for i, s := range sums {
		slices.Sort(s.lat)
		rate := 0.0
		if s.elapsed > 0 {
			rate = float64(s.acked) / s.elapsed.Seconds()
		}
		agg := fmt.Sprintf("%.0f", s.aggCPU())
		if len(s.perAggN) > 1 {
			var each []string
			for k, n := range s.perAggN {
				each = append(each, fmt.Sprintf("%.0f", s.perAggUS[k]/float64(max(n, 1))))
			}
			agg += " (" + strings.Join(each, ", ") + ")"
		}
		pgCPU, bytes := "-", "-"
		if s.rows > 0 {
			pgCPU = fmt.Sprintf("%.0f", s.pgUS/float64(max(s.acked, 1)))
			bytes = fmt.Sprintf("%.0f", float64(s.bytes)/float64(s.rows))
		}
		_, _ = fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t\n", names[i], s.acked, rate,
			quantile(s.lat, .5).Round(100*time.Microsecond), quantile(s.lat, .99).Round(100*time.Microsecond),
			s.errors, s.lost, agg, pgCPU, bytes)
	}
	_ = tw.Flush()
}

// loadAvg is /proc/loadavg's three figures ("?" where there is none):
// the other load of a shared machine, printed beside the figures.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// runPostgresSetup runs one round on a fresh database with aggs
// aggregators; with two, each gets half the hosts and half the rate, at
// the same time.
func runPostgresSetup(ctx context.Context, bin, storage string, args []string, pg *testutil.Postgres, aggs int,
	warmup time.Duration, cfg config, sum *pgSum, stdout, stderr io.Writer) error {
	url, err := pg.NewDatabase(ctx)
	if err != nil {
		return err
	}
	// The password goes by the environment, as the aggregator demands.
	if err := os.Setenv("PROCSCOPE_STORAGE_POSTGRES_URL", url); err != nil {
		return err
	}
	defer func() { _ = os.Unsetenv("PROCSCOPE_STORAGE_POSTGRES_URL") }()
	a := withEnrollLimits(args)
	procs := make([]*apptest.Process, aggs)
	for i := range procs {
		p, err := apptest.Start(bin, fmt.Sprintf("%s-%d", storage, i), 60*time.Second, a...)
		if err != nil {
			return err
		}
		defer func() {
			if !p.Stop(30 * time.Second) {
				_, _ = fmt.Fprintf(stderr, "loadgen: an aggregator did not stop cleanly:\n%s", p.Log())
			}
		}()
		procs[i] = p
		_, _ = fmt.Fprintf(stdout, "aggregator pid %d at %s on PostgreSQL\n", p.PID(), p.URL)
	}
	// Split the hosts (and so the rate) between the aggregators.
	w := cfg.prepared
	per := (len(w.hosts) + aggs - 1) / aggs
	cfgs := make([]config, aggs)
	for i := range cfgs {
		c := cfg
		sub := &workload{hosts: w.hosts[i*per : min(len(w.hosts), (i+1)*per)]}
		c.prepared = sub
		c.hosts = len(sub.hosts)
		c.workers = c.hosts
		c.rate = cfg.rate * float64(c.hosts) / float64(len(w.hosts))
		c.url, c.pid = procs[i].URL, procs[i].PID()
		c.hostPrefix = fmt.Sprintf("%sa%d-", cfg.hostPrefix, i)
		if aggs > 1 {
			c.pushProcs = 0 // two pushes at once must not fight over GOMAXPROCS
			c.timeline = false
		}
		cfgs[i] = c
	}
	if warmup > 0 {
		var wg sync.WaitGroup
		for _, c := range cfgs {
			c.duration, c.verifyContent, c.timeline = warmup, 0, false
			c.hostPrefix += "warmup-"
			wg.Go(func() { _, _ = load(ctx, c, io.Discard) })
		}
		wg.Wait()
	}
	// PostgreSQL's CPU from the first push's start to the last one's end.
	var mu sync.Mutex
	var pg0, pg1 time.Duration
	var kinds0, kinds1 map[string]time.Duration
	started, finished := 0, 0
	for i := range cfgs {
		cfgs[i].onPushStart = func() {
			mu.Lock()
			defer mu.Unlock()
			if started++; started == 1 {
				pg0, _ = pg.GroupCPU()
				kinds0, _ = pg.GroupCPUByKind()
			}
		}
		cfgs[i].onPushDone = func() {
			mu.Lock()
			defer mu.Unlock()
			if finished++; finished == aggs {
				pg1, _ = pg.GroupCPU()
				kinds1, _ = pg.GroupCPUByKind()
			}
		}
	}
	outs := make([]bytes.Buffer, aggs)
	results := make([]*runResult, aggs)
	errs := make([]error, aggs)
	var wg sync.WaitGroup
	for i := range cfgs {
		wg.Go(func() { results[i], errs[i] = runOnce(ctx, cfgs[i], &outs[i]) })
	}
	wg.Wait()
	for i := range outs {
		if aggs > 1 {
			_, _ = fmt.Fprintf(stdout, "--- aggregator %d ---\n", i+1)
		}
		_, _ = stdout.Write(outs[i].Bytes())
		if errs[i] != nil {
			return errs[i]
		}
	}
	pgCPU := pg1 - pg0
	var elapsed time.Duration
	for i, r := range results {
		sum.add(i, r)
		elapsed = max(elapsed, r.res.elapsed)
	}
	sum.elapsed += elapsed // concurrent runs: the longest one's time
	sum.pgUS += float64(pgCPU.Microseconds())
	n := 0
	for _, r := range results {
		n += r.res.created + r.res.repeated
	}
	_, _ = fmt.Fprintf(stdout, "PostgreSQL CPU during the push: %.0f µs/snapshot (%s)\n",
		float64(pgCPU.Microseconds())/float64(max(n, 1)), kindsLine(kinds0, kinds1, n))

	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close(ctx) }()
	var size, rows int64
	if err := c.QueryRow(ctx, `SELECT pg_total_relation_size('snapshots') + pg_total_relation_size('hosts'),
		(SELECT count(*) FROM snapshots)`).Scan(&size, &rows); err != nil {
		return err
	}
	sum.bytes += size
	sum.rows += rows
	_, _ = fmt.Fprintf(stdout, "PostgreSQL: %d snapshots in %.1f MiB (tables, indexes, TOAST): %.0f bytes a snapshot\n",
		rows, float64(size)/(1<<20), float64(size)/float64(max(rows, 1)))
	return nil
}

// withEnrollLimits lifts the enrolment limits for the simulated hosts, as
// runSpawned does.
func withEnrollLimits(args []string) []string {
	return append(slices.Clone(args), "--hosts.enroll-rate=0", "--hosts.max=0")
}

// kindsLine is PostgreSQL's CPU per snapshot by kind of process between
// two GroupCPUByKind readings, e.g. "backends 300, autovacuum 20, ...".
func kindsLine(k0, k1 map[string]time.Duration, n int) string {
	var parts []string
	for _, k := range []string{"backends", "autovacuum", "wal writer", "postmaster"} {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, float64((k1[k]-k0[k]).Microseconds())/float64(max(n, 1))))
	}
	return strings.Join(parts, ", ")
}
