package testutil

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(PostgresMain(m)) }

// TestPostgres starts the shared cluster, gets two separate databases on
// it, and checks that the cluster listens only on loopback and that its
// CPU is counted.
func TestPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u1, u2 := PostgresURL(t), PostgresURL(t)
	if u1 == u2 {
		t.Fatalf("two tests got the same database %s", u1)
	}
	c, err := pgx.Connect(ctx, u1)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close(ctx) }()
	var listen string
	if err := c.QueryRow(ctx, "SHOW listen_addresses").Scan(&listen); err != nil || listen != "127.0.0.1" {
		t.Fatalf("listen_addresses = %q, %v", listen, err)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE x (a int)"); err != nil {
		t.Fatal(err)
	}
	if cpu, err := sharedPG.GroupCPU(); err != nil || cpu <= 0 {
		t.Fatalf("GroupCPU = %v, %v", cpu, err)
	}
	// A backend that works is charged to "backends", and the kinds add
	// up to the group (less what the readings between them took).
	k0, _ := sharedPG.GroupCPUByKind()
	if _, err := c.Exec(ctx, "SELECT count(*) FROM generate_series(1, 3000000)"); err != nil {
		t.Fatal(err)
	}
	k1, err := sharedPG.GroupCPUByKind()
	if err != nil || k1["backends"]-k0["backends"] < 10*time.Millisecond {
		t.Fatalf("GroupCPUByKind: backends %v then %v (%v)", k0["backends"], k1["backends"], err)
	}
	if err := syscall.Kill(sharedPG.PID(), 0); err != nil {
		t.Fatalf("postmaster %d: %v", sharedPG.PID(), err)
	}
}
