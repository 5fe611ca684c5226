// Package testutil is the module's shared test support: building the
// binaries from source, the CPU time of a process or of this one, and an
// HTTP listener that can be taken down and brought back on the same port
// (the fake receivers' outages), a capped log buffer for child processes
// and the ingest benchmarks' parallel latency loop. Its callers are _test.go files and the
// measuring tools under tools/; the exporter and aggregator binaries never
// import it (TestNotInBinaries checks).
//
// It is a plain package rather than a _test.go file so that tests in
// several packages, and tools/loadgen, share one copy; it lives in the
// module's top-level internal/ so that every one of them may import it.
package testutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// ModuleRoot is the directory holding the module's go.mod, found above this
// source file (tests run with their package's directory as cwd, so a
// relative path would differ per caller).
func ModuleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("testutil: cannot locate source")
	}
	dir := filepath.Dir(file)
	for range 10 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		dir = filepath.Dir(dir)
	}
	return "", errors.New("testutil: go.mod not found above " + file)
}

// Build is one `go build` of pkg (relative to the module root, such as
// "./aggregator") into out. cgo is on only when asked: the aggregator
// needs it for SQLite, the exporter is built static as it ships. Extra
// arguments (such as -ldflags) go before -o.
func Build(ctx context.Context, pkg, out string, cgo bool, extra ...string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	args := append([]string{"build"}, extra...)
	args = append(args, "-o", out, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cgoEnv := "CGO_ENABLED=0"
	if cgo {
		cgoEnv = "CGO_ENABLED=1"
	}
	cmd.Env = append(os.Environ(), cgoEnv)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}
