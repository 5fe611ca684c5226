package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/procscope/procscope/aggregator/internal/httpapi"
)

// Reads (process lists, diffs, history ranges, events, the fleet,
// /metrics) cost the server memory and CPU in proportion to what they
// answer, up to the per-read bounds (readmem_test.go: under 64 MiB for a
// 100,000-process host). Without a count bound, one client opening a
// hundred of them at once multiplies that and starves everyone else. So:
//
//   - each client (clientKey) has at most MaxReadsPerClient reads in
//     flight, waiting ones included; one more gets 429 at once, so a flood
//     from one address never queues in front of other clients;
//   - the server answers at most MaxReads at once (total memory is at most
//     that many per-read bounds); a read waits up to QueueTimeout for a
//     slot, then gets 429;
//   - a read's context ends after HandlerTimeout (the server's write
//     timeout): past it the answer could not be written any more, so the
//     storage work it started is cancelled rather than finished for
//     nobody.
//
// The live stream has its own bounds (streamlimit.go) and is exempt.

// readGate admits one read; the returned release must be called once the
// read is answered. ok false: the refusal was written.
func (a *API) readGate(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	client := clientKey(r)
	if !a.readClients.acquire(client) {
		a.metrics.readsRefused.WithLabelValues("client").Inc()
		httpapi.WriteError(w, &httpapi.Error{Kind: httpapi.KindTooMany, RetryAfter: time.Second, Msg: fmt.Sprintf(
			"too many reads at once from your address (at most %d, --web.max-reads-per-client): wait for the answers before asking again, or raise the flag",
			a.readClients.max)})
		return nil, false
	}
	select {
	case a.readQ <- struct{}{}:
	default:
		t := time.NewTimer(a.opts.Limits.QueueTimeout)
		defer t.Stop()
		select {
		case a.readQ <- struct{}{}:
		case <-t.C:
			a.readClients.release(client)
			a.metrics.readsRefused.WithLabelValues("server").Inc()
			httpapi.WriteError(w, &httpapi.Error{Kind: httpapi.KindTooMany, RetryAfter: time.Second, Msg: fmt.Sprintf(
				"the aggregator is answering %d reads at once already (--web.max-concurrent-reads): retry in a moment",
				cap(a.readQ))})
			return nil, false
		case <-r.Context().Done():
			a.readClients.release(client)
			httpapi.WriteError(w, httpapi.New(httpapi.KindUnavailable, "request cancelled"))
			return nil, false
		}
	}
	return func() {
		<-a.readQ
		a.readClients.release(client)
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
