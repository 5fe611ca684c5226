package main

import (
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v3"
)

// newMux routes the telemetry path, the landing page and the health
// endpoints. /-/healthy answers 200 as long as the process serves HTTP;
// /-/ready answers 503 until the first walk is in, so a scrape never gets
// an empty /metrics from a process that just started.
func newMux(telemetryPath string, metricsHandler http.Handler, ready func() bool) (http.Handler, error) {
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name:        "procscope exporter",
		Description: "Host details and the whole process table, pushed to the procscope aggregator; Prometheus metrics here.",
		Version:     version.Info(),
		Links: []web.LandingLinks{
			{Address: telemetryPath, Text: "Metrics"},
			{Address: "/-/healthy", Text: "Health"},
			{Address: "/-/ready", Text: "Readiness"},
		},
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(telemetryPath, metricsHandler)
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, r *http.Request) {
		if !getOrHead(w, r) {
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte("procscope-exporter is healthy.\n"))
		}
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, r *http.Request) {
		if !getOrHead(w, r) {
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		msg := "procscope-exporter is ready.\n"
		if !ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			msg = "procscope-exporter is not ready: no walk yet.\n"
		}
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte(msg))
		}
	})
	mux.Handle("/", landing)
	return mux, nil
}

// webTimeouts bound each request to the exporter's listener in time.
type webTimeouts struct {
	// header: a client trickling its headers (slow-loris) is cut off
	// after this, before any handler runs.
	header, read, write, idle time.Duration
}

// defaultWebTimeouts: Prometheus' scrape timeout is at most its interval
// (usually 10-60 s), and a scrape is answered from metrics built once
// per walk, so 30 s to write is plenty.
var defaultWebTimeouts = webTimeouts{header: 10 * time.Second, read: 30 * time.Second, write: 30 * time.Second, idle: 2 * time.Minute}

// maxHeaderBytes bounds a request's headers (431 beyond); Go's default
// is 1 MiB, a scraper sends a few hundred bytes.
const maxHeaderBytes = 64 << 10

// newHTTPServer is the exporter's server for exporter-toolkit to listen
// with (TLS and basic auth from --web.config.file). Concurrent scrapes are
// bounded by the metrics handler itself (metrics.Handler: 4, then 503).
func newHTTPServer(h http.Handler, logger *slog.Logger, t webTimeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.header,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       t.idle,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
}

func getOrHead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// logWebConfig says at start what --web.config.file turns on for the
// listener (the toolkit logs TLS per address, but not basic auth), so
// whoever scrapes /metrics knows what it needs. The file was validated
// by config.Parse; reading it again here can only fail if it changed.
func logWebConfig(logger *slog.Logger, path, telemetryPath string) {
	if path == "" {
		return
	}
	data, err := os.ReadFile(path)
	var c web.Config
	if err == nil {
		err = yaml.Unmarshal(data, &c)
	}
	if err != nil {
		logger.Warn("could not read the web config file again to log its settings", "file", path, "err", err)
		return
	}
	logger.Info("web config file loaded: its TLS and basic auth apply to every page, "+telemetryPath+" and the health checks included",
		"file", path, "tls", c.TLSConfig.IsEnabled(), "basic_auth", len(c.Users) > 0, "basic_auth_users", len(c.Users))
}
