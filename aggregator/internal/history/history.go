// Package history keeps the numeric history of every host (CPU, memory,
// swap, load, process count, filesystem use) and of each snapshot's busiest
// processes in an embedded VictoriaMetrics storage (lib/storage), and serves
// it, together with time travel and diffs over the snapshot store, as
// additions to the aggregator's JSON API.
//
// Series are written from each stored snapshot, stamped with its
// captured_at, so a late replay lands in its place. Writing never blocks
// ingest: Add builds the rows and hands them to a writer goroutine through a
// bounded queue, counting what it has to drop. Optionally every series is
// also forwarded with Prometheus remote write.
//
// VictoriaMetrics reports errors by panicking (logger.Panicf); the package
// recovers at its boundaries where the panic happens in our goroutine.
// Panics in the lib's own background goroutines cannot be caught: the
// storage directory is kept private (0700) and free space is checked at
// open so the usual causes (permissions, full disk) are reported as errors
// first.
package history

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"

	"github.com/procscope/procscope/aggregator/internal/store"
)

// Options configure History. The zero value of each field means its default.
type Options struct {
	// Retention is how long samples are kept (VictoriaMetrics drops whole
	// monthly partitions, so data may outlive it by up to a month). Zero
	// keeps them for the lib's maximum.
	Retention time.Duration
	// TopK is how many processes per snapshot get CPU and RSS series: the
	// K with the most CPU plus the K with the most memory. Zero means
	// DefaultTopK; negative disables process series.
	TopK int
	// RemoteWriteURL, when set, receives every series too (Prometheus
	// remote write 0.1.0).
	RemoteWriteURL string
	// QueueSize bounds the snapshots waiting to be written (default 4096).
	QueueSize int
	// MemoryBytes caps VictoriaMetrics' caches (default 256 MiB). The lib
	// keeps this process-wide: the first Open in a process sets it.
	MemoryBytes int64
	// MinFreeBytes is the free space below which Open fails and the storage
	// turns read-only (default 64 MiB).
	MinFreeBytes int64
	Logger       *slog.Logger
}

// DefaultTopK is the process count per ranking when Options.TopK is zero.
// Five busiest plus five largest (about nine processes, 18 series a host)
// still name whatever caused a spike: it was among the busiest then. Each
// process series pair is a series that comes and goes with the process
// (pid and create_time are labels), so K sets the churn every sink,
// remote-write targets included, has to index: with 10, a fleet's first
// pushes created twice the series and kept 2,000 snapshots/s busy for
// twice as long (docs/performance.md).
const DefaultTopK = 5

// maxTopK keeps a misconfiguration from writing a series per process.
const maxTopK = 1000

// History is an open history store. Its methods are safe for concurrent use.
type History struct {
	storage *storage.Storage
	dir     string
	topK    int
	logger  *slog.Logger
	remote  *remoteWriter // nil without a remote write URL
	names   *nameCache

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
	queue  chan job
	done   chan struct{} // closed when the writer goroutine has returned

	flushQuit, flushDone chan struct{} // stop and wait for flushLoop
	closing              atomic.Bool   // Close has begun

	wasReadOnly atomic.Bool // full.go
	rowsWritten atomic.Uint64
	dropped     atomic.Uint64
	writeErrors atomic.Uint64
}

// job is one unit of the writer's queue: the rows of one snapshot, or a
// flush request (flushed != nil) that is answered once everything queued
// before it is searchable.
type job struct {
	rows    []storage.MetricRow
	flushed chan struct{}
}

// Open opens (creating it if needed) the history storage in dir.
func Open(dir string, opts Options) (*History, error) {
	h, err := open(dir, opts)
	if err != nil {
		return nil, err
	}
	h.start(writeBatchWait, h.addRows)
	return h, nil
}

// open opens the storage; start then starts the writer, which batches for
// up to batchWait and hands each batch to write (h.addRows; tests wrap it).
func open(dir string, opts Options) (h *History, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case dir == "":
		return nil, errors.New("history: empty storage directory")
	case opts.Retention < 0:
		return nil, fmt.Errorf("history: negative retention %s", opts.Retention)
	case opts.TopK > maxTopK:
		return nil, fmt.Errorf("history: top-k %d is above the maximum %d", opts.TopK, maxTopK)
	case opts.QueueSize < 0 || opts.MemoryBytes < 0 || opts.MinFreeBytes < 0:
		return nil, errors.New("history: negative queue size, memory or free-space limit")
	}
	if opts.TopK == 0 {
		opts.TopK = DefaultTopK
	}
	if opts.TopK < 0 {
		opts.TopK = 0
	}
	if opts.QueueSize == 0 {
		opts.QueueSize = 4096
	}
	if opts.MemoryBytes == 0 {
		opts.MemoryBytes = 256 << 20
	}
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = 64 << 20
	}
	var remoteURL *url.URL
	if opts.RemoteWriteURL != "" {
		remoteURL, err = parseRemoteURL(opts.RemoteWriteURL)
		if err != nil {
			return nil, err
		}
	}

	// Private: the directory holds every process name of every host.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("history: create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("history: make %s private: %w", dir, err)
	}
	probe, err := os.CreateTemp(dir, ".writable-*")
	if err != nil {
		return nil, fmt.Errorf("history: %s is not writable: %w", dir, err)
	}
	_ = probe.Close()
	_ = os.Remove(probe.Name())
	free, err := freeSpace(dir)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	if free < uint64(opts.MinFreeBytes) {
		return nil, fmt.Errorf("history: only %d bytes free under %s, need at least %d", free, dir, opts.MinFreeBytes)
	}
	if err := initVM(vmSettings{memoryBytes: opts.MemoryBytes, minFreeBytes: opts.MinFreeBytes}); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}

	if err := verifyParts(dir); err != nil {
		return nil, err
	}
	var s *storage.Storage
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("history: open storage %s: %v", dir, r)
			}
		}()
		// No per-day index: it pays off for queries matching many series
		// among far more that ever existed, while every query here names
		// one host (and one PID). Without it a new series (what a fleet's
		// first pushes cost) and a 24-hour query are cheaper
		// (docs/performance.md, "Choices the figures made"), and no series
		// is indexed again at midnight, which was a burst of index writes
		// every day.
		s = storage.MustOpenStorage(dir, storage.OpenOptions{Retention: opts.Retention, DisablePerDayIndex: true})
	}()
	if err != nil {
		return nil, err
	}
	if err := deleteLeftoverSnapshots(s, opts.Logger); err != nil {
		s.MustClose()
		return nil, err
	}

	h = &History{
		storage: s,
		dir:     dir,
		topK:    opts.TopK,
		names:   newNameCache(),
		logger:  opts.Logger,
		queue:   make(chan job, opts.QueueSize),
		done:    make(chan struct{}),

		flushQuit: make(chan struct{}),
		flushDone: make(chan struct{}),
	}
	if remoteURL != nil {
		h.remote = newRemoteWriter(remoteURL, remoteOptions{}, opts.Logger)
	}
	opts.Logger.Info("history opened", "path", dir, "retention", opts.Retention, "top_k", opts.TopK,
		"remote_write", remoteURL != nil)
	return h, nil
}

func (h *History) start(batchWait time.Duration, write func([]storage.MetricRow)) {
	go h.writeLoop(batchWait, write)
	go h.flushLoop()
}

// Dir is the storage directory.
func (h *History) Dir() string { return h.dir }

// Add records the series of one stored snapshot. It never blocks: when the
// writer is behind and the queue is full the snapshot's samples are dropped
// and counted (Stats.Dropped). It does not keep req.
func (h *History) Add(req *store.IngestRequest) {
	rows, samples := h.buildRows(req)
	if len(rows) == 0 {
		return
	}
	if h.readOnly() { // full.go
		h.dropped.Add(uint64(len(rows)))
		return
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		h.dropped.Add(uint64(len(rows)))
		return
	}
	if h.storage == nil {
		// Remote only (OpenRemoteOnly): remote write is the whole sink.
		if h.remote != nil {
			h.remote.enqueue(samples)
		}
		return
	}
	select {
	case h.queue <- job{rows: rows}:
	default:
		h.dropped.Add(uint64(len(rows)))
		return
	}
	if h.remote != nil {
		h.remote.enqueue(samples)
	}
}

// buildRows builds the storage rows of one snapshot, their names taken
// from the cache, and, when remote write is on, the samples it forwards.
func (h *History) buildRows(req *store.IngestRequest) ([]storage.MetricRow, []sample) {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	h.names.host(req.Hostname).points(req, h.topK, sc)
	ts := sampleTime(req.CapturedAt)
	rows := make([]storage.MetricRow, len(sc.points))
	for i, p := range sc.points {
		rows[i] = storage.MetricRow{MetricNameRaw: p.name.raw, Timestamp: ts, Value: p.value}
	}
	var samples []sample
	if h.remote != nil {
		samples = make([]sample, len(sc.points))
		for i, p := range sc.points {
			samples[i] = sample{labels: p.name.labels, timestamp: ts, value: p.value}
		}
	}
	clear(sc.points) // the pool must not keep names alive
	return rows, samples
}

// Flush waits until everything added before it is written and searchable,
// or until timeout. It is for tests, benchmarks and DeleteHost (whose
// queued rows must not recreate the series it deletes); ingest does not
// need it (flushLoop makes rows searchable within flushEvery).
func (h *History) Flush(timeout time.Duration) error {
	if h.storage == nil {
		return nil
	}
	done := make(chan struct{})
	h.mu.RLock()
	if h.closed {
		h.mu.RUnlock()
		return errors.New("history: closed")
	}
	select {
	case h.queue <- job{flushed: done}:
	case <-time.After(timeout):
		h.mu.RUnlock()
		return errors.New("history: flush timed out waiting for the queue")
	}
	h.mu.RUnlock()
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return errors.New("history: flush timed out")
	}
}

// Batching of the writer. Each AddRows call has a fixed cost (partition,
// index search, shard lock) as large as writing a few dozen rows, and at
// 2,000 snapshots/s the writer otherwise wakes for almost every snapshot
// (docs/performance.md, "Choices the figures made"). So it waits up to
// writeBatchWait for a batch of writeBatchRows; rows only become
// searchable at the next flush anyway. A flush request or Close ends the
// wait.
const (
	writeBatchRows = 1024
	writeBatchWait = 5 * time.Millisecond
	maxWriteBatch  = 64 << 10
)

// writeLoop is the only caller of AddRows (through write): it drains the
// queue, batching what has piled up, or arrives within wait, into one call.
func (h *History) writeLoop(wait time.Duration, write func([]storage.MetricRow)) {
	defer close(h.done)
	batch := make([]storage.MetricRow, 0, 2*writeBatchRows)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var flushes []chan struct{}
	take := func(j job) {
		batch = append(batch, j.rows...)
		if j.flushed != nil {
			flushes = append(flushes, j.flushed)
		}
	}
	for j := range h.queue {
		batch, flushes = batch[:0], flushes[:0]
		take(j)
		waiting := false
	more:
		for len(batch) < maxWriteBatch {
			select {
			case j2, ok := <-h.queue:
				if !ok {
					break more
				}
				take(j2)
				continue
			default:
			}
			if len(batch) >= writeBatchRows || len(flushes) > 0 || wait <= 0 {
				break
			}
			if !waiting {
				waiting = true
				timer.Reset(wait)
			}
			select {
			case j2, ok := <-h.queue:
				if !ok {
					break more
				}
				take(j2)
			case <-timer.C:
				waiting = false
				break more
			}
		}
		if waiting {
			timer.Stop()
		}
		t0 := time.Now()
		write(batch)
		h.yieldAfter(time.Since(t0))
		if len(flushes) > 0 {
			h.debugFlush()
			for _, f := range flushes {
				close(f)
			}
		}
		clear(batch) // drop references to the rows' name buffers
		clear(flushes)
	}
}

// Writing rows of series the storage has not seen costs an order of
// magnitude more than a known series' row (index entries; figures in
// docs/performance.md): the first snapshots of new hosts, or of a whole
// fleet at once, keep the writer busy for tenths of a second. Ingest waits for CPU, not for the writer, but a writer that
// takes a whole core in such a burst leaves ingest one core of two. So
// after a slow batch the writer rests as long as the batch took (at most
// half a core for history), unless its queue is filling: then it catches
// up at full speed rather than drop samples.
const (
	slowBatch    = 2 * time.Millisecond
	maxBatchRest = 20 * time.Millisecond
)

func (h *History) yieldAfter(took time.Duration) {
	if took < slowBatch || len(h.queue) > cap(h.queue)/4 || h.closing.Load() {
		return
	}
	time.Sleep(min(took, maxBatchRest))
}

func (h *History) addRows(rows []storage.MetricRow) {
	if len(rows) == 0 {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			h.writeErrors.Add(uint64(len(rows)))
			h.logger.Error("history write failed", "rows", len(rows), "err", fmt.Sprint(r))
		}
	}()
	// 64 precision bits: values are stored exactly; compression comes
	// from the values themselves (see docs/performance.md, bytes per sample).
	h.storage.AddRows(rows, 64)
	h.rowsWritten.Add(uint64(len(rows)))
}

// flushEvery is how often the rows added since are turned into a
// searchable in-memory part. VictoriaMetrics does it on its own every 2 s
// per partition, all shards at once, and a flush of 2 s of rows takes both
// cores while every ingest waits behind it. Small flushes spread the same
// work evenly, and rows are searchable sooner.
//
// VictoriaMetrics documents DebugFlush (like its /internal/force_flush) as
// meant for tests, since frequent flushes cost ingestion CPU. v1.151.0 has
// no supported knob for this: the 2 s (pendingRowsFlushInterval) is a
// constant, and SetDataFlushInterval (-inmemoryDataFlushInterval) only
// times the later move of in-memory parts to disk, never below 2 s. Left
// to the lib's own flush, the aggregator spent less CPU a snapshot but the
// ingest p99 and the per-second bursts were worse in two runs of three
// (docs/performance.md, "Choices the figures made"), so the loop stays.
const flushEvery = 250 * time.Millisecond

func (h *History) flushLoop() {
	defer close(h.flushDone)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	last := h.rowsWritten.Load()
	for {
		select {
		case <-h.flushQuit:
			return
		case <-t.C:
		}
		if n := h.rowsWritten.Load(); n != last {
			last = n
			h.debugFlush()
		}
	}
}

func (h *History) debugFlush() {
	defer func() {
		if r := recover(); r != nil {
			h.logger.Error("history flush failed", "err", fmt.Sprint(r))
		}
	}()
	h.storage.DebugFlush()
}

// Close writes what is queued, stops remote write (giving it a few seconds
// to deliver) and closes the storage so that everything is on disk. It is
// safe to call more than once.
func (h *History) Close() (err error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.closing.Store(true) // the writer drains what is queued without resting
	if h.storage == nil {
		h.mu.Unlock()
		if h.remote != nil {
			h.remote.stop(5 * time.Second)
		}
		return nil
	}
	close(h.queue)
	h.mu.Unlock()
	<-h.done
	close(h.flushQuit)
	<-h.flushDone
	if h.remote != nil {
		h.remote.stop(5 * time.Second)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("history: close storage: %v", r)
		}
	}()
	start := time.Now()
	h.storage.MustClose()
	h.logger.Info("history closed", "path", h.dir, "duration", time.Since(start))
	return nil
}

// Stats are counters for the aggregator's /metrics.
type Stats struct {
	RowsWritten uint64 // samples handed to the storage
	Dropped     uint64 // samples dropped because the queue was full or history closed
	WriteErrors uint64 // samples lost to a storage error
	Remote      RemoteStats
}

// Stats reports the counters since Open.
func (h *History) Stats() Stats {
	st := Stats{
		RowsWritten: h.rowsWritten.Load(),
		Dropped:     h.dropped.Load(),
		WriteErrors: h.writeErrors.Load(),
	}
	if h.remote != nil {
		st.Remote = h.remote.stats()
	}
	return st
}

// dirSize is the bytes used by the files under dir (for the bytes/sample
// figure).
func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
		}
		return nil
	})
	return total, err
}
