package metrics

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/procscope/procscope/exporter/internal/collector"
)

// series returns the value of one exact series line of a scrape.
func series(t *testing.T, text, name string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return -1
}

func withUnit(p collector.Process, unit string, read, write uint64) collector.Process {
	x := p.Ext()
	x.Unit = unit
	p.SetExt(x)
	p.IOReadBytes, p.IOWriteBytes, p.IOKnown = read, write, true
	return p
}

// TestUnitSeries follows three walks with --metrics.max-units=2: the first
// two units seen get series, the third is summed into "other" and stays
// there; CPU and I/O are counted from the walk-to-walk growth (a new
// process's whole amount), starts and exits per unit, forks from the
// snapshot's counter.
func TestUnitSeries(t *testing.T) {
	c, err := New(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetMaxUnits(2)
	t0 := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	walk := func(d time.Duration, forks uint64, procs ...collector.Process) string {
		w := &collector.Walk{Time: t0.Add(d), Processes: procs}
		w.System.ForksSinceLast = &forks
		c.Update(w, time.Millisecond)
		return scrape(t, c)
	}
	a := withUnit(proc(10, 1, "nginx", 0, 10<<20, 100, "sleeping"), "system.slice/nginx.service", 1000, 0)
	b := withUnit(proc(20, 1, "pg", 0, 20<<20, 50, "sleeping"), "system.slice/pg.service", 0, 0)
	x := withUnit(proc(30, 1, "x", 0, 1<<20, 5, "sleeping"), "system.slice/x.service", 0, 0)
	walk(0, 7, a, b, x)

	a2 := a
	a2.CPUSeconds, a2.IOReadBytes, a2.IOWriteBytes = 102.5, 5096, 4096
	worker := withUnit(proc(11, 10, "nginx", 0, 5<<20, 1.5, "running"), "system.slice/nginx.service", 300, 0)
	y := withUnit(proc(40, 1, "y", 0, 1<<20, 2, "sleeping"), "system.slice/y.service", 0, 0)
	text := walk(2*time.Second, 12, a2, worker, x, y) // pg exited, a worker and y started

	nginx := `{container="",unit="system.slice/nginx.service"}`
	pg := `{container="",unit="system.slice/pg.service"}`
	other := `{container="",unit="other"}`
	for name, want := range map[string]float64{
		"procscope_unit_processes" + nginx:                                     2,
		"procscope_unit_resident_memory_bytes" + nginx:                         15 << 20,
		"procscope_unit_cpu_seconds_total" + nginx:                             2.5 + 1.5,
		"procscope_unit_io_read_bytes_total" + nginx:                           4096 + 300,
		"procscope_unit_io_write_bytes_total" + nginx:                          4096,
		"procscope_unit_process_starts_total" + nginx:                          1,
		"procscope_unit_processes" + pg:                                        0,
		"procscope_unit_process_exits_total" + pg:                              1,
		"procscope_unit_processes" + other:                                     2, // x and y
		"procscope_unit_process_starts_total" + other:                          1,
		"procscope_forks_total":                                                19,
		`procscope_unit_processes{container="",unit="system.slice/x.service"}`: -1, // no series of its own
	} {
		if got := series(t, text, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// An hour later pg's slot is free: a new unit gets it, x stays in other.
	z := withUnit(proc(50, 1, "z", 0, 1<<20, 1, "sleeping"), "system.slice/z.service", 0, 0)
	text = walk(time.Hour+3*time.Second, 0, a2, worker, x, y, z)
	if got := series(t, text, `procscope_unit_processes{container="",unit="system.slice/z.service"}`); got != 1 {
		t.Errorf("z has %v processes of its own, want 1", got)
	}
	if got := series(t, text, "procscope_unit_processes"+pg); got != -1 {
		t.Errorf("pg's series still there: %v", got)
	}
	if got := series(t, text, "procscope_unit_processes"+other); got != 2 {
		t.Errorf("other has %v processes, want 2 (x and y stay)", got)
	}
}
