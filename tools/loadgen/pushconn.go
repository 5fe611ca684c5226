package main

// A minimal HTTP/1.1 client for the push, one per simulated host.
//
// Why not net/http: the generator shares two cores with the aggregator it
// measures, so every microsecond it spends is taken from the aggregator.
// net/http's Transport hands each request between three goroutines (the
// caller, the connection's writeLoop and readLoop), builds a Request and
// a Header map per request and parses a Response with a fresh header map;
// a profile of the push showed that machinery, not the bytes on the wire,
// as most of the generator's CPU. This client does what wrk does: the
// request is written with one writev (net.Buffers: the header block and
// the small head gzip member, then the pre-compressed tail as it is), and
// the answer is parsed in place from a bufio.Reader on the same goroutine.
// It is deliberately narrow: one POST shape, HTTP/1.1 keep-alive, answers
// with Content-Length, chunked or read-to-close bodies, and the read-back
// (verify) keeps using net/http.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

const (
	// maxRespBody caps an ingest answer (the aggregator's is ~20 bytes);
	// the net/http version read at most this much too.
	maxRespBody = 64 << 10
	// maxRespHeaderLines caps the header lines of one answer, so that a
	// broken server cannot keep the generator reading forever.
	maxRespHeaderLines = 100
	// respBufSize is the bufio.Reader size: also the longest status or
	// header line accepted.
	respBufSize = 8 << 10
)

// pushTarget is where and how pushes go: parsed once for all hosts.
type pushTarget struct {
	addr      string // host:port to dial
	hostHdr   string // the Host header (as net/http sends it: the URL's host)
	path      string // request target, e.g. /api/v1/ingest
	tlsConf   *tls.Config
	timeout   time.Duration // a whole exchange, as http.Client.Timeout
	userAgent string
}

// newPushTarget checks an ingest URL; only http and https are accepted.
func newPushTarget(ingestURL string, timeout time.Duration) (*pushTarget, error) {
	u, err := url.Parse(ingestURL)
	if err != nil {
		return nil, fmt.Errorf("bad -url: %w", err)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("bad -url %q: want http://host:port[/prefix]", ingestURL)
	}
	t := &pushTarget{hostHdr: u.Host, path: u.RequestURI(), timeout: timeout, userAgent: "procscope-loadgen"}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
		t.tlsConf = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	default:
		return nil, fmt.Errorf("bad -url %q: the scheme must be http or https", ingestURL)
	}
	t.addr = net.JoinHostPort(u.Hostname(), port)
	if !validHeaderValue(t.hostHdr) || !validHeaderValue(t.path) {
		return nil, fmt.Errorf("bad -url %q: control characters", ingestURL)
	}
	return t, nil
}

// validHeaderValue rejects what would break the request's framing (CR,
// LF, other control characters): the key comes from -key-prefix and
// -host-prefix, which are text from the command line.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// pushConn is one simulated host's connection to the aggregator, as a
// real exporter keeps one. Not safe for concurrent use: its host's
// goroutine alone uses it.
type pushConn struct {
	t      *pushTarget
	prefix []byte // the request head up to "Content-Length: "
	out    []byte // the request head and head member of the current push
	bufs   [2][]byte
	conn   net.Conn
	br     *bufio.Reader
	body   []byte // the current answer's body (reused)
	served int    // answers read on conn: it is reused when > 0
	stop   func() bool
	dialer net.Dialer
}

func newPushConn(t *pushTarget, key string) (*pushConn, error) {
	if !validHeaderValue(key) {
		return nil, fmt.Errorf("API key %q holds control characters", key)
	}
	p := "POST " + t.path + " HTTP/1.1\r\nHost: " + t.hostHdr + "\r\nUser-Agent: " + t.userAgent +
		"\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nX-API-KEY: " + key + "\r\nContent-Length: "
	return &pushConn{t: t, prefix: []byte(p), body: make([]byte, 0, 512), dialer: net.Dialer{Timeout: t.timeout}}, nil
}

// errNoAnswer wraps an error that happened before any byte of the answer
// arrived (write failed, or the server closed an idle connection).
type errNoAnswer struct{ err error }

func (e errNoAnswer) Error() string { return e.err.Error() }
func (e errNoAnswer) Unwrap() error { return e.err }

// post sends one body (head, then tail, as one gzip stream) and returns
// the answer's status and body (valid until the next post). On a reused
// connection that fails before any byte of the answer (the server may
// close an idle keep-alive connection at any moment) it redials and sends
// once more, as net/http does for a request it could not have delivered;
// ingest is idempotent on (hostname, captured_at), so even a request the
// server did read is safe to repeat: it answers 200 with the same id.
func (c *pushConn) post(ctx context.Context, head, tail []byte) (int, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	for attempt := 0; ; attempt++ {
		if c.conn == nil {
			if err := c.dial(ctx); err != nil {
				return 0, nil, err
			}
		}
		reused := c.served > 0
		code, body, err := c.roundTrip(ctx, head, tail)
		if err == nil {
			return code, body, nil
		}
		c.close()
		var na errNoAnswer
		var ne net.Error
		timeout := errors.As(err, &ne) && ne.Timeout()
		if attempt == 0 && reused && !timeout && errors.As(err, &na) && ctx.Err() == nil {
			continue
		}
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		return 0, nil, err
	}
}

func (c *pushConn) dial(ctx context.Context) error {
	conn, err := c.dialer.DialContext(ctx, "tcp", c.t.addr)
	if err != nil {
		return err
	}
	if c.t.tlsConf != nil {
		tc := tls.Client(conn, c.t.tlsConf)
		hctx, cancel := context.WithTimeout(ctx, c.t.timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			_ = conn.Close()
			return err
		}
		conn = tc
	}
	c.conn, c.served = conn, 0
	if c.br == nil {
		c.br = bufio.NewReaderSize(conn, respBufSize)
	} else {
		c.br.Reset(conn)
	}
	// A cancelled run must not wait for answers: a deadline in the past
	// fails the read or write in progress at once.
	c.stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return nil
}

func (c *pushConn) close() {
	if c.conn == nil {
		return
	}
	c.stop()
	_ = c.conn.Close()
	c.conn = nil
}

// writeBuffers writes c.bufs with net.Buffers: one writev on a TCP
// connection, one write each through TLS.
func (c *pushConn) writeBuffers() error {
	bufs := net.Buffers(c.bufs[:])
	_, err := bufs.WriteTo(c.conn)
	return err
}

func (c *pushConn) roundTrip(ctx context.Context, head, tail []byte) (int, []byte, error) {
	if err := c.conn.SetDeadline(time.Now().Add(c.t.timeout)); err != nil {
		return 0, nil, err
	}
	// Checked after setting the deadline: a cancellation from here on
	// sets a deadline in the past (dial's AfterFunc) that this one does
	// not overwrite.
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	out := append(c.out[:0], c.prefix...)
	out = strconv.AppendInt(out, int64(len(head)+len(tail)), 10)
	out = append(out, "\r\n\r\n"...)
	out = append(out, head...)
	c.out = out
	c.bufs = [2][]byte{out, tail}
	err := c.writeBuffers()
	c.bufs = [2][]byte{} // keep no reference to the bodies
	if err != nil {
		return 0, nil, errNoAnswer{err}
	}
	if _, err := c.br.Peek(1); err != nil {
		return 0, nil, errNoAnswer{err}
	}
	code, keep, err := c.readResponse()
	if err != nil {
		return 0, nil, err
	}
	c.served++
	if !keep {
		c.close()
	}
	return code, c.body, nil
}

// readResponse parses one answer (skipping 1xx interim ones) into c.body;
// keep is false when the connection must be closed after it.
func (c *pushConn) readResponse() (code int, keep bool, err error) {
	for {
		line, err := c.readLine()
		if err != nil {
			return 0, false, err
		}
		// "HTTP/1.1 201 Created"
		proto, rest, ok := bytes.Cut(line, []byte(" "))
		if !ok || len(rest) < 3 || (len(rest) > 3 && rest[3] != ' ') || !bytes.HasPrefix(proto, []byte("HTTP/1.")) {
			return 0, false, fmt.Errorf("malformed status line %q", line)
		}
		code = 0
		for _, d := range rest[:3] {
			if d < '0' || d > '9' {
				return 0, false, fmt.Errorf("malformed status line %q", line)
			}
			code = code*10 + int(d-'0')
		}
		if code < 100 {
			return 0, false, fmt.Errorf("malformed status line %q", line)
		}
		keep = string(proto) == "HTTP/1.1"
		length, chunked := int64(-1), false
		for n := 0; ; n++ {
			if n == maxRespHeaderLines {
				return 0, false, errors.New("more than 100 header lines in the answer")
			}
			line, err := c.readLine()
			if err != nil {
				return 0, false, err
			}
			if len(line) == 0 {
				break
			}
			name, val, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				return 0, false, fmt.Errorf("malformed header line %q", line)
			}
			val = bytes.TrimSpace(val)
			switch {
			case bytes.EqualFold(name, []byte("Content-Length")):
				n, err := strconv.ParseInt(string(val), 10, 64)
				if err != nil || n < 0 || (length >= 0 && n != length) {
					return 0, false, fmt.Errorf("bad Content-Length %q", val)
				}
				length = n
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				if !bytes.EqualFold(val, []byte("chunked")) {
					return 0, false, fmt.Errorf("unsupported Transfer-Encoding %q", val)
				}
				chunked = true
			case bytes.EqualFold(name, []byte("Connection")):
				for tok := range bytes.SplitSeq(val, []byte(",")) {
					if bytes.EqualFold(bytes.TrimSpace(tok), []byte("close")) {
						keep = false
					}
				}
			}
		}
		if code >= 100 && code < 200 {
			if code == 101 {
				return 0, false, errors.New("unexpected 101 Switching Protocols")
			}
			continue // interim answer (100 Continue, 103 Early Hints): the real one follows
		}
		c.body = c.body[:0]
		switch {
		case code == 204 || code == 304:
		case chunked: // RFC 9112 7.1: chunked wins over Content-Length
			err = c.readChunked()
		case length >= 0:
			if length > maxRespBody {
				return 0, false, fmt.Errorf("%d answer with a %d-byte body (limit %d)", code, length, maxRespBody)
			}
			c.body = append(c.body, make([]byte, length)...)
			_, err = io.ReadFull(c.br, c.body)
		default: // no length: the body runs to the end of the connection
			keep = false
			err = c.readToEOF()
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, false, err
		}
		return code, keep, nil
	}
}

// readLine returns one line without its CRLF (or bare LF), valid until
// the next read.
func (c *pushConn) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("an answer line longer than %d bytes", respBufSize)
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	return bytes.TrimSuffix(line, []byte("\r")), nil
}

func (c *pushConn) readChunked() error {
	for {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		sz, _, _ := bytes.Cut(line, []byte(";")) // chunk extensions are ignored
		n, err := strconv.ParseUint(string(bytes.TrimSpace(sz)), 16, 32)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			for range maxRespHeaderLines { // trailers, up to the blank line
				line, err := c.readLine()
				if err != nil {
					return err
				}
				if len(line) == 0 {
					return nil
				}
			}
			return errors.New("too many trailer lines in the answer")
		}
		if len(c.body)+int(n) > maxRespBody {
			return fmt.Errorf("an answer body over %d bytes", maxRespBody)
		}
		start := len(c.body)
		c.body = append(c.body, make([]byte, n)...)
		if _, err := io.ReadFull(c.br, c.body[start:]); err != nil {
			return err
		}
		line, err = c.readLine()
		if err != nil {
			return err
		}
		if len(line) != 0 {
			return errors.New("a chunk not followed by CRLF")
		}
	}
}

func (c *pushConn) readToEOF() error {
	for {
		if len(c.body) == cap(c.body) {
			if len(c.body) >= maxRespBody {
				return fmt.Errorf("an answer body over %d bytes", maxRespBody)
			}
			c.body = append(c.body, 0)[:len(c.body)]
		}
		n, err := c.br.Read(c.body[len(c.body):min(cap(c.body), maxRespBody+1)])
		c.body = c.body[:len(c.body)+n]
		if len(c.body) > maxRespBody {
			return fmt.Errorf("an answer body over %d bytes", maxRespBody)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
