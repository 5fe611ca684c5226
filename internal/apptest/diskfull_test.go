package apptest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/procscope/procscope/internal/testutil"
	"github.com/procscope/procscope/tools/loadgen/gen"
)

// fill writes filler until the file system of dir has at most leave bytes
// free (0: until it is full).
func fill(t *testing.T, path string, leave int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	chunk := make([]byte, 64<<10)
	for range 100_000 { // bounded: 6 GiB
		var st syscall.Statfs_t
		if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
			t.Fatal(err)
		}
		free := int64(st.Bavail) * st.Bsize
		if free <= leave {
			return
		}
		n := min(int64(len(chunk)), max(free-leave, 4096))
		if _, err := f.Write(chunk[:n]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
}

// retryingPusher sends snapshots like an exporter: a refused one (503) is
// sent again, the same body, after Retry-After (shortened for the test).
type retryingPusher struct {
	pusher
	refused     atomic.Int64
	retryAfters sync.Map // Retry-After values seen
}

func startRetrying(t *testing.T, url string, hosts int, base time.Time) *retryingPusher {
	p := &retryingPusher{pusher: pusher{stop: make(chan struct{})}}
	client := &http.Client{Timeout: 30 * time.Second}
	for w := range hosts {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			host := fmt.Sprintf("full-w%d", w)
			for i := range 20000 {
				at := base.Add(time.Duration(i) * time.Second).Format("2006-01-02T15:04:05.000Z07:00")
				procs := gen.Processes(100+i%100, uint64(w*100000+i), true)
				body := gen.BodyOf(host, at, procs)
				for attempt := 0; ; attempt++ {
					select {
					case <-p.stop:
						return
					default:
					}
					if attempt > 3000 {
						t.Errorf("%s: refused 3000 times", host)
						return
					}
					req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/ingest", strings.NewReader(string(body)))
					req.Header.Set("X-API-KEY", "key-"+host)
					req.Header.Set("Content-Type", "application/json")
					res, err := client.Do(req)
					if err != nil {
						t.Errorf("%s: %v", host, err)
						return
					}
					var r struct {
						ID int64 `json:"snapshot_id"`
					}
					b, _ := io.ReadAll(res.Body)
					_ = res.Body.Close()
					if res.StatusCode == http.StatusServiceUnavailable {
						p.refused.Add(1)
						p.retryAfters.Store(res.Header.Get("Retry-After"), true)
						time.Sleep(50 * time.Millisecond)
						continue
					}
					if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
						t.Errorf("%s: status %d %s", host, res.StatusCode, b)
						return
					}
					if err := jsonUnmarshal(b, &r); err != nil {
						t.Errorf("%s: %v", host, err)
						return
					}
					p.mu.Lock()
					p.acked = append(p.acked, sent{host: host, at: at, procs: procs, id: r.ID})
					p.mu.Unlock()
					break
				}
			}
		}()
	}
	return p
}

func metricValue(t *testing.T, url, name string) string {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	if err != nil {
		return "" // waitFor shows the log
	}
	b, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

func waitFor(t *testing.T, p *Process, what string, cond func() bool) {
	t.Helper()
	for range 1200 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; the aggregator's log:\n%s", what, p.Log())
}

// TestDiskFull: storage on a small tmpfs that fills up. Ingest answers 503
// with Retry-After, reads go on, one log line and storage_full 1; the
// history store turns read-only first and nothing crashes; once space is
// freed it recovers by itself, the refused snapshots are sent again, and
// every acknowledged snapshot reads back identical.
func TestDiskFull(t *testing.T) {
	bin := binary(t)
	mnt := testutil.MountTmpfs(t, "160m")
	storage := filepath.Join(mnt, "store")
	p := serve(t, bin, storage, "--storage.min-free-disk-space=48MiB")
	push := startRetrying(t, p.URL, 3, time.Now().Add(-2*time.Hour).Truncate(time.Second).UTC())
	defer push.halt()
	waitAcked(t, &push.pusher, 60)

	filler := filepath.Join(mnt, "filler")
	// The disk fills up (another process) to below the margin: ingests
	// are refused and the history store turns read-only.
	// The margin is room for what is already under way when ingests stop:
	// the WAL's checkpoint into the database file and the history
	// store's in-memory parts.
	fill(t, filler, 24<<20)
	waitFor(t, p, "history read-only", func() bool {
		return strings.Contains(p.Log(), "history storage is read-only") || strings.Contains(p.Log(), "to read-only mode")
	})
	waitFor(t, p, "storage_full 1", func() bool {
		return metricValue(t, p.URL, "procscope_aggregator_storage_full") == "1"
	})
	// Not filled to the last byte: the margin is the room VictoriaMetrics
	// needs to write out what it holds in memory (it ends the process
	// when that fails; docs/operations.md, "Disk full").
	waitFor(t, p, "a refusal", func() bool { return push.refused.Load() > 0 })
	if _, ok := push.retryAfters.Load("30"); !ok {
		t.Fatal("503 without Retry-After: 30")
	}
	// Reads go on.
	acked := push.soFar()
	verifyAll(t, &http.Client{Timeout: 30 * time.Second}, p.URL, acked[len(acked)-5:])
	if code, _ := getBody(t, p.URL+"/api/v1/hosts"); code != 200 {
		t.Fatalf("hosts while full: %d", code)
	}
	before := len(push.soFar())
	time.Sleep(8 * time.Second) // refusals go on; VictoriaMetrics flushes into the margin
	if n := strings.Count(p.Log(), "storage is full"); n != 1 {
		t.Fatalf("%d log lines about the full storage, want 1:\n%s", n, p.Log())
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, p, "storage_full 0", func() bool {
		return metricValue(t, p.URL, "procscope_aggregator_storage_full") == "0"
	})
	waitAcked(t, &push.pusher, before+60)
	push.halt()
	select {
	case <-p.Done():
		t.Fatalf("the aggregator exited:\n%s", p.Log())
	default:
	}
	all := push.soFar()
	verifyAll(t, &http.Client{Timeout: 30 * time.Second}, p.URL, all)
	if !p.Stop(30 * time.Second) {
		t.Fatalf("unclean stop:\n%s", p.Log())
	}
	if code, out := storageCheck(t, bin, storage); code != 0 {
		t.Fatalf("storage check after the full disk: %d\n%s", code, out)
	}
	t.Logf("%d snapshots acknowledged, %d refusals (503) sent again; all read back identical", len(all), push.refused.Load())
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
