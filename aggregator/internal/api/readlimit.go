package api

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/procscope/procscope/aggregator/internal/httpapi"
)

// Reads (process lists, diffs, history ranges, events, the fleet,
// /metrics) cost the server memory and CPU in proportion to what they
// answer, up to the per-read bounds (readmem_test.go: under 64 MiB for a
// 100,000-process host). Without a count bound, one client opening a
// hundred of them at once multiplies that and starves everyone else. So:
//
//   - each client (clientKey) runs at most MaxReadsPerClient reads at
//     once; its next ones wait for one of its own slots, up to
//     Limits.QueueTimeout (the UI's history tab asks for about 18 series at
//     once, all in parallel over HTTP/2), and beyond readQueueFactor times
//     that many in flight a read gets 429 at once, so a flood from one
//     address neither runs nor queues in front of other clients;
//   - the server runs at most MaxReads at once (total memory is at most
//     that many per-read bounds); a read waits up to QueueTimeout for a
//     slot, then gets 429;
//   - a read's context ends after HandlerTimeout (the server's write
//     timeout): past it the answer could not be written any more, so the
//     storage work it started is cancelled rather than finished for
//     nobody.
//
// The live stream has its own bounds (streamlimit.go) and is exempt.

// readQueueFactor: a client may have this many times MaxReadsPerClient
// reads in flight, running and waiting together.
const readQueueFactor = 4

// clientGate holds each client's read slots. An entry lives only while
// its client has a read in flight, so the map is bounded by the reads in
// flight.
type clientGate struct {
	mu      sync.Mutex
	run     int // reads one client runs at once
	inQueue int // reads one client has in flight, running or waiting
	clients map[string]*clientReads
}

type clientReads struct {
	slots chan struct{} // cap run
	refs  int           // reads in flight
}

func newClientGate(run int) *clientGate {
	return &clientGate{run: run, inQueue: readQueueFactor * run, clients: map[string]*clientReads{}}
}

// enter counts a read of client in; nil when it has inQueue already.
func (g *clientGate) enter(client string) *clientReads {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.clients[client]
	if c == nil {
		c = &clientReads{slots: make(chan struct{}, g.run)}
		g.clients[client] = c
	}
	if c.refs >= g.inQueue {
		return nil
	}
	c.refs++
	return c
}

// leave counts out a read enter let in.
func (g *clientGate) leave(client string, c *clientReads) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.refs--; c.refs == 0 {
		delete(g.clients, client)
	}
}

// inFlight is how many reads client has in flight, for tests.
func (g *clientGate) inFlight(client string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c := g.clients[client]; c != nil {
		return c.refs
	}
	return 0
}

// errTooManyFromClient names the flag; it is the answer whether the read
// found the client's queue full or waited for its slots in vain.
func (a *API) errTooManyFromClient() *httpapi.Error {
	return &httpapi.Error{Kind: httpapi.KindTooMany, RetryAfter: time.Second, Msg: fmt.Sprintf(
		"too many reads at once from your address (at most %d, --web.max-reads-per-client): wait for the answers before asking again, or raise the flag",
		a.readClients.run)}
}

// take waits for a slot in ch until t fires or the request ends.
func take(ch chan struct{}, t <-chan time.Time, done <-chan struct{}) bool {
	select {
	case ch <- struct{}{}:
		return true
	default:
	}
	select {
	case ch <- struct{}{}:
		return true
	case <-t:
	case <-done:
	}
	return false
}

// readGate admits one read; the returned release must be called once the
// read is answered. ok false: the refusal was written.
func (a *API) readGate(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	client := clientKey(r)
	c := a.readClients.enter(client)
	if c == nil {
		a.metrics.readsRefused.WithLabelValues("client").Inc()
		httpapi.WriteError(w, a.errTooManyFromClient())
		return nil, false
	}
	timer := time.NewTimer(a.opts.Limits.QueueTimeout)
	defer timer.Stop()
	done := r.Context().Done()
	if !take(c.slots, timer.C, done) {
		a.readClients.leave(client, c)
		if r.Context().Err() != nil {
			httpapi.WriteError(w, httpapi.New(httpapi.KindUnavailable, "request cancelled"))
			return nil, false
		}
		a.metrics.readsRefused.WithLabelValues("client").Inc()
		httpapi.WriteError(w, a.errTooManyFromClient())
		return nil, false
	}
	if !take(a.readQ, timer.C, done) {
		<-c.slots
		a.readClients.leave(client, c)
		if r.Context().Err() != nil {
			httpapi.WriteError(w, httpapi.New(httpapi.KindUnavailable, "request cancelled"))
			return nil, false
		}
		a.metrics.readsRefused.WithLabelValues("server").Inc()
		httpapi.WriteError(w, &httpapi.Error{Kind: httpapi.KindTooMany, RetryAfter: time.Second, Msg: fmt.Sprintf(
			"the aggregator is answering %d reads at once already (--web.max-concurrent-reads): retry in a moment",
			cap(a.readQ))})
		return nil, false
	}
	return func() {
		<-a.readQ
		<-c.slots
		a.readClients.leave(client, c)
	}, true
}

// limitReads applies readGate and the handler deadline to the routes below
// it.
func (a *API) limitReads(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, ok := a.readGate(w, r)
		if !ok {
			return
		}
		defer release()
		ctx, cancel := context.WithTimeout(r.Context(), a.opts.HandlerTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
