package metrics

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry holding c plus the standard Go runtime and
// process collectors and procscope_exporter_build_info (its labels come from
// github.com/prometheus/common/version, set with -ldflags -X at build time).
func NewRegistry(c *Collector) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, col := range []prometheus.Collector{
		c,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("procscope_exporter"),
	} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// Handler serves the registry. One bad metric is logged and left out
// rather than failing the whole scrape; at most a few scrapes run at once so
// a misbehaving scraper cannot pile up goroutines.
//
// Responses are not gzip'ed. A scrape is 15-30 KB of text; compressing it
// took a fresh ~700 KB flate compressor from a sync.Pool that every GC
// empties, which made gzip the largest allocation of a scrape and cost more
// CPU than all our metrics together (BenchmarkScrape, scrapebench), against
// the exporter's 20 MB RSS budget. A few KB a second per host on the wire
// is the cheaper side of that trade.
func Handler(g prometheus.Gatherer, logger *slog.Logger) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(logger.Handler(), slog.LevelError),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		DisableCompression:  true,
	})
}
