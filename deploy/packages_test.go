package deploy

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The release the package tests build: a version no real release has, so
// that an installed package is recognisably this test's.
const (
	pkgTestVersion    = "0.0.0-pkgtest.1"
	pkgTestDebVersion = "0.0.0~pkgtest.1"
	pkgTestUpgrade    = "0.0.0-pkgtest.2"
	pkgTestUpgradeDeb = "0.0.0~pkgtest.2"
)

// pkgTestCross is the platforms the test releases for: this machine's
// (whose binaries it runs and installs) and windows/arm64 (another OS and
// architecture, with its .exe), not all of make cross's six, to keep it
// short; make release does all six.
var pkgTestCross = "linux/" + runtime.GOARCH + " windows/arm64"

// crossTarget is the other linux architecture make release builds the
// aggregator (cgo) for, with Debian's C cross compiler: linux/arm64 on
// any other machine, linux/amd64 on an arm64 one (the Makefile's
// AGG_PLATFORMS and AGG_CC_<arch>).
type crossTarget struct {
	arch    string
	cc      string      // the Makefile's AGG_CC_<arch>
	pkgs    string      // the Debian packages of cc and its libc
	machine elf.Machine // of its ELF binaries
	interp  string      // its glibc's dynamic loader
	qemu    string      // qemu-user's emulator, run with -L sysroot
	sysroot string      // the cross libc's root
}

var crossTargets = map[string]crossTarget{
	"arm64": {"arm64", "aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu libc6-dev-arm64-cross", elf.EM_AARCH64,
		"/lib/ld-linux-aarch64.so.1", "qemu-aarch64", "/usr/aarch64-linux-gnu"},
	"amd64": {"amd64", "x86_64-linux-gnu-gcc", "gcc-x86-64-linux-gnu libc6-dev-amd64-cross", elf.EM_X86_64,
		"/lib64/ld-linux-x86-64.so.2", "qemu-x86_64", "/usr/x86_64-linux-gnu"},
}

// crossArch is the architecture of crossTarget for this machine.
func crossArch() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

var (
	releaseOnce  sync.Once
	releaseDir   string
	releaseErr   error
	releaseLog   []byte
	releaseCross string // the cross-built aggregator's arch, "" when none
)

// makeRelease runs `make release` once per test binary into a temp dir
// and returns it and the arch of the cross-built aggregator: the real
// target, so its LDFLAGS are what is tested. Without the cross compiler
// the aggregator is released for this machine only (make release would
// refuse): a loud skip of that part, or with REQUIRE_E2E a failure (.ci/run
// installs the compiler).
func makeRelease(t *testing.T) (string, string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("SKIPPED: make release builds the aggregator with cgo for linux only")
	}
	mk := requireTool(t, "make")
	ct := crossTargets[crossArch()]
	releaseOnce.Do(func() {
		platforms := "linux/" + runtime.GOARCH
		if _, err := exec.LookPath(ct.cc); err == nil {
			releaseCross = ct.arch
			platforms += " linux/" + ct.arch
		} else if os.Getenv("REQUIRE_E2E") != "" {
			releaseErr = fmt.Errorf("%s not found (%v) and REQUIRE_E2E is set: apt-get install %s (.ci/run does)", ct.cc, err, ct.pkgs)
			return
		}
		if releaseDir, releaseErr = os.MkdirTemp("", "procscope-release-test-"); releaseErr != nil {
			return
		}
		cmd := exec.Command(mk, "-s", "release", "VERSION="+pkgTestVersion, "DIST="+releaseDir,
			"CROSS="+pkgTestCross, "AGG_PLATFORMS="+platforms)
		cmd.Dir = repoRoot
		releaseLog, releaseErr = cmd.CombinedOutput()
	})
	if releaseErr != nil {
		t.Fatalf("make release: %v\n%s", releaseErr, releaseLog)
	}
	if releaseCross == "" {
		t.Logf("!!! SKIPPED the linux/%s aggregator: %s not found; apt-get install %s or set REQUIRE_E2E=1 to make this a failure !!!",
			ct.arch, ct.cc, ct.pkgs)
	}
	return releaseDir, releaseCross // TestMain removes the dir
}

// gitRevision is the short commit make release stamps, or "" without git.
func gitRevision(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "-C", repoRoot, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// checkVersionOutput checks bin's --version: the release version, the
// commit and the Go version, none empty or unknown. With emulator (qemu-user
// and its arguments) bin runs under it.
func checkVersionOutput(t *testing.T, bin, version string, emulator ...string) {
	t.Helper()
	argv := append(slices.Clone(emulator), bin, "--version")
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", bin, err, out)
	}
	s := string(out)
	if !strings.Contains(s, ", version "+version+" ") {
		t.Errorf("%s --version does not say version %s:\n%s", bin, version, s)
	}
	if rev := gitRevision(t); rev != "" && !strings.Contains(s, "revision: "+rev+")") {
		t.Errorf("%s --version does not name commit %s:\n%s", bin, rev, s)
	}
	if !strings.Contains(s, "go version:       go1.") {
		t.Errorf("%s --version does not name the Go version:\n%s", bin, s)
	}
	// Every field but tags (build tags, none here) is set.
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "tags:") {
			continue
		}
		if strings.Contains(l, "unknown") || strings.Contains(l, ": ,") || strings.Contains(l, ": )") || strings.HasSuffix(l, ":") {
			t.Errorf("%s --version has an empty or unknown field in %q", bin, l)
		}
	}
}

// readSums parses SHA256SUMS.
func readSums(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			t.Fatalf("SHA256SUMS: bad line %q", sc.Text())
		}
		sums[name] = sum
	}
	return sums
}

func TestReleaseTarballs(t *testing.T) {
	dist, cross := makeRelease(t)
	native := "linux-" + runtime.GOARCH
	// What make release must have made, and what each tarball holds
	// besides its binary.
	tarballs := map[string]string{
		"procscope-exporter-" + pkgTestVersion + "." + native + ".tar.gz":   "procscope-exporter.yml",
		"procscope-exporter-" + pkgTestVersion + ".windows-arm64.tar.gz":    "procscope-exporter.yml",
		"procscope-aggregator-" + pkgTestVersion + "." + native + ".tar.gz": "web-config.yml",
	}
	debs := []string{
		"procscope-exporter_" + pkgTestDebVersion + "_" + runtime.GOARCH + ".deb",
		"procscope-aggregator_" + pkgTestDebVersion + "_" + runtime.GOARCH + ".deb",
	}
	if cross != "" {
		// The aggregator for the other architecture, built with the C
		// cross compiler: its tarball and its .deb.
		tarballs["procscope-aggregator-"+pkgTestVersion+".linux-"+cross+".tar.gz"] = "web-config.yml"
		debs = append(debs, "procscope-aggregator_"+pkgTestDebVersion+"_"+cross+".deb")
	}
	var want []string
	for n := range tarballs {
		want = append(want, n)
	}
	want = append(want, debs...)
	slices.Sort(want)

	// SHA256SUMS names exactly the artefacts, and every sum is right.
	sums := readSums(t, filepath.Join(dist, "SHA256SUMS"))
	var named []string
	for n, sum := range sums {
		named = append(named, n)
		b, err := os.ReadFile(filepath.Join(dist, n))
		if err != nil {
			t.Errorf("SHA256SUMS names %s: %v", n, err)
			continue
		}
		if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != sum {
			t.Errorf("SHA256SUMS: %s does not match", n)
		}
	}
	slices.Sort(named)
	if !slices.Equal(named, want) {
		t.Errorf("SHA256SUMS names %v, want %v", named, want)
	}
	if sha := requireToolOptional("sha256sum"); sha != "" {
		cmd := exec.Command(sha, "-c", "SHA256SUMS")
		cmd.Dir = dist
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
		}
	}

	license, err := os.ReadFile(filepath.Join(repoRoot, "LICENSE"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name, example := range tarballs {
		dir := strings.TrimSuffix(name, ".tar.gz")
		bin, _, _ := strings.Cut(name, "-"+pkgTestVersion)
		if strings.Contains(name, "windows") {
			bin += ".exe"
		}
		exampleText, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "packaging", example))
		if err != nil {
			t.Fatal(err)
		}
		files := readTarball(t, filepath.Join(dist, name))
		var got []string
		for f := range files {
			got = append(got, f)
		}
		slices.Sort(got)
		wantFiles := []string{dir + "/", dir + "/LICENSE", dir + "/README.md", dir + "/" + bin, dir + "/" + example}
		slices.Sort(wantFiles)
		if !slices.Equal(got, wantFiles) {
			t.Errorf("%s holds %v, want %v", name, got, wantFiles)
			continue
		}
		for f, w := range map[string][]byte{"LICENSE": license, "README.md": readme, example: exampleText} {
			if !bytes.Equal(files[dir+"/"+f].data, w) {
				t.Errorf("%s: %s differs from the repository's", name, f)
			}
		}
		b := files[dir+"/"+bin]
		if b.mode&0o111 == 0 {
			t.Errorf("%s: %s is not executable (mode %o)", name, bin, b.mode)
		}
		arch := strings.TrimSuffix(name[strings.LastIndex(name, "-")+1:], ".tar.gz")
		switch {
		case strings.Contains(name, "windows"):
			if !bytes.HasPrefix(b.data, []byte("MZ")) {
				t.Errorf("%s: %s is not a Windows executable", name, bin)
			}
		case arch != runtime.GOARCH:
			checkCrossBinary(t, name+": "+bin, b.data, crossTargets[arch])
		default:
			checkELFMachine(t, name+": "+bin, b.data, runtime.GOARCH)
			// This machine's binary: run what the tarball holds.
			p := filepath.Join(t.TempDir(), bin)
			if err := os.WriteFile(p, b.data, 0o755); err != nil {
				t.Fatal(err)
			}
			checkVersionOutput(t, p, pkgTestVersion)
			if example == "procscope-exporter.yml" {
				// The example config is one the exporter accepts (a bad
				// key or value exits 2 before it listens); the push URL
				// and state dir given as flags win over the file's.
				cfg := filepath.Join(t.TempDir(), example)
				if err := os.WriteFile(cfg, exampleText, 0o600); err != nil {
					t.Fatal(err)
				}
				start(t, "exporter with "+example, true, nil, p, "--config.file="+cfg,
					"--web.listen-address=127.0.0.1:0", "--push.url=", "--state.dir="+t.TempDir())
			}
		}
	}

	// Every .deb says its architecture in its control file, and its
	// binary is one for that architecture (the cross-built aggregator's
	// package above all: the native one is installed by TestDebPackages).
	for _, deb := range debs {
		arch := strings.TrimSuffix(deb[strings.LastIndex(deb, "_")+1:], ".deb")
		pkg, _, _ := strings.Cut(deb, "_")
		control, data := readDeb(t, filepath.Join(dist, deb))
		fields := debControlFields(string(control))
		if fields["Package"] != pkg || fields["Version"] != pkgTestDebVersion || fields["Architecture"] != arch {
			t.Errorf("%s: control says Package %q, Version %q, Architecture %q; want %s, %s, %s",
				deb, fields["Package"], fields["Version"], fields["Architecture"], pkg, pkgTestDebVersion, arch)
		}
		bin, ok := data["./usr/bin/"+pkg]
		if !ok {
			t.Errorf("%s: no /usr/bin/%s", deb, pkg)
			continue
		}
		checkELFMachine(t, deb+": /usr/bin/"+pkg, bin.data, arch)
	}
}

// elfMachines is the ELF machine of each linux architecture released.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// checkELFMachine checks, as file(1) would, that data is a 64-bit
// little-endian linux ELF executable for arch; it returns the parsed file.
func checkELFMachine(t *testing.T, what string, data []byte, arch string) *elf.File {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Errorf("%s: not an ELF file: %v", what, err)
		return nil
	}
	want, ok := elfMachines[arch]
	if !ok {
		t.Fatalf("%s: no ELF machine known for %s", what, arch)
	}
	if f.Machine != want || f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB || f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		t.Errorf("%s: ELF %v %v %v %v, want a %v ELFCLASS64 ELFDATA2LSB executable (linux/%s)",
			what, f.Machine, f.Class, f.Data, f.Type, want, arch)
	}
	return f
}

// checkCrossBinary checks the cross-built aggregator: an ELF for its
// architecture, linked against that architecture's glibc (cgo), and when
// qemu-user is there, its --version run under it with the cross libc.
func checkCrossBinary(t *testing.T, what string, data []byte, ct crossTarget) {
	t.Helper()
	f := checkELFMachine(t, what, data, ct.arch)
	if f == nil {
		return
	}
	var interp string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				t.Fatalf("%s: PT_INTERP: %v", what, err)
			}
			interp = string(bytes.TrimRight(b, "\x00"))
		}
	}
	if interp != ct.interp {
		t.Errorf("%s: dynamic loader %q, want %q (a cgo binary for glibc on linux/%s)", what, interp, ct.interp, ct.arch)
	}
	libs, err := f.ImportedLibraries()
	if err != nil || !slices.Contains(libs, "libc.so.6") {
		t.Errorf("%s: needs %v (%v), want libc.so.6 among them", what, libs, err)
	}
	qemu, err := exec.LookPath(ct.qemu)
	if err != nil {
		if os.Getenv("REQUIRE_E2E") != "" {
			t.Fatalf("%s not found (%v) and REQUIRE_E2E is set: apt-get install qemu-user (.ci/run does)", ct.qemu, err)
		}
		t.Logf("!!! SKIPPED running %s under %s: not found; apt-get install qemu-user or set REQUIRE_E2E=1 to make this a failure !!!", what, ct.qemu)
		return
	}
	p := filepath.Join(t.TempDir(), "procscope-aggregator")
	if err := os.WriteFile(p, data, 0o755); err != nil {
		t.Fatal(err)
	}
	checkVersionOutput(t, p, pkgTestVersion, qemu, "-L", ct.sysroot)
}

// readDeb returns a .deb's control file and the files of its data
// archive: an ar archive of debian-binary, control.tar.gz and data.tar.gz
// (as nfpm writes it), read here so that no dpkg is needed.
func readDeb(t *testing.T, path string) ([]byte, map[string]tarFile) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	members := map[string][]byte{}
	rest, ok := bytes.CutPrefix(b, []byte("!<arch>\n"))
	if !ok {
		t.Fatalf("%s: not an ar archive", path)
	}
	for len(rest) >= 60 {
		hdr := rest[:60]
		name := strings.TrimSuffix(strings.TrimSpace(string(hdr[:16])), "/")
		size, err := strconv.Atoi(strings.TrimSpace(string(hdr[48:58])))
		if err != nil || size < 0 || size > len(rest)-60 || string(hdr[58:60]) != "`\n" {
			t.Fatalf("%s: bad ar member header %q", path, hdr)
		}
		members[name] = rest[60 : 60+size]
		rest = rest[60+size:]
		if size%2 == 1 && len(rest) > 0 {
			rest = rest[1:]
		}
	}
	if string(members["debian-binary"]) != "2.0\n" {
		t.Errorf("%s: debian-binary %q, want 2.0", path, members["debian-binary"])
	}
	ctl, ok := members["control.tar.gz"]
	if !ok {
		t.Fatalf("%s: no control.tar.gz (members %v)", path, slices.Sorted(maps.Keys(members)))
	}
	data, ok := members["data.tar.gz"]
	if !ok {
		t.Fatalf("%s: no data.tar.gz (members %v)", path, slices.Sorted(maps.Keys(members)))
	}
	control, ok := readTarGz(t, path+": control.tar.gz", bytes.NewReader(ctl))["./control"]
	if !ok {
		t.Fatalf("%s: control.tar.gz has no ./control", path)
	}
	return control.data, readTarGz(t, path+": data.tar.gz", bytes.NewReader(data))
}

// debControlFields is the single-line fields of a control file.
func debControlFields(control string) map[string]string {
	fields := map[string]string{}
	for line := range strings.Lines(control) {
		if k, v, ok := strings.Cut(strings.TrimRight(line, "\n"), ": "); ok && !strings.HasPrefix(line, " ") {
			fields[k] = v
		}
	}
	return fields
}

type tarFile struct {
	mode int64
	data []byte
}

func readTarball(t *testing.T, path string) map[string]tarFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	return readTarGz(t, path, f)
}

// readTarGz reads every file of a .tar.gz; what names it in failures.
func readTarGz(t *testing.T, path string, r io.Reader) map[string]tarFile {
	t.Helper()
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]tarFile{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		data, err := io.ReadAll(io.LimitReader(tr, 256<<20))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out[h.Name] = tarFile{mode: h.Mode, data: data}
	}
}

// dpkgStatus is dpkg-query's status of a package, "" when dpkg knows none.
func dpkgStatus(name string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// TestDebPackages installs both .deb files on this machine with dpkg,
// checks what they installed, upgrades them keeping an edited conffile,
// then removes and purges them. It changes the machine, so it runs only
// as root (CI) and only when neither package nor anything it installs is
// there already; it purges what it installed even when it fails.
func TestDebPackages(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("REQUIRE_E2E") != "" {
			t.Fatal("installing packages needs root (REQUIRE_E2E is set)")
		}
		t.Skip("SKIPPED: installing the .deb packages needs root; run as root or set REQUIRE_E2E=1 to make this a failure")
	}
	dpkg := requireTool(t, "dpkg")
	requireTool(t, "dpkg-query")
	analyze := requireTool(t, "systemd-analyze")
	names := []string{"procscope-exporter", "procscope-aggregator"}
	// Never touch what this test did not install.
	for _, n := range names {
		paths := []string{"/usr/bin/" + n, "/usr/lib/systemd/system/" + n + ".service", "/etc/default/" + n,
			"/var/lib/" + n, "/var/lib/private/" + n}
		var there []string
		if s := dpkgStatus(n); s != "" && s != "unknown ok not-installed" {
			there = append(there, "package "+n+" ("+s+")")
		}
		for _, p := range paths {
			if _, err := os.Lstat(p); err == nil {
				there = append(there, p)
			}
		}
		if len(there) > 0 {
			msg := "this machine already has " + strings.Join(there, ", ") + "; the test installs and purges " + n + " and will not touch them"
			if os.Getenv("REQUIRE_E2E") != "" {
				t.Fatal(msg)
			}
			t.Skip("SKIPPED: " + msg)
		}
	}
	dist, _ := makeRelease(t)
	debs := map[string]string{}
	for _, n := range names {
		debs[n] = filepath.Join(dist, n+"_"+pkgTestDebVersion+"_"+runtime.GOARCH+".deb")
	}
	passwd, group := readFileAbs(t, "/etc/passwd"), readFileAbs(t, "/etc/group")

	dpkgRun := func(args ...string) {
		t.Helper()
		cmd := exec.Command(dpkg, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		// Even after a failure: purge only our two packages, and only
		// when dpkg knows them.
		for _, n := range names {
			if s := dpkgStatus(n); s != "" && s != "unknown ok not-installed" {
				if out, err := exec.Command(dpkg, "--purge", n).CombinedOutput(); err != nil {
					t.Errorf("cleanup: dpkg --purge %s: %v\n%s", n, err, out)
				}
			}
		}
	})

	dpkgRun("-i", debs["procscope-exporter"], debs["procscope-aggregator"])
	for _, n := range names {
		if s := dpkgStatus(n); s != "install ok installed" {
			t.Fatalf("%s: dpkg status %q after dpkg -i", n, s)
		}
		out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", n).Output()
		if err != nil || string(out) != pkgTestDebVersion {
			t.Errorf("%s: installed version %q (%v), want %s", n, out, err, pkgTestDebVersion)
		}
		bin := "/usr/bin/" + n
		if st, err := os.Stat(bin); err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v, mode %v", bin, err, st)
		}
		checkVersionOutput(t, bin, pkgTestVersion)

		// The unit is deploy/systemd's, its binary in /usr/bin.
		unitPath := "/usr/lib/systemd/system/" + n + ".service"
		unit := readFileAbs(t, unitPath)
		src := string(readFile(t, filepath.Join("deploy", "systemd", n+".service")))
		if unit != strings.ReplaceAll(src, "/usr/local/bin/"+n, "/usr/bin/"+n) {
			t.Errorf("%s is not deploy/systemd/%s.service with /usr/bin", unitPath, n)
		}
		set := unitSettings(unit)
		if !slices.Contains(set["Service.DynamicUser"], "yes") || !slices.Contains(set["Service.StateDirectory"], n) {
			t.Errorf("%s: want DynamicUser=yes and StateDirectory=%s (systemd makes the user and /var/lib/%s)", unitPath, n, n)
		}
		if out, err := exec.Command(analyze, "verify", unitPath).CombinedOutput(); err != nil || strings.Contains(string(out), n+".service") {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
		}

		// /etc/default/<name> is a conffile; the docs and example are there.
		conffiles, err := exec.Command("dpkg-query", "-W", "-f=${Conffiles}", n).Output()
		if err != nil || !strings.Contains(string(conffiles), "/etc/default/"+n+" ") {
			t.Errorf("%s: conffiles %q (%v), want /etc/default/%s", n, conffiles, err, n)
		}
		if readFileAbs(t, "/etc/default/"+n) != string(readFile(t, filepath.Join("deploy", "packaging", n+".default"))) {
			t.Errorf("/etc/default/%s is not deploy/packaging/%s.default", n, n)
		}
		for _, f := range []string{"copyright", "README.md"} {
			if _, err := os.Stat("/usr/share/doc/" + n + "/" + f); err != nil {
				t.Error(err)
			}
		}
		if m, _ := filepath.Glob("/usr/share/doc/" + n + "/examples/*"); len(m) != 1 {
			t.Errorf("/usr/share/doc/%s/examples: %v, want one example config", n, m)
		}
	}
	// DynamicUser: systemd allocates the user when the service starts;
	// the package adds none.
	if readFileAbs(t, "/etc/passwd") != passwd || readFileAbs(t, "/etc/group") != group {
		t.Error("installing changed /etc/passwd or /etc/group: the units use DynamicUser=yes, the packages must add no user")
	}

	// Upgrade: an edited conffile survives, the version changes.
	edited := readFileAbs(t, "/etc/default/procscope-aggregator") + "ARGS=\"--storage.retention=30d\"\n"
	if err := os.WriteFile("/etc/default/procscope-aggregator", []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	up := t.TempDir()
	rel := exec.Command("go", "run", "./tools/release", "-version", pkgTestUpgrade, "-build", filepath.Join(dist, "build"), "-out", up)
	rel.Dir = repoRoot
	if out, err := rel.CombinedOutput(); err != nil {
		t.Fatalf("tools/release %s: %v\n%s", pkgTestUpgrade, err, out)
	}
	dpkgRun("-i", filepath.Join(up, "procscope-aggregator_"+pkgTestUpgradeDeb+"_"+runtime.GOARCH+".deb"))
	if out, _ := exec.Command("dpkg-query", "-W", "-f=${Version}", "procscope-aggregator").Output(); string(out) != pkgTestUpgradeDeb {
		t.Errorf("after the upgrade: version %q, want %s", out, pkgTestUpgradeDeb)
	}
	if got := readFileAbs(t, "/etc/default/procscope-aggregator"); got != edited {
		t.Errorf("the upgrade did not keep the edited /etc/default/procscope-aggregator:\n%s", got)
	}

	// Remove: everything but the conffile goes.
	dpkgRun(append([]string{"-r"}, names...)...)
	for _, n := range names {
		if s := dpkgStatus(n); s != "deinstall ok config-files" {
			t.Errorf("%s: status %q after dpkg -r, want deinstall ok config-files", n, s)
		}
		for _, p := range []string{"/usr/bin/" + n, "/usr/lib/systemd/system/" + n + ".service", "/usr/share/doc/" + n} {
			if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s still there after dpkg -r (%v)", p, err)
			}
		}
		if _, err := os.Stat("/etc/default/" + n); err != nil {
			t.Errorf("dpkg -r removed the conffile /etc/default/%s (only purge should): %v", n, err)
		}
	}
	// The state systemd would have made (DynamicUser keeps it under
	// /var/lib/private behind a symlink) goes with purge.
	const state = "/var/lib/private/procscope-aggregator"
	if _, err := os.Stat("/var/lib/private"); errors.Is(err, fs.ErrNotExist) {
		// Made here, so removed here (when empty, as purge leaves it).
		t.Cleanup(func() { _ = os.Remove("/var/lib/private") })
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state+"/procscope.db", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("private/procscope-aggregator", "/var/lib/procscope-aggregator"); err != nil {
		t.Fatal(err)
	}
	dpkgRun(append([]string{"--purge"}, names...)...)
	for _, n := range names {
		if s := dpkgStatus(n); s != "" && s != "unknown ok not-installed" {
			t.Errorf("%s: status %q after purge", n, s)
		}
		for _, p := range []string{"/etc/default/" + n, "/var/lib/" + n, "/var/lib/private/" + n} {
			if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s still there after purge (%v)", p, err)
			}
		}
	}
}

func readFileAbs(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// makeEnv is this process's environment without REQUIRE_E2E, plus extra.
func makeEnv(extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "REQUIRE_E2E=") })
	return append(env, extra...)
}

// TestMakeCrossCompilerMissing: without the aggregator's C cross compiler
// (named here by AGG_CC_<arch>, so that none is found), make release fails
// at once and says which packages to install, building nothing, and make
// cross skips the aggregator loudly, or fails with REQUIRE_E2E=1. No Go
// build runs (CROSS= leaves the exporter out), so it is quick.
func TestMakeCrossCompilerMissing(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SKIPPED: the aggregator is cross-built from linux only")
	}
	mk := requireTool(t, "make")
	ct := crossTargets[crossArch()]
	const missing = "procscope-no-such-cc"
	args := []string{"-s", "CROSS=", "AGG_PLATFORMS=linux/" + runtime.GOARCH + " linux/" + ct.arch, "AGG_CC_" + ct.arch + "=" + missing}

	dist := t.TempDir()
	cmd := exec.Command(mk, append([]string{"release", "VERSION=" + pkgTestVersion, "DIST=" + dist}, args...)...)
	cmd.Dir, cmd.Env = repoRoot, makeEnv()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "linux/"+ct.arch) || !strings.Contains(string(out), missing+", not found") ||
		!strings.Contains(string(out), "apt-get install "+ct.pkgs) {
		t.Errorf("make release without %s: %v, want a failure naming it and the packages:\n%s", missing, err, out)
	}
	if entries, _ := os.ReadDir(dist); len(entries) > 0 {
		t.Errorf("make release built %v before refusing", entries)
	}

	for _, tc := range []struct {
		env  string
		fail bool
		want string
	}{
		{"", false, "!!! SKIPPING cross aggregator linux/" + ct.arch + ": C cross compiler " + missing + " not found"},
		{"REQUIRE_E2E=1", true, "REQUIRE_E2E=1 (Debian: apt-get install " + ct.pkgs + ")"},
	} {
		cmd := exec.Command(mk, append([]string{"cross"}, args...)...)
		cmd.Dir, cmd.Env = repoRoot, makeEnv(tc.env)
		out, err := cmd.CombinedOutput()
		if (err != nil) != tc.fail || !strings.Contains(string(out), tc.want) {
			t.Errorf("make cross %s without %s: %v, want failure %v and %q:\n%s", tc.env, missing, err, tc.fail, tc.want, out)
		}
	}
}

// TestMakeCrossBuildsTheAggregator: make cross compiles the aggregator
// with the cross compiler: given one that exists but fails (false), it
// fails, so the aggregator is built with it and not merely named.
func TestMakeCrossBuildsTheAggregator(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SKIPPED: the aggregator is cross-built from linux only")
	}
	mk := requireTool(t, "make")
	falseCmd := requireTool(t, "false")
	ct := crossTargets[crossArch()]
	cmd := exec.Command(mk, "-s", "cross", "CROSS=", "AGG_PLATFORMS=linux/"+runtime.GOARCH+" linux/"+ct.arch, "AGG_CC_"+ct.arch+"="+falseCmd)
	cmd.Dir, cmd.Env = repoRoot, makeEnv()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cross aggregator linux/"+ct.arch+" (CC="+falseCmd+")") {
		t.Errorf("make cross with AGG_CC_%s=%s: %v, want it to try the build and fail:\n%s", ct.arch, falseCmd, err, out)
	}
}

// TestCIInstallsTheCrossToolchain: REQUIRE_E2E makes a missing cross
// compiler or qemu-user a failure (make cross, the release tests), which
// is right only because .ci/run installs them.
func TestCIInstallsTheCrossToolchain(t *testing.T) {
	run := string(readFile(t, filepath.Join(".ci", "run")))
	i := strings.Index(run, "\npkgs=(")
	if i < 0 {
		t.Fatal(".ci/run: no pkgs=( list")
	}
	list, _, _ := strings.Cut(run[i+len("\npkgs=("):], ")")
	pkgs := strings.Fields(list)
	for _, p := range append(strings.Fields(crossTargets["arm64"].pkgs), "qemu-user") {
		if !slices.Contains(pkgs, p) {
			t.Errorf(".ci/run does not install %s (pkgs: %v)", p, pkgs)
		}
	}
}
