package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/internal/ingest"
)

// sysSnap is an ingest body with a realistic system_info.
func sysSnap(host, at string, cpu float64, memTotal, memUsed int64, fs string) []byte {
	return fmt.Appendf(nil, `{"hostname":%q,"captured_at":%q,"system_info":{`+
		`"os":{"name":"linux","distro":"debian","version":"12.8","arch":"x86_64"},`+
		`"cpu":{"logical_threads":8,"usage_percent":%g},`+
		`"memory":{"total_bytes":%d,"used_bytes":%d,"available_bytes":1},`+
		`"filesystems":%s,"load_average":{"load1":1.5,"load5":1.25,"load15":1},`+
		`"process_count":321,"exporter":"procscope-exporter 9.9.9"},"processes":%s}`,
		host, at, cpu, memTotal, memUsed, fs, proc1)
}

const twoFS = `[{"mountpoint":"/","total_bytes":1000,"used_bytes":500},{"mountpoint":"/var","total_bytes":100,"used_bytes":90}]`

func (e *env) fleet() fleetJSON {
	e.t.Helper()
	r := e.get("/api/v1/fleet")
	mustStatus(e.t, r, http.StatusOK)
	var f fleetJSON
	if err := json.Unmarshal([]byte(r.body), &f); err != nil {
		e.t.Fatalf("%v: %s", err, r.body)
	}
	return f
}

func TestFleet(t *testing.T) {
	now := time.Date(2026, 11, 25, 17, 0, 5, 0, time.UTC)
	e := newEnv(t, func(o *Options) {
		o.Now = func() time.Time { return now }
		o.OnlineWindow = 10 * time.Second
	})
	mustStatus(t, e.ingest("k1", sysSnap("web-2", "2026-11-25T17:00:00Z", 12.5, 8000, 2000, twoFS)), http.StatusCreated)
	mustStatus(t, e.ingest("k2", snap("db-1", "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)

	f := e.fleet()
	if len(f.Hosts) != 2 || f.Hosts[0].Hostname != "db-1" || f.Hosts[1].Hostname != "web-2" {
		t.Fatalf("hosts %+v, want db-1, web-2 in that order", f.Hosts)
	}
	if f.Now != "2026-11-25T17:00:05.000Z" {
		t.Errorf("now %q", f.Now)
	}
	db, web := f.Hosts[0], f.Hosts[1]
	if db.CPUPercent != nil || db.MemTotalBytes != nil || db.BusiestFS != nil || db.LatestSnapshotID == nil {
		t.Errorf("a host without numbers: %+v", db)
	}
	if !web.Online || *web.CPUPercent != 12.5 || *web.MemUsedBytes != 2000 || *web.MemTotalBytes != 8000 ||
		*web.LogicalCPUs != 8 || *web.Load1 != 1.5 || *web.ProcessCount != 321 ||
		web.Exporter != "procscope-exporter 9.9.9" || web.OS != "debian 12.8 (linux x86_64)" {
		t.Errorf("web-2: %+v", web)
	}
	if b := web.BusiestFS; b == nil || b.Mountpoint != "/var" || b.UsedBytes != 90 || b.TotalBytes != 100 {
		t.Errorf("busiest fs %+v, want /var 90 of 100", web.BusiestFS)
	}

	// A newer snapshot updates the numbers; totals wait for staticEvery.
	mustStatus(t, e.ingest("k1", sysSnap("web-2", "2026-11-25T17:00:10Z", 80, 9000, 3000,
		`[{"mountpoint":"/","total_bytes":1000,"used_bytes":990},{"mountpoint":"/var","total_bytes":100,"used_bytes":10}]`)), http.StatusCreated)
	web = e.fleet().Hosts[1]
	if *web.CPUPercent != 80 || *web.MemUsedBytes != 3000 || *web.MemTotalBytes != 8000 {
		t.Errorf("after 10 s: cpu %v used %v total %v, want 80, 3000, 8000 (totals read once a minute)", *web.CPUPercent, *web.MemUsedBytes, *web.MemTotalBytes)
	}
	if b := web.BusiestFS; b == nil || b.Mountpoint != "/" || b.UsedBytes != 990 {
		t.Errorf("busiest fs %+v, want / at 990", web.BusiestFS)
	}
	// A late snapshot is stored but is not the latest.
	mustStatus(t, e.ingest("k1", sysSnap("web-2", "2026-11-25T17:00:07Z", 1, 8000, 1, twoFS)), http.StatusCreated)
	if web = e.fleet().Hosts[1]; *web.CPUPercent != 80 || *web.LatestCapturedAt != "2026-11-25T17:00:10.000Z" {
		t.Errorf("a late snapshot replaced the latest: %+v", web)
	}
	mustStatus(t, e.ingest("k1", sysSnap("web-2", "2026-11-25T17:01:10Z", 5, 9000, 3000, twoFS)), http.StatusCreated)
	if web = e.fleet().Hosts[1]; *web.MemTotalBytes != 9000 {
		t.Errorf("a minute later the total is %v, want 9000", *web.MemTotalBytes)
	}

	// Offline once the window has passed; gone once deleted.
	now = now.Add(time.Hour)
	if f = e.fleet(); f.Hosts[0].Online || f.Hosts[1].Online {
		t.Errorf("an hour later hosts are online: %+v", f.Hosts)
	}
	e.a.ForgetHost("db-1")
	if f = e.fleet(); len(f.Hosts) != 1 || f.Hosts[0].Hostname != "web-2" {
		t.Errorf("after ForgetHost: %+v", f.Hosts)
	}
}

// TestFleetSeed: after a restart, hosts that have not pushed since are read
// from storage by the first fleet request, with their numbers.
func TestFleetSeed(t *testing.T) {
	e := newEnv(t, nil)
	mustStatus(t, e.ingest("k1", sysSnap("old", "2026-11-25T17:00:00Z", 33, 8000, 4000, twoFS)), http.StatusCreated)
	mustStatus(t, e.ingest("k2", sysSnap("busy", "2026-11-25T17:00:00Z", 10, 8000, 4000, twoFS)), http.StatusCreated)

	// Registered by `hosts add`, never pushed: listed, never online.
	if err := e.st.AddHost(context.Background(), "quiet", [32]byte{1}); err != nil {
		t.Fatal(err)
	}
	// The same store behind a new API: the server restarted.
	a, err := New(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	a.SetStore(e.st)
	srv := httptest.NewServer(a)
	t.Cleanup(func() { a.Close(); srv.Close() })
	e2 := &env{t: t, a: a, st: e.st, srv: srv}
	// One host pushes before anyone asks: its fresher numbers stay.
	mustStatus(t, e2.ingest("k2", sysSnap("busy", "2026-11-25T17:00:10Z", 99, 8000, 4000, twoFS)), http.StatusCreated)
	f := e2.fleet()
	if len(f.Hosts) != 3 {
		t.Fatalf("hosts %+v, want 3", f.Hosts)
	}
	busy, old, quiet := f.Hosts[0], f.Hosts[1], f.Hosts[2]
	if quiet.Hostname != "quiet" || quiet.Online || quiet.LatestSnapshotID != nil || quiet.CPUPercent != nil {
		t.Errorf("a host without snapshots: %+v", quiet)
	}
	if old.Hostname != "old" || old.CPUPercent == nil || *old.CPUPercent != 33 || old.BusiestFS == nil || old.BusiestFS.Mountpoint != "/var" || old.Exporter == "" {
		t.Errorf("seeded host: %+v", old)
	}
	if busy.CPUPercent == nil || *busy.CPUPercent != 99 {
		t.Errorf("the seed replaced fresher numbers: %+v", busy)
	}
}

// TestFleetHostileText: names and strings come back as JSON text, bounded.
func TestFleetHostileText(t *testing.T) {
	e := newEnv(t, nil)
	long := make([]byte, 5000)
	for i := range long {
		long[i] = 'x'
	}
	body := fmt.Appendf(nil, `{"hostname":"h","captured_at":"2026-11-25T17:00:00Z","system_info":{"exporter":"<img src=x onerror=alert(1)>%s","cpu":{"usage_percent":"NaN"}},"processes":[]}`, long)
	mustStatus(t, e.ingest("k", body), http.StatusCreated)
	h := e.fleet().Hosts[0]
	if len(h.Exporter) != 200 || h.Exporter[:4] != "<img" {
		t.Errorf("exporter %d bytes %.10q, want clipped to 200", len(h.Exporter), h.Exporter)
	}
	if h.CPUPercent != nil {
		t.Errorf("a string cpu became %v", *h.CPUPercent)
	}
}

// refFleetRow is the encoding/json reference for fleetRow.appendJSON.
func refFleetRow(r fleetRow) fleetHostJSON {
	h := r.h
	num := func(n ingest.Num) *float64 {
		if !n.OK {
			return nil
		}
		return &n.V
	}
	pos := func(v float64) *float64 {
		if v <= 0 {
			return nil
		}
		return &v
	}
	j := fleetHostJSON{Hostname: r.name, Online: r.online, LastSeen: formatTime(h.lastSeen), OS: h.os, Exporter: h.exporter,
		CPUPercent: num(h.cpu), MemUsedBytes: num(h.memUsed), Load1: num(h.load1), Load5: num(h.load5), Load15: num(h.load15),
		ProcessCount: num(h.procCount)}
	if h.snapID > 0 {
		id, t := h.snapID, formatTime(h.captured)
		j.LatestSnapshotID, j.LatestCapturedAt = &id, &t
		j.MemTotalBytes, j.SwapTotalBytes = pos(h.memTotal), pos(h.swapTotal)
		if j.SwapTotalBytes != nil {
			j.SwapUsedBytes = num(h.swapUsed)
		}
		if h.cpus > 0 {
			c := h.cpus
			j.LogicalCPUs = &c
		}
		if h.hasBusy {
			j.BusiestFS = &busyFSJSON{h.busyMount, h.busyUsed, h.busyTotal}
		}
	}
	return j
}

func TestFleetEncoding(t *testing.T) {
	at := time.Date(2026, 11, 25, 17, 0, 0, 123e6, time.UTC)
	n := func(v float64) ingest.Num { return ingest.Num{V: v, OK: true} }
	rows := []fleetRow{
		{name: "empty", h: fleetHost{lastSeen: at}},
		{name: "full \"<b>\"\u2028", online: true, h: fleetHost{lastSeen: at, snapID: 7, captured: at, os: "debian", exporter: "x\x01",
			cpus: 8, memTotal: 8 << 30, swapTotal: 1 << 30, cpu: n(12.5), memUsed: n(1e9), swapUsed: n(0),
			load1: n(0.01), load5: n(1e21), load15: n(1e-7), procCount: n(300), busyMount: "/var", busyUsed: 9, busyTotal: 10, hasBusy: true}},
		{name: "noswap", h: fleetHost{lastSeen: at, snapID: 8, captured: at, swapUsed: n(5), cpu: n(0)}},
	}
	for _, r := range rows {
		got := r.appendJSON(nil)
		want, err := json.Marshal(refFleetRow(r))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", r.name, got, want)
		}
	}
}
