// Package collector walks the host once per interval: system details and the
// whole process table, with CPU% computed from the difference of cumulative
// CPU time between two consecutive walks (as top does, no sleeping inside a
// walk). On Linux it reads /proc itself with reused buffers because gopsutil
// costs an order of magnitude more CPU per process there; on Windows and
// macOS it uses gopsutil.
//
// One Walk feeds both the push to the aggregator and Prometheus /metrics.
package collector

import (
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// Process is one process of a walk: the wire row plus the raw figures that
// /metrics needs.
type Process struct {
	snapshot.Process
	// CPUSeconds is cumulative user+system CPU time since the process started.
	CPUSeconds float64
	// RSSBytes is the resident set size.
	RSSBytes uint64
	// StartTime is when the process started; with PID it identifies a
	// process across walks (a reused PID has another start time).
	StartTime time.Time
	// Cgroup is the process's cgroup path ("" when unknown), for
	// /metrics; the wire carries what it means (Unit, ContainerID, PodUID).
	Cgroup string
	// IOReadBytes and IOWriteBytes are the cumulative read_bytes and
	// write_bytes of /proc/PID/io as last read (see ReadBytesPerSec for
	// when that is), valid when IOKnown.
	IOReadBytes, IOWriteBytes uint64
	IOKnown                   bool
	// State is the one-word state used for "processes by state" metrics:
	// running, sleeping, disk-sleep, stopped, zombie, idle, other.
	State string
}

// NetDevice is the cumulative traffic of one network interface.
type NetDevice struct {
	Device        string
	ReceiveBytes  uint64
	TransmitBytes uint64
}

// PartResult is how one part of a walk (one "collector" in node_exporter's
// sense) went; /metrics reports it as duration and success.
type PartResult struct {
	Name     string // e.g. "processes", "cpu", "memory", "filesystem", "network", "loadavg", "host"
	Duration time.Duration
	Err      error // nil on success
}

// Walk is the result of one pass over the host.
type Walk struct {
	Time   time.Time
	System snapshot.SystemInfo
	// Processes is every process that could be read, in PID order.
	Processes []Process
	// Skipped counts processes that vanished or could not be read mid-walk;
	// they are left out, never an error.
	Skipped int
	// CPUSeconds is host CPU time by mode ("user", "system", "idle",
	// "iowait", "irq", "softirq", "steal", "nice"), cumulative since boot,
	// summed over all CPUs.
	CPUSeconds map[string]float64
	Network    []NetDevice
	BootTime   time.Time
	Parts      []PartResult
}
