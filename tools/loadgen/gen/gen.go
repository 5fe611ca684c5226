// Package gen makes realistic ingest bodies: process trees shaped like a
// real Linux host's (systemd, kernel threads, services with workers, shells)
// with a few hostile names mixed in. The load generator, benchmarks and
// tests share it so that they measure and check the same kind of data.
// The processes and bodies are the wire types of package snapshot.
package gen

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/rand/v2"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// Process is the wire type of one process.
type Process = snapshot.Process

// SystemInfo is a typical system_info object (field names of
// snapshot.SystemInfo).
const SystemInfo = `{"os":{"name":"linux","distro":"debian","version":"12.8","kernel":"6.1.0-28-amd64","arch":"x86_64"},` +
	`"cpu":{"model":"AMD EPYC 7B13","physical_cores":4,"logical_threads":8,"current_mhz":2450.5,"max_mhz":3500,"usage_percent":12.5},` +
	`"memory":{"total_bytes":16777216000,"used_bytes":8388608000,"available_bytes":8388608000},` +
	`"swap":{"total_bytes":2147483648,"used_bytes":0},` +
	`"filesystems":[{"mountpoint":"/","device":"/dev/sda1","fstype":"ext4","total_bytes":107374182400,"used_bytes":53687091200}],` +
	`"boot_time":"2026-11-20T08:00:00Z","uptime_seconds":450000,"load_average":{"load1":0.5,"load5":0.4,"load15":0.3},` +
	`"process_count":300,"exporter":"procscope-exporter 0.1.0"}`

var services = []string{"nginx", "postgres", "redis-server", "dockerd", "containerd", "sshd", "cron", "rsyslogd", "node", "python3", "java", "php-fpm"}

// hostile names must survive storage and come back byte for byte.
var hostile = []string{"<script>alert(1)</script>", `quote"back\slash`, "tab\tnew\nline", "日本語", "emoji 😀", "\u202eevil", ""}

// Processes returns n processes forming a tree rooted at pid 1, the same
// for the same seed.
func Processes(n int, seed uint64, cmdline bool) []Process {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	procs := make([]Process, 0, n)
	add := func(pid, ppid int64, name, cmd string) {
		p := Process{
			PID: pid, PPID: ppid, Name: name,
			CPUPercent: float64(r.IntN(10000)) / 100,
			MemoryMB:   float64(r.IntN(400000)) / 100,
			Username:   []string{"root", "www-data", "postgres", "nobody"}[r.IntN(4)],
			Status:     []string{"sleeping", "running", "idle"}[r.IntN(3)],
			NumThreads: int32(1 + r.IntN(32)),
		}
		if r.IntN(4) == 0 {
			p.CPUPercent = 0
		}
		if cmdline {
			c := cmd
			p.Cmdline = &c
		}
		procs = append(procs, p)
	}
	if n <= 0 {
		return procs
	}
	add(1, 0, "systemd", "/sbin/init splash")
	pid := int64(2)
	if n > 1 {
		add(2, 0, "kthreadd", "")
		pid = 3
	}
	parents := []int64{1}
	for len(procs) < n {
		switch k := r.IntN(10); {
		case k < 3: // kernel thread
			add(pid, 2, fmt.Sprintf("kworker/%d:%d", r.IntN(8), r.IntN(4)), "")
		case k < 5: // a service under systemd
			s := services[r.IntN(len(services))]
			add(pid, 1, s, "/usr/sbin/"+s+" --config /etc/"+s+"/"+s+".conf")
			parents = append(parents, pid)
		case k < 9: // a worker of some service
			parent := parents[r.IntN(len(parents))]
			add(pid, parent, "worker", fmt.Sprintf("worker process --id=%d", pid))
		default: // a shell, sometimes with a hostile name
			name := "bash"
			if r.IntN(3) == 0 {
				name = hostile[r.IntN(len(hostile))]
			}
			add(pid, parents[r.IntN(len(parents))], name, "-bash")
		}
		pid += 1 + int64(r.IntN(5))
	}
	return procs
}

// Body returns an ingest body with n processes (seeded by hostname so
// every host has its own tree).
func Body(n int, hostname, capturedAt string, cmdline bool) []byte {
	return BodyOf(hostname, capturedAt, Processes(n, Seed(hostname, 0), cmdline))
}

// Seed derives a tree seed from a hostname and a variant number.
func Seed(hostname string, variant int) uint64 {
	seed := uint64(len(hostname)) + uint64(variant)*0x9e3779b97f4a7c15
	for _, c := range []byte(hostname) {
		seed = seed*131 + uint64(c)
	}
	return seed
}

// BodyOf returns the ingest body for procs. Its members come in the order
// hostname, captured_at, system_info, processes.
func BodyOf(hostname, capturedAt string, procs []Process) []byte {
	b, err := json.Marshal(snapshot.Snapshot{
		Hostname:   hostname,
		CapturedAt: capturedAt,
		SystemInfo: json.RawMessage(SystemInfo),
		Processes:  procs,
	})
	if err != nil {
		panic(err) // only our own values: cannot fail
	}
	return b
}

// GzipParts is an ingest body split for cheap per-request gzip: a head
// (`{"hostname":...,"captured_at":"<at>"`) made per request as an
// uncompressed gzip member, and the rest compressed once. A gzip stream may
// hold several members that decompress as one (RFC 1952 2.2), and every
// gzip reader, Go's included, reads them so.
type GzipParts struct {
	hostJSON []byte
	// Tail is the compressed member `,"system_info":...,"processes":[...]}`.
	Tail []byte
}

// NewGzipParts splits BodyOf(hostname, _, procs).
func NewGzipParts(hostname string, procs []Process) (*GzipParts, error) {
	full := BodyOf(hostname, "X", procs)
	cut := bytes.Index(full, []byte(`,"system_info":`))
	if cut < 0 {
		return nil, fmt.Errorf("gen: unexpected body layout")
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(full[cut:]); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	q, _ := json.Marshal(hostname)
	return &GzipParts{hostJSON: q, Tail: buf.Bytes()}, nil
}

// Head returns the head member for captured_at at.
func (g *GzipParts) Head(at string) []byte {
	return StoredMember([]byte(`{"hostname":` + string(g.hostJSON) + `,"captured_at":"` + at + `"`))
}

// StoredMember is a gzip member holding data uncompressed, in one deflate
// "stored" block (RFC 1951 3.2.4); data must be under 64 KiB.
func StoredMember(data []byte) []byte {
	b := make([]byte, 0, 10+5+len(data)+8)
	b = append(b, 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff)
	b = append(b, 1) // BFINAL=1, BTYPE=00 (stored)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(data)))
	b = binary.LittleEndian.AppendUint16(b, ^uint16(len(data)))
	b = append(b, data...)
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(data))
	return binary.LittleEndian.AppendUint32(b, uint32(len(data)))
}
