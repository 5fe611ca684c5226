// Command release packages binaries that `make release` built (with the
// Makefile's LDFLAGS, the one place the build labels are set) into what a
// release publishes:
//
//	go run ./tools/release -version 1.2.3 -build dist/build -out dist
//
// -build holds one directory per platform, <os>-<arch>, with the binaries
// procscope-exporter and/or procscope-aggregator (.exe on windows). Into
// -out go:
//   - procscope-<binary>-<version>.<os>-<arch>.tar.gz for every binary,
//     one directory of that name with the binary, LICENSE, README.md and
//     an example config;
//   - procscope-<binary>_<version>_<arch>.deb for every linux binary, made
//     with github.com/goreleaser/nfpm/v2: the binary in /usr/bin, the
//     hardened unit of deploy/systemd (its ExecStart pointed at /usr/bin),
//     /etc/default/procscope-<binary> as a conffile, the example config
//     under /usr/share/doc, the maintainer scripts of deploy/packaging;
//   - SHA256SUMS of all of them, in sha256sum's format.
//
// It uses the standard flag package in a FlagSet inside run (no globals),
// as the other tools.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// versionRE is what a release version may be: x.y.z with an optional
// pre-release (1.2.3-rc.1, which the .deb spells 1.2.3~rc.1 so that it
// sorts before 1.2.3).
var versionRE = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$`)

// binary describes one of the two programs as packaged.
type binary struct {
	name        string // procscope-exporter
	description string
	example     string   // file under deploy/packaging shipped as the example config
	depends     []string // of the .deb
	recommends  []string
}

var binaries = []binary{
	{
		name: "procscope-exporter",
		description: "procscope exporter: system details and the process table of this host\n" +
			"Pushes snapshots of the host's processes to a procscope aggregator and\n" +
			"serves Prometheus metrics.",
		example: "procscope-exporter.yml",
	},
	{
		name: "procscope-aggregator",
		description: "procscope aggregator: snapshot store, history, API and web UI\n" +
			"Stores the snapshots procscope exporters push, keeps CPU and memory\n" +
			"history, and serves the JSON API and the web UI.",
		example: "web-config.yml",
		// cgo (SQLite) links against glibc; libdeflate makes ingest's gunzip
		// faster and is loaded when present.
		depends:    []string{"libc6"},
		recommends: []string{"libdeflate0"},
	},
}

type config struct {
	version, build, out, root string
	mtime                     time.Time
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.version, "version", "", "release version, x.y.z or x.y.z-pre (required)")
	fs.StringVar(&cfg.build, "build", "dist/build", "directory of <os>-<arch> directories holding the built binaries")
	fs.StringVar(&cfg.out, "out", "dist", "where the tarballs, .deb files and SHA256SUMS go")
	fs.StringVar(&cfg.root, "root", ".", "the repository (LICENSE, README.md, deploy/)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		_, _ = fmt.Fprintf(stderr, "release: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if !versionRE.MatchString(cfg.version) {
		_, _ = fmt.Fprintf(stderr, "release: -version=%q: want x.y.z or x.y.z-pre, e.g. -version 1.2.3\n", cfg.version)
		return 2
	}
	if err := checkChangelog(filepath.Join(cfg.root, "CHANGELOG.md"), cfg.version); err != nil {
		_, _ = fmt.Fprintln(stderr, "release:", err)
		return 2
	}
	// Every file in the archives gets the same time, so that the same
	// binaries always give the same tarballs and packages.
	cfg.mtime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	made, err := release(cfg)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "release:", err)
		return 1
	}
	for _, f := range made {
		_, _ = fmt.Fprintln(stdout, filepath.Join(cfg.out, f))
	}
	return 0
}

// checkChangelog refuses a release (x.y.z, not a pre-release) whose
// version has no "## [x.y.z]" section in CHANGELOG.md: users read what
// changed there, so it is written before the release, not after.
func checkChangelog(path, version string) error {
	if strings.Contains(version, "-") {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "## ["+version+"]") {
			return nil
		}
	}
	return fmt.Errorf("CHANGELOG.md has no \"## [%s]\" section: move the Unreleased entries under it first (a pre-release, x.y.z-rc.1, needs none)", version)
}

// release makes every artefact and SHA256SUMS; it returns their names.
func release(cfg config) ([]string, error) {
	platforms, err := os.ReadDir(cfg.build)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return nil, err
	}
	var made []string
	for _, p := range platforms {
		goos, goarch, ok := strings.Cut(p.Name(), "-")
		if !p.IsDir() || !ok {
			return nil, fmt.Errorf("%s: want only <os>-<arch> directories, found %s", cfg.build, p.Name())
		}
		for _, b := range binaries {
			exe := b.name
			if goos == "windows" {
				exe += ".exe"
			}
			bin := filepath.Join(cfg.build, p.Name(), exe)
			if _, err := os.Stat(bin); errors.Is(err, fs.ErrNotExist) {
				continue
			} else if err != nil {
				return nil, err
			}
			name, err := tarball(cfg, b, goos, goarch, bin, exe)
			if err != nil {
				return nil, err
			}
			made = append(made, name)
			if goos == "linux" {
				name, err := debPackage(cfg, b, goarch, bin)
				if err != nil {
					return nil, err
				}
				made = append(made, name)
			}
		}
	}
	if len(made) == 0 {
		return nil, fmt.Errorf("%s: no binaries found (make release builds them)", cfg.build)
	}
	slices.Sort(made)
	sums, err := sha256Sums(cfg.out, made)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg.out, "SHA256SUMS"), sums, 0o644); err != nil {
		return nil, err
	}
	return append(made, "SHA256SUMS"), nil
}

// tarball writes <name>-<version>.<os>-<arch>.tar.gz: one directory of that
// name with the binary, LICENSE, README.md and the example config.
func tarball(cfg config, b binary, goos, goarch, bin, exe string) (string, error) {
	dir := fmt.Sprintf("%s-%s.%s-%s", b.name, cfg.version, goos, goarch)
	name := dir + ".tar.gz"
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(src, dst string, mode int64) error {
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: dir + "/" + dst, Mode: mode, Size: int64(len(data)), ModTime: cfg.mtime,
			Typeflag: tar.TypeReg, Uname: "root", Gname: "root", Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Mode: 0o755, ModTime: cfg.mtime, Typeflag: tar.TypeDir,
		Uname: "root", Gname: "root", Format: tar.FormatPAX}); err != nil {
		return "", err
	}
	for _, f := range []struct {
		src, dst string
		mode     int64
	}{
		{bin, exe, 0o755},
		{filepath.Join(cfg.root, "LICENSE"), "LICENSE", 0o644},
		{filepath.Join(cfg.root, "README.md"), "README.md", 0o644},
		{filepath.Join(cfg.root, "deploy", "packaging", b.example), b.example, 0o644},
	} {
		if err := add(f.src, f.dst, f.mode); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return name, os.WriteFile(filepath.Join(cfg.out, name), buf.Bytes(), 0o644)
}

// debVersion is the package version: the pre-release after a tilde, so
// that 1.2.3~rc.1 sorts before 1.2.3 as dpkg compares.
func debVersion(v string) string {
	return strings.Replace(v, "-", "~", 1)
}

// packagedUnit is the unit of deploy/systemd as the package installs it:
// the same file, its binary in /usr/bin (where a package installs it; the
// unit's /usr/local/bin is for installing by hand). Every other line stays.
func packagedUnit(unit []byte, name string) ([]byte, error) {
	from, to := []byte("/usr/local/bin/"+name), []byte("/usr/bin/"+name)
	if !bytes.Contains(unit, []byte("ExecStart="+string(from))) {
		return nil, fmt.Errorf("%s.service: no ExecStart=%s", name, from)
	}
	return bytes.ReplaceAll(unit, from, to), nil
}

// debPackage writes <name>_<version>_<arch>.deb.
func debPackage(cfg config, b binary, goarch, bin string) (string, error) {
	unit, err := os.ReadFile(filepath.Join(cfg.root, "deploy", "systemd", b.name+".service"))
	if err != nil {
		return "", err
	}
	if unit, err = packagedUnit(unit, b.name); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "procscope-release-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	unitFile := filepath.Join(tmp, b.name+".service")
	if err := os.WriteFile(unitFile, unit, 0o644); err != nil {
		return "", err
	}
	pkgDir := filepath.Join(cfg.root, "deploy", "packaging")
	doc := "/usr/share/doc/" + b.name
	file := func(src, dst string, mode os.FileMode) *files.Content {
		return &files.Content{Source: src, Destination: dst, Type: files.TypeFile,
			FileInfo: &files.ContentFileInfo{Mode: mode, Owner: "root", Group: "root", MTime: cfg.mtime}}
	}
	conf := file(filepath.Join(pkgDir, b.name+".default"), "/etc/default/"+b.name, 0o644)
	// A conffile: dpkg keeps the admin's edits on upgrade (and asks when
	// both sides changed), and only purge removes it.
	conf.Type = files.TypeConfigNoReplace
	info := &nfpm.Info{
		Name:        b.name,
		Arch:        goarch,
		Platform:    "linux",
		Version:     cfg.version,
		Section:     "admin",
		Priority:    "optional",
		Maintainer:  "procscope authors <procscope@users.noreply.github.com>",
		Description: b.description,
		Vendor:      "procscope",
		Homepage:    "https://github.com/procscope/procscope",
		License:     "MIT",
		MTime:       cfg.mtime,
		Overridables: nfpm.Overridables{
			Depends:    b.depends,
			Recommends: b.recommends,
			Contents: files.Contents{
				file(bin, "/usr/bin/"+b.name, 0o755),
				file(unitFile, "/usr/lib/systemd/system/"+b.name+".service", 0o644),
				conf,
				file(filepath.Join(cfg.root, "LICENSE"), doc+"/copyright", 0o644),
				file(filepath.Join(cfg.root, "README.md"), doc+"/README.md", 0o644),
				file(filepath.Join(pkgDir, b.example), doc+"/examples/"+b.example, 0o644),
			},
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(pkgDir, "postinst"),
				PreRemove:   filepath.Join(pkgDir, "prerm"),
				PostRemove:  filepath.Join(pkgDir, "postrm"),
			},
		},
	}
	info = nfpm.WithDefaults(info)
	if err := info.Validate(); err != nil {
		return "", err
	}
	pkg, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("%s_%s_%s.deb", b.name, debVersion(cfg.version), goarch)
	var buf bytes.Buffer
	if err := pkg.Package(info, &buf); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return name, os.WriteFile(filepath.Join(cfg.out, name), buf.Bytes(), 0o644)
}

// sha256Sums is SHA256SUMS of the named files in dir, in the format of
// sha256sum (so `sha256sum -c SHA256SUMS` checks a download).
func sha256Sums(dir string, names []string) ([]byte, error) {
	var out bytes.Buffer
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		_ = f.Close()
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&out, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), n)
	}
	return out.Bytes(), nil
}
