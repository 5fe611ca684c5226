package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/procscope/procscope/aggregator/internal/api"
)

// startHTTPServer serves the API (no storage: the health probes answer)
// with the public listener's settings from these flags, on a free
// loopback port.
func startHTTPServer(t *testing.T, flags ...string) string {
	t.Helper()
	app := kingpin.New("test", "")
	sf := addServeFlags(app)
	if _, err := app.Parse(flags); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	a, err := api.New(api.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	srv := sf.httpServer(a, logger)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { a.Close(); _ = srv.Close() })
	return ln.Addr().String()
}

// closedWithin reads c until the server closes it, and fails when that
// takes longer than bound (a test bound, far above the timeouts tested),
// sending a byte of trickle every 50 ms meanwhile. It returns what the
// server sent.
func closedWithin(t *testing.T, c net.Conn, trickle bool, bound time.Duration) string {
	t.Helper()
	done := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(c)
		done <- string(b)
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(bound)
	for {
		select {
		case got := <-done:
			return got
		case <-tick.C:
			if trickle {
				_, _ = c.Write([]byte("X"))
			}
		case <-deadline:
			t.Fatalf("the server still held the connection after %s", bound)
		}
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func healthy(t *testing.T, addr string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Get("http://" + addr + "/-/healthy")
	if err != nil {
		t.Fatalf("another client: %v", err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("another client: %d", res.StatusCode)
	}
}

// TestSlowHeaders: a client trickling its headers (slow-loris) is cut off
// at --web.read-header-timeout, before any handler runs, while other
// clients are served; one sending more than 64 KiB of headers gets 431.
func TestSlowHeaders(t *testing.T) {
	addr := startHTTPServer(t, "--web.read-header-timeout=300ms")
	c := dial(t, addr)
	if _, err := io.WriteString(c, "GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	healthy(t, addr)
	if got := closedWithin(t, c, true, 10*time.Second); strings.Contains(got, "200 OK") {
		t.Fatalf("a request whose headers never ended was answered: %q", got)
	}
	healthy(t, addr)

	c = dial(t, addr)
	big := "GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + strings.Repeat("a", maxHeaderBytes+8<<10) + "\r\n\r\n"
	_, _ = io.WriteString(c, big)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("%d KiB of headers: %d, want 431", len(big)>>10, res.StatusCode)
	}
}

// TestSlowBody: a route that reads no body answers without waiting for
// one; a big body is never drained (the connection closes after the
// answer), and a small one trickled after the answer holds the connection
// until --web.read-timeout at most. Other clients are served meanwhile.
func TestSlowBody(t *testing.T) {
	addr := startHTTPServer(t, "--web.read-timeout=500ms")
	for _, size := range []int{1 << 30, 1000} {
		c := dial(t, addr)
		if _, err := fmt.Fprintf(c, "GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\nX", size); err != nil {
			t.Fatal(err)
		}
		healthy(t, addr)
		// Trickled at 20 bytes a second, the 1000 bytes would take 50 s.
		got := closedWithin(t, c, true, 10*time.Second)
		if !strings.HasPrefix(got, "HTTP/1.1 200 OK") {
			t.Fatalf("GET with a %d-byte body that trickles: %q, want the answer", size, got)
		}
	}
}
