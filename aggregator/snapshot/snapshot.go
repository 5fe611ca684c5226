// Package snapshot holds the wire types of procscope's v1 contract (docs/api.md):
// what an exporter POSTs to /api/v1/ingest and what the read API returns.
//
// It uses the standard library only, because the exporter imports it and
// must stay small and cgo-free; the aggregator never gets imported back.
// Field names are chosen once and kept stable: clients of the original
// Django system and outside scripts read them.
package snapshot

import "encoding/json"

// Snapshot is one ingest body: the whole process table of one host at one
// moment, plus the host's system details.
type Snapshot struct {
	// Hostname is 1-253 bytes of UTF-8 without control characters,
	// matched exactly (case-sensitive).
	Hostname string `json:"hostname"`
	// CapturedAt is RFC 3339 with any offset; returned in UTC with
	// milliseconds kept.
	CapturedAt string `json:"captured_at"`
	// SystemInfo is stored and returned exactly as sent. Exporters fill it
	// from a SystemInfo value.
	SystemInfo json.RawMessage `json:"system_info"`
	Processes  []Process       `json:"processes"`
}

// Process is one row of the process table.
type Process struct {
	PID  int64  `json:"pid"`
	PPID int64  `json:"ppid"`
	Name string `json:"name"`
	// CPUPercent is the share of ONE core, as top shows it; it may exceed
	// 100 on a multi-core host.
	CPUPercent float64 `json:"cpu_percent"`
	// MemoryMB is the resident set size in MiB.
	MemoryMB float64 `json:"memory_mb"`
	// Cmdline is absent (nil) unless the exporter was asked to send it; an
	// empty command line (kernel threads) is sent as "".
	Cmdline *string `json:"cmdline,omitempty"`

	// Optional fields an exporter may add.
	Username      string  `json:"username,omitempty"`
	Status        string  `json:"status,omitempty"`
	NumThreads    int32   `json:"num_threads,omitempty"`
	CreateTime    string  `json:"create_time,omitempty"` // RFC 3339
	MemoryPercent float64 `json:"memory_percent,omitempty"`

	// ProcessExt holds the optional attribution and I/O fields; it is
	// nil when a process has none of them (always, from the original
	// agent). encoding/json promotes its fields, so the wire form is as
	// if they were declared here: absent when nil, allocated on
	// unmarshal when any is present. Read them with Ext (nil-safe) and
	// write them with SetExt.
	*ProcessExt
}

// ProcessExt is the part of a Process that few hosts send: most processes
// of a table have none of it, and a whole table is decoded for every diff
// and read, so it lives behind one pointer.
type ProcessExt struct {
	// Attribution, from the process's cgroup path (absent when the path
	// names none, and from the original agent). Unit is the innermost
	// systemd .service or .scope with its slice,
	// e.g. "system.slice/nginx.service"; ContainerID the 64-hex id of a
	// docker, containerd, CRI-O or podman container; PodUID the
	// Kubernetes pod's UID.
	Unit        string `json:"unit,omitempty"`
	ContainerID string `json:"container_id,omitempty"`
	PodUID      string `json:"pod_uid,omitempty"`
	// ReadBytesPerSec and WriteBytesPerSec are the process's storage I/O
	// over the last interval (/proc/PID/io read_bytes and write_bytes).
	// nil (absent) means unknown: the kernel refused it, the platform has
	// no such figure, or the exporter is older; 0 means no I/O.
	ReadBytesPerSec  *float64 `json:"read_bytes_per_sec,omitempty"`
	WriteBytesPerSec *float64 `json:"write_bytes_per_sec,omitempty"`
}

// HasExt reports whether p has any attribution or I/O field.
func (p *Process) HasExt() bool {
	return p.ProcessExt != nil && *p.ProcessExt != (ProcessExt{})
}

// Ext returns p's attribution and I/O fields, zero when it has none.
func (p *Process) Ext() ProcessExt {
	if p.ProcessExt == nil {
		return ProcessExt{}
	}
	return *p.ProcessExt
}

// SetExt sets p's attribution and I/O fields: nil when e is zero, else a
// new copy (never one shared with another Process).
func (p *Process) SetExt(e ProcessExt) {
	if e == (ProcessExt{}) {
		p.ProcessExt = nil
		return
	}
	p.ProcessExt = &e
}

// SystemInfo is what the System Details tab shows. Exporters marshal it into
// Snapshot.SystemInfo; the aggregator reads numbers out of it for history.
// Sizes are bytes, frequencies MHz, times RFC 3339 in UTC.
type SystemInfo struct {
	OS          OSInfo       `json:"os"`
	CPU         CPUInfo      `json:"cpu"`
	Memory      MemoryInfo   `json:"memory"`
	Swap        SwapInfo     `json:"swap"`
	Filesystems []Filesystem `json:"filesystems"`
	BootTime    string       `json:"boot_time,omitempty"`
	UptimeSec   float64      `json:"uptime_seconds"`
	LoadAverage LoadAverage  `json:"load_average"`
	// ProcessCount is the number of processes on the host, which can be more
	// than len(Processes) when the exporter sends only the top N.
	ProcessCount int `json:"process_count"`
	// ForksSinceLast is how many processes (and threads) the host created
	// since the exporter's previous snapshot, from /proc/stat's
	// "processes" counter: it counts those that started and ended between
	// two walks, which no process table shows. Absent on the first
	// snapshot, off Linux, and from older exporters.
	ForksSinceLast *uint64 `json:"forks_since_last,omitempty"`
	// Exporter names the software and version that collected this snapshot,
	// e.g. "procscope-exporter 0.1.0".
	Exporter string `json:"exporter,omitempty"`
}

// OSInfo names the operating system.
type OSInfo struct {
	Name    string `json:"name"`    // e.g. "linux", "windows", "darwin"
	Distro  string `json:"distro"`  // e.g. "debian", "Microsoft Windows 11 Pro"
	Version string `json:"version"` // distribution or product version, e.g. "12.8"
	Kernel  string `json:"kernel"`  // kernel version, e.g. "6.1.0-28-amd64"
	Arch    string `json:"arch"`    // e.g. "x86_64", "arm64"
}

// CPUInfo describes the processors and their current use.
type CPUInfo struct {
	Model          string  `json:"model"`
	PhysicalCores  int     `json:"physical_cores"`
	LogicalThreads int     `json:"logical_threads"`
	CurrentMHz     float64 `json:"current_mhz"`
	MaxMHz         float64 `json:"max_mhz"`
	// UsagePercent is the whole host's busy share over the last interval,
	// 0-100 across all logical CPUs.
	UsagePercent float64 `json:"usage_percent"`
}

// MemoryInfo is RAM in bytes.
type MemoryInfo struct {
	TotalBytes     uint64 `json:"total_bytes"`
	UsedBytes      uint64 `json:"used_bytes"`
	AvailableBytes uint64 `json:"available_bytes"`
}

// SwapInfo is swap space in bytes.
type SwapInfo struct {
	TotalBytes uint64 `json:"total_bytes"`
	UsedBytes  uint64 `json:"used_bytes"`
}

// Filesystem is one mounted filesystem.
type Filesystem struct {
	Mountpoint string `json:"mountpoint"`
	Device     string `json:"device"`
	FSType     string `json:"fstype"`
	TotalBytes uint64 `json:"total_bytes"`
	UsedBytes  uint64 `json:"used_bytes"`
	// AvailableBytes is what an unprivileged user can still write: less
	// than total minus used where the filesystem reserves blocks for root
	// (ext4 keeps 5%). Older exporters do not send it.
	AvailableBytes uint64 `json:"available_bytes,omitempty"`
}

// LoadAverage is the 1, 5 and 15 minute load average (0 where the OS has none).
type LoadAverage struct {
	Load1  float64 `json:"load1"`
	Load5  float64 `json:"load5"`
	Load15 float64 `json:"load15"`
}
