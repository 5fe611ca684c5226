package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestAlternating(t *testing.T) {
	var got []string
	for round, i := range alternating(3, 3) {
		got = append(got, fmt.Sprintf("%d:%d", round, i))
	}
	want := "0:0 0:1 0:2 1:2 1:1 1:0 2:0 2:1 2:2"
	if s := strings.Join(got, " "); s != want {
		t.Fatalf("order %s, want %s", s, want)
	}
	for range alternating(2, 2) {
		break // stopping early must not panic
	}
}

// The comparison prints one table: a row per set-up, each aggregator's
// CPU per snapshot where there are two, PostgreSQL's figures only for
// PostgreSQL.
func TestPrintPGTable(t *testing.T) {
	run := func(n int, aggUS float64, lat time.Duration) *runResult {
		return &runResult{res: &result{created: n, elapsed: time.Second, lat: []time.Duration{lat}}, aggPushCPU: aggUS}
	}
	sqlite, pg1, pg2 := &pgSum{}, &pgSum{}, &pgSum{}
	sqlite.add(0, run(1000, 300, time.Millisecond))
	sqlite.elapsed = time.Second
	pg1.add(0, run(1000, 400, 2*time.Millisecond))
	pg1.elapsed, pg1.pgUS, pg1.bytes, pg1.rows = time.Second, 500_000, 1_500_000, 1000
	pg2.add(0, run(500, 420, time.Millisecond))
	pg2.add(1, run(500, 380, time.Millisecond))
	pg2.elapsed, pg2.pgUS, pg2.bytes, pg2.rows = time.Second, 600_000, 1_400_000, 1000
	var b bytes.Buffer
	printPGTable(&b, []string{"sqlite", "pg-1", "pg-2"}, []*pgSum{sqlite, pg1, pg2})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want a header and 3 rows:\n%s", len(lines), b.String())
	}
	for i, want := range [][]string{
		{"sqlite", "1000", "300", " - "},
		{"pg-1", "1000", "400", "500", "1500"},
		{"pg-2", "1000", "400 (420, 380)", "600", "1400"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1]+" ", w) {
				t.Errorf("row %q lacks %q", lines[i+1], w)
			}
		}
	}
}

func TestKindsLine(t *testing.T) {
	k0 := map[string]time.Duration{"backends": time.Second, "postmaster": 10 * time.Millisecond}
	k1 := map[string]time.Duration{"backends": 2 * time.Second, "autovacuum": 100 * time.Millisecond, "postmaster": 10 * time.Millisecond}
	if got, want := kindsLine(k0, k1, 1000), "backends 1000, autovacuum 100, wal writer 0, postmaster 0"; got != want {
		t.Fatalf("kindsLine = %q, want %q", got, want)
	}
}
