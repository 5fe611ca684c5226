package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// MountTmpfs mounts a tmpfs of size (mount's syntax: "8m", "1m") with mode
// 0700 on a new directory and unmounts it at cleanup, registered before
// the caller's, so it runs after them. It is how tests fill a disk for
// real. It skips without root or mount rights, unless REQUIRE_E2E=1, when
// that is a failure.
func MountTmpfs(t *testing.T, size string) string {
	t.Helper()
	skip := func(why string) {
		if os.Getenv("REQUIRE_E2E") == "1" {
			t.Fatalf("REQUIRE_E2E=1 but %s", why)
		}
		t.Skip(why)
	}
	if os.Geteuid() != 0 {
		skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		skip(fmt.Sprintf("mount -t tmpfs: %v %s", err, out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}
