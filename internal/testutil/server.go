package testutil

import (
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Server is an HTTP server on 127.0.0.1 (port from the OS) that a test can
// take down, its listener closed so that clients get connection refused as
// from a dead aggregator, and bring back on the same port: the fake
// receivers' outages.
type Server struct {
	t    testing.TB
	h    http.Handler
	mu   sync.Mutex
	addr string
	srv  *http.Server
}

// NewServer starts h and stops it in t.Cleanup.
func NewServer(t testing.TB, h http.Handler) *Server {
	t.Helper()
	s := &Server{t: t, h: h}
	s.Up()
	t.Cleanup(s.Down)
	return s
}

// Addr is host:port, the same across Down and Up.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Up listens again on the first port (a new one on the first call).
func (s *Server) Up() {
	s.t.Helper()
	addr := s.Addr()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	// The port was ours a moment ago; retry for up to 2 s in case the
	// kernel is still releasing it.
	for range 100 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("listen %s: %v", addr, err)
	}
	srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.addr = ln.Addr().String()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Down closes the listener and every connection; Up brings it back.
func (s *Server) Down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}
