package api

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/procscope/procscope/aggregator/internal/store"
)

// Namespace prefixes every metric of the aggregator.
const Namespace = "procscope_aggregator"

type metrics struct {
	ingestRequests  *prometheus.CounterVec
	ingestDuration  prometheus.Histogram
	ingestBytes     prometheus.Counter
	snapshotsStored prometheus.Counter
	httpRequests    *prometheus.CounterVec
	httpDuration    *prometheus.HistogramVec
	readsRefused    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, st func() store.Store) (*metrics, error) {
	m := &metrics{
		ingestRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "ingest_requests_total",
			Help: "Ingest requests by HTTP status code.",
		}, []string{"code"}),
		ingestDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "ingest_duration_seconds",
			Help:    "Time to answer an ingest request, body read and storage included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		ingestBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "ingest_received_bytes_total",
			Help: "Ingest body bytes received as sent on the wire (compressed when gzip).",
		}),
		snapshotsStored: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "snapshots_stored_total",
			Help: "Snapshots newly stored (idempotent retries not counted).",
		}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "http_requests_total",
			Help: "HTTP API requests by handler and status code.",
		}, []string{"handler", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "http_request_duration_seconds",
			Help:    "HTTP API request durations by handler (streams count until they end).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"handler"}),
		readsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "http_reads_refused_total",
			Help: "Reads refused with 429: reason client (--web.max-reads-per-client) or server (--web.max-concurrent-reads).",
		}, []string{"reason"}),
	}
	for _, reason := range []string{"client", "server"} {
		m.readsRefused.WithLabelValues(reason) // 0 from the start
	}
	for _, c := range []prometheus.Collector{m.ingestRequests, m.ingestDuration, m.ingestBytes,
		m.snapshotsStored, m.httpRequests, m.httpDuration, m.readsRefused, &storeCollector{store: st}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe counts an answer of a named route (httpapi.Route) and its
// duration.
func (m *metrics) observe(route string, status int, took time.Duration) {
	m.httpRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(took.Seconds())
}

// storeCollector reads storage figures at scrape time, so they are never
// stale and cost nothing between scrapes.
type storeCollector struct {
	store func() store.Store
}

var (
	hostsDesc = prometheus.NewDesc(Namespace+"_hosts",
		"Hosts known to the aggregator.", nil, nil)
	lastSeenDesc = prometheus.NewDesc(Namespace+"_host_last_seen_timestamp_seconds",
		"When the aggregator last accepted a snapshot from the host (unix time).", []string{"hostname"}, nil)
	dbSizeDesc = prometheus.NewDesc(Namespace+"_database_size_bytes",
		"Size of the snapshot database on disk.", nil, nil)
	prunedDesc = prometheus.NewDesc(Namespace+"_rows_pruned_total",
		"Rows removed by retention since the aggregator started.", nil, nil)
	snapshotsDesc = prometheus.NewDesc(Namespace+"_snapshots",
		"Snapshots currently stored.", nil, nil)
	commitsDesc = prometheus.NewDesc(Namespace+"_store_commits_total",
		"Transactions the store's writer committed (one fsync each); writes per commit is the group-commit batch size.", nil, nil)
	commitWritesDesc = prometheus.NewDesc(Namespace+"_store_committed_writes_total",
		"Writes (ingests and admin changes) the committed transactions carried.", nil, nil)
	storageFullDesc = prometheus.NewDesc(Namespace+"_storage_full",
		"1 while ingests are refused (503) because the file system of the snapshot database is full, 0 otherwise.", nil, nil)
	storeUpDesc = prometheus.NewDesc(Namespace+"_store_up",
		"1 when the store is open and answered this scrape, 0 otherwise.", nil, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hostsDesc, lastSeenDesc, dbSizeDesc, prunedDesc, snapshotsDesc, commitsDesc, commitWritesDesc, storeUpDesc, storageFullDesc} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.store()
	if st == nil {
		ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stats, err := st.Stats(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 0)
		return
	}
	hosts, err := st.Hosts(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 1)
	if f, ok := st.(interface{ Full() bool }); ok {
		full := 0.0
		if f.Full() {
			full = 1
		}
		ch <- prometheus.MustNewConstMetric(storageFullDesc, prometheus.GaugeValue, full)
	}
	ch <- prometheus.MustNewConstMetric(hostsDesc, prometheus.GaugeValue, float64(len(hosts)))
	ch <- prometheus.MustNewConstMetric(dbSizeDesc, prometheus.GaugeValue, float64(stats.DatabaseBytes))
	ch <- prometheus.MustNewConstMetric(prunedDesc, prometheus.CounterValue, float64(stats.RowsPruned))
	ch <- prometheus.MustNewConstMetric(snapshotsDesc, prometheus.GaugeValue, float64(stats.Snapshots))
	ch <- prometheus.MustNewConstMetric(commitsDesc, prometheus.CounterValue, float64(stats.Commits))
	ch <- prometheus.MustNewConstMetric(commitWritesDesc, prometheus.CounterValue, float64(stats.CommittedWrites))
	for _, h := range hosts {
		if h.LastSeen.IsZero() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(lastSeenDesc, prometheus.GaugeValue,
			float64(h.LastSeen.UnixMilli())/1000, h.Hostname)
	}
}
