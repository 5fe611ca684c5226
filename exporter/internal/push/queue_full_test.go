package push

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/procscope/procscope/internal/testutil"
	"github.com/prometheus/client_golang/prometheus"
)

// A full --state.dir (a 1 MiB tmpfs): every Enqueue still succeeds by
// deleting the oldest queued snapshots, counted and logged once; the
// newest are kept. Needs root to mount (REQUIRE_E2E=1 makes it required).
func TestQueueOnFullDisk(t *testing.T) {
	dir := testutil.MountTmpfs(t, "1m")
	q, _, err := OpenQueue(filepath.Join(dir, "queue"), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	p, err := New(Options{Queue: q, URL: "http://127.0.0.1:1/api/v1/ingest", Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{0x5a}, 64<<10)
	base := time.Now()
	const n = 100 // 6.4 MiB into 1 MiB
	for i := range n {
		if err := p.Enqueue(base.Add(time.Duration(i)*time.Second), data); err != nil {
			t.Fatalf("enqueue %d on a full disk: %v", i, err)
		}
	}
	st := p.Stats()
	if q.DiskFullDrops() == 0 || st.Dropped != float64(q.DiskFullDrops()) || st.Waiting+int(st.Dropped) != n || st.Waiting == 0 {
		t.Fatalf("stats %+v, disk-full drops %d", st, q.DiskFullDrops())
	}
	oldest, _ := q.Oldest()
	if want := base.Add(time.Duration(n-st.Waiting) * time.Second); !oldest.Equal(want) {
		t.Fatalf("oldest kept %s, want %s: the newest must stay", oldest, want)
	}
	if c := strings.Count(logs.String(), "push queue directory is full"); c != 1 {
		t.Fatalf("%d log lines about the full directory, want 1:\n%s", c, logs.String())
	}
	t.Logf("%d kept, %d dropped", st.Waiting, int(st.Dropped))
}
