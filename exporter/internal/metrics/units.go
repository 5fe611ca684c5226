package metrics

// Per unit and container aggregates (issue 15): processes, resident
// memory, CPU seconds, disk I/O bytes, and process starts and exits, for
// each systemd unit or container, bounded by --metrics.max-units.
//
// A unit gets a series of its own the first time it is seen while a slot
// is free, and keeps it while it has processes (and an hour after its
// last one, so a restarting service keeps its series); every unit without
// a slot is summed into unit="other". Units never move between their own
// series and "other" while they have processes, so every counter only
// grows.

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/procscope/procscope/exporter/internal/collector"
)

// DefaultMaxUnits is --metrics.max-units' default.
const DefaultMaxUnits = 200

// unitIdle is how long a unit without processes keeps its slot.
const unitIdle = time.Hour

var (
	descUnitProcs  = desc("unit_processes", "Processes of a systemd unit or container (unit=\"other\": those beyond --metrics.max-units; unit=\"\" and container=\"\": processes of neither, kernel threads).", "unit", "container")
	descUnitCPU    = desc("unit_cpu_seconds_total", "CPU time used by the processes of a unit or container while the exporter watched.", "unit", "container")
	descUnitMem    = desc("unit_resident_memory_bytes", "Resident memory of the processes of a unit or container.", "unit", "container")
	descUnitRead   = desc("unit_io_read_bytes_total", "Bytes the processes of a unit or container read from storage while the exporter watched (processes whose /proc/PID/io is readable).", "unit", "container")
	descUnitWrite  = desc("unit_io_write_bytes_total", "Bytes the processes of a unit or container wrote to storage while the exporter watched (processes whose /proc/PID/io is readable).", "unit", "container")
	descUnitStarts = desc("unit_process_starts_total", "Processes of a unit or container that started since the exporter's first walk.", "unit", "container")
	descUnitExits  = desc("unit_process_exits_total", "Processes of a unit or container that exited since the exporter's first walk.", "unit", "container")
	descForks      = desc("forks_total", "Processes and threads the host created while the exporter watched (/proc/stat processes), short-lived ones included.")
)

// unitKey is a unit or container series' labels.
type unitKey struct{ unit, container string }

var otherUnit = unitKey{unit: "other"}

type unitAcc struct {
	cpu, read, write, starts, exits float64
	procs, mem                      float64 // this walk
	lastSeen                        time.Time
}

// procSeen is what the unit accounting remembers of a process.
type procSeen struct {
	key         unitKey
	cpu         float64
	read, write uint64
	ioKnown     bool
}

type unitState struct {
	max   int
	units map[unitKey]*unitAcc
	procs map[procKey]procSeen
	walks int
	forks float64
}

func newUnitState(max int) *unitState {
	return &unitState{max: max, units: map[unitKey]*unitAcc{}, procs: map[procKey]procSeen{}}
}

// containerLabel shortens a container id to docker's 12 characters.
func containerLabel(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// slot returns the accumulator of k, or of "other" when no slot is free.
func (u *unitState) slot(k unitKey, now time.Time) *unitAcc {
	if a, ok := u.units[k]; ok {
		return a
	}
	if k == otherUnit {
		a := &unitAcc{}
		u.units[k] = a
		return a
	}
	if u.own() >= u.max {
		for key, a := range u.units {
			if key != otherUnit && a.procs == 0 && now.Sub(a.lastSeen) > unitIdle {
				delete(u.units, key)
			}
		}
		if u.own() >= u.max {
			return u.slot(otherUnit, now)
		}
	}
	a := &unitAcc{}
	u.units[k] = a
	return a
}

// own is the number of units with series of their own.
func (u *unitState) own() int {
	if _, ok := u.units[otherUnit]; ok {
		return len(u.units) - 1
	}
	return len(u.units)
}

// update accounts one walk and adds its series.
func (u *unitState) update(w *collector.Walk, gauge, counter func(*prometheus.Desc, float64, ...string)) {
	now := w.Time
	if now.IsZero() {
		now = time.Now()
	}
	for _, a := range u.units {
		a.procs, a.mem = 0, 0
	}
	next := make(map[procKey]procSeen, len(w.Processes))
	accOf := map[unitKey]*unitAcc{}
	for i := range w.Processes {
		p := &w.Processes[i]
		x := p.Ext()
		k := unitKey{label(x.Unit), label(containerLabel(x.ContainerID))}
		pk := procKey{p.PID, p.StartTime.UnixNano()}
		prev, known := u.procs[pk]
		if known {
			k = prev.key // a process stays in the series it was counted in
		}
		a, ok := accOf[k]
		if !ok {
			a = u.slot(k, now)
			if _, own := u.units[k]; !own {
				k = otherUnit
			}
			accOf[k] = a
		}
		a.procs++
		a.mem += rssBytes(p)
		a.lastSeen = now
		if known {
			a.cpu += max(p.CPUSeconds-prev.cpu, 0)
			if p.IOKnown && prev.ioKnown && p.IOReadBytes >= prev.read && p.IOWriteBytes >= prev.write {
				a.read += float64(p.IOReadBytes - prev.read)
				a.write += float64(p.IOWriteBytes - prev.write)
			}
		} else if u.walks > 0 {
			// Started since the last walk: all its CPU and I/O are new.
			a.starts++
			a.cpu += p.CPUSeconds
			if p.IOKnown {
				a.read += float64(p.IOReadBytes)
				a.write += float64(p.IOWriteBytes)
			}
		}
		next[pk] = procSeen{key: k, cpu: p.CPUSeconds, read: p.IOReadBytes, write: p.IOWriteBytes, ioKnown: p.IOKnown}
	}
	for pk, ps := range u.procs {
		if _, ok := next[pk]; !ok {
			if a, ok := u.units[ps.key]; ok {
				a.exits++
			} else {
				u.slot(otherUnit, now).exits++
			}
		}
	}
	u.procs = next
	u.walks++
	if f := w.System.ForksSinceLast; f != nil {
		u.forks += float64(*f)
	}
	for k, a := range u.units {
		gauge(descUnitProcs, a.procs, k.unit, k.container)
		gauge(descUnitMem, a.mem, k.unit, k.container)
		counter(descUnitCPU, a.cpu, k.unit, k.container)
		counter(descUnitRead, a.read, k.unit, k.container)
		counter(descUnitWrite, a.write, k.unit, k.container)
		counter(descUnitStarts, a.starts, k.unit, k.container)
		counter(descUnitExits, a.exits, k.unit, k.container)
	}
	counter(descForks, u.forks)
}
