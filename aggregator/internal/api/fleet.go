package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/procscope/procscope/aggregator/internal/httpapi"
	"github.com/procscope/procscope/aggregator/internal/ingest"
	"github.com/procscope/procscope/aggregator/internal/store"
)

// GET /api/v1/fleet: every host with the numbers of its latest snapshot,
// for the UI's home page. It is answered from memory: ingest keeps one
// small summary per host (fleetHost), so a request costs a copy of that
// map, not a read of every host's system_info from the store. Hosts that
// have not pushed since the server started are read from the store once,
// by the first fleet request (seed).

// staticEvery is how often a host's slowly changing details (totals,
// exporter, OS, filesystem sizes) are read again from its system_info. The
// changing numbers come from what the ingest decoder already read
// (ingest.SystemNumbers), so most ingests parse nothing more.
const staticEvery = time.Minute

type fleet struct {
	mu     sync.Mutex
	hosts  map[string]*fleetHost
	seedMu sync.Mutex // one seed at a time; the others wait for it
	seeded bool       // under seedMu
}

// fleetHost is what the fleet view shows of one host.
type fleetHost struct {
	lastSeen time.Time
	snapID   int64 // 0: no snapshot known
	captured time.Time

	// From a full read of system_info, at most every staticEvery.
	staticAt  time.Time // captured_at of that read
	os        string
	exporter  string
	cpus      int
	memTotal  float64
	swapTotal float64
	fsTotal   []fsSize

	// From the latest snapshot.
	cpu, memUsed, swapUsed ingest.Num
	load1, load5, load15   ingest.Num
	procCount              ingest.Num
	busyMount              string
	busyUsed, busyTotal    float64
	hasBusy                bool
}

type fsSize struct {
	mount string
	total float64
}

func newFleet() *fleet { return &fleet{hosts: map[string]*fleetHost{}} }

// sysInfoStatic is the part of system_info the fleet reads in full.
type sysInfoStatic struct {
	OS  store.OSInfo `json:"os"`
	CPU struct {
		LogicalThreads int      `json:"logical_threads"`
		UsagePercent   *float64 `json:"usage_percent"`
	} `json:"cpu"`
	Memory struct {
		TotalBytes float64  `json:"total_bytes"`
		UsedBytes  *float64 `json:"used_bytes"`
	} `json:"memory"`
	Swap struct {
		TotalBytes float64  `json:"total_bytes"`
		UsedBytes  *float64 `json:"used_bytes"`
	} `json:"swap"`
	Filesystems []struct {
		Mountpoint string   `json:"mountpoint"`
		TotalBytes float64  `json:"total_bytes"`
		UsedBytes  *float64 `json:"used_bytes"`
	} `json:"filesystems"`
	LoadAverage *struct {
		Load1  *float64 `json:"load1"`
		Load5  *float64 `json:"load5"`
		Load15 *float64 `json:"load15"`
	} `json:"load_average"`
	ProcessCount *float64 `json:"process_count"`
	Exporter     string   `json:"exporter"`
}

func numOf(p *float64) ingest.Num {
	if p == nil {
		return ingest.Num{}
	}
	return ingest.Num{V: *p, OK: true}
}

// readStatic reads the slowly changing details of a system_info; when
// numbers is true it also takes the changing numbers from it (a host read
// from the store, which has no decoder's SystemNumbers).
func (fh *fleetHost) readStatic(sys []byte, captured time.Time, numbers bool) {
	fh.staticAt = captured
	var v sysInfoStatic
	// A value of the wrong type leaves its field empty and the others
	// filled, as the rest of the aggregator reads system_info.
	var typeErr *json.UnmarshalTypeError
	if err := json.Unmarshal(sys, &v); len(sys) == 0 || err != nil && !errors.As(err, &typeErr) {
		fh.os, fh.exporter, fh.cpus, fh.memTotal, fh.swapTotal, fh.fsTotal = "", "", 0, 0, 0, nil
		return
	}
	fh.os = clipText(v.OS.Line())
	fh.exporter = clipText(v.Exporter)
	fh.cpus = v.CPU.LogicalThreads
	fh.memTotal, fh.swapTotal = v.Memory.TotalBytes, v.Swap.TotalBytes
	fh.fsTotal = fh.fsTotal[:0]
	for _, f := range v.Filesystems {
		if f.TotalBytes > 0 && len(fh.fsTotal) < maxFleetFS {
			fh.fsTotal = append(fh.fsTotal, fsSize{clipText(f.Mountpoint), f.TotalBytes})
		}
	}
	if !numbers {
		return
	}
	fh.cpu, fh.memUsed, fh.swapUsed = numOf(v.CPU.UsagePercent), numOf(v.Memory.UsedBytes), numOf(v.Swap.UsedBytes)
	fh.load1, fh.load5, fh.load15 = ingest.Num{}, ingest.Num{}, ingest.Num{}
	if l := v.LoadAverage; l != nil {
		fh.load1, fh.load5, fh.load15 = numOf(l.Load1), numOf(l.Load5), numOf(l.Load15)
	}
	fh.procCount = numOf(v.ProcessCount)
	fh.hasBusy = false
	for _, f := range v.Filesystems {
		if f.UsedBytes != nil {
			fh.considerFS(f.Mountpoint, *f.UsedBytes)
		}
	}
}

// maxFleetFS bounds the filesystems remembered per host: a host with
// thousands of mounts (containers) costs no more than this.
const maxFleetFS = 64

// clipText bounds a string kept per host (hostile exporters).
func clipText(s string) string {
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "")
	}
	return strings.Clone(s)
}

// considerFS makes mount the busiest filesystem when its share used is the
// highest seen in this snapshot so far.
func (fh *fleetHost) considerFS(mount string, used float64) {
	for _, f := range fh.fsTotal {
		if f.mount != mount {
			continue
		}
		if !fh.hasBusy || used/f.total > fh.busyUsed/fh.busyTotal {
			fh.busyMount, fh.busyUsed, fh.busyTotal, fh.hasBusy = f.mount, used, f.total, true
		}
		return
	}
}

// readNumbers takes the changing numbers the ingest decoder read.
func (fh *fleetHost) readNumbers(n *ingest.SystemNumbers) {
	fh.cpu, fh.memUsed, fh.swapUsed = n.CPU, n.MemUsed, n.SwapUsed
	fh.load1, fh.load5, fh.load15 = n.Load1, n.Load5, n.Load15
	fh.procCount = n.ProcessCount
	fh.hasBusy = false
	for _, f := range n.Filesystems {
		if f.Used.OK {
			fh.considerFS(f.Mountpoint, f.Used.V)
		}
	}
}

// observe records an accepted ingest. Called from the ingest goroutine:
// it copies a few numbers and, at most every staticEvery per host, reads
// system_info.
func (f *fleet) observe(req *store.IngestRequest, res store.IngestResult) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fh := f.hosts[req.Hostname]
	if fh == nil {
		if !res.Created {
			return // a repeat for a host this map does not hold: the seed reads it
		}
		fh = &fleetHost{}
		f.hosts[strings.Clone(req.Hostname)] = fh
	}
	if req.ReceivedAt.After(fh.lastSeen) {
		fh.lastSeen = req.ReceivedAt
	}
	if !res.Created || req.CapturedAt.Before(fh.captured) {
		return // a late snapshot is not the latest
	}
	fh.snapID, fh.captured = res.SnapshotID, req.CapturedAt
	stale := fh.staticAt.IsZero() || req.CapturedAt.Sub(fh.staticAt) >= staticEvery || req.CapturedAt.Before(fh.staticAt)
	if req.System == nil {
		fh.readStatic(req.SystemInfo, req.CapturedAt, true)
		return
	}
	if stale {
		fh.readStatic(req.SystemInfo, req.CapturedAt, false)
	}
	fh.readNumbers(req.System)
}

func (f *fleet) forget(host string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.hosts, host)
}

// seed reads, once, the hosts the store holds that ingest has not shown
// this map since the server started: their latest snapshot's system_info.
func (f *fleet) seed(ctx context.Context, st store.Store) error {
	f.seedMu.Lock()
	defer f.seedMu.Unlock()
	if f.seeded {
		return nil
	}
	hosts, err := st.Hosts(ctx)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		f.mu.Lock()
		known := f.hosts[h.Hostname] != nil
		f.mu.Unlock()
		if known {
			continue // ingest got there first, with newer numbers
		}
		fh := &fleetHost{lastSeen: h.LastSeen}
		if h.LatestSnapshotID > 0 {
			m, err := st.Latest(ctx, h.Hostname)
			switch {
			case err == nil:
				fh.snapID, fh.captured = m.ID, m.CapturedAt
				fh.readStatic(m.SystemInfo, m.CapturedAt, true)
			case ctx.Err() != nil:
				return ctx.Err()
			default:
				// Deleted meanwhile, or unreadable: listed without numbers.
			}
		}
		f.mu.Lock()
		if f.hosts[h.Hostname] == nil {
			f.hosts[h.Hostname] = fh
		}
		f.mu.Unlock()
	}
	f.seeded = true
	return nil
}

// fleetJSON is GET /api/v1/fleet as encoding/json would write it (the
// documented shape; fleetList writes it by hand).
type fleetJSON struct {
	// Now is the server's clock, so that "offline for 5m" does not depend
	// on the browser's.
	Now   string          `json:"now"`
	Hosts []fleetHostJSON `json:"hosts"`
}

type fleetHostJSON struct {
	Hostname         string      `json:"hostname"`
	Online           bool        `json:"online"`
	LastSeen         string      `json:"last_seen"`
	LatestSnapshotID *int64      `json:"latest_snapshot_id"`
	LatestCapturedAt *string     `json:"latest_captured_at"`
	OS               string      `json:"os"`
	Exporter         string      `json:"exporter"`
	CPUPercent       *float64    `json:"cpu_percent"`
	LogicalCPUs      *int        `json:"logical_cpus"`
	MemUsedBytes     *float64    `json:"memory_used_bytes"`
	MemTotalBytes    *float64    `json:"memory_total_bytes"`
	SwapUsedBytes    *float64    `json:"swap_used_bytes"`
	SwapTotalBytes   *float64    `json:"swap_total_bytes"`
	Load1            *float64    `json:"load1"`
	Load5            *float64    `json:"load5"`
	Load15           *float64    `json:"load15"`
	ProcessCount     *float64    `json:"process_count"`
	BusiestFS        *busyFSJSON `json:"busiest_fs"`
}

type busyFSJSON struct {
	Mountpoint string  `json:"mountpoint"`
	UsedBytes  float64 `json:"used_bytes"`
	TotalBytes float64 `json:"total_bytes"`
}

func (a *API) fleetHandler(r *http.Request) (any, error) {
	if err := a.fleet.seed(r.Context(), a.currentStore()); err != nil {
		return nil, storeError(r.Context(), err, "")
	}
	now := a.opts.Now()
	a.fleet.mu.Lock()
	rows := make([]fleetRow, 0, len(a.fleet.hosts))
	for name, fh := range a.fleet.hosts {
		rows = append(rows, fleetRow{name: name, h: *fh})
		rows[len(rows)-1].h.fsTotal = nil // not shown; not shared
	}
	a.fleet.mu.Unlock()
	// Online needs the intervals' lock: taken after the fleet's, never inside.
	for i := range rows {
		// A host that never sent a snapshot is not online, whenever it was made.
		rows[i].online = rows[i].h.snapID > 0 && now.Sub(rows[i].h.lastSeen) <= a.seen.window(rows[i].name, a.opts.OnlineWindow)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	return fleetList{now: now, rows: rows}, nil
}

// fleetRow is one host as the answer shows it.
type fleetRow struct {
	name   string
	online bool
	h      fleetHost
}

// fleetList is the answer, encoded by hand (like processList): with 10,000
// hosts, encoding/json's reflection and a pointer per optional number cost
// more than the rest of the request; TestFleetEncoding checks the output
// against encoding/json's of fleetJSON.
type fleetList struct {
	now  time.Time
	rows []fleetRow
}

func (fl fleetList) AppendJSON(s *httpapi.Stream, b []byte) []byte {
	b = append(b, `{"now":`...)
	b = appendString(b, formatTime(fl.now))
	b = append(b, `,"hosts":[`...)
	for i := range fl.rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = fl.rows[i].appendJSON(b)
		var ok bool
		if b, ok = s.Flush(b); !ok {
			break // the client is gone
		}
	}
	return append(b, "]}"...)
}

func appendNum(b []byte, key string, n ingest.Num) []byte {
	b = append(b, key...)
	if !n.OK {
		return append(b, "null"...)
	}
	return appendFloat(b, n.V)
}

func (r *fleetRow) appendJSON(b []byte) []byte {
	h := &r.h
	b = append(b, `{"hostname":`...)
	b = appendString(b, r.name)
	b = append(b, `,"online":`...)
	b = strconv.AppendBool(b, r.online)
	b = append(b, `,"last_seen":`...)
	b = appendString(b, formatTime(h.lastSeen))
	known := h.snapID > 0
	if known {
		b = append(b, `,"latest_snapshot_id":`...)
		b = strconv.AppendInt(b, h.snapID, 10)
		b = append(b, `,"latest_captured_at":`...)
		b = appendString(b, formatTime(h.captured))
	} else {
		b = append(b, `,"latest_snapshot_id":null,"latest_captured_at":null`...)
	}
	b = append(b, `,"os":`...)
	b = appendString(b, h.os)
	b = append(b, `,"exporter":`...)
	b = appendString(b, h.exporter)
	b = appendNum(b, `,"cpu_percent":`, h.cpu)
	b = appendNum(b, `,"logical_cpus":`, ingest.Num{V: float64(h.cpus), OK: known && h.cpus > 0})
	b = appendNum(b, `,"memory_used_bytes":`, h.memUsed)
	b = appendNum(b, `,"memory_total_bytes":`, ingest.Num{V: h.memTotal, OK: known && h.memTotal > 0})
	swap := known && h.swapTotal > 0
	b = appendNum(b, `,"swap_used_bytes":`, ingest.Num{V: h.swapUsed.V, OK: swap && h.swapUsed.OK})
	b = appendNum(b, `,"swap_total_bytes":`, ingest.Num{V: h.swapTotal, OK: swap})
	b = appendNum(b, `,"load1":`, h.load1)
	b = appendNum(b, `,"load5":`, h.load5)
	b = appendNum(b, `,"load15":`, h.load15)
	b = appendNum(b, `,"process_count":`, h.procCount)
	if known && h.hasBusy {
		b = append(b, `,"busiest_fs":{"mountpoint":`...)
		b = appendString(b, h.busyMount)
		b = appendNum(b, `,"used_bytes":`, ingest.Num{V: h.busyUsed, OK: true})
		b = appendNum(b, `,"total_bytes":`, ingest.Num{V: h.busyTotal, OK: true})
		b = append(b, '}')
	} else {
		b = append(b, `,"busiest_fs":null`...)
	}
	return append(b, '}')
}
