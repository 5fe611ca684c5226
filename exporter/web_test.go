package main

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/procscope/procscope/exporter/internal/metrics"
)

// serveExporterHTTP serves the exporter's handler (newMux over a real
// metrics handler) through exporter-toolkit, as main does, with webConfig
// as --web.config.file ("" for none), on a free loopback port.
func serveExporterHTTP(t *testing.T, timeouts webTimeouts, webConfig string) string {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	h, err := newMux("/metrics", metrics.Handler(prometheus.NewRegistry(), logger), func() bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := ""
	if webConfig != "" {
		cfgFile = filepath.Join(t.TempDir(), "web.yml")
		if err := os.WriteFile(cfgFile, []byte(webConfig), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv := newHTTPServer(h, logger, timeouts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, systemd := []string{ln.Addr().String()}, false
	go func() {
		_ = web.ServeMultiple([]net.Listener{ln}, srv, &web.FlagConfig{WebListenAddresses: &addrs, WebSystemdSocket: &systemd, WebConfigFile: &cfgFile}, logger)
	}()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// TestExporterServerSettings: the exporter's listener has every timeout
// and a 64 KiB header bound.
func TestExporterServerSettings(t *testing.T) {
	srv := newHTTPServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler), defaultWebTimeouts)
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 {
		t.Fatalf("a timeout is unset: header %s, read %s, write %s, idle %s", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
	if srv.ReadHeaderTimeout > 10*time.Second || srv.MaxHeaderBytes != 64<<10 {
		t.Fatalf("header timeout %s, header bytes %d", srv.ReadHeaderTimeout, srv.MaxHeaderBytes)
	}
}

// TestExporterSlowHeaders: on a real listener, a client trickling its
// headers is cut off at the header timeout while scrapes are answered,
// and more than 64 KiB of headers get 431.
func TestExporterSlowHeaders(t *testing.T) {
	tm := defaultWebTimeouts
	tm.header = 300 * time.Millisecond
	addr := serveExporterHTTP(t, tm, "")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	closed := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(c)
		closed <- string(b)
	}()
	scrape := func() int {
		res, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		return res.StatusCode
	}
	if code := scrape(); code != http.StatusOK {
		t.Fatalf("scrape beside a slow client: %d", code)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	bound := time.After(10 * time.Second)
wait:
	for {
		select {
		case got := <-closed:
			if strings.Contains(got, "200 OK") {
				t.Fatalf("headers that never ended were answered: %q", got)
			}
			break wait
		case <-tick.C:
			_, _ = c.Write([]byte("x"))
		case <-bound:
			t.Fatal("the slow client still held its connection after 10 s")
		}
	}

	big, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = big.Close() }()
	_, _ = io.WriteString(big, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "+strings.Repeat("a", 100<<10)+"\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(big), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("100 KiB of headers: %d, want 431", res.StatusCode)
	}
}

// TestExporterWebConfigRateLimit: the web config file's rate_limit
// (exporter-toolkit) bounds requests to the exporter: past its burst, 429.
func TestExporterWebConfigRateLimit(t *testing.T) {
	addr := serveExporterHTTP(t, defaultWebTimeouts, "rate_limit:\n  interval: 1m\n  burst: 2\n")
	codes := []int{}
	for range 3 {
		res, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		codes = append(codes, res.StatusCode)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != http.StatusTooManyRequests {
		t.Fatalf("three scrapes with burst 2: %v, want 200 200 429", codes)
	}
}
