package collector

import (
	"encoding/binary"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/proc/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseStat(t *testing.T) {
	t.Parallel()
	f := func(fixture string, want procStat) {
		t.Helper()
		got, err := parseStat(readFixture(t, fixture))
		if err != nil {
			t.Fatalf("%s: %v", fixture, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got %+v (comm %q)\nwant %+v (comm %q)", fixture, got, got.Comm, want, want.Comm)
		}
	}
	f("1/stat", procStat{Comm: []byte("systemd"), State: 'S', PPID: 0, UTime: 150, STime: 300, NumThreads: 1, StartTime: 12, RSSPages: 3000})
	// kernel thread: parent kthreadd, idle state
	f("15/stat", procStat{Comm: []byte("kworker/0:1H-kblockd"), State: 'I', PPID: 2, STime: 40, NumThreads: 1, StartTime: 30})
	// spaces and parentheses inside the name: cut at the LAST ')'
	f("1200/stat", procStat{Comm: []byte("(sd-pam) x)"), State: 'S', PPID: 1, UTime: 1, STime: 2, NumThreads: 1, StartTime: 5000, RSSPages: 420})
	f("1300/stat", procStat{Comm: []byte("defunct-child"), State: 'Z', PPID: 1, UTime: 7, STime: 3, NumThreads: 1, StartTime: 6000})
	f("1400/stat", procStat{Comm: []byte("kube-controller"), State: 'S', PPID: 1, UTime: 2500, STime: 700, NumThreads: 12, StartTime: 7000, RSSPages: 51200})
}

func TestParseStatErrors(t *testing.T) {
	t.Parallel()
	f := func(line string) {
		t.Helper()
		if s, err := parseStat([]byte(line)); err == nil {
			t.Fatalf("parseStat(%q) = %+v, want an error", line, s)
		}
	}
	f("")
	f("1 systemd S 0")                          // no parentheses
	f("1 (systemd")                             // no closing parenthesis
	f("1 (x) S 0 1 1 0 -1 4194560 100 0 2 0 1") // cut short before utime
	f("1 (x) SS 0 1 1 0 -1 4 1 0 2 0 1 2 0 0 20 0 1 0 5 6 7")
	f("1 (x) S zero 1 1 0 -1 4 1 0 2 0 1 2 0 0 20 0 1 0 5 6 7")
	f("1 (x) S 0 1 1 0 -1 4 1 0 2 0 99999999999999999999999 2 0 0 20 0 1 0 5 6 7")
}

func TestParseUint(t *testing.T) {
	t.Parallel()
	f := func(in string, want uint64, ok bool) {
		t.Helper()
		got, err := parseUint([]byte(in))
		if (err == nil) != ok || got != want {
			t.Fatalf("parseUint(%q) = %d, %v; want %d, ok=%v", in, got, err, want, ok)
		}
	}
	f("0", 0, true)
	f("18446744073709551615", 1<<64-1, true)
	f("18446744073709551616", 0, false)
	f("", 0, false)
	f("-1", 0, false)
	f("1x", 0, false)
}

func TestAppendDirentPIDs(t *testing.T) {
	t.Parallel()
	// Build getdents64 records as the kernel lays them out.
	var buf []byte
	add := func(name string) {
		reclen := (19 + len(name) + 1 + 7) &^ 7
		rec := make([]byte, reclen)
		binary.NativeEndian.PutUint16(rec[16:], uint16(reclen))
		copy(rec[19:], name)
		buf = append(buf, rec...)
	}
	for _, n := range []string{".", "..", "1", "self", "42", "net", "0", "007", "2147483647", "2147483648", "99999999999", "4194304"} {
		add(n)
	}
	got := appendDirentPIDs([]int32{7}, buf)
	want := []int32{7, 1, 42, 2147483647, 4194304}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// A record length that runs past the buffer ends parsing, no panic.
	bad := append([]byte(nil), buf[:24]...)
	binary.NativeEndian.PutUint16(bad[16:], 4000)
	if got := appendDirentPIDs(nil, bad); len(got) != 0 {
		t.Fatalf("corrupt buffer gave %v", got)
	}
}

func TestFullName(t *testing.T) {
	t.Parallel()
	f := func(comm, cmdline, want string) {
		t.Helper()
		if got := fullName([]byte(comm), []byte(cmdline)); got != want {
			t.Fatalf("fullName(%q, %q) = %q, want %q", comm, cmdline, got, want)
		}
	}
	f("systemd", "/sbin/init\x00splash\x00", "systemd") // short comm is the name
	f("kube-controller", "/usr/local/bin/kube-controller-manager\x00--v=2\x00", "kube-controller-manager")
	f("kube-controller", "", "kube-controller")                                          // kernel thread or zombie
	f("abcdefghijklmno", "python3\x00app.py\x00", "abcdefghijklmno")                     // renamed: argv[0] unrelated
	f("kube-controller", "kube-controller-manager --v=2\x00", "kube-controller-manager") // setproctitle
	f("kube-controller", "kube-controller", "kube-controller")
}

func TestCmdlineString(t *testing.T) {
	t.Parallel()
	f := func(in, want string) {
		t.Helper()
		if got := cmdlineString([]byte(in)); got != want {
			t.Fatalf("cmdlineString(%q) = %q, want %q", in, got, want)
		}
	}
	f("", "")
	f("/sbin/init\x00splash\x00", "/sbin/init splash")
	f("a\x00\x00b\x00\x00", "a  b")
	if got := cmdlineString([]byte(strings.Repeat("x", maxCmdline+100))); len(got) != maxCmdline {
		t.Fatalf("long command line kept %d bytes, want %d", len(got), maxCmdline)
	}
}

func TestProcStatus(t *testing.T) {
	t.Parallel()
	f := func(c byte, status, state string) {
		t.Helper()
		if s, st := procStatus(c); s != status || st != state {
			t.Fatalf("procStatus(%q) = %q, %q; want %q, %q", c, s, st, status, state)
		}
	}
	f('R', "running", "running")
	f('S', "sleeping", "sleeping")
	f('D', "disk-sleep", "disk-sleep")
	f('Z', "zombie", "zombie")
	f('T', "stopped", "stopped")
	f('t', "tracing-stop", "stopped")
	f('I', "idle", "idle")
	f('?', "unknown", "other")
}

func TestParseUptime(t *testing.T) {
	t.Parallel()
	u, err := parseUptime(readFixture(t, "uptime"))
	if err != nil || u != 350735.47 {
		t.Fatalf("uptime %v, %v", u, err)
	}
	for _, in := range []string{"", "x", "-5 1"} {
		if _, err := parseUptime([]byte(in)); err == nil {
			t.Fatalf("parseUptime(%q) gave no error", in)
		}
	}
}

func TestUnescapeOctal(t *testing.T) {
	t.Parallel()
	f := func(in, want string) {
		t.Helper()
		if got := unescapeOctal(in); got != want {
			t.Fatalf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
	f("/plain", "/plain")
	f(`/a\040b`, "/a b")
	f(`/tab\011x\134y`, "/tab\tx\\y")
	f(`/trailing\04`, `/trailing\04`) // too short to be an escape
	f(`/bad\999`, `/bad\999`)
}

func TestParseOSRelease(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/rootfs/etc/os-release")
	if err != nil {
		t.Fatal(err)
	}
	got := parseOSRelease(b)
	if got["ID"] != "debian" || got["VERSION_ID"] != "12" || got["PRETTY_NAME"] != "Debian GNU/Linux 12 (bookworm)" {
		t.Fatalf("got %v", got)
	}
	if _, ok := got["# a comment"]; ok {
		t.Fatal("comment parsed as a key")
	}
}

func TestParseAuxvClkTck(t *testing.T) {
	t.Parallel()
	if strconv.IntSize != 64 {
		t.Skip("the fixture vector below is made of 64-bit words")
	}
	word := func(v uint64) []byte {
		b := make([]byte, 8)
		binary.NativeEndian.PutUint64(b, v)
		return b
	}
	var auxv []byte
	for _, kv := range [][2]uint64{{6, 4096}, {17, 250}, {0, 0}} {
		auxv = append(append(auxv, word(kv[0])...), word(kv[1])...)
	}
	if hz, ok := parseAuxvClkTck(auxv); !ok || hz != 250 {
		t.Fatalf("got %d, %v", hz, ok)
	}
	if _, ok := parseAuxvClkTck(auxv[32:]); ok {
		t.Fatal("found AT_CLKTCK after AT_NULL")
	}
	if _, ok := parseAuxvClkTck(auxv[:7]); ok {
		t.Fatal("found AT_CLKTCK in a truncated vector")
	}
}
