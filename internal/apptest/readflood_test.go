package apptest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReadFloodRSS: one client opening 100 reads of a 20,000-process list
// at once on the real aggregator. With the default read limits (8 per
// client running, 4 times that in flight, 64 in all) 8 run at a time,
// 24 wait for them and the rest get 429 at once;
// another client is served during the flood, and the peak RSS rise is
// logged beside the same flood with the limits raised out of the way
// (the baseline, measured in the same run): the figure of
// performance.md#security.
func TestReadFloodRSS(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("SKIPPING: no /proc/PID/status here to read RSS from")
	}
	bin := binary(t)
	const procs, flood = 20_000, 100
	var b strings.Builder
	b.WriteString(`{"hostname":"big-1","captured_at":"` + time.Now().UTC().Add(-time.Minute).Format(time.RFC3339) + `","system_info":{},"processes":[`)
	for i := range procs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"pid":%d,"ppid":1,"name":"worker-%d","cmdline":"/usr/bin/worker --queue=q%d --threads=4","cpu_percent":%d.5,"memory_mb":%d,"username":"app","status":"sleeping","num_threads":4}`,
			100+i, i%500, i%97, i%13, 10+i%300)
	}
	b.WriteString("]}")
	body := []byte(b.String())

	for _, tc := range []struct {
		name    string
		limited bool
		flags   []string
	}{
		{"default limits", true, nil},
		{"limits raised (baseline)", false, []string{"--web.max-reads-per-client=1000", "--web.max-concurrent-reads=1000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Start(bin, t.TempDir(), 30*time.Second, append([]string{"--web.trusted-proxies=127.0.0.0/8,::1", "--no-history"}, tc.flags...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Stop(15 * time.Second)
			client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: flood}}
			code, id, err := post(client, p.URL, "big-1-key-123", body)
			if err != nil || code != http.StatusCreated {
				t.Fatalf("ingest of %d processes: %d %v", procs, code, err)
			}
			get := func(from string, path string) (int, int) {
				req, _ := http.NewRequest(http.MethodGet, p.URL+path, nil)
				req.Header.Set("X-Forwarded-For", from)
				res, err := client.Do(req)
				if err != nil {
					t.Errorf("GET %s: %v", path, err)
					return 0, 0
				}
				defer func() { _ = res.Body.Close() }()
				n, _ := io.Copy(io.Discard, res.Body)
				return res.StatusCode, int(n)
			}
			list := fmt.Sprintf("/api/v1/snapshots/%d/processes", id)
			if c, n := get("203.0.113.1", list); c != http.StatusOK {
				t.Fatalf("one read: %d", c)
			} else {
				t.Logf("one answer: %d KiB", n>>10)
			}
			base := procStatus(t, p.PID())

			codes := make(chan int, flood)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range flood {
				wg.Go(func() {
					<-start
					c, _ := get("203.0.113.1", list)
					codes <- c
				})
			}
			close(start)
			// Another client during the flood.
			other, _ := get("203.0.113.2", "/api/v1/hosts")
			wg.Wait()
			close(codes)
			after := procStatus(t, p.PID())
			count := map[int]int{}
			for c := range codes {
				count[c]++
			}
			t.Logf("%s: %d reads of %d processes from one client: answered %v; another client got %d; RSS %d MiB before, peak (VmHWM) %d MiB: +%d MiB",
				tc.name, flood, procs, count, other, base.rss>>20, after.hwm>>20, (after.hwm-base.rss)>>20)
			if !tc.limited {
				return
			}
			if count[http.StatusOK]+count[http.StatusTooManyRequests] != flood || count[http.StatusTooManyRequests] == 0 {
				t.Fatalf("flood answered %v, want 200s and 429s only, some 429s", count)
			}
			if other != http.StatusOK {
				t.Fatalf("another client during the flood: %d, want 200", other)
			}
		})
	}
}
