package main

// Failover over several aggregators, as the exporter does with a repeated
// --push.url (exporter/internal/push/failover.go): each simulated host
// sends to -url; a network error, a timeout or a 5xx moves it to the next
// -failover-url at once; after -failover-back-after on a fallback it offers
// the next snapshot to -url again and stays there if that works. A push
// that every URL refused is tried around the ring again a few times, with
// a short pause each round (the exporter's queue would keep it): with two
// aggregators of which one is being killed, a snapshot is then refused
// only when both are down. -acks-file records every acknowledged snapshot
// (hostname, captured_at, id), so that a test can read each one back from
// every aggregator.
//
//	go run ./tools/loadgen -url http://127.0.0.1:8001 -failover-url http://127.0.0.1:8002 -acks-file acks.jsonl
//
// deploy/scaled_load_e2e_test.go runs it so against two aggregators on one
// PostgreSQL while one of them is SIGKILLed and restarted.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

const (
	// failoverRounds is how many times a push goes around every URL
	// before it counts as an error.
	failoverRounds = 10
	// failoverPause is the pause after a round in which every URL
	// failed, times the round's number (at most 1 s).
	failoverPause = 100 * time.Millisecond
)

// failoverFlags are the flags of this file.
type failoverFlags struct {
	urls      stringsFlag
	backAfter time.Duration
	acksFile  string
}

func addFailoverFlags(fs *flag.FlagSet, f *failoverFlags) {
	fs.Var(&f.urls, "failover-url", "another aggregator base URL, tried after -url on a network error, timeout or 5xx, as the exporter's repeated --push.url (repeatable, in order; not with -spawn)")
	fs.DurationVar(&f.backAfter, "failover-back-after", 5*time.Second, "with -failover-url: how long a host stays on a fallback before it offers a snapshot to -url again")
	fs.StringVar(&f.acksFile, "acks-file", "", "write every acknowledged snapshot to this file, one JSON object a line: hostname, captured_at, snapshot_id")
}

// check refuses what cannot work; spawn is -spawn.
func (f *failoverFlags) check(spawn bool, url string) error {
	switch {
	case len(f.urls) > 0 && spawn:
		return errors.New("-failover-url needs aggregators of your own (-url), not -spawn")
	case f.backAfter <= 0:
		return errors.New("-failover-back-after must be positive")
	}
	seen := map[string]bool{strings.TrimSuffix(url, "/"): true}
	for _, u := range f.urls {
		if seen[strings.TrimSuffix(u, "/")] {
			return fmt.Errorf("-failover-url %s given twice (or equal to -url)", u)
		}
		seen[strings.TrimSuffix(u, "/")] = true
	}
	return nil
}

// poster sends one push of one host: a pushConn, or a failoverConn over
// several of them.
type poster interface {
	post(ctx context.Context, head, tail []byte) (int, []byte, error)
	close()
}

// newPosters parses the URLs once and returns how to make each host's
// poster: a plain pushConn without -failover-url.
func newPosters(cfg config, timeout time.Duration) (func(key string) (poster, error), error) {
	urls := append([]string{cfg.url}, cfg.failover.urls...)
	targets := make([]*pushTarget, len(urls))
	for i, u := range urls {
		t, err := newPushTarget(strings.TrimSuffix(u, "/")+"/api/v1/ingest", timeout)
		if err != nil {
			return nil, err
		}
		targets[i] = t
	}
	return func(key string) (poster, error) {
		if len(targets) == 1 {
			return newPushConn(targets[0], key)
		}
		f := &failoverConn{backAfter: cfg.failover.backAfter, pause: failoverPause, acked: make([]int, len(targets))}
		for _, t := range targets {
			c, err := newPushConn(t, key)
			if err != nil {
				return nil, err
			}
			f.conns = append(f.conns, c)
		}
		return f, nil
	}, nil
}

// failoverConn is one host's connections to every URL and where it
// stands among them. Like pushConn, its host's goroutine alone uses it.
type failoverConn struct {
	conns     []*pushConn
	backAfter time.Duration
	pause     time.Duration // failoverPause (shorter in tests)
	cur       int           // the URL pushes go to
	// probing: this push goes to -url to see whether it is back;
	// fallback is where to return if not.
	probing  bool
	fallback int
	left     time.Time // when the host last left -url, or a probe failed
	// acked counts 2xx answers per URL, failovers the moves to the next.
	acked     []int
	failovers int
}

// failsOver is the exporter's rule: a network error or a 5xx is the
// aggregator's trouble, another may do better; a 4xx is the host's.
func failsOver(code int, err error) bool {
	return err != nil || code >= 500
}

func (f *failoverConn) post(ctx context.Context, head, tail []byte) (int, []byte, error) {
	if f.cur != 0 && !f.probing && time.Since(f.left) >= f.backAfter {
		f.probing, f.fallback, f.cur = true, f.cur, 0
	}
	failed := 0
	for {
		code, body, err := f.conns[f.cur].post(ctx, head, tail)
		if !failsOver(code, err) || ctx.Err() != nil {
			f.probing = false
			if err == nil && code/100 == 2 {
				f.acked[f.cur]++
			}
			return code, body, err
		}
		if f.probing {
			// -url is still down: back to the fallback at once, and the
			// next probe a whole backAfter from now.
			f.probing, f.left, f.cur = false, time.Now(), f.fallback
			continue
		}
		if f.cur == 0 {
			f.left = time.Now()
		}
		f.cur = (f.cur + 1) % len(f.conns)
		f.failovers++
		failed++
		if failed >= failoverRounds*len(f.conns) {
			return code, body, err
		}
		if failed%len(f.conns) == 0 {
			// Every URL failed in a row: pause before the next round.
			// The answer body of the last attempt is not needed.
			pause := min(time.Duration(failed/len(f.conns))*f.pause, time.Second)
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return 0, nil, ctx.Err()
			}
		}
	}
}

func (f *failoverConn) close() {
	for _, c := range f.conns {
		c.close()
	}
}

// printFailover says how the acknowledged pushes spread over the URLs.
func printFailover(w io.Writer, cfg config, posters []poster) {
	if len(cfg.failover.urls) == 0 {
		return
	}
	urls := append([]string{cfg.url}, cfg.failover.urls...)
	acked := make([]int, len(urls))
	moves := 0
	for _, p := range posters {
		if f, ok := p.(*failoverConn); ok {
			for i, n := range f.acked {
				acked[i] += n
			}
			moves += f.failovers
		}
	}
	_, _ = fmt.Fprintf(w, "failover: %d moves to the next URL;", moves)
	for i, u := range urls {
		_, _ = fmt.Fprintf(w, " %s acknowledged %d;", u, acked[i])
	}
	_, _ = fmt.Fprintln(w)
}

// ackLine is one line of -acks-file.
type ackLine struct {
	Hostname   string `json:"hostname"`
	CapturedAt string `json:"captured_at"`
	ID         int64  `json:"snapshot_id"`
}

// writeAcks writes -acks-file (nothing when it is not set).
func writeAcks(path string, hosts []*host, acks []ack) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, a := range acks {
		if err := enc.Encode(ackLine{Hostname: hosts[a.host].name, CapturedAt: a.at, ID: a.id}); err != nil {
			_ = f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
