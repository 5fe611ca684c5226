package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	"github.com/golang/snappy"
)

// remoteOptions tune remote write; zero fields take the defaults below.
type remoteOptions struct {
	queueSamples  int           // samples waiting to be sent (default 100,000)
	batchSamples  int           // samples per request (default 5,000)
	flushInterval time.Duration // longest a sample waits for a batch (default 1 s)
	minBackoff    time.Duration // first retry delay (default 250 ms)
	maxBackoff    time.Duration // retry delay ceiling (default 30 s)
	maxAttempts   int           // tries per batch before dropping it (default 10)
	timeout       time.Duration // per request (default 10 s)
}

func (o *remoteOptions) defaults() {
	set := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	set(&o.queueSamples, 100_000)
	set(&o.batchSamples, 5_000)
	set(&o.maxAttempts, 10)
	setD(&o.flushInterval, time.Second)
	setD(&o.minBackoff, 250*time.Millisecond)
	setD(&o.maxBackoff, 30*time.Second)
	setD(&o.timeout, 10*time.Second)
}

// RemoteStats count remote write outcomes in samples.
type RemoteStats struct {
	Sent    uint64 // acknowledged with 2xx
	Failed  uint64 // dropped after a 4xx or after the last retry
	Dropped uint64 // dropped because the queue was full
	Retries uint64 // requests retried
}

// remoteWriter forwards samples to a Prometheus remote write receiver in
// batches from one goroutine. Its queue is bounded: a receiver that is down
// costs memory up to queueSamples, then samples are dropped and counted.
type remoteWriter struct {
	url    string
	opts   remoteOptions
	client *http.Client
	logger *slog.Logger

	mu      sync.Mutex
	pending []sample
	wake    chan struct{} // buffered 1: new samples arrived
	ctx     context.Context
	cancel  context.CancelFunc
	stopCh  chan struct{}
	done    chan struct{}

	sent, failed, dropped, retries atomic.Uint64
}

func parseRemoteURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("history: invalid remote write url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("history: remote write url %q must be http(s)://host/path", u.Redacted())
	}
	return u, nil
}

func newRemoteWriter(u *url.URL, opts remoteOptions, logger *slog.Logger) *remoteWriter {
	opts.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	w := &remoteWriter{
		url:    u.String(),
		opts:   opts,
		client: &http.Client{Timeout: opts.timeout},
		// The URL may carry basic auth credentials: log it redacted.
		logger: logger.With("url", u.Redacted()),
		wake:   make(chan struct{}, 1),
		ctx:    ctx,
		cancel: cancel,
		stopCh: make(chan struct{}),
		done:   make(chan struct{}),
	}
	go w.loop()
	return w
}

// enqueue adds samples without blocking; they share no memory with the
// caller's later work (buildSamples allocates fresh labels each time).
func (w *remoteWriter) enqueue(samples []sample) {
	w.mu.Lock()
	room := w.opts.queueSamples - len(w.pending)
	if room < len(samples) {
		w.dropped.Add(uint64(len(samples) - max(room, 0)))
		samples = samples[:max(room, 0)]
	}
	w.pending = append(w.pending, samples...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *remoteWriter) take(n int) []sample {
	w.mu.Lock()
	defer w.mu.Unlock()
	n = min(n, len(w.pending))
	batch := make([]sample, n)
	copy(batch, w.pending)
	rest := copy(w.pending, w.pending[n:])
	clear(w.pending[rest:])
	w.pending = w.pending[:rest]
	return batch
}

func (w *remoteWriter) queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

func (w *remoteWriter) loop() {
	defer close(w.done)
	ticker := time.NewTicker(w.opts.flushInterval)
	defer ticker.Stop()
	for {
		stopping := false
		select {
		case <-w.stopCh:
			stopping = true
		case <-ticker.C:
		case <-w.wake:
			// Wait for a full batch or the next tick, whichever is first.
			if w.queued() < w.opts.batchSamples {
				continue
			}
		}
		for w.queued() > 0 {
			if !w.sendWithRetry(w.take(w.opts.batchSamples)) && w.ctx.Err() != nil {
				w.failed.Add(uint64(w.queued()))
				w.take(w.queued())
				return
			}
		}
		if stopping {
			return
		}
	}
}

// stop delivers what is queued within timeout, then gives up.
func (w *remoteWriter) stop(timeout time.Duration) {
	close(w.stopCh)
	t := time.AfterFunc(timeout, w.cancel)
	<-w.done
	t.Stop()
	w.cancel()
}

func (w *remoteWriter) stats() RemoteStats {
	return RemoteStats{Sent: w.sent.Load(), Failed: w.failed.Load(), Dropped: w.dropped.Load(), Retries: w.retries.Load()}
}

// errPermanent marks a response that a retry cannot fix (4xx other than 429).
var errPermanent = errors.New("permanent")

// sendWithRetry sends one batch, retrying with exponential backoff on
// network errors, 5xx and 429. It reports whether the batch was delivered.
func (w *remoteWriter) sendWithRetry(batch []sample) bool {
	if len(batch) == 0 {
		return true
	}
	body := encodeWriteRequest(batch)
	backoff := w.opts.minBackoff
	for attempt := 1; ; attempt++ {
		err := w.send(body)
		if err == nil {
			w.sent.Add(uint64(len(batch)))
			return true
		}
		if errors.Is(err, errPermanent) || attempt >= w.opts.maxAttempts || w.ctx.Err() != nil {
			w.failed.Add(uint64(len(batch)))
			w.logger.Warn("remote write batch dropped", "samples", len(batch), "attempts", attempt, "err", err)
			return false
		}
		w.retries.Add(1)
		w.logger.Debug("remote write failed, retrying", "backoff", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-w.ctx.Done():
		}
		backoff = min(backoff*2, w.opts.maxBackoff)
	}
}

func (w *remoteWriter) send(body []byte) error {
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %v", errPermanent, err)
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("User-Agent", "procscope-aggregator")
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 == 5:
		return fmt.Errorf("remote write: %s: %s", resp.Status, bytes.TrimSpace(msg))
	default:
		return fmt.Errorf("%w: remote write: %s: %s", errPermanent, resp.Status, bytes.TrimSpace(msg))
	}
}

// encodeWriteRequest builds a snappy-compressed prompb.WriteRequest with
// one TimeSeries per sample (the receiver merges equal label sets).
func encodeWriteRequest(batch []sample) []byte {
	wr := prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, len(batch))}
	samples := make([]prompb.Sample, len(batch))
	for i := range batch {
		samples[i] = prompb.Sample{Value: batch[i].value, Timestamp: batch[i].timestamp}
		wr.Timeseries[i] = prompb.TimeSeries{Labels: batch[i].labels, Samples: samples[i : i+1]}
	}
	return snappy.Encode(nil, wr.MarshalProtobuf(nil))
}
