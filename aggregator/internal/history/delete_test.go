package history

import (
	"context"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
)

// TestDeleteHost: every series of the host goes (host metrics and process
// series), queued rows included; other hosts, even one whose name starts
// alike, keep theirs; the name cache forgets the host; after the delete
// the same hostname writes series again.
func TestDeleteHost(t *testing.T) {
	h := openTest(t, t.TempDir(), Options{TopK: 2})
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	procs := []snapshot.Process{{PID: 7, Name: "db", CPUPercent: 10, MemoryMB: 1, CreateTime: "2026-01-01T00:00:00Z"}}
	for i := range 3 {
		at := base.Add(time.Duration(i) * 2 * time.Second)
		h.Add(testRequest("web-1", at, 1, procs))
		h.Add(testRequest("web-10", at, 2, procs))
	}
	flush(t, h)
	// Queued but not flushed: DeleteHost must write it first.
	h.Add(testRequest("web-1", base.Add(10*time.Second), 1, procs))

	ctx := context.Background()
	count := func(host string) int {
		t.Helper()
		n := 0
		for _, m := range []string{MetricCPU, MetricMemoryUsed, MetricFilesystemUsed, MetricProcessCPU, MetricProcessRSS} {
			got, err := h.Query(ctx, m, map[string]string{LabelHostname: host}, base.Add(-time.Minute), base.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			n += len(got)
		}
		return n
	}
	if count("web-1") == 0 || count("web-10") == 0 {
		t.Fatal("no series before the delete")
	}
	cached := h.names.len()
	n, err := h.DeleteHost("web-1")
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Fatalf("deleted %d series, want every series of web-1", n)
	}
	if c := count("web-1"); c != 0 {
		t.Fatalf("%d series of web-1 left", c)
	}
	if count("web-10") == 0 {
		t.Fatal("web-10's series went too")
	}
	if h.names.len() != cached-1 {
		t.Fatalf("name cache: %d hosts, want %d", h.names.len(), cached-1)
	}
	// The hostname comes back (a reinstalled machine): new series.
	h.Add(testRequest("web-1", base.Add(20*time.Second), 1, procs))
	flush(t, h)
	if count("web-1") == 0 {
		t.Fatal("web-1 cannot write series again after its deletion")
	}
}

// TestInUse: a store held open (by a server) is in use; a closed one or
// none is not.
func TestInUse(t *testing.T) {
	dir := t.TempDir()
	if used, err := InUse(dir); used || err != nil {
		t.Fatalf("empty dir: %v %v", used, err)
	}
	h, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if used, err := InUse(dir); !used || err != nil {
		t.Fatalf("open store: %v %v", used, err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if used, err := InUse(dir); used || err != nil {
		t.Fatalf("closed store: %v %v", used, err)
	}
}
