package main

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/tools/loadgen/gen"
)

type config struct {
	url           string
	hosts         int
	rate          float64
	duration      time.Duration
	procs         int
	variants      int
	workers       int
	cmdline       bool
	workload      string // "evolve" (default) or "rotate"
	seed          uint64
	keyPrefix     string
	hostPrefix    string
	verifyContent int
	timeline      bool // print latency second by second
	// pushProcs, when positive, is GOMAXPROCS during the push phase alone
	// (see load).
	pushProcs int
	pid       int // the spawned aggregator, for its CPU time
	// pushStart and pushDone, when set, are called when the push phase
	// starts (after the bodies are prepared) and ends (before the
	// read-back), so that CPU time is counted for the push alone.
	pushStart, pushDone func()
	// onPushStart and onPushDone, when set, are called with them by
	// runOnce (which sets pushStart and pushDone itself).
	onPushStart, onPushDone func()
	// prepared, when set, holds the bodies already (made once for several
	// runs of the same workload); otherwise load prepares them.
	prepared *workload
	// failover: more URLs and the acks file (failover.go).
	failover failoverFlags
}

// workload is every body the push sends, pre-compressed, and what is
// needed to verify them. It does not depend on hostnames (each run uses
// fresh ones), so several runs can share it.
type workload struct {
	hosts []hostBodies
}

// hostBodies is one simulated machine's bodies. Push k of the host sends
// tails[k % len(tails)] after a head member with its hostname and
// captured_at: the evolve workload has one tail per push, rotate one per
// variant.
type hostBodies struct {
	tails  [][]byte
	counts []int                      // processes in each tail
	check  map[int][]snapshot.Process // tail index -> processes, for those compared in full
}

// host is one simulated machine of a run.
type host struct {
	name     string
	key      string
	hostJSON []byte
	*hostBodies
}

type ack struct {
	host, k int // k: the host's k-th push
	at      string
	id      int64
}

// inFull says whether push k of host hi is compared process by process:
// one in every, spread over hosts so that each host is checked.
func inFull(every, hi, k int) bool {
	return every > 0 && (hi+k)%every == 0
}

type result struct {
	sent, created, repeated, errors int
	codes                           map[int]int
	firstErr                        string
	elapsed                         time.Duration
	lat                             []time.Duration
	sends                           []send // every acknowledged request, when cfg.timeline
	lateStarts                      int
	wireBytes                       int64
	verified, contentChecked, lost  int
	lostSample                      []string
	acks                            []ack // what was acknowledged, in order
}

// quantile is the p-quantile of sorted (0 when empty).
func quantile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// pct is the p-quantile of the acknowledged requests' latency.
func (r *result) pct(p float64) time.Duration { return quantile(r.lat, p) }

func (r *result) print(w io.Writer) {
	pct := r.pct
	_, _ = fmt.Fprintf(w, "sent %d snapshots in %s: %.0f snapshots/s acknowledged (%d created, %d repeated)\n",
		r.sent, r.elapsed.Round(time.Millisecond), float64(r.created+r.repeated)/r.elapsed.Seconds(), r.created, r.repeated)
	_, _ = fmt.Fprintf(w, "latency p50 %s p90 %s p99 %s max %s; %d requests started >10ms behind schedule\n",
		pct(.50).Round(10*time.Microsecond), pct(.90).Round(10*time.Microsecond), pct(.99).Round(10*time.Microsecond),
		pct(1).Round(10*time.Microsecond), r.lateStarts)
	if len(r.sends) > 0 {
		printTimeline(w, r.sends)
	}
	_, _ = fmt.Fprintf(w, "wire %.1f MiB (%.1f KiB a snapshot)\n", float64(r.wireBytes)/(1<<20), float64(r.wireBytes)/1024/float64(max(r.sent, 1)))
	_, _ = fmt.Fprintf(w, "errors %d %v\n", r.errors, r.codes)
	if r.firstErr != "" {
		_, _ = fmt.Fprintf(w, "first error: %s\n", r.firstErr)
	}
	_, _ = fmt.Fprintf(w, "read back %d acknowledged snapshots (%d compared process by process): lost=%d\n", r.verified, r.contentChecked, r.lost)
	for _, s := range r.lostSample {
		_, _ = fmt.Fprintf(w, "  %s\n", s)
	}
}

// printTimeline prints the latency of the requests sent in each second of
// the push: a tail made by a few bad seconds (a stall) looks different from
// one spread evenly (too little CPU).
func printTimeline(w io.Writer, sends []send) {
	bySecond := map[int][]time.Duration{}
	last := 0
	for _, s := range sends {
		sec := int(s.at / time.Second)
		bySecond[sec] = append(bySecond[sec], s.lat)
		last = max(last, sec)
	}
	_, _ = fmt.Fprintln(w, "second  requests  p50  p99  max  over-50ms")
	for sec := 0; sec <= last; sec++ {
		l := bySecond[sec]
		if len(l) == 0 {
			continue
		}
		slices.Sort(l)
		q := func(p float64) time.Duration { return quantile(l, p).Round(100 * time.Microsecond) }
		over := len(l) - sort.Search(len(l), func(i int) bool { return l[i] > 50*time.Millisecond })
		_, _ = fmt.Fprintf(w, "%6d  %8d  %s  %s  %s  %d\n", sec, len(l), q(.5), q(.99), q(1), over)
	}
	// The first second is when every host sends its first snapshot (a
	// keyframe, new history series): how much of the tail is that start?
	var later []time.Duration
	for sec := 1; sec <= last; sec++ {
		later = append(later, bySecond[sec]...)
	}
	if len(later) > 0 {
		slices.Sort(later)
		q := func(p float64) time.Duration { return quantile(later, p).Round(10 * time.Microsecond) }
		_, _ = fmt.Fprintf(w, "after the first second: %d requests, p50 %s p99 %s max %s\n", len(later), q(.5), q(.99), q(1))
	}
}

// pushesPerHost is how many pushes the busiest host makes in one run.
func pushesPerHost(cfg config) int {
	total := int(cfg.rate * cfg.duration.Seconds())
	return (total + cfg.hosts - 1) / cfg.hosts
}

// pushPeriod is the time between two pushes of one host (and between its
// captured_at values).
func pushPeriod(cfg config) time.Duration {
	period := time.Duration(float64(time.Second) * float64(cfg.hosts) / cfg.rate)
	return max(period.Round(time.Millisecond), time.Millisecond)
}

// prepareWorkload makes every body of a run before it starts, so that the
// push costs the generator almost no CPU. evolve: each host's process
// table evolves push by push (gen.Host), one body a push, compressed at
// gzip.BestSpeed as the exporter does. rotate: the old worst case, each
// host cycling through cfg.variants unrelated trees, compressed at the
// default level. Hosts are prepared in parallel; the result is the same
// for the same seed.
func prepareWorkload(cfg config) (*workload, error) {
	w := &workload{hosts: make([]hostBodies, cfg.hosts)}
	steps := pushesPerHost(cfg)
	period := pushPeriod(cfg)
	one := func(i int) error {
		hb := &w.hosts[i]
		hb.check = map[int][]snapshot.Process{}
		seedName := strconv.Itoa(i)
		switch cfg.workload {
		case "rotate":
			for v := range cfg.variants {
				procs := gen.Processes(cfg.procs, gen.Seed(seedName, v)+cfg.seed, cfg.cmdline)
				tail, err := gen.CompressTail(gen.SystemInfo, procs, gzip.DefaultCompression)
				if err != nil {
					return err
				}
				hb.tails = append(hb.tails, tail)
				hb.counts = append(hb.counts, len(procs))
				hb.check[v] = procs // few variants: keep them all
			}
		default:
			gh := gen.NewHost(cfg.procs, gen.Seed(seedName, 0)+cfg.seed, cfg.cmdline, period)
			for k := range steps {
				if k > 0 {
					gh.Step()
				}
				procs := gh.Processes()
				tail, err := gen.CompressTail(gh.SystemInfo(), procs, gzip.BestSpeed)
				if err != nil {
					return err
				}
				hb.tails = append(hb.tails, tail)
				hb.counts = append(hb.counts, len(procs))
				if inFull(cfg.verifyContent, i, k) {
					hb.check[k] = slices.Clone(procs) // Step changes them in place
				}
			}
		}
		return nil
	}
	next := make(chan int)
	errs := make(chan error, cfg.hosts)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := one(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range cfg.hosts {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return w, nil
}

// bytes returns the size of all tails, and their number.
func (w *workload) bytes() (n int64, count int) {
	for _, h := range w.hosts {
		for _, t := range h.tails {
			n += int64(len(t))
			count++
		}
	}
	return n, count
}

// hostsOf names the workload's hosts for one run.
func hostsOf(cfg config, w *workload) []*host {
	hosts := make([]*host, len(w.hosts))
	for i := range hosts {
		name := cfg.hostPrefix + strconv.Itoa(i)
		hosts[i] = &host{name: name, key: cfg.keyPrefix + name, hostJSON: gen.QuoteHostname(name), hostBodies: &w.hosts[i]}
	}
	return hosts
}

func load(ctx context.Context, cfg config, out io.Writer) (*result, error) {
	w := cfg.prepared
	if w == nil {
		prepStart := time.Now()
		var err error
		if w, err = prepareWorkload(cfg); err != nil {
			return nil, err
		}
		n, count := w.bytes()
		_, _ = fmt.Fprintf(out, "prepared %d %s bodies (%.1f KiB gzip each) of %d hosts in %s\n",
			count, cfg.workload, float64(n)/1024/float64(max(count, 1)), cfg.hosts, time.Since(prepStart).Round(time.Millisecond))
	}
	if len(w.hosts) != cfg.hosts {
		return nil, fmt.Errorf("prepared workload has %d hosts, not %d", len(w.hosts), cfg.hosts)
	}
	hosts := hostsOf(cfg, w)
	const timeout = 30 * time.Second
	newPoster, err := newPosters(cfg, timeout)
	if err != nil {
		return nil, err
	}
	conns := make([]poster, len(hosts))
	for i, h := range hosts {
		if conns[i], err = newPoster(h.key); err != nil {
			return nil, err
		}
	}
	_, _ = fmt.Fprintf(out, "pushing %.0f/s from %d hosts for %s to %s\n", cfg.rate, cfg.hosts, cfg.duration, cfg.url)

	// The read-back uses net/http (a few requests each, not the hot path).
	client := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			MaxIdleConns:        cfg.workers * 2,
			MaxIdleConnsPerHost: cfg.workers * 2,
			DisableCompression:  true,
		},
	}
	total := int(cfg.rate * cfg.duration.Seconds())
	// Each host pushes every hosts/rate seconds; its captured_at values
	// are that far apart, starting now (so they are unique per run).
	period := pushPeriod(cfg)
	base := time.Now().UTC().Truncate(time.Second)

	// Open loop: push k of host hi (the seq-th of the run, seq = k*hosts +
	// hi) is due at start + seq/rate, whatever happened before. Each host
	// is one goroutine with its own connection, as a real exporter: it
	// waits for the due time on one reused timer, so a host never has two
	// pushes in flight, and a push that cannot start on time (the previous
	// one still waiting for its answer, or no -concurrency slot free) goes
	// at once and is counted as late. Latency runs from the actual send
	// (as it always did here), not from the due time. Each host keeps its
	// own counts, merged after the push: no lock shared per request.
	var sem chan struct{} // -concurrency below -hosts caps requests in flight
	if cfg.workers < cfg.hosts {
		sem = make(chan struct{}, cfg.workers)
	}
	stats := make([]hostStats, len(hosts))
	var wg sync.WaitGroup
	// Preparing left hundreds of MB of garbage and a big live heap: collect
	// it now, not in the middle of the push, where the generator's GC took
	// CPU from the aggregator at a random moment (often the first second).
	// The push itself allocates little, so no cycle should start in it.
	// FreeOSMemory also hands the freed pages back at once, instead of
	// the background scavenger doing it during the push.
	debug.FreeOSMemory()
	if cfg.pushStart != nil {
		cfg.pushStart()
	}
	restoreProcs := func() {}
	if cfg.pushProcs > 0 {
		// The push needs a tenth of a core; with more Ps the runtime
		// wakes (and spins) a second thread for nearly every goroutine
		// made ready by a timer or an answer, CPU the generator would then
		// charge to every push (docs/performance.md, "Choices the figures
		// made"). Prepare and read-back keep every core.
		prev := runtime.GOMAXPROCS(cfg.pushProcs)
		restoreProcs = func() { runtime.GOMAXPROCS(prev) }
	}
	start := time.Now()
	for hi := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conns[hi].close()
			push(ctx, cfg, hosts[hi], hi, conns[hi], sem, start, base, period, total, &stats[hi])
		}()
	}
	wg.Wait()
	res := &result{codes: map[int]int{}}
	res.elapsed = time.Since(start)
	restoreProcs()
	if cfg.pushDone != nil {
		cfg.pushDone()
	}
	acks, lat := mergeStats(stats, res)
	slices.Sort(lat)
	res.lat = lat
	printFailover(out, cfg, conns)
	if err := writeAcks(cfg.failover.acksFile, hosts, acks); err != nil {
		return res, err
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	_, _ = fmt.Fprintf(out, "push done in %s, reading back %d acknowledged snapshots...\n", res.elapsed.Round(time.Millisecond), len(acks))
	res.acks = acks
	verify(ctx, cfg, client, hosts, acks, res)
	return res, nil
}

// snapshotID reads the id out of an ingest answer; the aggregator writes
// exactly {"snapshot_id":<n>} (plus a newline), and anything else falls
// back to encoding/json, so a differently spelled but valid answer still
// counts. 0 when there is no id.
func snapshotID(b []byte) int64 {
	const pre = `{"snapshot_id":`
	t := bytes.TrimSpace(b)
	if rest, ok := bytes.CutPrefix(t, []byte(pre)); ok {
		if num, ok := bytes.CutSuffix(rest, []byte("}")); ok {
			if n, err := strconv.ParseInt(string(num), 10, 64); err == nil {
				return n
			}
		}
	}
	var r struct {
		ID int64 `json:"snapshot_id"`
	}
	if json.Unmarshal(b, &r) != nil {
		return 0
	}
	return r.ID
}

// verify reads every acknowledged snapshot back: its metadata always, its
// whole process list for every verifyContent-th one. Ids must be unique
// (never reused) unless the answer was a repeat of the same snapshot.
func verify(ctx context.Context, cfg config, client *http.Client, hosts []*host, acks []ack, res *result) {
	var mu sync.Mutex
	lost := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		res.lost++
		if len(res.lostSample) < 10 {
			res.lostSample = append(res.lostSample, fmt.Sprintf(format, args...))
		}
	}
	byID := map[int64]ack{}
	for _, a := range acks {
		if prev, ok := byID[a.id]; ok && (prev.host != a.host || prev.at != a.at) {
			lost("id %d acknowledged for two snapshots (%s %s and %s %s)", a.id,
				hosts[prev.host].name, prev.at, hosts[a.host].name, a.at)
		}
		byID[a.id] = a
	}
	get := func(path string, v any) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cfg.url+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != 200 {
			return resp.StatusCode, nil
		}
		return 200, json.NewDecoder(resp.Body).Decode(v)
	}
	work := make(chan int)
	var wg sync.WaitGroup
	var checked, content atomic.Int64
	for range min(cfg.workers, 16) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				a := acks[i]
				h := hosts[a.host]
				var meta struct {
					ID           int64  `json:"snapshot_id"`
					Hostname     string `json:"hostname"`
					CapturedAt   string `json:"captured_at"`
					ProcessCount int    `json:"process_count"`
				}
				code, err := get("/api/v1/snapshots/"+strconv.FormatInt(a.id, 10), &meta)
				checked.Add(1)
				if err != nil || code != 200 {
					lost("snapshot %d (%s %s): status %d %v", a.id, h.name, a.at, code, err)
					continue
				}
				v := a.k % len(h.tails)
				if meta.Hostname != h.name || meta.CapturedAt != a.at || meta.ProcessCount != h.counts[v] {
					lost("snapshot %d: got %s %s %d processes, sent %s %s %d", a.id, meta.Hostname, meta.CapturedAt,
						meta.ProcessCount, h.name, a.at, h.counts[v])
					continue
				}
				if want, ok := h.check[v]; ok && inFull(cfg.verifyContent, a.host, a.k) {
					var got []snapshot.Process
					code, err := get("/api/v1/snapshots/"+strconv.FormatInt(a.id, 10)+"/processes", &got)
					if err != nil || code != 200 {
						lost("processes of %d: status %d %v", a.id, code, err)
						continue
					}
					sort.Slice(got, func(i, j int) bool { return got[i].PID < got[j].PID })
					if !reflect.DeepEqual(got, want) && (len(got) != 0 || len(want) != 0) {
						lost("processes of %d differ from what was sent", a.id)
						continue
					}
					content.Add(1)
				}
			}
		}()
	}
	for i := range acks {
		select {
		case work <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	res.verified = int(checked.Load())
	res.contentChecked = int(content.Load())
}

// hostStats is what one host's goroutine counted during the push.
type hostStats struct {
	sent, created, repeated, errors, late int
	codes                                 map[int]int
	firstErr                              string
	firstErrAt                            time.Time
	lat                                   []time.Duration
	sends                                 []send
	acks                                  []ack
	wire                                  int64
}

// send is when a request was sent (since the push started) and how long
// its answer took.
type send struct{ at, lat time.Duration }

// push makes host hi's pushes of the run, each at its due time (see load).
func push(ctx context.Context, cfg config, h *host, hi int, c poster, sem chan struct{},
	start, base time.Time, period time.Duration, total int, st *hostStats) {
	n := 0
	if hi < total {
		n = (total - hi + cfg.hosts - 1) / cfg.hosts
	}
	st.lat = make([]time.Duration, 0, n)
	st.acks = make([]ack, 0, n)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var atBuf []byte
	for k := range n {
		due, ok := gen.WaitDue(ctx, timer, start, k*cfg.hosts+hi, cfg.rate)
		if !ok {
			return
		}
		if sem != nil {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		atBuf = base.Add(time.Duration(k)*period).AppendFormat(atBuf[:0], "2006-01-02T15:04:05.000Z07:00")
		head, tail := gen.HeadMember(h.hostJSON, string(atBuf)), h.tails[k%len(h.tails)]
		sent := time.Now()
		late := sent.Sub(due) > 10*time.Millisecond
		code, body, err := c.post(ctx, head, tail)
		d := time.Since(sent)
		if sem != nil {
			<-sem
		}
		var id int64
		var msg string
		if err == nil {
			id = snapshotID(body)
			if id <= 0 || (code != 201 && code != 200) {
				msg = fmt.Sprintf("%d %s", code, bytes.TrimSpace(body))
			}
		} else {
			msg = err.Error()
		}
		st.sent++
		st.wire += int64(len(head) + len(tail))
		if late {
			st.late++
		}
		switch {
		case (code == 201 || code == 200) && id > 0:
			if code == 201 {
				st.created++
			} else {
				st.repeated++
			}
			st.acks = append(st.acks, ack{host: hi, k: k, at: string(atBuf), id: id})
			st.lat = append(st.lat, d)
			if cfg.timeline {
				st.sends = append(st.sends, send{sent.Sub(start), d})
			}
		default:
			if ctx.Err() == nil {
				st.errors++
				if st.codes == nil {
					st.codes = map[int]int{}
				}
				st.codes[code]++
				if st.firstErr == "" {
					st.firstErr, st.firstErrAt = msg, sent
				}
			}
		}
	}
}

// mergeStats adds up the hosts' counts into res and returns every ack in
// the order the pushes were due, and every latency.
func mergeStats(stats []hostStats, res *result) ([]ack, []time.Duration) {
	var acks []ack
	var lat []time.Duration
	var firstAt time.Time
	for i := range stats {
		st := &stats[i]
		res.sent += st.sent
		res.created += st.created
		res.repeated += st.repeated
		res.errors += st.errors
		res.lateStarts += st.late
		res.wireBytes += st.wire
		for code, n := range st.codes {
			res.codes[code] += n
		}
		if st.firstErr != "" && (res.firstErr == "" || st.firstErrAt.Before(firstAt)) {
			res.firstErr, firstAt = st.firstErr, st.firstErrAt
		}
		acks = append(acks, st.acks...)
		lat = append(lat, st.lat...)
		res.sends = append(res.sends, st.sends...)
	}
	slices.SortFunc(acks, func(a, b ack) int {
		if c := cmp.Compare(a.k, b.k); c != 0 {
			return c
		}
		return cmp.Compare(a.host, b.host)
	})
	return acks, lat
}
