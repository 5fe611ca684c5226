package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/procscope/procscope/internal/testutil"
)

// The `hosts` commands administer the PostgreSQL store when the URL is
// configured (here by its environment variable, as a container would).
func TestHostsCommandsOnPostgres(t *testing.T) {
	t.Setenv("PROCSCOPE_STORAGE_POSTGRES_URL", testutil.PostgresURL(t))
	dir := t.TempDir()
	cmd := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"--storage.path=" + dir}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, errb := cmd("hosts", "add", "web<1>"); code != 0 || !strings.Contains(out, "added host web<1>") {
		t.Fatalf("hosts add: %d %s %s", code, out, errb)
	}
	if code, out, _ := cmd("hosts", "add", "web<1>"); code != 1 {
		t.Fatalf("hosts add twice: %d %s", code, out)
	}
	if code, out, errb := cmd("hosts", "list"); code != 0 || !strings.Contains(out, "web<1>") {
		t.Fatalf("hosts list: %d %s %s", code, out, errb)
	}
	if code, out, errb := cmd("hosts", "reset-key", "web<1>"); code != 0 || !keyLine.MatchString(out) {
		t.Fatalf("hosts reset-key: %d %s %s", code, out, errb)
	}
	if code, out, errb := cmd("hosts", "reset-key", "--unbind", "web<1>"); code != 0 || !strings.Contains(out, "has no key now") {
		t.Fatalf("hosts reset-key --unbind: %d %s %s", code, out, errb)
	}
	if code, out, errb := cmd("hosts", "delete", "web<1>"); code != 0 || !strings.Contains(out, "deleted host") {
		t.Fatalf("hosts delete: %d %s %s", code, out, errb)
	}
	if code, out, _ := cmd("hosts", "list"); code != 0 || strings.Contains(out, "web<1>") {
		t.Fatalf("hosts list after delete: %d %s", code, out)
	}
	if code, _, errb := cmd("hosts", "delete", "web<1>"); code != 1 || !strings.Contains(errb, "no host named") {
		t.Fatalf("deleting a deleted host: %d %s", code, errb)
	}
	if code, _, errb := cmd("storage", "copy", "--to=postgres://x@127.0.0.1/db"); code != 2 || !strings.Contains(errb, "drop --storage.postgres-url") {
		t.Fatalf("storage copy with a PostgreSQL store configured: %d %s", code, errb)
	}
}
