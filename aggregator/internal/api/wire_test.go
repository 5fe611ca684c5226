package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/internal/history"
	"github.com/procscope/procscope/aggregator/internal/store"
)

var update = flag.Bool("update", false, "rewrite testdata/wire.golden from the running code")

// wireRequest is one raw HTTP/1.1 request of TestWireGolden.
type wireRequest struct {
	method, path string
	hdr          []string // "Name: value"
	body         string
}

// TestWireGolden pins every byte the API sends (status line, headers in
// wire order, framing and body) for a fixed set of requests covering each
// route's answers and errors, through a raw connection so that chunked
// framing and HEAD lengths are seen as a client sees them. The API is
// built as aggregator/serve.go builds it (history mounted). Only Date
// varies between runs. Run with -update to rewrite testdata/wire.golden
// after a deliberate change of the contract (docs/api.md).
func TestWireGolden(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	st, err := store.OpenSQLite(context.Background(), t.TempDir(), store.Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	lazy := new(LazyStore)
	hist := history.NewHandler(nil, lazy, slog.New(slog.DiscardHandler))
	h, err := history.Open(t.TempDir(), history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Close() }()
	hist.SetHistory(h)
	a, err := New(Options{
		OnIngest: hist.OnIngest,
		Mount:    hist.Mount,
		Logger:   slog.New(slog.DiscardHandler),
		Store:    lazy,
		UI:       http.NotFoundHandler(),
		Now:      func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	// A second API that never gets a store: the 503 answers.
	opening, err := New(Options{Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	a.SetStore(st)
	srv := httptest.NewServer(a)
	defer srv.Close()
	defer a.Close()
	srvOpening := httptest.NewServer(opening)
	defer srvOpening.Close()

	var bigProcs strings.Builder
	bigProcs.WriteByte('[')
	for i := 1; i <= 3000; i++ {
		if i > 1 {
			bigProcs.WriteByte(',')
		}
		fmt.Fprintf(&bigProcs, `{"pid":%d,"ppid":1,"name":"worker-%d","cpu_percent":%g,"memory_mb":%g,"cmdline":"/usr/bin/worker --n=%d <&>"}`, i, i, float64(i)/7, float64(i)/3, i)
	}
	bigProcs.WriteByte(']')
	json := []string{"X-API-KEY: key-web-1", "Content-Type: application/json"}
	reqs := []wireRequest{
		{method: "GET", path: "/-/healthy"},
		{method: "HEAD", path: "/-/ready"},
		{method: "GET", path: "/api/v1/hosts"},
		{method: "POST", path: "/api/v1/ingest", hdr: []string{"Content-Type: application/json"}, body: "{}"},
		{method: "POST", path: "/api/v1/ingest", hdr: []string{"X-API-KEY: k", "Content-Type: text/plain"}, body: "{}"},
		{method: "POST", path: "/api/v1/ingest", hdr: json, body: `{"hostname":"web-1"`},
		{method: "POST", path: "/api/v1/ingest", hdr: json, body: string(snap("web-1", "2026-11-25T16:59:30Z", proc1))},
		{method: "POST", path: "/api/v1/ingest", hdr: json, body: string(snap("web-1", "2026-11-25T16:59:30Z", proc1))},
		{method: "POST", path: "/api/v1/ingest", hdr: json, body: string(snap("web-1", "2026-11-25T16:59:40Z", bigProcs.String()))},
		{method: "POST", path: "/api/v1/ingest", hdr: []string{"X-API-KEY: other", "Content-Type: application/json"}, body: string(snap("web-1", "2026-11-25T16:59:50Z", proc1))},
		{method: "POST", path: "/api/v1/ingest", hdr: []string{"X-API-KEY: key-db-1", "Content-Type: application/json"}, body: string(snap("db-1", "2026-11-25T16:59:45Z", "[]"))},
		{method: "GET", path: "/api/v1/ingest"},
		{method: "GET", path: "/api/v1/hosts"},
		{method: "HEAD", path: "/api/v1/hosts"},
		{method: "GET", path: "/api/v1/hosts/"},
		{method: "POST", path: "/api/v1/hosts"},
		{method: "GET", path: "/api/v1/nope"},
		{method: "GET", path: "/api/nope"},
		{method: "GET", path: "/api/v1/hosts", hdr: []string{"Host: evil.example"}},
		{method: "GET", path: "/api/v1/snapshots/latest"},
		{method: "HEAD", path: "/api/v1/snapshots/latest"},
		{method: "GET", path: "/api/v1/snapshots/latest?hostname=web-1"},
		{method: "GET", path: "/api/v1/snapshots/latest?hostname=nope"},
		{method: "GET", path: "/api/v1/snapshots/latest?hostname=%00"},
		{method: "GET", path: "/api/v1/snapshots/at?hostname=web-1&time=2026-11-25T16:59:35Z"},
		{method: "GET", path: "/api/v1/snapshots/at?hostname=web-1&time=1790000000"},
		{method: "GET", path: "/api/v1/snapshots/at?hostname=web-1&time=soon"},
		{method: "GET", path: "/api/v1/snapshots/1"},
		{method: "GET", path: "/api/v1/snapshots/0"},
		{method: "GET", path: "/api/v1/snapshots/x"},
		{method: "GET", path: "/api/v1/snapshots/999"},
		{method: "GET", path: "/api/v1/snapshots/99999999999999999999999999"},
		{method: "GET", path: "/api/v1/snapshots/1/processes"},
		{method: "HEAD", path: "/api/v1/snapshots/1/processes"},
		{method: "GET", path: "/api/v1/snapshots/2/processes"},
		{method: "HEAD", path: "/api/v1/snapshots/2/processes"},
		{method: "GET", path: "/api/v1/snapshots/999/processes"},
		{method: "GET", path: "/api/v1/hosts/web-1/snapshots"},
		{method: "GET", path: "/api/v1/hosts/web-1/snapshots?from=2026-11-25T16:59:35Z&limit=1"},
		{method: "GET", path: "/api/v1/hosts/web-1/snapshots?from=2026-11-25T17:59:35Z"},
		{method: "GET", path: "/api/v1/hosts/web-1/snapshots?limit=0"},
		{method: "GET", path: "/api/v1/hosts/web-1/snapshots?to=x"},
		{method: "GET", path: "/api/v1/hosts/nope/snapshots"},
		{method: "GET", path: "/api/v1/hosts/a%2Fb/snapshots"},
		{method: "GET", path: "/api/v1/hosts/web-1/series?from=2026-11-25T14:00:00Z&to=2026-11-25T15:00:00Z"},
		{method: "HEAD", path: "/api/v1/hosts/web-1/series?from=2026-11-25T14:00:00Z&to=2026-11-25T15:00:00Z"},
		{method: "GET", path: "/api/v1/hosts/web-1/series?metric=disk"},
		{method: "GET", path: "/api/v1/hosts/web-1/series?from=x"},
		{method: "GET", path: "/api/v1/hosts/nope/series?from=2026-11-25T14:00:00Z&to=2026-11-25T15:00:00Z"},
		{method: "GET", path: "/api/v1/hosts/web-1/processes/7/series?from=2026-11-25T14:00:00Z&to=2026-11-25T15:00:00Z&step=60s"},
		{method: "GET", path: "/api/v1/hosts/web-1/processes/x/series"},
		{method: "GET", path: "/api/v1/snapshots/1/diff"},
		{method: "GET", path: "/api/v1/snapshots/1/diff?against=2"},
		{method: "HEAD", path: "/api/v1/snapshots/1/diff?against=2"},
		{method: "GET", path: "/api/v1/snapshots/1/diff?against=2&limit=2"},
		{method: "GET", path: "/api/v1/snapshots/1/diff?against=3"},
		{method: "GET", path: "/api/v1/snapshots/1/diff?against=999"},
		{method: "GET", path: "/api/v1/snapshots/1/diff?against=2&limit=x"},
		{method: "POST", path: "/api/v1/snapshots/1/diff?against=2"},
		{method: "GET", path: "/api/v1/stream?hostname=%00"},
	}
	var out bytes.Buffer
	for _, req := range reqs {
		fmt.Fprintf(&out, "=== %s %s %s\n", req.method, req.path, strings.Join(req.hdr, "; "))
		out.Write(rawExchange(t, srv.Listener.Addr().String(), req))
	}
	for _, req := range []wireRequest{
		{method: "GET", path: "/api/v1/hosts"},
		{method: "HEAD", path: "/api/v1/hosts"},
		{method: "POST", path: "/api/v1/ingest", hdr: json, body: string(snap("web-1", "2026-11-25T16:59:30Z", proc1))},
		{method: "GET", path: "/-/ready"},
	} {
		fmt.Fprintf(&out, "=== (opening) %s %s %s\n", req.method, req.path, strings.Join(req.hdr, "; "))
		out.Write(rawExchange(t, srvOpening.Listener.Addr().String(), req))
	}

	golden := filepath.Join("testdata", "wire.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		gotLines, wantLines := strings.Split(out.String(), "\n"), strings.Split(string(want), "\n")
		for i := range max(len(gotLines), len(wantLines)) {
			var g, w string
			if i < len(gotLines) {
				g = gotLines[i]
			}
			if i < len(wantLines) {
				w = wantLines[i]
			}
			if g != w {
				t.Fatalf("the API's bytes changed (run with -update only if docs/api.md changed too); first difference at line %d:\n got: %s\nwant: %s", i+1, g, w)
			}
		}
	}
}

var dateRE = regexp.MustCompile(`(?m)^Date: .*\r$`)

// rawExchange sends req on a fresh connection and returns the response as
// sent: status line and headers verbatim (Date blanked), the body verbatim
// when short, else its length, hash and head.
func rawExchange(t *testing.T, addr string, req wireRequest) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", req.method, req.path)
	host := "127.0.0.1"
	for _, h := range req.hdr {
		if v, ok := strings.CutPrefix(h, "Host: "); ok {
			host = v
			continue
		}
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Host: %s\r\nConnection: close\r\n", host)
	if req.body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(req.body))
	}
	b.WriteString("\r\n" + req.body)
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(bufio.NewReader(c))
	if err != nil {
		t.Fatal(err)
	}
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("%s %s: no end of headers in %q", req.method, req.path, raw)
	}
	head = dateRE.ReplaceAll(head, []byte("Date: (date)\r"))
	var out bytes.Buffer
	out.Write(bytes.ReplaceAll(head, []byte("\r\n"), []byte("\n")))
	out.WriteString("\n\n")
	if len(body) <= 1500 {
		fmt.Fprintf(&out, "%q\n", body)
	} else {
		fmt.Fprintf(&out, "(%d bytes, sha256 %x) %q...\n", len(body), sha256.Sum256(body), body[:300])
	}
	return out.Bytes()
}
