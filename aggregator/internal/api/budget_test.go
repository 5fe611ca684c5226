package api

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"sync"
	"testing"
	"time"
)

// TestHeldBuf: a body buffer grows by doubling but never past the limit
// it is filled to (a bytes.Buffer's ReadFrom doubles to up to twice it),
// takes its capacity from the budget and gives it back on release.
func TestHeldBuf(t *testing.T) {
	errLim := errors.New("limit")
	for _, tc := range []struct {
		name        string
		body, limit int
		size        int
		budget      int64
		err         error
		wantCap     int
	}{
		{"empty", 0, 1 << 20, -1, 1 << 30, nil, 0},
		{"size known", 300_000, 1 << 20, 300_000, 1 << 30, nil, 300_000},
		{"size unknown, doubling", 300_000, 1 << 20, -1, 1 << 30, nil, 512 << 10},
		{"doubling stops at the limit", 900_000, 1_000_000, -1, 1 << 30, nil, 1_000_000},
		{"exactly the limit", 1_000_000, 1_000_000, -1, 1 << 30, nil, 1_000_000},
		{"one byte over", 1_000_001, 1_000_000, -1, 1 << 30, errLim, 1_000_000},
		{"a bomb", 64 << 20, 1_000_000, -1, 1 << 30, errLim, 1_000_000},
		{"over the budget", 300_000, 1 << 20, -1, 200_000, errInflight, 128 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &byteBudget{max: tc.budget}
			h := newHeldBuf(b)
			h.buf = make([]byte, 0, 8<<20) // a big pooled buffer is charged like a new one
			err := h.fill(io.LimitReader(zeros{}, int64(tc.body)), tc.limit, tc.size, errLim)
			if !errors.Is(err, tc.err) && err != tc.err {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if tc.err == nil && len(h.buf) != tc.body {
				t.Fatalf("held %d bytes of %d", len(h.buf), tc.body)
			}
			if h.room != tc.wantCap || b.used.Load() != int64(tc.wantCap) {
				t.Fatalf("room %d, budget used %d, want %d", h.room, b.used.Load(), tc.wantCap)
			}
			h.release()
			h.release()
			if b.used.Load() != 0 {
				t.Fatalf("budget not given back: %d", b.used.Load())
			}
		})
	}
	// Without a pooled buffer, the memory allocated is the room.
	h := newHeldBuf(&byteBudget{max: 1 << 30})
	h.buf = nil
	if err := h.fill(io.LimitReader(zeros{}, 900_000), 1_000_000, -1, errLim); err != nil || cap(h.buf) != 1_000_000 {
		t.Fatalf("cap %d, err %v", cap(h.buf), err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestConcurrentGzipBombs: bombs read side by side hold at most the
// in-flight budget together, not one decompression limit each. Each is
// answered 413 (it reached the limit) or 429 (the budget was taken).
func TestConcurrentGzipBombs(t *testing.T) { bothGunzips(t, testConcurrentGzipBombs) }

func testConcurrentGzipBombs(t *testing.T, streaming bool) {
	const limit, budget, bombs = 8 << 20, 16 << 20, 16
	e := newGunzipEnv(t, streaming, func(o *Options) {
		o.Limits.MaxDecodedBytes = limit
		o.Limits.MaxInflightBytes = budget
	})
	var body bytes.Buffer
	body.Write(gz(t, []byte(`{"hostname":"bomb","captured_at":"2026-11-25T17:00:00Z","system_info":{"pad":"`)))
	member := gz(t, bytes.Repeat([]byte("0"), 1<<20))
	for range 64 { // 64 MiB inflated, 8x the limit
		body.Write(member)
	}

	// The heap figure counts garbage not yet collected, and on a busy
	// machine the collector lags: a low GOGC keeps what is measured close
	// to what the bodies hold alive, which is what the budget bounds.
	defer debug.SetGCPercent(debug.SetGCPercent(20))
	sample := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() uint64 { rtmetrics.Read(sample); return sample[0].Value.Uint64() }
	base := heap()
	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			if h := heap(); h > peak {
				peak = h
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	codes := make([]int, bombs)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range bombs {
		wg.Go(func() {
			<-start
			r := e.do(http.MethodPost, "/api/v1/ingest", map[string]string{"X-API-KEY": "k", "Content-Encoding": "gzip"}, body.Bytes())
			codes[i] = r.code
			if r.code == http.StatusTooManyRequests && r.hdr.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		})
	}
	close(start)
	wg.Wait()
	close(stop)
	<-sampled

	for i, c := range codes {
		if c != http.StatusRequestEntityTooLarge && c != http.StatusTooManyRequests {
			t.Errorf("bomb %d: status %d, want 413 or 429", i, c)
		}
	}
	grew := int64(peak) - int64(base)
	t.Logf("%d bombs of %d MiB each against a %d MiB budget: heap grew by at most %d MiB; codes %v",
		bombs, 64, budget>>20, grew>>20, codes)
	// Without the budget the bombs hold bombs x limit = 128 MiB live, and the
	// heap (garbage of the doubling buffers included) grows well past that.
	// With it, live bodies stay under the budget; 4x leaves room for the
	// buffers' doubling and for garbage not yet collected.
	if grew > 4*budget {
		t.Fatalf("heap grew by %d MiB with a %d MiB in-flight budget", grew>>20, budget>>20)
	}
	if st := e.state(); st.snapshots != 0 {
		t.Fatal("a bomb was stored")
	}
}
