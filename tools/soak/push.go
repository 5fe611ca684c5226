package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procscope/procscope/tools/loadgen/gen"
)

// soakHost is one simulated host: its name, key and the gzip tails it
// pushes in turn.
type soakHost struct {
	name, key string
	hostJSON  []byte
	tails     [][]byte
}

// prepareHosts makes each host's bodies before the run: steps of a
// gen.Host (its table evolving push by push, as the exporter's does),
// compressed at gzip.BestSpeed as the exporter compresses. An hour at
// 500/s is 1.8 million pushes, too many to make ahead, so each host plays
// its steps forwards then backwards (0 1 ... n-1 n-2 ... 1 0 1 ...):
// two consecutive bodies are always one step apart, never the jump from
// the last step back to the first.
func prepareHosts(n, procs, steps int, seed uint64, prefix string, period time.Duration) ([]*soakHost, error) {
	hosts := make([]*soakHost, n)
	for i := range hosts {
		name := prefix + strconv.Itoa(i)
		h := &soakHost{name: name, key: "soak-key-" + name, hostJSON: gen.QuoteHostname(name)}
		gh := gen.NewHost(procs, gen.Seed(strconv.Itoa(i), 0)+seed, false, period)
		for k := range steps {
			if k > 0 {
				gh.Step()
			}
			tail, err := gen.CompressTail(gh.SystemInfo(), gh.Processes(), gzip.BestSpeed)
			if err != nil {
				return nil, err
			}
			h.tails = append(h.tails, tail)
		}
		hosts[i] = h
	}
	return hosts, nil
}

// pingPong is the index of the k-th body of a host with n bodies:
// forwards, then backwards, then forwards again.
func pingPong(k, n int) int {
	if n <= 1 {
		return 0
	}
	cycle := 2 * (n - 1)
	k %= cycle
	if k < n {
		return k
	}
	return cycle - k
}

// counts are the pushes so far, read by the sampler while hosts push.
type counts struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	firstErr   string
}

func (c *counts) fail(msg string) {
	c.failed.Add(1)
	c.mu.Lock()
	if c.firstErr == "" {
		c.firstErr = msg
	}
	c.mu.Unlock()
}

// pushAll pushes from every host until ctx ends: open loop, host hi's
// k-th push due at start + (k*len(hosts)+hi)/rate, each host one
// goroutine with one keep-alive connection, never two pushes in flight
// (a late push goes at once). captured_at is the wall clock at the push,
// so retention sees the snapshots age as real ones do.
func pushAll(ctx context.Context, ingestURL string, hosts []*soakHost, rate float64, c *counts) {
	tr := &http.Transport{MaxIdleConns: len(hosts) * 2, MaxIdleConnsPerHost: len(hosts) * 2, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Timeout: 30 * time.Second, Transport: tr}
	start := time.Now()
	var wg sync.WaitGroup
	for hi, h := range hosts {
		wg.Go(func() {
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for k := 0; ; k++ {
				if _, ok := gen.WaitDue(ctx, timer, start, k*len(hosts)+hi, rate); !ok {
					return
				}
				at := time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00")
				if err := pushOne(ctx, client, ingestURL, h, gen.HeadMember(h.hostJSON, at), h.tails[pingPong(k, len(h.tails))]); err != nil {
					if ctx.Err() == nil {
						c.fail(err.Error())
					}
					continue
				}
				c.ok.Add(1)
			}
		})
	}
	wg.Wait()
}

func pushOne(ctx context.Context, client *http.Client, ingestURL string, h *soakHost, head, tail []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ingestURL, io.MultiReader(bytes.NewReader(head), bytes.NewReader(tail)))
	if err != nil {
		return err
	}
	req.ContentLength = int64(len(head) + len(tail))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("X-API-Key", h.key)
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 4096))
	_ = res.Body.Close()
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", res.Status, bytes.TrimSpace(body))
	}
	return nil
}
