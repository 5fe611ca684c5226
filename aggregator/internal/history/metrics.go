package history

import "github.com/prometheus/client_golang/prometheus"

// Metric descriptions of the aggregator's own /metrics. The prefix is the
// aggregator's namespace (api.Namespace), spelled out to keep this package
// free of the api package.
var (
	samplesDesc = prometheus.NewDesc("procscope_aggregator_history_samples_total",
		"History samples by outcome: written to storage, dropped (queue full or closing), or lost to a storage error.",
		[]string{"result"}, nil)
	remoteDesc = prometheus.NewDesc("procscope_aggregator_history_remote_write_samples_total",
		"Samples forwarded by remote write by outcome: sent (2xx), failed (4xx or out of retries), dropped (queue full).",
		[]string{"result"}, nil)
	remoteRetriesDesc = prometheus.NewDesc("procscope_aggregator_history_remote_write_retries_total",
		"Remote write requests retried after a network error, 5xx or 429.", nil, nil)
	remoteReadDesc = prometheus.NewDesc("procscope_aggregator_history_remote_read_requests_total",
		"Requests to the --history.url query API by outcome: ok, or error (unreachable, an error answer, over a limit).",
		[]string{"result"}, nil)
)

// Describe implements prometheus.Collector.
func (hd *Handler) Describe(ch chan<- *prometheus.Desc) {
	ch <- samplesDesc
	ch <- remoteDesc
	ch <- remoteRetriesDesc
	ch <- remoteReadDesc
}

// Collect implements prometheus.Collector: the counters of the history in
// use (none while it is not open or turned off).
func (hd *Handler) Collect(ch chan<- prometheus.Metric) {
	if b := hd.reader.Load(); b != nil {
		if rr, ok := b.r.(*RemoteReader); ok {
			n, failed := rr.requests.Load(), rr.failures.Load()
			ch <- prometheus.MustNewConstMetric(remoteReadDesc, prometheus.CounterValue, float64(n-min(failed, n)), "ok")
			ch <- prometheus.MustNewConstMetric(remoteReadDesc, prometheus.CounterValue, float64(failed), "error")
		}
	}
	h := hd.hist.Load()
	if h == nil {
		return
	}
	st := h.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(samplesDesc, st.RowsWritten, "written")
	counter(samplesDesc, st.Dropped, "dropped")
	counter(samplesDesc, st.WriteErrors, "error")
	if h.remote != nil {
		counter(remoteDesc, st.Remote.Sent, "sent")
		counter(remoteDesc, st.Remote.Failed, "failed")
		counter(remoteDesc, st.Remote.Dropped, "dropped")
		counter(remoteRetriesDesc, st.Remote.Retries)
	}
}
