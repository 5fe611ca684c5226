package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/internal/inflate"
	"github.com/procscope/procscope/aggregator/internal/ingest"
	"github.com/procscope/procscope/aggregator/internal/store"
)

// env is an API on the real SQLite store in a temp dir, served on
// 127.0.0.1 with a port from the OS.
type env struct {
	t   *testing.T
	a   *API
	st  *store.SQLite
	srv *httptest.Server
}

func newEnv(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	return newGunzipEnv(t, false, mod)
}

// newGunzipEnv is newEnv with, if streaming, Go's streaming gzip reader
// even where libdeflate is present.
func newGunzipEnv(t *testing.T, streaming bool, mod func(*Options)) *env {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), t.TempDir(), store.Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&opts)
	}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if streaming {
		a.useStreamingGunzip()
	}
	return &env{t: t, a: a, st: st, srv: serveStore(t, a, st)}
}

// serveStore serves a over HTTP on st until the test ends (then the API,
// the server and the store are closed, in that order).
func serveStore(t *testing.T, a *API, st store.Store) *httptest.Server {
	t.Helper()
	a.SetStore(st)
	srv := httptest.NewServer(a)
	t.Cleanup(func() {
		a.Close()
		srv.Close()
		_ = st.Close()
	})
	return srv
}

type resp struct {
	code int
	hdr  http.Header
	body string
}

func (e *env) do(method, path string, hdr map[string]string, body []byte) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if body == nil {
		req.Body = nil
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, string(b)}
}

func (e *env) get(path string) resp { return e.do(http.MethodGet, path, nil, nil) }

func (e *env) ingest(key string, body []byte) resp {
	return e.do(http.MethodPost, "/api/v1/ingest", map[string]string{"X-API-KEY": key, "Content-Type": "application/json"}, body)
}

func mustStatus(t *testing.T, r resp, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d: %s", r.code, code, r.body)
	}
}

// mustJSONError checks the one error shape: a JSON object with "error".
func mustJSONError(t *testing.T, r resp) string {
	t.Helper()
	if ct := r.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error with Content-Type %q: %s", ct, r.body)
	}
	var e struct {
		Error *string `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error == nil || *e.Error == "" {
		t.Fatalf("not a {\"error\": ...} body: %q", r.body)
	}
	return *e.Error
}

// bothGunzips runs a test with the libdeflate fast path (where the library
// is present) and with the streaming gunzip: both must answer alike.
func bothGunzips(t *testing.T, test func(t *testing.T, streaming bool)) {
	t.Run("streaming", func(t *testing.T) { test(t, true) })
	if ok, err := inflate.Available(); !ok {
		if os.Getenv("REQUIRE_E2E") != "" {
			t.Fatalf("REQUIRE_E2E is set but libdeflate is not usable: %v (install Debian's libdeflate0)", err)
		}
		t.Logf("SKIPPING the libdeflate half: %v", err)
		return
	}
	t.Run("libdeflate", func(t *testing.T) { test(t, false) })
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func snap(host, at, procs string) []byte {
	return []byte(fmt.Sprintf(`{"hostname":%q,"captured_at":%q,"system_info":{"os":{"name":"linux"}},"processes":%s}`, host, at, procs))
}

const proc1 = `[{"pid":1,"ppid":0,"name":"systemd","cpu_percent":0.4,"memory_mb":12.6}]`

// state is what a rejected request must leave untouched.
type state struct {
	hosts     string
	snapshots int64
}

func (e *env) state() state {
	e.t.Helper()
	hosts, err := e.st.Hosts(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	stats, err := e.st.Stats(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := json.Marshal(hosts)
	return state{string(b), stats.Snapshots}
}

// TestIngestCheckOrder: docs/api.md's order 401 -> 403 -> 413 -> 415 -> 400,
// each rule in one row, and nothing rejected changes what is stored, not
// even last_seen.
func TestIngestCheckOrder(t *testing.T) { bothGunzips(t, testIngestCheckOrder) }

func testIngestCheckOrder(t *testing.T, streaming bool) {
	e := newGunzipEnv(t, streaming, func(o *Options) {
		o.Limits = Limits{MaxWireBytes: 64 << 10, MaxDecodedBytes: 256 << 10, MaxProcesses: 100}
	})
	mustStatus(t, e.ingest("k1", snap("web-1", "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)
	// last_seen has millisecond resolution: make sure a wrongly accepted
	// request would move it.
	time.Sleep(5 * time.Millisecond)
	before := e.state()

	big := func(host string) []byte { // hostname first, over the wire limit
		return snap(host, "2026-11-25T17:01:00Z", `[{"pid":1,"ppid":0,"name":"`+strings.Repeat("x", 70<<10)+`","cpu_percent":0,"memory_mb":0}]`)
	}
	bomb := func(host string) []byte { // small on the wire, over the decompressed limit
		return gz(t, snap(host, "2026-11-25T17:01:00Z", `[{"pid":1,"ppid":0,"name":"`+strings.Repeat("x", 300<<10)+`","cpu_percent":0,"memory_mb":0}]`))
	}
	many := func(host string) []byte {
		var b strings.Builder
		b.WriteString("[")
		for i := 1; i <= 101; i++ {
			if i > 1 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"pid":%d,"ppid":0,"name":"p","cpu_percent":0,"memory_mb":0}`, i)
		}
		b.WriteString("]")
		return snap(host, "2026-11-25T17:01:00Z", b.String())
	}
	ok := snap("web-1", "2026-11-25T17:01:00Z", proc1)
	badPID := snap("web-1", "2026-11-25T17:01:00Z", `[{"pid":1.0,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0}]`)
	hostLast := []byte(`{"processes":[{"pid":"x"}],"captured_at":"2026-11-25T17:01:00Z","system_info":{},"hostname":"web-1"}`)
	const json = "application/json"

	type row struct {
		name  string
		key   string
		ct    string
		ce    string
		body  []byte
		code  int
		inMsg string
	}
	rows := []row{
		{"no key", "", json, "", ok, 401, "X-API-KEY"},
		{"blank key", "   ", json, "", ok, 401, "X-API-KEY"},
		{"no key, everything else wrong too", "", "text/plain", "br", big("web-1"), 401, "X-API-KEY"},
		{"wrong key", "k2", json, "", ok, 403, "does not match"},
		{"wrong key before 413 (wire)", "k2", json, "", big("web-1"), 403, "does not match"},
		{"wrong key before 413 (decompressed)", "k2", json, "gzip", bomb("web-1"), 403, "does not match"},
		{"wrong key before 413 (processes)", "k2", json, "", many("web-1"), 403, "does not match"},
		{"wrong key before 415", "k2", "text/plain", "", ok, 403, "does not match"},
		{"wrong key before 400", "k2", json, "", badPID, 403, "does not match"},
		{"wrong key, hostname after bad content", "k2", json, "", hostLast, 403, "does not match"},
		{"413 wire", "k1", json, "", big("web-1"), 413, "larger than 65536 bytes"},
		{"413 wire, new host", "k9", json, "", big("new-host"), 413, "larger than"},
		{"413 decompressed", "k1", json, "gzip", bomb("web-1"), 413, "after decompression"},
		{"413 processes", "k1", json, "", many("web-1"), 413, "more than 100 processes"},
		{"413 before 415", "k1", "text/plain", "", big("web-1"), 413, "larger than"},
		{"415 content type", "k1", "text/plain", "", ok, 415, "Content-Type"},
		{"415 form", "k1", "application/x-www-form-urlencoded", "", ok, 415, "Content-Type"},
		{"415 charset", "k1", "application/json; charset=iso-8859-1", "", ok, 415, "charset"},
		{"415 content encoding", "k1", json, "br", ok, 415, "Content-Encoding"},
		{"415 stacked encodings", "k1", json, "gzip, gzip", gz(t, gz(t, ok)), 415, "Content-Encoding"},
		{"415 before 400", "k1", "text/plain", "", badPID, 415, "Content-Type"},
		{"400 invalid gzip", "k1", json, "gzip", ok, 400, "gzip"},
		{"400 truncated gzip", "k1", json, "gzip", gz(t, ok)[:30], 400, "gzip"},
		{"400 pid float", "k1", json, "", badPID, 400, "integer"},
		{"400 pid string", "k1", json, "", snap("web-1", "2026-11-25T17:01:00Z", `[{"pid":"1","ppid":0,"name":"a","cpu_percent":0,"memory_mb":0}]`), 400, "pid"},
		{"400 duplicate pid", "k1", json, "", snap("web-1", "2026-11-25T17:01:00Z", `[{"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0},{"pid":1,"ppid":0,"name":"b","cpu_percent":0,"memory_mb":0}]`), 400, "duplicate pid"},
		{"400 processes null", "k1", json, "", snap("web-1", "2026-11-25T17:01:00Z", `null`), 400, "null"},
		{"400 hostname too long", "k1", json, "", snap(strings.Repeat("h", 254), "2026-11-25T17:01:00Z", proc1), 400, "253"},
		{"400 hostname control", "k1", json, "", snap("web\u00851", "2026-11-25T17:01:00Z", proc1), 400, "control"},
		{"400 captured_at", "k1", json, "", snap("web-1", "yesterday", proc1), 400, "RFC 3339"},
		{"400 not json", "k1", json, "", []byte("hello"), 400, "invalid JSON"},
		{"400 empty body", "k1", json, "", nil, 400, "empty"},
		{"400 missing field", "k1", json, "", []byte(`{"hostname":"web-1","captured_at":"2026-11-25T17:01:00Z","processes":[]}`), 400, "system_info"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			hdr := map[string]string{}
			if r.key != "" {
				hdr["X-API-KEY"] = r.key
			}
			if r.ct != "" {
				hdr["Content-Type"] = r.ct
			}
			if r.ce != "" {
				hdr["Content-Encoding"] = r.ce
			}
			res := e.do(http.MethodPost, "/api/v1/ingest", hdr, r.body)
			if res.code != r.code {
				t.Fatalf("status %d, want %d: %s", res.code, r.code, res.body)
			}
			if msg := mustJSONError(t, res); !strings.Contains(msg, r.inMsg) {
				t.Errorf("error %q does not mention %q", msg, r.inMsg)
			}
			if after := e.state(); after != before {
				t.Fatalf("a rejected request changed the store:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}

	// The accepted forms: no Content-Type, charset utf-8, gzip, x-gzip,
	// identity, trailing slash.
	accepted := []struct {
		name, ct, ce, path string
		body               []byte
	}{
		{"no content type", "", "", "/api/v1/ingest", snap("web-1", "2026-11-25T17:02:00Z", proc1)},
		{"charset", "application/json; charset=UTF-8", "", "/api/v1/ingest", snap("web-1", "2026-11-25T17:03:00Z", proc1)},
		{"gzip", json, "gzip", "/api/v1/ingest", gz(t, snap("web-1", "2026-11-25T17:04:00Z", proc1))},
		{"x-gzip", json, "x-gzip", "/api/v1/ingest", gz(t, snap("web-1", "2026-11-25T17:05:00Z", proc1))},
		{"identity", json, "identity", "/api/v1/ingest", snap("web-1", "2026-11-25T17:06:00Z", proc1)},
		{"trailing slash", json, "", "/api/v1/ingest/", snap("web-1", "2026-11-25T17:07:00Z", proc1)},
		{"exactly the wire limit", json, "", "/api/v1/ingest", padTo(snap("web-1", "2026-11-25T17:08:00Z", proc1), 64<<10)},
	}
	for _, a := range accepted {
		hdr := map[string]string{"X-API-KEY": "k1"}
		if a.ct != "" {
			hdr["Content-Type"] = a.ct
		}
		if a.ce != "" {
			hdr["Content-Encoding"] = a.ce
		}
		res := e.do(http.MethodPost, a.path, hdr, a.body)
		if res.code != http.StatusCreated {
			t.Errorf("%s: status %d, want 201: %s", a.name, res.code, res.body)
		}
	}
}

// padTo pads a JSON object with spaces to exactly n bytes.
func padTo(b []byte, n int) []byte {
	return append(b[:len(b)-1:len(b)-1], append(bytes.Repeat([]byte(" "), n-len(b)), '}')...)
}

func TestIngestIdempotentAndLateReplay(t *testing.T) {
	e := newEnv(t, nil)
	r1 := e.ingest("k", snap("h", "2026-11-25T17:00:00.500Z", proc1))
	mustStatus(t, r1, http.StatusCreated)
	r2 := e.ingest("k", snap("h", "2026-11-25T17:00:10Z", proc1))
	mustStatus(t, r2, http.StatusCreated)
	// The same moment written with another offset is the same snapshot.
	again := e.ingest("k", snap("h", "2026-11-25T18:00:00.5+01:00", `[]`))
	mustStatus(t, again, http.StatusOK)
	if again.body != r1.body {
		t.Fatalf("retry answered %s, first answer was %s", again.body, r1.body)
	}
	// A late replay is stored but does not become latest.
	late := e.ingest("k", snap("h", "2026-11-25T16:59:00Z", proc1))
	mustStatus(t, late, http.StatusCreated)
	var lr, l2 ingestResponse
	_ = json.Unmarshal([]byte(late.body), &lr)
	_ = json.Unmarshal([]byte(r2.body), &l2)
	if lr.SnapshotID <= l2.SnapshotID {
		t.Fatalf("ids must grow: late %d, previous %d", lr.SnapshotID, l2.SnapshotID)
	}
	lat := e.get("/api/v1/snapshots/latest?hostname=h")
	mustStatus(t, lat, http.StatusOK)
	var got snapshotJSON
	if err := json.Unmarshal([]byte(lat.body), &got); err != nil {
		t.Fatal(err)
	}
	if got.SnapshotID != l2.SnapshotID || got.CapturedAt != "2026-11-25T17:00:10.000Z" {
		t.Fatalf("latest is %+v, want id %d at 17:00:10", got, l2.SnapshotID)
	}
	// The late one is readable in its place.
	mustStatus(t, e.get(fmt.Sprintf("/api/v1/snapshots/%d/processes", lr.SnapshotID)), http.StatusOK)
}

// TestNewHostRace: first ingests of one new hostname with different keys,
// at once: exactly one key wins; every request of the winner succeeds.
func TestNewHostRace(t *testing.T) {
	e := newEnv(t, nil)
	const n = 8
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/v1/ingest",
				bytes.NewReader(snap("race", fmt.Sprintf("2026-11-25T17:00:%02dZ", i), proc1)))
			req.Header.Set("X-API-KEY", fmt.Sprintf("key-%d", i))
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_ = res.Body.Close()
			codes[i] = res.StatusCode
		}()
	}
	wg.Wait()
	won := 0
	for _, c := range codes {
		switch c {
		case http.StatusCreated:
			won++
		case http.StatusForbidden:
		default:
			t.Fatalf("unexpected status %d in %v", c, codes)
		}
	}
	if won != 1 {
		t.Fatalf("%d keys won the race (codes %v), want exactly 1", won, codes)
	}
}

func TestReadEndpoints(t *testing.T) {
	now := time.Date(2026, 11, 25, 17, 0, 30, 0, time.UTC)
	e := newEnv(t, func(o *Options) { o.Now = func() time.Time { return now } })
	// Hostnames sorted bytewise: "<" < "B" < "a" < "é"; hostile text kept as is.
	hostile := `<img src=x onerror=alert(1)>"`
	for _, h := range []string{"é", "a", "B", hostile} {
		mustStatus(t, e.ingest("key-"+h, snap(h, "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)
	}
	withCmd := `[{"pid":1,"ppid":0,"name":"init","cpu_percent":0,"memory_mb":1,"cmdline":"/sbin/init --x"},` +
		`{"pid":2,"ppid":0,"name":"kthreadd","cpu_percent":0,"memory_mb":0,"cmdline":""},` +
		`{"pid":3,"ppid":2,"name":"noline","cpu_percent":1.5,"memory_mb":2.25}]`
	r := e.ingest("key-a", snap("a", "2026-11-25T17:00:05.123+00:00", withCmd))
	mustStatus(t, r, http.StatusCreated)
	var ir ingestResponse
	_ = json.Unmarshal([]byte(r.body), &ir)

	hosts := e.get("/api/v1/hosts")
	mustStatus(t, hosts, http.StatusOK)
	var hl []map[string]any
	if err := json.Unmarshal([]byte(hosts.body), &hl); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range hl {
		names = append(names, h["hostname"].(string))
		for _, k := range []string{"last_seen", "online", "os", "latest_snapshot_id"} {
			if _, ok := h[k]; !ok {
				t.Errorf("host %v lacks %q", h["hostname"], k)
			}
		}
	}
	if strings.Join(names, "|") != strings.Join([]string{hostile, "B", "a", "é"}, "|") {
		t.Errorf("hosts not sorted bytewise: %q", names)
	}
	if hosts.hdr.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("content type %q", hosts.hdr.Get("Content-Type"))
	}
	if strings.Contains(hosts.body, "<img") {
		t.Errorf("hostile text must be escaped in JSON: %s", hosts.body)
	}

	lat := e.get("/api/v1/snapshots/latest?hostname=a")
	mustStatus(t, lat, http.StatusOK)
	var lm map[string]json.RawMessage
	_ = json.Unmarshal([]byte(lat.body), &lm)
	for _, k := range []string{"snapshot_id", "captured_at", "process_count", "system"} {
		if _, ok := lm[k]; !ok {
			t.Errorf("latest lacks %q: %s", k, lat.body)
		}
	}
	if string(lm["process_count"]) != "3" || string(lm["captured_at"]) != `"2026-11-25T17:00:05.123Z"` ||
		string(lm["system"]) != `{"os":{"name":"linux"}}` {
		t.Errorf("latest: %s", lat.body)
	}

	procs := e.get(fmt.Sprintf("/api/v1/snapshots/%d/processes", ir.SnapshotID))
	mustStatus(t, procs, http.StatusOK)
	var pl []map[string]any
	if err := json.Unmarshal([]byte(procs.body), &pl); err != nil {
		t.Fatal(err)
	}
	if len(pl) != 3 {
		t.Fatalf("got %d processes", len(pl))
	}
	byPID := map[float64]map[string]any{}
	for _, p := range pl {
		byPID[p["pid"].(float64)] = p
	}
	if byPID[1]["cmdline"] != "/sbin/init --x" {
		t.Errorf("cmdline of pid 1: %v", byPID[1]["cmdline"])
	}
	if v, ok := byPID[2]["cmdline"]; !ok || v != "" {
		t.Errorf("an empty cmdline that was sent must come back as \"\": %v %v", v, ok)
	}
	if _, ok := byPID[3]["cmdline"]; ok {
		t.Errorf("cmdline not sent must be absent, not null: %v", byPID[3])
	}
	if byPID[3]["cpu_percent"] != 1.5 || byPID[3]["memory_mb"] != 2.25 || byPID[3]["ppid"] != 2.0 {
		t.Errorf("pid 3: %v", byPID[3])
	}

	f := func(path string, code int) {
		t.Helper()
		r := e.get(path)
		if r.code != code {
			t.Errorf("GET %s: %d, want %d: %s", path, r.code, code, r.body)
			return
		}
		if code >= 400 {
			mustJSONError(t, r)
		}
	}
	// Trailing slashes.
	f("/api/v1/hosts/", 200)
	f("/api/v1/snapshots/latest/?hostname=a", 200)
	f(fmt.Sprintf("/api/v1/snapshots/%d/processes/", ir.SnapshotID), 200)
	// latest: 400 without hostname, 404 unknown.
	f("/api/v1/snapshots/latest", 400)
	f("/api/v1/snapshots/latest?hostname=", 400)
	f("/api/v1/snapshots/latest?hostname=nope", 404)
	f("/api/v1/snapshots/latest?hostname=%01", 400)
	// processes: 400 unless a positive integer, 404 unknown or out of range.
	for _, bad := range []string{"0", "-1", "abc", "1.5", "+1", "1e3", "%20"} {
		f("/api/v1/snapshots/"+bad+"/processes", 400)
	}
	f("/api/v1/snapshots/999999/processes", 404)
	f("/api/v1/snapshots/9223372036854775808/processes", 404)
	f("/api/v1/snapshots/99999999999999999999999999999999999999999999/processes", 404)
	// Unknown paths under /api are JSON 404s.
	f("/api/v1/nope", 404)
	f("/api/v2/hosts", 404)
	f("/api", 404)
	// Additions: one snapshot, time travel, a host's snapshots.
	f(fmt.Sprintf("/api/v1/snapshots/%d", ir.SnapshotID), 200)
	f("/api/v1/snapshots/at?hostname=a&time=2026-11-25T17:00:01Z", 200)
	f("/api/v1/snapshots/at?hostname=a&time=2026-11-25T16:00:00Z", 404)
	f("/api/v1/snapshots/at?hostname=a&time=soon", 400)
	f("/api/v1/hosts/a/snapshots?from=2026-11-25T16:00:00Z", 200)
	f("/api/v1/hosts/a/snapshots?limit=0", 400)

	list := e.get("/api/v1/hosts/a/snapshots?from=2026-11-25T16:00:00Z&to=2026-11-25T18:00:00Z")
	var refs []snapshotRefJSON
	_ = json.Unmarshal([]byte(list.body), &refs)
	if len(refs) != 2 || refs[1].SnapshotID != ir.SnapshotID || refs[1].ProcessCount != 3 {
		t.Errorf("host snapshots: %s", list.body)
	}

	// 405 in JSON with Allow.
	for _, m := range []string{http.MethodPost, http.MethodDelete, http.MethodPut} {
		r := e.do(m, "/api/v1/hosts", nil, nil)
		if r.code != 405 || !strings.Contains(r.hdr.Get("Allow"), "GET") {
			t.Errorf("%s /api/v1/hosts: %d Allow=%q", m, r.code, r.hdr.Get("Allow"))
		}
		mustJSONError(t, r)
	}
	r405 := e.get("/api/v1/ingest")
	if r405.code != 405 || r405.hdr.Get("Allow") != "POST" {
		t.Errorf("GET ingest: %d Allow=%q", r405.code, r405.hdr.Get("Allow"))
	}
	mustJSONError(t, r405)
}

func TestOnlineWindow(t *testing.T) {
	now := time.Now()
	e := newEnv(t, func(o *Options) {
		o.Now = func() time.Time { return now }
		o.OnlineWindow = time.Hour
	})
	mustStatus(t, e.ingest("k", snap("h", "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)
	online := func() bool {
		var hl []hostJSON
		_ = json.Unmarshal([]byte(e.get("/api/v1/hosts").body), &hl)
		return hl[0].Online
	}
	if !online() {
		t.Fatal("a host seen now must be online")
	}
	// Pushes every 2s: online for 6s after the last one, offline after.
	mustStatus(t, e.ingest("k", snap("h", "2026-11-25T17:00:02Z", proc1)), http.StatusCreated)
	mustStatus(t, e.ingest("k", snap("h", "2026-11-25T17:00:04Z", proc1)), http.StatusCreated)
	now = now.Add(5 * time.Second)
	if !online() {
		t.Error("5s after its last push a host pushing every 2s is online")
	}
	now = now.Add(2 * time.Second)
	if online() {
		t.Error("7s after its last push a host pushing every 2s is offline")
	}
}

func TestNotReadyThenReady(t *testing.T) {
	a, err := New(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	defer srv.Close()
	e := &env{t: t, a: a, srv: srv}
	mustStatus(t, e.get("/-/healthy"), 200)
	mustStatus(t, e.do(http.MethodHead, "/-/healthy", nil, nil), 200)
	mustStatus(t, e.get("/-/ready"), 503)
	r := e.get("/api/v1/hosts")
	mustStatus(t, r, 503)
	mustJSONError(t, r)
	r = e.ingest("k", snap("h", "2026-11-25T17:00:00Z", proc1))
	mustStatus(t, r, 503)
	mustJSONError(t, r)

	st, err := store.OpenSQLite(context.Background(), t.TempDir(), store.Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	a.SetStore(st)
	mustStatus(t, e.get("/-/ready"), 200)
	mustStatus(t, e.ingest("k", snap("h", "2026-11-25T17:00:00Z", proc1)), 201)
}

// TestGzipBomb: a body that inflates to 1 GiB costs about the limit in
// memory, not a GiB, and is answered 413.
func TestGzipBomb(t *testing.T) { bothGunzips(t, testGzipBomb) }

func testGzipBomb(t *testing.T, streaming bool) {
	const limit = 8 << 20
	e := newGunzipEnv(t, streaming, func(o *Options) { o.Limits.MaxDecodedBytes = limit })
	// gzip readers read concatenated members as one stream, so one
	// compressed MiB of zeros repeated 1024 times inflates to 1 GiB
	// without compressing a GiB here.
	var buf bytes.Buffer
	buf.Write(gz(t, []byte(`{"hostname":"bomb","captured_at":"2026-11-25T17:00:00Z","system_info":{"pad":"`)))
	member := gz(t, bytes.Repeat([]byte("0"), 1<<20))
	for range 1024 {
		buf.Write(member)
	}
	t.Logf("bomb: %d bytes on the wire, 1 GiB inflated", buf.Len())

	var m0, m1 runtimeMem
	m0.read()
	r := e.do(http.MethodPost, "/api/v1/ingest", map[string]string{"X-API-KEY": "k", "Content-Encoding": "gzip"}, buf.Bytes())
	m1.read()
	mustStatus(t, r, http.StatusRequestEntityTooLarge)
	alloc := m1.totalAlloc - m0.totalAlloc
	t.Logf("allocated %d MiB while answering (limit %d MiB)", alloc>>20, limit>>20)
	// One buffer of exactly the limit, the one-pass attempt up to
	// maxPooledBuf (4 MiB) and the ~1 MiB wire body: about 2x the limit
	// here (other goroutines' allocations count too). A buffer doubling
	// past the limit (bytes.Buffer.ReadFrom) goes well past 3x.
	if alloc > 3*limit {
		t.Fatalf("allocated %d bytes for a %d-byte limit: decompression did not stop at the limit", alloc, limit)
	}
	if st := e.state(); st.snapshots != 0 {
		t.Fatal("the bomb was stored")
	}
}

func TestStreamEvents(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.HeartbeatInterval = 100 * time.Millisecond })
	mustStatus(t, e.ingest("k", snap("h", "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/api/v1/stream/?hostname=h", nil)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		b := make([]byte, 4096)
		var pending string
		for {
			n, err := res.Body.Read(b)
			pending += string(b[:n])
			for {
				i := strings.Index(pending, "\n")
				if i < 0 {
					break
				}
				lines <- pending[:i]
				pending = pending[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	next := func(prefix string) string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stream ended waiting for %q", prefix)
				}
				if strings.HasPrefix(l, prefix) {
					return l
				}
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %q", prefix)
			}
		}
	}
	first := next("data: ")
	if !strings.Contains(first, `"snapshot_id":1`) {
		t.Fatalf("first event must be the current latest: %s", first)
	}
	next(": heartbeat")
	// Another host's snapshot is not sent; a late replay is not either;
	// a new one is.
	mustStatus(t, e.ingest("k2", snap("other", "2026-11-25T17:00:30Z", proc1)), http.StatusCreated)
	mustStatus(t, e.ingest("k", snap("h", "2026-11-25T16:00:00Z", proc1)), http.StatusCreated)
	mustStatus(t, e.ingest("k", snap("h", "2026-11-25T17:00:02Z", proc1)), http.StatusCreated)
	ev := next("data: ")
	var got streamEvent
	if err := json.Unmarshal([]byte(strings.TrimPrefix(ev, "data: ")), &got); err != nil {
		t.Fatal(err)
	}
	if got.Hostname != "h" || got.CapturedAt != "2026-11-25T17:00:02.000Z" || got.SnapshotID != 4 {
		t.Fatalf("event %+v, want snapshot 4 of h at 17:00:02", got)
	}
	// Shutdown ends the stream instead of hanging.
	e.a.Close()
	for range lines {
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	mustStatus(t, e.ingest("k", snap("web-1", "2026-11-25T17:00:00Z", proc1)), 201)
	mustStatus(t, e.ingest("bad", snap("web-1", "2026-11-25T17:00:00Z", proc1)), 403)
	r := e.get("/metrics")
	mustStatus(t, r, 200)
	for _, want := range []string{
		`procscope_aggregator_ingest_requests_total{code="201"} 1`,
		`procscope_aggregator_ingest_requests_total{code="403"} 1`,
		`procscope_aggregator_ingest_duration_seconds_count 2`,
		`procscope_aggregator_snapshots_stored_total 1`,
		`procscope_aggregator_hosts 1`,
		`procscope_aggregator_host_last_seen_timestamp_seconds{hostname="web-1"}`,
		`procscope_aggregator_database_size_bytes`,
		`procscope_aggregator_rows_pruned_total 0`,
		`procscope_aggregator_ingest_received_bytes_total`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestUIHeaders(t *testing.T) {
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<!doctype html>ui")
	})
	e := newEnv(t, func(o *Options) { o.UI = ui })
	r := e.get("/")
	mustStatus(t, r, 200)
	if r.hdr.Get("Content-Security-Policy") != ContentSecurityPolicy || r.hdr.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("UI headers: %v", r.hdr)
	}
	// Unknown API paths never fall through to the UI.
	if r := e.get("/api/v1/zzz"); r.code != 404 || strings.Contains(r.body, "ui") {
		t.Errorf("/api/v1/zzz: %d %s", r.code, r.body)
	}
}

type runtimeMem struct{ totalAlloc uint64 }

func (m *runtimeMem) read() {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.totalAlloc = s.TotalAlloc
}

// TestIngestUTF8AndUnknownFields: invalid UTF-8 is stored as U+FFFD (not
// rejected), unknown fields are ignored, and hostile text comes back as
// text, through the real store.
func TestIngestUTF8AndUnknownFields(t *testing.T) {
	e := newEnv(t, nil)
	body := []byte("{\"agent_version\":{\"x\":[1,2]},\"hostname\":\"h\",\"captured_at\":\"2026-11-25T17:00:00+05:30\"," +
		"\"system_info\":{\"os\":{\"name\":\"li\xffnux\"},\"future\":true},\"processes\":[" +
		"{\"pid\":7,\"ppid\":7,\"name\":\"bad\xc3(name\",\"cpu_percent\":0,\"memory_mb\":0,\"cmdline\":\"</script><script>x()</script>\",\"gpu\":1}]," +
		"\"zzz\":null}")
	r := e.ingest("k", body)
	mustStatus(t, r, http.StatusCreated)
	var ir ingestResponse
	_ = json.Unmarshal([]byte(r.body), &ir)
	var procs []struct {
		PID     int64   `json:"pid"`
		PPID    int64   `json:"ppid"`
		Name    string  `json:"name"`
		Cmdline *string `json:"cmdline"`
	}
	pr := e.get(fmt.Sprintf("/api/v1/snapshots/%d/processes", ir.SnapshotID))
	mustStatus(t, pr, 200)
	if err := json.Unmarshal([]byte(pr.body), &procs); err != nil {
		t.Fatal(err)
	}
	if len(procs) != 1 || procs[0].Name != "bad\uFFFD(name" || procs[0].PID != 7 || procs[0].PPID != 7 ||
		procs[0].Cmdline == nil || *procs[0].Cmdline != "</script><script>x()</script>" {
		t.Fatalf("got %+v", procs)
	}
	if strings.Contains(pr.body, "<script>") {
		t.Error("< and > must be escaped in JSON output")
	}
	var latest snapshotJSON
	_ = json.Unmarshal([]byte(e.get("/api/v1/snapshots/latest?hostname=h").body), &latest)
	if latest.CapturedAt != "2026-11-25T11:30:00.000Z" {
		t.Errorf("captured_at %q, want UTC", latest.CapturedAt)
	}
	if !strings.Contains(string(latest.System), "li\uFFFDnux") || !strings.Contains(string(latest.System), `"future":true`) {
		t.Errorf("system_info must be kept as sent, invalid UTF-8 replaced: %s", latest.System)
	}
}

// TestIngestReusedProcessSlices: process slices are reused from one ingest
// to the next; a snapshot without the optional fields must not inherit
// them from an earlier, richer one, and what was stored stays as sent.
func TestIngestReusedProcessSlices(t *testing.T) {
	e := newEnv(t, nil)
	rich := func(host string, i int) []byte {
		var b strings.Builder
		fmt.Fprintf(&b, `{"hostname":%q,"captured_at":"2026-11-25T17:00:%02dZ","system_info":{},"processes":[`, host, i)
		for pid := 1; pid <= 50; pid++ {
			if pid > 1 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"pid":%d,"ppid":1,"name":"rich-%d","cpu_percent":1.5,"memory_mb":2,"cmdline":"x --y",`+
				`"username":"root","status":"running","num_threads":4,"create_time":"2026-11-25T16:00:00Z","memory_percent":0.5}`, pid, i)
		}
		b.WriteString("]}")
		return []byte(b.String())
	}
	for i := range 20 {
		mustStatus(t, e.ingest("k", rich("rich", i)), http.StatusCreated)
		bare := fmt.Sprintf(`{"hostname":"bare","captured_at":"2026-11-25T17:00:%02dZ","system_info":{},`+
			`"processes":[{"pid":%d,"ppid":0,"name":"only","cpu_percent":0,"memory_mb":1}]}`, i, i+2)
		r := e.ingest("k2", []byte(bare))
		mustStatus(t, r, http.StatusCreated)
		var ir ingestResponse
		_ = json.Unmarshal([]byte(r.body), &ir)
		pr := e.get(fmt.Sprintf("/api/v1/snapshots/%d/processes", ir.SnapshotID))
		mustStatus(t, pr, 200)
		want := fmt.Sprintf(`[{"pid":%d,"ppid":0,"name":"only","cpu_percent":0,"memory_mb":1}]`, i+2)
		if strings.TrimSpace(pr.body) != want {
			t.Fatalf("round %d: stored %s, want %s", i, pr.body, want)
		}
	}
}

// TestOnIngestGetsDecodedSystemNumbers: the ingest hook (history) gets the
// numbers the decoder read from system_info, so it need not scan the JSON.
func TestOnIngestGetsDecodedSystemNumbers(t *testing.T) {
	// A channel: the hook runs on the server's goroutine.
	systems := make(chan *ingest.SystemNumbers, 1)
	e := newEnv(t, func(o *Options) {
		o.OnIngest = func(_ context.Context, req *store.IngestRequest, _ store.IngestResult) {
			systems <- req.System
		}
	})
	body := `{"hostname":"h1","captured_at":"` + time.Now().UTC().Format(time.RFC3339) + `",` +
		`"system_info":{"cpu":{"usage_percent":12.5},"filesystems":[{"mountpoint":"/","used_bytes":7}],"process_count":"x"},"processes":[]}`
	mustStatus(t, e.ingest("k1", []byte(body)), http.StatusCreated)
	got := <-systems
	if got == nil {
		t.Fatal("OnIngest got no system numbers")
	}
	if got.CPU != (ingest.Num{V: 12.5, OK: true}) || got.ProcessCount.OK || got.MemUsed.OK ||
		len(got.Filesystems) != 1 || got.Filesystems[0] != (ingest.FSNumber{Mountpoint: "/", Used: ingest.Num{V: 7, OK: true}}) {
		t.Errorf("OnIngest got %+v", *got)
	}
}
