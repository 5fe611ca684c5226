package apptest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestEventsEndToEnd runs the real aggregator: snapshots with attribution
// and I/O read back with them (absent staying absent), a process exit and
// its restart become events at GET /api/v1/hosts/{hostname}/events, and a
// restart across an aggregator restart (SIGTERM, start again on the same
// storage) is still recognised as one.
func TestEventsEndToEnd(t *testing.T) {
	bin := binary(t)
	storage := t.TempDir()
	p, err := Start(bin, storage, 30*time.Second, "--events.restart-window=10m")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { p.Stop(15 * time.Second) }()
	client := &http.Client{Timeout: 30 * time.Second}
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	created := t0.Add(-time.Hour).Format(time.RFC3339)
	send := func(i int, procs string) {
		t.Helper()
		body := fmt.Sprintf(`{"hostname":"web-1","captured_at":%q,"system_info":{},"processes":[{"pid":1,"ppid":0,"name":"init","cpu_percent":0,"memory_mb":10,"create_time":%q,"unit":"init.scope"}%s]}`,
			t0.Add(time.Duration(i)*2*time.Second).Format(time.RFC3339), created, procs)
		if code, _, err := post(client, p.URL, "web-1-key-0123", []byte(body)); err != nil || code != http.StatusCreated {
			t.Fatalf("ingest %d: %d %v", i, code, err)
		}
	}
	svc := func(pid int, at int) string {
		return fmt.Sprintf(`,{"pid":%d,"ppid":1,"name":"app","cpu_percent":1,"memory_mb":50,"create_time":%q,"unit":"system.slice/app.service","container_id":"c0ffee","read_bytes_per_sec":4096,"write_bytes_per_sec":0}`,
			pid, t0.Add(time.Duration(at)*time.Second).Format(time.RFC3339))
	}
	get := func(path string) string {
		t.Helper()
		resp, err := client.Get(p.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	// Events are stored just after the ingest answers: wait (bounded).
	events := func(want int) string {
		t.Helper()
		q := "/api/v1/hosts/web-1/events?from=" + t0.Add(-time.Minute).Format(time.RFC3339) + "&to=" + t0.Add(time.Hour).Format(time.RFC3339)
		var body string
		for range 100 {
			body = get(q)
			if strings.Count(body, `"kind"`) >= want {
				return body
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("wanted %d events, got %s", want, body)
		return ""
	}

	send(0, svc(100, -10))
	send(1, svc(100, -10))
	var procs []map[string]any
	latest := get("/api/v1/snapshots/latest?hostname=web-1")
	var meta struct {
		ID int64 `json:"snapshot_id"`
	}
	if err := json.Unmarshal([]byte(latest), &meta); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(get(fmt.Sprintf("/api/v1/snapshots/%d/processes", meta.ID))), &procs); err != nil {
		t.Fatal(err)
	}
	if len(procs) != 2 || procs[1]["unit"] != "system.slice/app.service" || procs[1]["read_bytes_per_sec"] != 4096.0 ||
		procs[1]["write_bytes_per_sec"] != 0.0 || procs[0]["read_bytes_per_sec"] != nil {
		t.Fatalf("processes read back as %v", procs)
	}
	send(2, "")          // app exited
	send(3, svc(200, 5)) // and is back: restarted
	body := events(2)
	if !strings.Contains(body, `"kind":"restarted","pid":200`) || !strings.Contains(body, `"prev_pid":100`) ||
		!strings.Contains(body, `"kind":"exited","pid":100`) {
		t.Fatalf("events %s", body)
	}

	// The aggregator restarts; app dies and comes back once more.
	if !p.Stop(15 * time.Second) {
		t.Fatal("aggregator did not stop on SIGTERM")
	}
	if p, err = Start(bin, storage, 30*time.Second, "--events.restart-window=10m"); err != nil {
		t.Fatal(err)
	}
	send(4, "")
	send(5, svc(300, 9))
	body = events(4)
	if !strings.Contains(body, `"kind":"restarted","pid":300`) || !strings.Contains(body, `"prev_pid":200`) || strings.Contains(body, `"kind":"started"`) {
		t.Fatalf("events after the restart %s", body)
	}
}
