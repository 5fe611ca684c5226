package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procscope/procscope/internal/apptest"
	"github.com/procscope/procscope/internal/testutil"
)

// TestTwoAggregatorsOnePostgres: two aggregator binaries on one
// PostgreSQL. Hosts push to A and fail over to B; a live stream on B hears
// of A's snapshots; A is SIGKILLed mid-run and restarted; every
// acknowledged snapshot then reads back the same from both, once.
func TestTwoAggregatorsOnePostgres(t *testing.T) {
	bins := buildBinaries(t)
	u, _ := url.Parse(testutil.PostgresURL(t))
	pw, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	t.Setenv("PROCSCOPE_STORAGE_POSTGRES_URL", u.String())
	t.Setenv("PGPASSWORD", pw)
	start := func(name string) *apptest.Process {
		p, err := apptest.Start(bins.Aggregator, t.TempDir(), 60*time.Second, "--no-history", "--hosts.enroll-rate=0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Kill() })
		t.Logf("aggregator %s: pid %d at %s", name, p.PID(), p.URL)
		return p
	}
	a, b := start("A"), start("B")

	// The live stream on B, every host.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.URL+"/api/v1/stream", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	heard := make(chan int64, 1000)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			var ev struct {
				ID int64 `json:"snapshot_id"`
			}
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok && json.Unmarshal([]byte(d), &ev) == nil {
				select {
				case heard <- ev.ID:
				default:
				}
			}
		}
	}()

	type ack struct {
		host, at string
		id       int64
	}
	var mu sync.Mutex
	var acks []ack
	var aURL = a.URL
	var fromA []int64 // acknowledged by A before the kill
	push := func(target, host, at string) (int64, bool) {
		body := fmt.Sprintf(`{"hostname":%q,"captured_at":%q,"system_info":{"os":{"name":"linux"},"n":%q},"processes":[{"pid":1,"ppid":0,"name":"init","cpu_percent":0.5,"memory_mb":1.5},{"pid":7,"ppid":1,"name":"<b>x</b>","cpu_percent":%d,"memory_mb":2}]}`,
			host, at, at, int(at[17]-'0')*10+int(at[18]-'0')) // the seconds: "07" is not a JSON number
		r, _ := http.NewRequestWithContext(ctx, http.MethodPost, target+"/api/v1/ingest", strings.NewReader(body))
		r.Header.Set("X-API-KEY", "key-of-"+host)
		r.Header.Set("Content-Type", "application/json")
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Do(r)
		if err != nil {
			return 0, false
		}
		defer func() { _ = resp.Body.Close() }()
		var out struct {
			ID int64 `json:"snapshot_id"`
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 || json.Unmarshal(b, &out) != nil {
			t.Logf("%s %s at %s: %d %s", target, host, at, resp.StatusCode, b)
			return 0, false
		}
		return out.ID, true
	}
	base := time.Now().UTC().Add(-5 * time.Minute).Truncate(time.Second)
	hosts := []string{"web-1", "db<1>", "cache ☃"}
	const rounds = 30
	for k := range rounds {
		if k == rounds/3 {
			a.Kill() // SIGKILL, mid-run
			t.Log("aggregator A killed")
		}
		if k == 2*rounds/3 {
			a = start("A again") // same database, a new process
			aURL = a.URL
		}
		for _, h := range hosts {
			at := base.Add(time.Duration(k) * time.Second).Format("2006-01-02T15:04:05.000Z")
			// A first, then B: the exporter's failover order. A retry
			// of the same snapshot is idempotent.
			id, ok := push(aURL, h, at)
			if ok && k < rounds/3 {
				fromA = append(fromA, id)
			}
			// On B, retried as the exporter retries (a loaded machine
			// may time out or answer 429 now and then).
			for try := 0; !ok && try < 5; try++ {
				if try > 0 {
					time.Sleep(time.Duration(try) * 300 * time.Millisecond)
				}
				id, ok = push(b.URL, h, at)
			}
			if !ok {
				t.Fatalf("%s at %s: neither aggregator took it (B refused 5 times)", h, at)
			}
			// Sometimes the same push again, to the other one.
			if k%7 == 0 {
				if id2, ok2 := push(b.URL, h, at); ok2 && id2 != id {
					t.Fatalf("retry of %s at %s on B got id %d, A gave %d", h, at, id2, id)
				}
			}
			mu.Lock()
			acks = append(acks, ack{h, at, id})
			mu.Unlock()
		}
	}

	// B's live stream heard at least one of A's snapshots.
	wantA := map[int64]bool{}
	for _, id := range fromA {
		wantA[id] = true
	}
	deadline := time.After(10 * time.Second)
	for found := false; !found; {
		select {
		case id := <-heard:
			found = wantA[id]
		case <-deadline:
			t.Fatal("the live stream on B never announced a snapshot ingested by A")
		}
	}

	get := func(base, path string) string { t.Helper(); return statusAndBody(t, base+path) }
	for _, ak := range acks {
		for _, p := range []string{fmt.Sprintf("/api/v1/snapshots/%d", ak.id), fmt.Sprintf("/api/v1/snapshots/%d/processes", ak.id)} {
			ga, gb := get(a.URL, p), get(b.URL, p)
			if ga != gb || !strings.HasPrefix(ga, "200 ") {
				t.Fatalf("%s: A %.200s\nB %.200s", p, ga, gb)
			}
		}
		meta := get(b.URL, fmt.Sprintf("/api/v1/snapshots/%d", ak.id))
		hb, _ := json.Marshal(ak.host)
		if !strings.Contains(meta, `"hostname":`+string(hb)) || !strings.Contains(meta, `"captured_at":"`+ak.at+`"`) {
			t.Fatalf("snapshot %d is not %s at %s: %s", ak.id, ak.host, ak.at, meta)
		}
	}
	// None duplicated: each host lists exactly its acknowledged snapshots.
	for _, h := range hosts {
		var list []struct {
			ID int64  `json:"snapshot_id"`
			At string `json:"captured_at"`
		}
		body := get(a.URL, "/api/v1/hosts/"+url.PathEscape(h)+"/snapshots?limit=10000&from="+
			base.Add(-time.Minute).Format(time.RFC3339)+"&to="+base.Add(time.Hour).Format(time.RFC3339))
		if err := json.Unmarshal([]byte(strings.TrimPrefix(body, "200 ")), &list); err != nil {
			t.Fatalf("%s: %s", h, body)
		}
		if len(list) != rounds {
			t.Fatalf("%s: %d snapshots stored, %d acknowledged", h, len(list), rounds)
		}
		seen := map[string]bool{}
		for _, s := range list {
			if seen[s.At] {
				t.Fatalf("%s: %s stored twice", h, s.At)
			}
			seen[s.At] = true
		}
	}
	if !bytes.Contains([]byte(a.Log()), []byte("storage open")) {
		t.Errorf("restarted A did not open its storage:\n%s", a.Log())
	}
}
