package apptest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// TestGzipBombRSS: gzip bombs (1 GiB of zeros, ~1 MiB on the wire) cost
// the real aggregator at most 100 MiB of RSS for one and 200 MiB for four
// at once, measured as its peak (VmHWM) over its RSS before, with the
// default limits (64 MiB decompressed, 128 MiB in flight); and ordinary
// ingests during the four bombs are all stored (201).
func TestGzipBombRSS(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("SKIPPING: no /proc/PID/status here to read RSS from")
	}
	bin := binary(t)
	bomb := gzipBomb(t, t.TempDir(), 1<<30)
	t.Logf("bomb: %d bytes on the wire, 1 GiB of zeros inflated", len(bomb))

	for _, tc := range []struct {
		bombs   int
		maxRise int64
	}{{1, 100 << 20}, {4, 200 << 20}} {
		t.Run(strconv.Itoa(tc.bombs), func(t *testing.T) {
			p, err := Start(bin, t.TempDir(), 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Stop(15 * time.Second)
			client := &http.Client{Timeout: time.Minute}
			// A first ordinary ingest: what every ingest needs is in place
			// before the baseline is read.
			at := time.Now().UTC().Add(-time.Hour)
			ingest := func(i int) int {
				body := fmt.Sprintf(`{"hostname":"web-1","captured_at":%q,"system_info":{},"processes":[{"pid":1,"ppid":0,"name":"init","cpu_percent":0.5,"memory_mb":10}]}`,
					at.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano))
				code, _, err := post(client, p.URL, "web-1-key", []byte(body))
				if err != nil {
					t.Errorf("ordinary ingest: %v", err)
				}
				return code
			}
			if c := ingest(0); c != http.StatusCreated {
				t.Fatalf("first ingest: %d", c)
			}
			base := procStatus(t, p.PID())

			var bombsLeft atomic.Int32
			bombsLeft.Store(int32(tc.bombs))
			codes := make([]int, tc.bombs)
			var wg sync.WaitGroup
			for i := range tc.bombs {
				wg.Go(func() {
					defer bombsLeft.Add(-1)
					req, _ := http.NewRequest(http.MethodPost, p.URL+"/api/v1/ingest", bytes.NewReader(bomb))
					req.Header.Set("X-API-KEY", "bomb-key")
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Content-Encoding", "gzip")
					res, err := client.Do(req)
					if err != nil {
						t.Errorf("bomb %d: %v", i, err)
						return
					}
					_ = res.Body.Close()
					codes[i] = res.StatusCode
				})
			}
			// Ordinary ingests while the bombs are in flight, each stored.
			during := 0
			if tc.bombs > 1 {
				for i := 1; i <= 500 && bombsLeft.Load() > 0; i++ {
					c := ingest(i)
					if c != http.StatusCreated {
						t.Errorf("ordinary ingest during the bombs: status %d, want 201", c)
					}
					if bombsLeft.Load() > 0 {
						during++
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			wg.Wait()
			after := procStatus(t, p.PID())
			for i, c := range codes {
				// 413: decompression stopped at the limit; 429: the
				// in-flight budget was held by the other bombs.
				if c != http.StatusRequestEntityTooLarge && c != http.StatusTooManyRequests {
					t.Errorf("bomb %d: status %d, want 413 or 429", i, c)
				}
			}
			rise := after.hwm - base.rss
			t.Logf("%d bomb(s), answered %v: RSS %d MiB before, peak (VmHWM) %d MiB after: +%d MiB (at most %d MiB); %d ordinary ingests stored during the bombs",
				tc.bombs, codes, base.rss>>20, after.hwm>>20, rise>>20, tc.maxRise>>20, during)
			if rise > tc.maxRise {
				t.Fatalf("%d bomb(s) raised the aggregator's RSS by %d MiB, more than %d MiB", tc.bombs, rise>>20, tc.maxRise>>20)
			}
			if tc.bombs > 1 && during == 0 {
				t.Error("no ordinary ingest ran while the bombs were in flight")
			}
		})
	}
}

// gzipBomb streams size zeros through gzip into a file in dir and returns
// its bytes (size/1000 or so).
func gzipBomb(t *testing.T, dir string, size int) []byte {
	t.Helper()
	path := filepath.Join(dir, "bomb.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	zeros := make([]byte, 1<<20)
	for range size / len(zeros) {
		if _, err := zw.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type memStatus struct{ rss, hwm int64 }

// procStatus reads VmRSS and VmHWM (the peak RSS) of pid, in bytes.
func procStatus(t *testing.T, pid int) memStatus {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var m memStatus
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", k, v, err)
		}
		if k == "VmRSS" {
			m.rss = kb << 10
		} else {
			m.hwm = kb << 10
		}
	}
	if m.rss == 0 || m.hwm == 0 {
		t.Fatalf("no VmRSS/VmHWM in /proc/%d/status", pid)
	}
	return m
}

// TestIngestBodyFlags: --ingest.max-clock-skew and --web.body-timeout
// reach the ingest handler of the real binary.
func TestIngestBodyFlags(t *testing.T) {
	p, err := Start(binary(t), t.TempDir(), 30*time.Second, "--ingest.max-clock-skew=1m", "--web.body-timeout=1s")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(15 * time.Second)

	ahead := time.Now().UTC().Add(2 * time.Minute).Format(time.RFC3339)
	req, _ := http.NewRequest(http.MethodPost, p.URL+"/api/v1/ingest", strings.NewReader(
		`{"hostname":"web-1","captured_at":"`+ahead+`","system_info":{},"processes":[]}`))
	req.Header.Set("X-API-KEY", "web-1-key")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "ahead of the aggregator's clock (more than --ingest.max-clock-skew=1m0s)") {
		t.Fatalf("2 minutes ahead with a 1m skew: %d %s", res.StatusCode, msg)
	}

	c, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	start := time.Now()
	_, _ = fmt.Fprintf(c, "POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nX-API-KEY: web-1-key\r\nContent-Length: 100\r\n\r\n{")
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 408 ") {
		t.Fatalf("a body that never ends: %q %v after %v, want 408", line, err, time.Since(start))
	}
	t.Logf("a body that never ends: %q after %v (--web.body-timeout=1s)", strings.TrimSpace(line), time.Since(start))
}
