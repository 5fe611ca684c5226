// Package events derives process lifecycle events (started, exited,
// restarted) from consecutive snapshots of each host, stores them in a
// store.EventStore and serves them at GET /api/v1/hosts/{hostname}/events.
//
// A process is one (pid, create_time) pair (pid and name when the exporter
// sends no create_time), so a reused pid is another process. Only a
// snapshot newer than the last one seen of its host is compared with it: a
// late, repeated or out-of-order snapshot changes nothing, and neither
// does a snapshot cut to the top N processes (the processes outside it did
// not exit).
package events

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// DefaultRestartWindow is how long after an exit a process of the same
// name under the same parent or unit counts as its restart.
const DefaultRestartWindow = 5 * time.Minute

// Options configures a Tracker.
type Options struct {
	// RestartWindow: see DefaultRestartWindow (0 means the default).
	RestartWindow time.Duration
	// PruneInterval is how often Run deletes events older than their
	// host's oldest snapshot (0: every 10 minutes).
	PruneInterval time.Duration
	// QueueSize bounds the batches waiting to be stored (0: 1024); past
	// it a batch is dropped and logged rather than slowing ingest.
	QueueSize int
	Logger    *slog.Logger
}

// Tracker keeps the last process table of each host and turns each new
// snapshot into events. OnIngest is the API's ingest hook.
type Tracker struct {
	st    store.Store
	ev    store.EventStore
	opts  Options
	log   *slog.Logger
	queue chan batch

	mu    sync.Mutex
	hosts map[string]*hostState
}

type batch struct {
	hostname string
	events   []store.Event
}

// key identifies a process across snapshots.
type key struct {
	pid     int64
	created string // create_time, or the name when there is none
}

// proc is what the tracker remembers of a process: enough to describe
// its exit.
type proc struct {
	ppid           int64
	name, unit, ct string
	created        string
	cpu, mem       float64
}

// exit is a recent exit a start may be the restart of.
type exit struct {
	at    time.Time
	pid   int64
	match string
}

type hostState struct {
	mu    sync.Mutex
	init  bool
	at    time.Time
	procs map[key]proc
	exits []exit
}

// New returns a Tracker over st (read after an aggregator restart, for
// the table each host's next snapshot is compared with) and ev.
func New(st store.Store, ev store.EventStore, opts Options) *Tracker {
	if opts.RestartWindow <= 0 {
		opts.RestartWindow = DefaultRestartWindow
	}
	if opts.PruneInterval <= 0 {
		opts.PruneInterval = 10 * time.Minute
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tracker{st: st, ev: ev, opts: opts, log: log, queue: make(chan batch, opts.QueueSize), hosts: map[string]*hostState{}}
}

// Run stores queued events and prunes old ones until ctx ends, then
// stores what is still queued.
func (t *Tracker) Run(ctx context.Context) {
	tick := time.NewTicker(t.opts.PruneInterval)
	defer tick.Stop()
	for {
		select {
		case b := <-t.queue:
			t.store(context.WithoutCancel(ctx), b)
		case <-tick.C:
			if n, err := t.ev.PruneEvents(ctx); err != nil {
				t.log.Warn("pruning events failed", "err", err)
			} else if n > 0 {
				t.log.Debug("pruned events", "count", n)
			}
		case <-ctx.Done():
			for range cap(t.queue) {
				select {
				case b := <-t.queue:
					t.store(context.WithoutCancel(ctx), b)
				default:
					return
				}
			}
			return
		}
	}
}

func (t *Tracker) store(ctx context.Context, b batch) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := t.ev.AddEvents(ctx, b.hostname, b.events); err != nil && !errors.Is(err, store.ErrNotFound) {
		t.log.Warn("storing events failed", "hostname", b.hostname, "count", len(b.events), "err", err)
	}
}

// Forget drops a host's state (the host was deleted).
func (t *Tracker) Forget(hostname string) {
	t.mu.Lock()
	delete(t.hosts, hostname)
	t.mu.Unlock()
}

// OnIngest derives the events of a newly stored snapshot and queues them.
// It keeps nothing of req.Processes (copies what it needs).
func (t *Tracker) OnIngest(ctx context.Context, req *store.IngestRequest, res store.IngestResult) {
	if !res.Created {
		return // a retry: compared already
	}
	evs := t.Derive(ctx, req)
	if len(evs) == 0 {
		return
	}
	select {
	case t.queue <- batch{req.Hostname, evs}:
	default:
		t.log.Warn("event queue full; events dropped", "hostname", req.Hostname, "count", len(evs))
	}
}

// Derive compares a snapshot with the host's previous one and returns its
// events (synchronously; OnIngest queues them for storing).
func (t *Tracker) Derive(ctx context.Context, req *store.IngestRequest) []store.Event {
	t.mu.Lock()
	hs := t.hosts[req.Hostname]
	if hs == nil {
		hs = &hostState{}
		t.hosts[req.Hostname] = hs
	}
	t.mu.Unlock()
	hs.mu.Lock()
	defer hs.mu.Unlock()
	at := req.CapturedAt.UTC().Truncate(time.Millisecond)
	if !hs.init {
		hs.init = true
		if !t.load(ctx, hs, req.Hostname, at) {
			hs.set(at, req.Processes)
			return nil
		}
	}
	if !at.After(hs.at) {
		return nil // late or out of order: the table it would be compared with is gone
	}
	if truncated(req) {
		// Top-N snapshots: the processes left out did not exit. The next
		// full snapshot is compared with this one's (partial) table, so
		// forget it instead.
		hs.init = false
		return nil
	}
	var evs []store.Event
	now := make(map[key]proc, len(req.Processes))
	for i := range req.Processes {
		p := &req.Processes[i]
		now[keyOf(p)] = procOf(p)
	}
	// Exits first, so that a restart within this one interval finds its
	// exit.
	for k, p := range hs.procs {
		if _, ok := now[k]; ok {
			continue
		}
		evs = append(evs, store.Event{At: at, Kind: store.EventExited, PID: k.pid, PPID: p.ppid, Name: p.name, Unit: p.unit,
			ContainerID: p.ct, Started: startedOf(p.created), CPUPercent: p.cpu, MemoryMB: p.mem})
		hs.exits = append(hs.exits, exit{at: at, pid: k.pid, match: matchKey(p.name, p.ppid, p.unit)})
	}
	// Exits older than the window cannot be restarted any more.
	keep := hs.exits[:0]
	for _, x := range hs.exits {
		if at.Sub(x.at) <= t.opts.RestartWindow {
			keep = append(keep, x)
		}
	}
	hs.exits = keep
	for k, p := range now {
		if _, ok := hs.procs[k]; ok {
			continue
		}
		// Started lets a client tell this process from a later one that
		// reuses its pid (the UI's "restarted" badge).
		e := store.Event{At: at, Kind: store.EventStarted, PID: k.pid, PPID: p.ppid, Name: p.name, Unit: p.unit, ContainerID: p.ct,
			Started: startedOf(p.created)}
		m := matchKey(p.name, p.ppid, p.unit)
		for i, x := range hs.exits {
			if x.match == m && x.pid != k.pid {
				e.Kind, e.PrevPID = store.EventRestarted, x.pid
				hs.exits = append(hs.exits[:i], hs.exits[i+1:]...)
				break
			}
		}
		evs = append(evs, e)
	}
	hs.at, hs.procs = at, now
	sortEvents(evs)
	return evs
}

// load fills a host's state after an aggregator restart from the stored
// snapshot just before at, so its next snapshot is compared with that
// and not taken as all new. When a newer snapshot than at is stored, at
// is late: the state starts from the newest instead. false when there is
// nothing stored before at.
func (t *Tracker) load(ctx context.Context, hs *hostState, hostname string, at time.Time) bool {
	if t.st == nil {
		return false
	}
	meta, err := t.st.Latest(ctx, hostname)
	if err != nil {
		return false
	}
	if meta.CapturedAt.Equal(at) {
		// at is the latest (just stored): compare with the one before it.
		meta, err = t.st.SnapshotAt(ctx, hostname, at.Add(-time.Millisecond))
		if err != nil {
			return false
		}
	}
	procs, err := t.st.Processes(ctx, meta.ID)
	if err != nil {
		return false
	}
	hs.set(meta.CapturedAt, procs)
	t.loadExits(ctx, hs, hostname)
	return true
}

// loadExits recalls the exits of the restart window before the host's
// state from the stored events (those a restart has not already claimed),
// so that a restart across an aggregator restart is still one.
func (t *Tracker) loadExits(ctx context.Context, hs *hostState, hostname string) {
	if t.ev == nil {
		return
	}
	evs, err := t.ev.Events(ctx, hostname, store.EventQuery{From: hs.at.Add(-t.opts.RestartWindow), To: hs.at, Limit: 10000})
	if err != nil {
		return
	}
	claimed := map[int64]bool{}
	for _, e := range evs {
		if e.Kind == store.EventRestarted {
			claimed[e.PrevPID] = true
		}
	}
	for i := len(evs) - 1; i >= 0; i-- { // oldest first, as Derive appends them
		e := evs[i]
		if e.Kind == store.EventExited && !claimed[e.PID] {
			hs.exits = append(hs.exits, exit{at: e.At, pid: e.PID, match: matchKey(e.Name, e.PPID, e.Unit)})
		}
	}
}

func (hs *hostState) set(at time.Time, procs []snapshot.Process) {
	hs.at = at.UTC().Truncate(time.Millisecond)
	hs.procs = make(map[key]proc, len(procs))
	for i := range procs {
		hs.procs[keyOf(&procs[i])] = procOf(&procs[i])
	}
}

func truncated(req *store.IngestRequest) bool {
	return req.System != nil && req.System.ProcessCount.OK && req.System.ProcessCount.V > float64(len(req.Processes))
}

func keyOf(p *snapshot.Process) key {
	if p.CreateTime != "" {
		return key{p.PID, p.CreateTime}
	}
	return key{p.PID, "\x00" + p.Name}
}

// startedOf is a process's start time from its create_time (zero when
// none was sent or it does not parse).
func startedOf(created string) time.Time {
	if created == "" {
		return time.Time{}
	}
	if c, msg := snapshot.ParseTime(created); msg == "" {
		return c
	}
	return time.Time{}
}

func procOf(p *snapshot.Process) proc {
	pr := proc{ppid: p.PPID, name: p.Name, created: p.CreateTime, cpu: p.CPUPercent, mem: p.MemoryMB}
	if x := p.ProcessExt; x != nil {
		pr.unit, pr.ct = x.Unit, x.ContainerID
	}
	return pr
}

// matchKey is what a restart has in common with the exit before it: the
// name, and the unit when there is one, else the parent.
func matchKey(name string, ppid int64, unit string) string {
	if unit != "" {
		return name + "\x00u" + unit
	}
	return name + "\x00p" + strconv.FormatInt(ppid, 10)
}

// sortEvents orders one snapshot's events: exits, then starts and
// restarts, each by pid (the maps they came from have no order).
func sortEvents(evs []store.Event) {
	slices.SortFunc(evs, func(a, b store.Event) int {
		ea, eb := a.Kind == store.EventExited, b.Kind == store.EventExited
		if ea != eb {
			if ea {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.PID, b.PID)
	})
}

// Lazy is the aggregator's hold on a Tracker that exists once storage is
// open: until then ingest (which answers 503 anyway) derives nothing and
// the route answers 503.
type Lazy struct{ p atomic.Pointer[Tracker] }

// Set installs the tracker.
func (l *Lazy) Set(t *Tracker) { l.p.Store(t) }

// OnIngest is Tracker.OnIngest once a tracker is set.
func (l *Lazy) OnIngest(ctx context.Context, req *store.IngestRequest, res store.IngestResult) {
	if t := l.p.Load(); t != nil {
		t.OnIngest(ctx, req, res)
	}
}

// EventStore is the tracker's event store, nil before Set.
func (l *Lazy) EventStore() store.EventStore {
	if t := l.p.Load(); t != nil {
		return t.ev
	}
	return nil
}
