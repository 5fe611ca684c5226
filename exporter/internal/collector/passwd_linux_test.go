package collector

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParsePasswd(t *testing.T) {
	f := func(text string, want map[uint32]string) {
		t.Helper()
		if got := parsePasswd([]byte(text)); !reflect.DeepEqual(got, want) {
			t.Errorf("parsePasswd(%q) = %v, want %v", text, got, want)
		}
	}
	none := map[uint32]string{}
	f("", none)
	f("\n\n   \n", none)
	f("root:x:0:0:root:/root:/bin/bash", map[uint32]string{0: "root"})
	f("root:x:0:0:root:/root:/bin/bash\n", map[uint32]string{0: "root"})
	f("  root:x:0:0:root:/root:/bin/bash  \r\n", map[uint32]string{0: "root"})
	f("# root:x:0:0:root:/root:/bin/bash", none)
	f("   #root:x:0:0::/:", none)
	// Fewer than seven fields.
	f("root:x:0:0::/root", none)
	f("root:x:0", none)
	f("root", none)
	// Empty trailing fields are fine (no shell means /bin/sh).
	f("root:x:0:0:::", map[uint32]string{0: "root"})
	// uid and gid must be plain decimal numbers within 32 bits.
	f("a:x:-1:0::/:", none)
	f("a:x:+1:0::/:", none)
	f("a:x: 1:0::/:", none)
	f("a:x:0x10:0::/:", none)
	f("a:x::0::/:", none)
	f("a:x:4294967296:0::/:", none)
	f("a:x:99999999999999999999:0::/:", none)
	f("a:x:4294967295:0::/:", map[uint32]string{4294967295: "a"})
	f("a:x:1:g::/:", none)
	// Names: NIS compat entries, empty, too long, control characters and
	// invalid UTF-8 are skipped; other UTF-8 is kept as is.
	f("+a:x:1:1::/:", none)
	f("-a:x:1:1::/:", none)
	f(":x:1:1::/:", none)
	f(strings.Repeat("n", maxUserName)+":x:1:1::/:", map[uint32]string{1: strings.Repeat("n", maxUserName)})
	f(strings.Repeat("n", maxUserName+1)+":x:1:1::/:", none)
	f("a\tb:x:1:1::/:", none)
	f("a\x1b[2Jb:x:1:1::/:", none)
	f("a\u0085b:x:1:1::/:", none)
	f("a\xffb:x:1:1::/:", none)
	f("jürgen:x:1:1::/:", map[uint32]string{1: "jürgen"})
	f("a b'\"<c>:x:1:1::/:", map[uint32]string{1: "a b'\"<c>"})
	// The first line for a uid wins, as with getpwuid; a skipped line
	// does not claim its uid.
	f("a:x:1:1::/:\nb:x:1:1::/:", map[uint32]string{1: "a"})
	f("a:x:1:1::/\nb:x:1:1::/:", map[uint32]string{1: "b"})
	// A NUL byte is a control character, not a line end.
	f("a\x00:x:1:1::/:\nb:x:2:2::/:", map[uint32]string{2: "b"})
}

// TestPasswdFixture parses the fixture host's file, which mixes ordinary
// users with every kind of line that must be passed over.
func TestPasswdFixture(t *testing.T) {
	got, err := readPasswd("testdata/rootfs")
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint32]string{
		0: "root", 1: "daemon", 33: "www-data", 105: "postgres", 1000: "alice", 1012: "crlf",
		1013: "名前", 65534: "nobody", 4294967294: "last-no-newline",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// newRootFS makes a root filesystem whose etc/passwd is text.
func newRootFS(t *testing.T, text string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestWalkUsernamesFromRootFS: with RootFS set, a walk names users from
// RootFS/etc/passwd, not from the exporter's own (here the test's) passwd.
// The fixture's processes belong to whoever runs the test, so lines for
// that uid are put first: hostile ones that must be passed over, then the
// one that counts, then the fixture (whose root line would otherwise
// answer when the test runs as root).
func TestWalkUsernamesFromRootFS(t *testing.T) {
	fixture, err := os.ReadFile("testdata/rootfs/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	uid := os.Getuid()
	var b bytes.Buffer
	fmt.Fprintf(&b, "# commented:x:%d:0::/:/bin/sh\n", uid)
	fmt.Fprintf(&b, "short:x:%d:0\n", uid)
	fmt.Fprintf(&b, "+nis:x:%d:0::/:/bin/sh\n", uid)
	fmt.Fprintf(&b, "esc\x1b]0;pwned\x07:x:%d:0::/:/bin/sh\n", uid)
	fmt.Fprintf(&b, "%s:x:%d:0::/:/bin/sh\n", strings.Repeat("x", 4096), uid)
	fmt.Fprintf(&b, "walker-from-host:x:%d:0:Host User:/home/w:/bin/sh\n", uid)
	b.Write(fixture)
	root := newRootFS(t, b.String())

	c, err := New(Options{ProcRoot: "testdata/proc", SysRoot: t.TempDir(), RootFS: root, SampleWindow: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	w, err := c.Walk(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Processes) == 0 {
		t.Fatal("no processes in the fixture walk")
	}
	for _, p := range w.Processes {
		if p.Username != "walker-from-host" {
			t.Errorf("pid %d: username %q, want walker-from-host from %s/etc/passwd", p.PID, p.Username, root)
		}
	}
}

// TestRootFSUserCache: the host's file is read once per cache lifetime and
// again after it expires; a file that cannot be read (missing, or a link
// out of the root) gives numbers and a warning, never the exporter's own
// names.
func TestRootFSUserCache(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	root := newRootFS(t, "old:x:4242:0::/:/bin/sh\n")
	uc := newUserCache(root, logger)
	if n := uc.name(4242); n != "old" {
		t.Fatalf("uid 4242 = %q, want old", n)
	}
	if n := uc.name(7); n != "7" {
		t.Fatalf("unknown uid 7 = %q, want the number", n)
	}
	// A rename is seen only after the cache expires, not at every miss.
	if err := os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("new:x:4242:0::/:/bin/sh\nseven:x:7:0::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n := uc.name(8); n != "8" || uc.name(4242) != "old" {
		t.Fatalf("file re-read before the cache expired")
	}
	uc.expires = time.Now().Add(-time.Second)
	if n := uc.name(4242); n != "new" {
		t.Fatalf("after expiry uid 4242 = %q, want new", n)
	}
	if n := uc.name(7); n != "seven" {
		t.Fatalf("after expiry uid 7 = %q, want seven", n)
	}
	if logs.Len() != 0 {
		t.Fatalf("unexpected log: %s", logs.String())
	}

	// An absolute link resolves inside the exporter's filesystem, not the
	// host's: it is refused. The test's own passwd names uid 0 (root).
	linked := t.TempDir()
	if err := os.Mkdir(filepath.Join(linked, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(linked, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	missing := t.TempDir()
	for _, dir := range []string{linked, missing} {
		logs.Reset()
		uc := newUserCache(dir, logger)
		if n := uc.name(0); n != "0" {
			t.Errorf("%s: uid 0 = %q, want the number", dir, n)
		}
		uc.name(1)
		if got := strings.Count(logs.String(), "cannot read the host's passwd file"); got != 1 {
			t.Errorf("%s: %d warnings for two lookups, want 1:\n%s", dir, got, logs.String())
		}
	}

	// A relative link inside the root is followed (/etc/passwd is
	// sometimes a link into /usr).
	rel := newRootFS(t, "")
	if err := os.WriteFile(filepath.Join(rel, "etc", "passwd.real"), []byte("linked:x:5:5::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(rel, "etc", "passwd"))
	if err := os.Symlink("passwd.real", filepath.Join(rel, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	if n := newUserCache(rel, logger).name(5); n != "linked" {
		t.Errorf("relative link: uid 5 = %q, want linked", n)
	}

	// "/" and "" use os/user, which reads the exporter's own passwd (and NSS).
	for _, r := range []string{"/", "", "//"} {
		if uc := newUserCache(r, logger); uc.reset != nil {
			t.Errorf("root %q: a file lookup, want os/user", r)
		}
	}
}

// TestReadPasswdBound: a passwd file over the size bound is read up to the
// last whole line within it, and says so.
func TestReadPasswdBound(t *testing.T) {
	line := "u:x:1:1::/:/bin/sh\n"
	var b bytes.Buffer
	b.Grow(maxPasswdSize + 64)
	b.WriteString(line)
	pad := "#" + strings.Repeat("p", 1022) + "\n"
	for b.Len()+len(pad) <= maxPasswdSize-10 {
		b.WriteString(pad)
	}
	// Pad to exactly 10 bytes short of the bound.
	b.WriteString("#" + strings.Repeat("q", maxPasswdSize-10-b.Len()-2) + "\n")
	// This line straddles the bound: cut, it would read as user "cut" with
	// uid 2 and a truncated shell; it must be dropped whole.
	b.WriteString("cut:x:2:2::/:/bin/bash-with-a-long-path\n")
	b.WriteString("after:x:3:3::/:/bin/sh\n")
	root := newRootFS(t, b.String())
	names, err := readPasswd(root)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want the size bound named", err)
	}
	if want := map[uint32]string{1: "u"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("names %v, want %v", names, want)
	}
}
