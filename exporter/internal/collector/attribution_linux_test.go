package collector

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func setIO(t *testing.T, root string, pid int, read, write string) {
	t.Helper()
	text := "rchar: 1\nwchar: 1\nsyscr: 1\nsyscw: 1\nread_bytes: " + read + "\nwrite_bytes: " + write + "\ncancelled_write_bytes: 0\n"
	if err := os.WriteFile(filepath.Join(root, strconv.Itoa(pid), "io"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFixtureAttributionIOForks walks the fixture twice: attribution from
// each process's cgroup file, I/O rates from the growth of its io file
// (absent on the first walk and where there is no io file, 0 where
// nothing was read), and the forks between the walks from /proc/stat.
func TestFixtureAttributionIOForks(t *testing.T) {
	root := copyDir(t, "testdata/proc")
	c, now := newFixtureCollector(t, root, false)
	ctx := context.Background()
	w1, err := c.Walk(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if w1.System.ForksSinceLast != nil {
		t.Errorf("first walk forks %d, want absent", *w1.System.ForksSinceLast)
	}
	for _, p := range w1.Processes {
		if p.Ext().ReadBytesPerSec != nil || p.Ext().WriteBytesPerSec != nil {
			t.Errorf("pid %d: I/O rate on the first walk", p.PID)
		}
	}
	*now = now.Add(2 * time.Second)
	setIO(t, root, 1400, "4096", "28672") // wrote 20,480 bytes in 2 s
	setStat(t, root, 1400, map[int]string{14: "2600"})
	stat, err := os.ReadFile(filepath.Join(root, "stat"))
	if err != nil {
		t.Fatal(err)
	}
	stat = []byte(strings.Replace(string(stat), "processes 142339", "processes 142400", 1))
	if err := os.WriteFile(filepath.Join(root, "stat"), stat, 0o644); err != nil {
		t.Fatal(err)
	}
	// Attribution is read once per process: a changed cgroup file is not
	// read again for the same process.
	if err := os.WriteFile(filepath.Join(root, "1401", "cgroup"), []byte("0::/system.slice/other.service\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w2, err := c.Walk(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f := w2.System.ForksSinceLast; f == nil || *f != 61 {
		t.Errorf("forks since last %v, want 61", f)
	}
	const id = "3f1c9a1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7"
	type row struct {
		Unit, Container, Pod string
		Read, Write          string
	}
	rate := func(f *float64) string {
		if f == nil {
			return "absent"
		}
		return strconv.FormatFloat(*f, 'f', -1, 64)
	}
	got := map[int64]row{}
	for _, p := range w2.Processes {
		x := p.Ext()
		got[p.PID] = row{x.Unit, x.ContainerID, x.PodUID, rate(x.ReadBytesPerSec), rate(x.WriteBytesPerSec)}
	}
	want := map[int64]row{
		1:    {"init.scope", "", "", "0", "0"},
		2:    {"", "", "", "absent", "absent"},
		15:   {"", "", "", "absent", "absent"},
		1200: {"", "", "", "absent", "absent"},
		1300: {"", "", "", "absent", "absent"},
		1400: {"", id, "8a9b0c1d-2e3f-4a5b-8c7d-9e0f1a2b3c4d", "0", "10200"},
		1401: {"system.slice/app.service", "", "", "0", "0"},
		1600: {"system.slice/postgresql@15-main.service", "", "", "absent", "absent"},
	}
	for pid, w := range want {
		if got[pid] != w {
			t.Errorf("pid %d: got %+v, want %+v", pid, got[pid], w)
		}
	}
	// A process that used no CPU time is not read again: 1401's write
	// shows as 0 now and is counted once 1401 runs, over the 6 s since
	// its io file was last read (walk 1: it did not run in walk 2 either).
	setIO(t, root, 1401, "4096", "49152")
	*now = now.Add(2 * time.Second)
	w3, err := c.Walk(ctx)
	if err != nil {
		t.Fatal(err)
	}
	setStat(t, root, 1401, map[int]string{14: "9999"})
	*now = now.Add(2 * time.Second)
	w4, err := c.Walk(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []*Walk{w3, w4} {
		for _, p := range w.Processes {
			if p.PID == 1401 {
				if got, want := rate(p.Ext().WriteBytesPerSec), []string{"0", "6830"}[i]; got != want {
					t.Errorf("walk %d: 1401 writes %s/s, want %s", i+3, got, want)
				}
			}
		}
	}
	// Two processes of one cgroup share one Attribution.
	if a, b := c.plat.state[1401].attr, c.plat.attrs["/system.slice/app.service"]; a == nil || a != b {
		t.Errorf("attribution of 1401 not interned: %p %p", a, b)
	}
}

func TestRoundRate(t *testing.T) {
	t.Parallel()
	for in, want := range map[float64]float64{0: 0, 0.4: 0, 999.5: 1000, 1234: 1230, 6826.67: 6830, 1234567: 1230000, 4194303: 4190000, 9996: 10000} {
		if got := roundRate(in); got != want {
			t.Errorf("roundRate(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestParseIO(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in     string
		r, w   uint64
		wantOK bool
	}{
		{"rchar: 5\nread_bytes: 4096\nwrite_bytes: 0\ncancelled_write_bytes: 9\n", 4096, 0, true},
		{"read_bytes: 1\nwrite_bytes: 18446744073709551615\n", 0, 0, false}, // beyond the bound parseIO keeps
		{"read_bytes: 1\n", 0, 0, false},
		{"read_bytes: x\nwrite_bytes: 1\n", 0, 0, false},
		{"", 0, 0, false},
	} {
		r, w, ok := parseIO([]byte(c.in))
		if ok != c.wantOK || (ok && (r != c.r || w != c.w)) {
			t.Errorf("parseIO(%q) = %d %d %v", c.in, r, w, ok)
		}
	}
}

// TestLiveIODenied walks the live /proc twice: a process whose io file
// the kernel refuses to this test has no I/O rates (absent, not 0), and
// this test's own process has them.
func TestLiveIODenied(t *testing.T) {
	c, err := New(Options{SampleWindow: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	ctx := context.Background()
	if _, err := c.Walk(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := c.Walk(ctx)
	if err != nil {
		t.Fatal(err)
	}
	self, denied := false, 0
	for _, p := range w.Processes {
		_, err := os.ReadFile("/proc/" + strconv.Itoa(int(p.PID)) + "/io")
		if errors.Is(err, fs.ErrPermission) {
			denied++
			if p.Ext().ReadBytesPerSec != nil || p.Ext().WriteBytesPerSec != nil {
				t.Errorf("pid %d: io refused, yet rates %v %v", p.PID, *p.Ext().ReadBytesPerSec, *p.Ext().WriteBytesPerSec)
			}
		}
		if p.PID == int64(os.Getpid()) {
			self = true
			if p.Ext().ReadBytesPerSec == nil || p.Ext().WriteBytesPerSec == nil {
				t.Errorf("own process without I/O rates")
			}
		}
	}
	if !self {
		t.Fatal("own process not walked")
	}
	t.Logf("%d processes refuse their io file here", denied)
}
