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

func TestBudgetReader(t *testing.T) {
	b := &byteBudget{max: 10}
	r1 := &budgetReader{r: bytes.NewReader(make([]byte, 6)), b: b}
	if n, err := io.Copy(io.Discard, r1); n != 6 || err != nil {
		t.Fatalf("first body: %d %v", n, err)
	}
	r2 := &budgetReader{r: bytes.NewReader(make([]byte, 6)), b: b}
	if _, err := io.Copy(io.Discard, r2); !errors.Is(err, errInflight) {
		t.Fatalf("second body past the budget: %v", err)
	}
	r2.release()
	r1.release()
	if got := b.used.Load(); got != 0 {
		t.Fatalf("budget not given back: %d in use", got)
	}
	r3 := &budgetReader{r: bytes.NewReader(make([]byte, 10)), b: b}
	if n, err := io.Copy(io.Discard, r3); n != 10 || err != nil {
		t.Fatalf("a body of the whole budget after release: %d %v", n, err)
	}
}

// TestConcurrentGzipBombs: bombs read side by side hold at most the
// in-flight budget together, not one decompression limit each. Each is
// answered 413 (it reached the limit) or 429 (the budget was taken).
func TestConcurrentGzipBombs(t *testing.T) { bothGunzips(t, testConcurrentGzipBombs) }

func testConcurrentGzipBombs(t *testing.T, streaming bool) {
	const limit, budget, bombs = 8 << 20, 16 << 20, 16
	e := newEnv(t, func(o *Options) {
		o.Limits.MaxDecodedBytes = limit
		o.Limits.MaxInflightBytes = budget
		o.StreamingGunzip = streaming
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
