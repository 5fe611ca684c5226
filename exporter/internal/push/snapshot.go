package push

import (
	"encoding/json"
	"fmt"

	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/exporter/internal/collector"
)

// CapturedAtLayout is RFC 3339 in UTC with milliseconds, the precision the
// aggregator keeps; so a snapshot's identity (hostname, captured_at) is the
// same string on both sides.
const CapturedAtLayout = "2006-01-02T15:04:05.000Z07:00"

// FromWalk builds the wire snapshot of a walk. procs is the walk's process
// list after the top-N cut (all of w.Processes when there is none), so
// system_info.process_count still says how many processes the host has.
func FromWalk(w *collector.Walk, procs []collector.Process, hostname, exporterName string) (*snapshot.Snapshot, error) {
	sys := w.System
	if sys.ProcessCount == 0 {
		sys.ProcessCount = len(w.Processes)
	}
	if sys.Exporter == "" {
		sys.Exporter = exporterName
	}
	raw, err := json.Marshal(sys)
	if err != nil {
		return nil, fmt.Errorf("system info: %w", err)
	}
	s := &snapshot.Snapshot{
		Hostname:   hostname,
		CapturedAt: w.Time.UTC().Format(CapturedAtLayout),
		SystemInfo: raw,
		Processes:  make([]snapshot.Process, len(procs)),
	}
	for i := range procs {
		s.Processes[i] = procs[i].Process
	}
	return s, nil
}

// CheckHostname applies docs/api.md's hostname rule (snapshot.CheckHostname:
// 1-253 bytes of UTF-8, no control characters) before the first push, so a
// host whose name the aggregator would refuse fails at start with a clear
// message instead of having every snapshot rejected.
func CheckHostname(h string) error {
	if msg := snapshot.CheckHostname(h); msg != "" {
		return fmt.Errorf("%s: %q", msg, h)
	}
	return nil
}
