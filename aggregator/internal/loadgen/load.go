package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procscope/procscope/aggregator/internal/loadgen/gen"
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
	keyPrefix     string
	hostPrefix    string
	verifyContent int
	pid           int // the spawned aggregator, for its CPU time
	// pushStart and pushDone, when set, are called when the push phase
	// starts (after the bodies are prepared) and ends (before the
	// read-back), so that CPU time is counted for the push alone.
	pushStart, pushDone func()
}

// host is one simulated machine with its pre-compressed bodies.
type host struct {
	name  string
	key   string
	parts []*gen.GzipParts // per variant: pre-compressed body, head made per request
	procs [][]gen.Process  // what each variant sends, for verification
}

type ack struct {
	host, variant int
	at            string
	id            int64
}

type result struct {
	sent, created, repeated, errors int
	codes                           map[int]int
	firstErr                        string
	elapsed                         time.Duration
	lat                             []time.Duration
	lateStarts                      int
	wireBytes                       int64
	verified, contentChecked, lost  int
	lostSample                      []string
}

func (r *result) print(w io.Writer) {
	pct := func(p float64) time.Duration {
		if len(r.lat) == 0 {
			return 0
		}
		return r.lat[min(len(r.lat)-1, int(p*float64(len(r.lat))))]
	}
	fmt.Fprintf(w, "sent %d snapshots in %s: %.0f snapshots/s acknowledged (%d created, %d repeated)\n",
		r.sent, r.elapsed.Round(time.Millisecond), float64(r.created+r.repeated)/r.elapsed.Seconds(), r.created, r.repeated)
	fmt.Fprintf(w, "latency p50 %s p90 %s p99 %s max %s; %d requests started >10ms behind schedule\n",
		pct(.50).Round(10*time.Microsecond), pct(.90).Round(10*time.Microsecond), pct(.99).Round(10*time.Microsecond),
		pct(1).Round(10*time.Microsecond), r.lateStarts)
	fmt.Fprintf(w, "wire %.1f MiB (%.1f KiB a snapshot)\n", float64(r.wireBytes)/(1<<20), float64(r.wireBytes)/1024/float64(max(r.sent, 1)))
	fmt.Fprintf(w, "errors %d %v\n", r.errors, r.codes)
	if r.firstErr != "" {
		fmt.Fprintf(w, "first error: %s\n", r.firstErr)
	}
	fmt.Fprintf(w, "read back %d acknowledged snapshots (%d compared process by process): lost=%d\n", r.verified, r.contentChecked, r.lost)
	for _, s := range r.lostSample {
		fmt.Fprintf(w, "  %s\n", s)
	}
}

func prepare(cfg config) ([]*host, error) {
	hosts := make([]*host, cfg.hosts)
	for i := range hosts {
		name := cfg.hostPrefix + strconv.Itoa(i)
		h := &host{name: name, key: cfg.keyPrefix + name}
		for v := range cfg.variants {
			procs := gen.Processes(cfg.procs, gen.Seed(name, v), cfg.cmdline)
			parts, err := gen.NewGzipParts(name, procs)
			if err != nil {
				return nil, err
			}
			h.parts = append(h.parts, parts)
			h.procs = append(h.procs, procs)
		}
		hosts[i] = h
	}
	return hosts, nil
}

type job struct {
	seq       int
	scheduled time.Time
}

func load(ctx context.Context, cfg config, out io.Writer) (*result, error) {
	prepStart := time.Now()
	hosts, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "prepared %d hosts x %d variants of %d processes in %s; pushing %.0f/s for %s to %s\n",
		cfg.hosts, cfg.variants, cfg.procs, time.Since(prepStart).Round(time.Millisecond), cfg.rate, cfg.duration, cfg.url)

	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        cfg.workers * 2,
			MaxIdleConnsPerHost: cfg.workers * 2,
			DisableCompression:  true,
			// A whole request (headers and a ~7 KiB body) in one write
			// syscall instead of one per 4 KiB (the default buffer).
			WriteBufferSize: 32 << 10,
		},
	}
	ingestURL := cfg.url + "/api/v1/ingest"
	total := int(cfg.rate * cfg.duration.Seconds())
	// Each host pushes every hosts/rate seconds; its captured_at values
	// are that far apart, starting now (so they are unique per run).
	period := time.Duration(float64(time.Second) * float64(cfg.hosts) / cfg.rate)
	period = max(period.Round(time.Millisecond), time.Millisecond)
	base := time.Now().UTC().Truncate(time.Second)

	res := &result{codes: map[int]int{}}
	var mu sync.Mutex
	var acks []ack
	var lat []time.Duration
	var wire atomic.Int64
	jobs := make(chan job, 1024)

	var wg sync.WaitGroup
	for range cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var respBuf bytes.Buffer
			for j := range jobs {
				hi := j.seq % cfg.hosts
				k := j.seq / cfg.hosts
				h := hosts[hi]
				v := k % cfg.variants
				at := base.Add(time.Duration(k) * period).Format("2006-01-02T15:04:05.000Z07:00")
				// One contiguous body (the head made per request, the
				// compressed tail copied after it), so the transport sends
				// it in one write. Not reused: the transport may still
				// read a body after Do returned (an early answer).
				head, tail := h.parts[v].Head(at), h.parts[v].Tail
				body := append(append(make([]byte, 0, len(head)+len(tail)), head...), tail...)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ingestURL, bytes.NewReader(body))
				req.ContentLength = int64(len(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Content-Encoding", "gzip")
				req.Header.Set("X-API-KEY", h.key)
				late := time.Since(j.scheduled) > 10*time.Millisecond
				start := time.Now()
				resp, err := client.Do(req)
				var code int
				var id int64
				var msg string
				if err == nil {
					respBuf.Reset()
					_, _ = respBuf.ReadFrom(io.LimitReader(resp.Body, 1<<16))
					resp.Body.Close()
					code = resp.StatusCode
					id = snapshotID(respBuf.Bytes())
					if id <= 0 || (code != 201 && code != 200) {
						msg = fmt.Sprintf("%d %s", code, bytes.TrimSpace(respBuf.Bytes()))
					}
				} else {
					msg = err.Error()
				}
				d := time.Since(start)
				wire.Add(req.ContentLength)
				mu.Lock()
				res.sent++
				if late {
					res.lateStarts++
				}
				switch {
				case (code == 201 || code == 200) && id > 0:
					if code == 201 {
						res.created++
					} else {
						res.repeated++
					}
					acks = append(acks, ack{host: hi, variant: v, at: at, id: id})
					lat = append(lat, d)
				default:
					if ctx.Err() == nil {
						res.errors++
						res.codes[code]++
						if res.firstErr == "" {
							res.firstErr = msg
						}
					}
				}
				mu.Unlock()
			}
		}()
	}

	if cfg.pushStart != nil {
		cfg.pushStart()
	}
	start := time.Now()
	func() {
		defer close(jobs)
		seq := 0
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for seq < total {
			due := min(int(time.Since(start).Seconds()*cfg.rate)+1, total)
			for ; seq < due; seq++ {
				select {
				case jobs <- job{seq: seq, scheduled: start.Add(time.Duration(float64(seq) / cfg.rate * float64(time.Second)))}:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	res.elapsed = time.Since(start)
	if cfg.pushDone != nil {
		cfg.pushDone()
	}
	res.wireBytes = wire.Load()
	slices.Sort(lat)
	res.lat = lat
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	fmt.Fprintf(out, "push done in %s, reading back %d acknowledged snapshots...\n", res.elapsed.Round(time.Millisecond), len(acks))
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
		defer resp.Body.Close()
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
				if meta.Hostname != h.name || meta.CapturedAt != a.at || meta.ProcessCount != len(h.procs[a.variant]) {
					lost("snapshot %d: got %s %s %d processes, sent %s %s %d", a.id, meta.Hostname, meta.CapturedAt,
						meta.ProcessCount, h.name, a.at, len(h.procs[a.variant]))
					continue
				}
				if cfg.verifyContent > 0 && i%cfg.verifyContent == 0 {
					var got []gen.Process
					code, err := get("/api/v1/snapshots/"+strconv.FormatInt(a.id, 10)+"/processes", &got)
					if err != nil || code != 200 {
						lost("processes of %d: status %d %v", a.id, code, err)
						continue
					}
					want := h.procs[a.variant]
					sort.Slice(got, func(i, j int) bool { return got[i].PID < got[j].PID })
					if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
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
