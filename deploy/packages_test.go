package deploy

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
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

var (
	releaseOnce sync.Once
	releaseDir  string
	releaseErr  error
	releaseLog  []byte
)

// makeRelease runs `make release` once per test binary into a temp dir
// and returns it: the real target, so its LDFLAGS are what is tested.
func makeRelease(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("SKIPPED: make release builds the aggregator with cgo for linux only")
	}
	mk := requireTool(t, "make")
	releaseOnce.Do(func() {
		if releaseDir, releaseErr = os.MkdirTemp("", "procscope-release-test-"); releaseErr != nil {
			return
		}
		cmd := exec.Command(mk, "-s", "release", "VERSION="+pkgTestVersion, "DIST="+releaseDir, "CROSS="+pkgTestCross)
		cmd.Dir = repoRoot
		releaseLog, releaseErr = cmd.CombinedOutput()
	})
	if releaseErr != nil {
		t.Fatalf("make release: %v\n%s", releaseErr, releaseLog)
	}
	return releaseDir // TestMain removes it
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

// checkVersionOutput checks --version: the release version, the commit
// and the Go version, none empty or unknown.
func checkVersionOutput(t *testing.T, bin, version string) {
	t.Helper()
	out, err := exec.Command(bin, "--version").CombinedOutput()
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
	dist := makeRelease(t)
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
		switch {
		case strings.Contains(name, "windows"):
			if !bytes.HasPrefix(b.data, []byte("MZ")) {
				t.Errorf("%s: %s is not a Windows executable", name, bin)
			}
		default:
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
	zr, err := gzip.NewReader(f)
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
	dist := makeRelease(t)
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
