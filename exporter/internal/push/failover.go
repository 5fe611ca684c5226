package push

import (
	"fmt"
	"net/url"
	"time"
)

// DefaultPreferredRetry is how long the sender stays on a fallback URL
// before it offers the next snapshot to the first --push.url again. A
// minute: an aggregator back from a restart gets its hosts back soon, and
// a dead one costs one failed request (at most --push.timeout) a minute.
const DefaultPreferredRetry = time.Minute

// target is one configured ingest URL.
type target struct {
	url string
	// hint is the URL the user probably meant when this one lacks the
	// ingest path ("" when it has it).
	hint string
	// plainRemote: plain http to another machine, warned about at start.
	plainRemote bool
}

func newTargets(urls []string) ([]target, error) {
	ts := make([]target, 0, len(urls))
	seen := map[string]bool{}
	for _, s := range urls {
		if seen[s] {
			return nil, fmt.Errorf("push: url %s given twice", s)
		}
		seen[s] = true
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("push: url: %w", err)
		}
		ts = append(ts, target{url: s, hint: ingestURLHint(u), plainRemote: u.Scheme == "http" && !isLoopback(u.Hostname())})
	}
	return ts, nil
}

// failoverState is where the sender stands among its targets. Only the
// sender (under sendMu) touches it.
type failoverState struct {
	// cur is the index of the target requests go to.
	cur int
	// probing: this request goes to the preferred target (index 0) to see
	// whether it is back; fallback is where to return if it is not.
	probing  bool
	fallback int
	// left is when the sender last left the preferred target or a probe
	// of it failed.
	left time.Time
	// failedInRow counts targets that failed one after another since the
	// last delivery: once every target has failed, the sender backs off
	// as with one URL instead of spinning around the ring.
	failedInRow int
}

// activeURL is the URL requests go to; for the sender only.
func (p *Pusher) activeURL() string { return p.targets[p.fo.cur].url }

// setActive points the sender, and procscope_push_target_active, at
// target i. The label set is the configured URLs, so it stays bounded.
func (p *Pusher) setActive(i int) {
	p.fo.cur = i
	p.active.Store(int32(i))
	for j, t := range p.targets {
		v := 0.0
		if j == i {
			v = 1
		}
		p.targetActive.WithLabelValues(t.url).Set(v)
	}
}

// failsOver says whether a failed attempt is the aggregator's trouble
// (another one may do better): a network error, a timeout, a 5xx. A 4xx,
// a refused key among them, is the host's and the same everywhere; a 3xx
// is a configuration to fix.
func failsOver(res result) bool {
	return res.kind != delivered && res.kind != rejected && (res.status == 0 || res.status >= 500)
}

// maybeProbePreferred, before a request, turns the sender back to the
// preferred target once it has been away for PreferredRetry.
func (p *Pusher) maybeProbePreferred(now time.Time) {
	f := &p.fo
	if f.cur == 0 || f.probing || now.Sub(f.left) < p.o.PreferredRetry {
		return
	}
	f.probing, f.fallback, f.left = true, f.cur, now
	p.setActive(0)
	p.log.Debug("offering the next snapshot to the preferred push target again", "url", p.targets[0].url)
}

// noteDelivered ends a probe that succeeded and the run of failures.
func (p *Pusher) noteDelivered() {
	f := &p.fo
	if f.probing {
		f.probing = false
		p.log.Info("the preferred push target takes snapshots again, back on it", "url", p.targets[0].url,
			"fallback", p.targets[f.fallback].url)
	}
	f.failedInRow = 0
}

// failover handles a failed attempt when several targets are configured.
// ok means the caller must return wait without further ado: a probe of the
// preferred target failed (back to the fallback at once, quietly: the
// fallback works), or the sender moved to the next target, which has not
// failed yet in this run (try it at once). When every target failed in a
// row, the sender still moves on but the caller backs off as usual.
func (p *Pusher) failover(res result, now time.Time) (wait time.Duration, ok bool) {
	f := &p.fo
	if len(p.targets) < 2 {
		return 0, false
	}
	if f.probing {
		// The next probe a whole PreferredRetry from now, not from when
		// this one started: a preferred target that hangs until the
		// timeout must not take every other request.
		f.probing, f.left = false, now
		p.setActive(f.fallback)
		p.log.Debug("the preferred push target still fails, staying on the fallback", "preferred", p.targets[0].url,
			"fallback", p.activeURL(), "err", res.describe())
		return 0, true
	}
	if !failsOver(res) {
		return 0, false
	}
	from, to := f.cur, (f.cur+1)%len(p.targets)
	if from == 0 {
		f.left = now
	}
	f.failedInRow++
	p.failovers.Inc()
	p.setActive(to)
	if f.failedInRow < len(p.targets) {
		p.log.Warn("push target failed, failing over to the next --push.url; queued snapshots follow in order",
			"from", p.targets[from].url, "to", p.targets[to].url, "err", res.describe(), "waiting", p.q.Len())
		return 0, true
	}
	// Every target failed: an outage, logged by the caller's summary.
	p.log.Debug("push target failed, every --push.url has failed in a row", "from", p.targets[from].url,
		"to", p.targets[to].url, "err", res.describe())
	return 0, false
}
