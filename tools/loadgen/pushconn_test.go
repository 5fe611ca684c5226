package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procscope/procscope/tools/loadgen/gen"
)

// testBody is a real head member and tail, as the push sends them.
func testBody(t *testing.T) (head, tail []byte, want string) {
	t.Helper()
	procs := gen.Processes(5, 1, true)
	tail, err := gen.CompressTail(gen.SystemInfo, procs, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	head = gen.HeadMember(gen.QuoteHostname("h\"1"), "2026-11-25T17:00:00.000Z")
	return head, tail, string(gen.BodyOf("h\"1", "2026-11-25T17:00:00.000Z", procs))
}

// TestPushConnAgainstNetHTTP: what the client sends is a request net/http's
// server reads with every header the API needs, the body is the whole gzip
// stream, and consecutive pushes share one keep-alive connection.
func TestPushConnAgainstNetHTTP(t *testing.T) {
	head, tail, want := testBody(t)
	var mu sync.Mutex
	var remotes []string
	var bad []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		remotes = append(remotes, r.RemoteAddr)
		check := func(what, got, want string) {
			if got != want {
				bad = append(bad, what+": "+got+", want "+want)
			}
		}
		check("method", r.Method, "POST")
		check("path", r.URL.Path, "/p/api/v1/ingest")
		check("key", r.Header.Get("X-API-KEY"), "key-1")
		check("type", r.Header.Get("Content-Type"), "application/json")
		check("encoding", r.Header.Get("Content-Encoding"), "gzip")
		if r.ContentLength != int64(len(head)+len(tail)) {
			bad = append(bad, "content length")
		}
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			bad = append(bad, err.Error())
		} else if got, err := io.ReadAll(zr); err != nil || string(got) != want {
			bad = append(bad, "body differs")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"snapshot_id":7}`+"\n")
	}))
	defer srv.Close()
	target, err := newPushTarget(srv.URL+"/p/api/v1/ingest", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newPushConn(target, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for range 3 {
		code, body, err := c.post(context.Background(), head, tail)
		if err != nil || code != 201 || snapshotID(body) != 7 {
			t.Fatalf("post: %d %q %v", code, body, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("the server saw: %v", bad)
	}
	if len(remotes) != 3 || remotes[0] != remotes[1] || remotes[1] != remotes[2] {
		t.Fatalf("want 3 requests on one connection, got %v", remotes)
	}
}

// rawServer reads each request on 127.0.0.1 with net/http's parser and
// writes whatever its script returns for it, byte for byte (n counts
// requests across connections, from 1), closing the connection after it
// when told to: a way to send answers net/http's server never would.
type rawServer struct {
	ln      net.Listener
	accepts atomic.Int32
	reqs    atomic.Int32
	wg      sync.WaitGroup
}

func newRawServer(t *testing.T, reply func(n int) (answer string, closeAfter bool)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() { _ = conn.Close() }()
				br := bufio.NewReader(conn)
				for {
					_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if _, err := io.Copy(io.Discard, req.Body); err != nil {
						return
					}
					ans, closeAfter := reply(int(s.reqs.Add(1)))
					if _, err := io.WriteString(conn, ans); err != nil || closeAfter {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); s.wg.Wait() })
	return s
}

func (s *rawServer) conn(t *testing.T, timeout time.Duration) *pushConn {
	t.Helper()
	target, err := newPushTarget("http://"+s.ln.Addr().String()+"/api/v1/ingest", timeout)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newPushConn(target, "k")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

const created = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 18\r\n\r\n{\"snapshot_id\":5}\n"

// TestPushConnAnswers: the answer shapes a server may use are read right,
// and broken ones are errors, never a made-up success.
func TestPushConnAnswers(t *testing.T) {
	head, tail, _ := testBody(t)
	f := func(name, answer string, wantCode int, wantBody, wantErr string) {
		t.Helper()
		s := newRawServer(t, func(int) (string, bool) { return answer, true })
		c := s.conn(t, 2*time.Second)
		code, body, err := c.post(context.Background(), head, tail)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("%s: got %d %q err %v, want error %q", name, code, body, err, wantErr)
			}
			return
		}
		if err != nil || code != wantCode || string(body) != wantBody {
			t.Errorf("%s: got %d %q %v, want %d %q", name, code, body, err, wantCode, wantBody)
		}
	}
	f("content-length", created, 201, `{"snapshot_id":5}`+"\n", "")
	f("chunked", "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\n{\"sna\r\nc\r\npshot_id\":9}\r\n0\r\nTrailer: 1\r\n\r\n",
		201, `{"snapshot_id":9}`, "")
	f("chunked beats length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 200, "ok", "")
	f("to eof", "HTTP/1.1 403 Forbidden\r\n\r\n{\"error\":\"no\"}", 403, `{"error":"no"}`, "")
	f("interim 100", "HTTP/1.1 100 Continue\r\n\r\n"+created, 201, `{"snapshot_id":5}`+"\n", "")
	f("bare lf", "HTTP/1.1 429 Too Many Requests\nRetry-After: 1\nContent-Length: 2\n\nno", 429, "no", "")
	f("no content", "HTTP/1.1 204 No Content\r\n\r\n", 204, "", "")
	f("too big", "HTTP/1.1 201 Created\r\nContent-Length: 70000\r\n\r\n", 0, "", "limit 65536")
	f("too big chunked", "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n11171\r\n", 0, "", "over 65536")
	f("too big to eof", "HTTP/1.1 201 Created\r\n\r\n"+strings.Repeat("x", 70000), 0, "", "over 65536")
	f("short body", "HTTP/1.1 201 Created\r\nContent-Length: 50\r\n\r\n{}", 0, "", "unexpected EOF")
	f("not http", "SSH-2.0-OpenSSH\r\n\r\n", 0, "", "malformed status line")
	f("bad code", "HTTP/1.1 2x1 Created\r\n\r\n", 0, "", "malformed status line")
	f("bad length", "HTTP/1.1 201 Created\r\nContent-Length: -1\r\n\r\n", 0, "", "bad Content-Length")
	f("two lengths", "HTTP/1.1 201 Created\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 0, "", "bad Content-Length")
	f("gzip answer", "HTTP/1.1 201 Created\r\nTransfer-Encoding: gzip\r\n\r\n", 0, "", "unsupported Transfer-Encoding")
	f("bad chunk", "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, "", "bad chunk size")
	f("no header end", "HTTP/1.1 201 Created\r\nX: y\r\n", 0, "", "unexpected EOF")
	f("long line", "HTTP/1.1 201 Created\r\nX: "+strings.Repeat("y", 9000)+"\r\n\r\n", 0, "", "longer than")
	f("many headers", "HTTP/1.1 201 Created\r\n"+strings.Repeat("X: y\r\n", 101)+"\r\n", 0, "", "more than 100 header lines")
	f("closed at once", "", 0, "", "EOF")
}

// TestPushConnReconnects: a connection is kept across answers, dropped
// after "Connection: close" or an HTTP/1.0 answer, and a keep-alive
// connection the server closed while idle is redialled and the push sent
// again, once.
func TestPushConnReconnects(t *testing.T) {
	head, tail, _ := testBody(t)
	post := func(c *pushConn) {
		t.Helper()
		code, body, err := c.post(context.Background(), head, tail)
		if err != nil || code != 201 || snapshotID(body) != 5 {
			t.Fatalf("post: %d %q %v", code, body, err)
		}
	}
	f := func(name string, reply func(n int) (string, bool), posts int, wantAccepts int32) {
		t.Helper()
		s := newRawServer(t, reply)
		c := s.conn(t, 2*time.Second)
		for range posts {
			post(c)
		}
		if got := s.accepts.Load(); got != wantAccepts {
			t.Errorf("%s: %d connections, want %d", name, got, wantAccepts)
		}
		if got := s.reqs.Load(); got != int32(posts) {
			t.Errorf("%s: the server read %d requests, want %d", name, got, posts)
		}
	}
	f("keep-alive", func(int) (string, bool) { return created, false }, 4, 1)
	f("connection close", func(int) (string, bool) {
		return strings.Replace(created, "\r\n\r\n", "\r\nConnection: keep-alive, close\r\n\r\n", 1), false
	}, 3, 3)
	f("http/1.0", func(int) (string, bool) { return strings.Replace(created, "HTTP/1.1", "HTTP/1.0", 1), false }, 2, 2)
	// The server answers and closes without saying so (an idle timeout):
	// the next push finds the connection dead and goes on a new one.
	f("closed while idle", func(int) (string, bool) { return created, true }, 3, 3)

	// Only once: a server that drops every request on a fresh connection
	// too is an error, not a loop.
	s := newRawServer(t, func(n int) (string, bool) {
		if n == 1 {
			return created, true
		}
		return "", true
	})
	c := s.conn(t, 2*time.Second)
	post(c)
	if _, _, err := c.post(context.Background(), head, tail); err == nil {
		t.Fatal("a server that never answers again must be an error")
	}
	if got := s.accepts.Load(); got != 2 {
		t.Fatalf("%d connections, want 2 (the first, then one retry)", got)
	}
}

// TestPushConnTimeoutAndCancel: an answer that never comes ends at the
// timeout (not retried), and cancelling the run ends a push at once.
func TestPushConnTimeoutAndCancel(t *testing.T) {
	head, tail, _ := testBody(t)
	block := make(chan struct{})
	defer close(block)
	s := newRawServer(t, func(n int) (string, bool) {
		if n == 1 {
			return created, false
		}
		<-block
		return "", true
	})
	c := s.conn(t, 300*time.Millisecond)
	if code, _, err := c.post(context.Background(), head, tail); err != nil || code != 201 {
		t.Fatalf("first post: %d %v", code, err)
	}
	start := time.Now()
	_, _, err := c.post(context.Background(), head, tail)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("want a timeout, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the timeout took %s", d)
	}
	if got := s.reqs.Load(); got != 2 {
		t.Fatalf("a timed-out push must not be sent again: %d requests", got)
	}

	c = s.conn(t, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	if _, _, err := c.post(ctx, head, tail); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancelling took %s", d)
	}
	if _, _, err := c.post(ctx, head, tail); !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancelling: %v", err)
	}
}

// TestPushTargetRejects: URLs and keys that would make a broken or
// smuggled request are refused before anything is sent.
func TestPushTargetRejects(t *testing.T) {
	for _, u := range []string{"ftp://h/x", "127.0.0.1:80", "http:///x", "http://u:p@h/x", "http://h/x\r\nX: y", "%zz"} {
		if _, err := newPushTarget(u, time.Second); err == nil {
			t.Errorf("newPushTarget(%q) accepted", u)
		}
	}
	tg, err := newPushTarget("https://[::1]/api", time.Second)
	if err != nil || tg.addr != "[::1]:443" || tg.hostHdr != "[::1]" || tg.tlsConf == nil {
		t.Fatalf("https default port: %+v %v", tg, err)
	}
	for _, k := range []string{"a\r\nX-Evil: 1", "a\nb", "a\x00", "a\x7f"} {
		if _, err := newPushConn(tg, k); err == nil {
			t.Errorf("key %q accepted", k)
		}
	}
	if _, err := newPushConn(tg, "ok key\twith tab"); err != nil {
		t.Errorf("a plain key refused: %v", err)
	}
}

// TestPushConnLargeBody: a body much larger than the socket buffers goes
// out whole through partial writes and waits for writability, in order,
// on a server that reads slowly.
func TestPushConnLargeBody(t *testing.T) {
	head := gen.HeadMember(gen.QuoteHostname("big"), "2026-11-25T17:00:00.000Z")
	tail := make([]byte, 8<<20)
	for i := range tail {
		tail[i] = byte(i*7 + i>>13)
	}
	want := append(append([]byte(nil), head...), tail...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var got []byte
		buf := make([]byte, 64<<10)
		for {
			time.Sleep(100 * time.Microsecond) // slower than the writer: the socket fills
			n, err := r.Body.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		if !bytes.Equal(got, want) {
			http.Error(w, `{"error":"body differs"}`, http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"snapshot_id":3}`)
	}))
	defer srv.Close()
	target, err := newPushTarget(srv.URL+"/api/v1/ingest", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newPushConn(target, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for range 2 {
		code, body, err := c.post(context.Background(), head, tail)
		if err != nil || code != 201 || snapshotID(body) != 3 {
			t.Fatalf("post: %d %q %v", code, body, err)
		}
	}
}
