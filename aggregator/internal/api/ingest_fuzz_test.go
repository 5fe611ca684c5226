package api

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/procscope/procscope/aggregator/internal/inflate"
	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/tools/loadgen/gen"
)

// FuzzIngestGzip drives the whole ingest handler with gzip bodies under
// small limits, on both gunzip paths: it never panics, never answers 5xx
// (nor 429), never
// stores a body over a limit, never holds more than the wire and the
// decompression limits, and gives all of it back. Its seeds run in every
// `go test`; run it for real with `make fuzz` or
// go test -run '^$' -fuzz FuzzIngestGzip -fuzztime 60s ./aggregator/internal/api
func FuzzIngestGzip(f *testing.F) {
	const wireLimit, decodedLimit = 4 << 10, 16 << 10
	st, err := store.OpenSQLite(context.Background(), f.TempDir(), store.Options{PruneInterval: -1, CommitInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	newAPI := func(streaming bool) *API {
		a, err := New(Options{
			Logger: slog.New(slog.DiscardHandler),
			// A budget far above the limits: what is held at once (its
			// peak) shows what the buffers grew to.
			Limits: Limits{MaxWireBytes: wireLimit, MaxDecodedBytes: decodedLimit, MaxProcesses: 20,
				MaxInflightBytes: 1 << 30},
		})
		if err != nil {
			f.Fatal(err)
		}
		if streaming {
			a.useStreamingGunzip()
		}
		a.SetStore(st)
		return a
	}
	apis := []*API{newAPI(true)}
	if ok, _ := inflate.Available(); ok {
		apis = append(apis, newAPI(false))
	}

	good := snap("web-1", "2026-11-25T17:00:00Z", proc1)
	head := []byte(`{"hostname":"bomb","captured_at":"2026-11-25T17:00:00Z","system_info":{"pad":"`)
	seeds := [][]byte{
		good,
		gen.Body(5, "web-2", "2026-11-25T17:00:01.000Z", true),
		append(bytes.Clone(head), bytes.Repeat([]byte("0"), 64<<10)...), // a bomb
		make([]byte, 100<<10), // zeros
		padTo(bytes.Clone(good), decodedLimit),
		padTo(bytes.Clone(good), decodedLimit+1),
		[]byte("not json"), {},
	}
	for _, s := range seeds {
		for mode := range uint8(16) {
			f.Add(s, mode)
		}
	}
	// Raw bodies (mode bit 1 clear): gzip streams as they are, broken ones too.
	f.Add(gz(f, good)[:20], uint8(0))
	f.Add(append(gz(f, good), "junk"...), uint8(0))
	f.Add(append(gz(f, head), gz(f, make([]byte, 1<<20))...), uint8(0))

	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		a := apis[int(mode&1)%len(apis)]
		body := data
		if mode&2 != 0 {
			// data is the decompressed body: compress it, in two members
			// with mode bit 4.
			if mode&4 != 0 {
				body = append(gz(t, data[:len(data)/2]), gz(t, data[len(data)/2:])...)
			} else {
				body = gz(t, data)
			}
		}
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1"+IngestPath, bytes.NewReader(body))
		if mode&8 != 0 {
			req.ContentLength = -1
		}
		req.Header.Set("X-API-KEY", "k")
		req.Header.Set("Content-Encoding", "gzip")
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, req)

		code := rec.Code
		switch code {
		case http.StatusOK, http.StatusCreated, http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d: %s", code, rec.Body)
		}
		if code >= 400 && !strings.HasPrefix(rec.Body.String(), `{"error":`) {
			t.Fatalf("status %d without a JSON error: %s", code, rec.Body)
		}
		if code < 300 {
			// Accepted: within both limits, and a valid gzip stream.
			if len(body) > wireLimit {
				t.Fatalf("accepted a %d-byte body over the %d-byte wire limit", len(body), wireLimit)
			}
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("accepted a body that is not gzip: %v", err)
			}
			n, err := io.Copy(io.Discard, io.LimitReader(zr, decodedLimit+1))
			if err != nil || n > decodedLimit {
				t.Fatalf("accepted a body of %d bytes decompressed (limit %d), err %v", n, decodedLimit, err)
			}
		}
		if used := a.inflight.used.Load(); used != 0 {
			t.Fatalf("%d bytes of the in-flight budget not given back", used)
		}
		if peak := a.inflight.peak.Load(); peak > wireLimit+decodedLimit {
			t.Fatalf("held %d bytes at once, more than the limits (%d + %d)", peak, wireLimit, decodedLimit)
		}
	})
}
