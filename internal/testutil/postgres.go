package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// A PostgreSQL cluster of our own for tests and the load benchmark: a
// temporary directory, a free loopback port asked of the OS, a random
// password, stopped by its PID. initdb refuses to run as root, so as root
// the cluster runs as the `postgres` system user (Debian's postgresql
// package creates it); never the cluster apt may have started on 5432.

// PostgresOptions tunes StartPostgres.
type PostgresOptions struct {
	// Durable keeps fsync on (the benchmark measures real commits); tests
	// run with fsync off, which only matters if the machine itself crashes.
	Durable bool
	// Settings are more NAME=VALUE server settings (-c), e.g. to load
	// pg_stat_statements while looking for where the time goes.
	Settings []string
}

// Postgres is a running cluster.
type Postgres struct {
	dir      string
	port     int
	password string
	cmd      *exec.Cmd
	waited   chan struct{}
	dbs      atomic.Int64
}

// PostgresBin finds the directory of initdb and postgres: the newest
// /usr/lib/postgresql/N/bin (Debian), or the one holding initdb on PATH.
func PostgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries (install Debian's postgresql package)")
}

// runAs is the credential the cluster runs under: nil when not root (our
// own user), the postgres user's when root.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and no postgres user to run PostgreSQL as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// StartPostgres initializes and starts a cluster; Stop ends it.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	bin, err := PostgresBin()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	// Not t.TempDir: its parents are private to root, and the postgres
	// user must reach the data directory.
	dir, err := os.MkdirTemp("", "procscope-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{dir: dir, waited: make(chan struct{})}
	fail := func(err error) (*Postgres, error) {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	pw := make([]byte, 16)
	_, _ = rand.Read(pw)
	p.password = hex.EncodeToString(pw)
	pwFile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwFile, []byte(p.password+"\n"), 0o600); err != nil {
		return fail(err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
		if err := os.Chown(pwFile, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--pwfile="+pwFile, "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v\n%s", err, out))
	}
	_ = os.Remove(pwFile)

	fsync := "off"
	if opts.Durable {
		fsync = "on"
	}
	var lastErr error
	for range 3 { // a free port may be taken before postgres binds it
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		p.port = port
		cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
			"-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(port),
			"-c", "unix_socket_directories="+dir, "-c", "fsync="+fsync,
			"-c", "max_connections=200", "-c", "shared_buffers=64MB",
			"-c", "logging_collector=off", "-c", "log_min_messages=warning")
		for _, kv := range opts.Settings {
			cmd.Args = append(cmd.Args, "-c", kv)
		}
		// Its own process group (the benchmark sums the group's CPU), and
		// SIGQUIT (immediate shutdown) if this process dies first.
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
		logf, err := os.Create(filepath.Join(dir, "postgres.log"))
		if err != nil {
			return fail(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			_ = logf.Close()
			return fail(fmt.Errorf("start postgres: %w", err))
		}
		p.cmd = cmd
		p.waited = make(chan struct{})
		go func(waited chan struct{}) {
			_ = cmd.Wait()
			_ = logf.Close()
			close(waited)
		}(p.waited)
		if lastErr = p.waitReady(ctx); lastErr == nil {
			return p, nil
		}
		p.kill()
	}
	log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
	return fail(fmt.Errorf("postgres did not start: %w\n%s", lastErr, log))
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (p *Postgres) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-p.waited:
			return errors.New("postgres exited")
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var c *pgx.Conn
		c, err = pgx.Connect(cctx, p.URL("postgres"))
		cancel()
		if err == nil {
			_ = c.Close(ctx)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

// URL is the connection URL of database db.
func (p *Postgres) URL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword("postgres", p.password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// PID is the postmaster's process id (and its process group's).
func (p *Postgres) PID() int { return p.cmd.Process.Pid }

// NewDatabase creates an empty database and returns its URL: each test
// gets its own, so that tables, advisory locks and LISTEN channels (all
// per database) are not shared.
func (p *Postgres) NewDatabase(ctx context.Context) (string, error) {
	name := "t" + strconv.FormatInt(p.dbs.Add(1), 10)
	c, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer func() { _ = c.Close(ctx) }()
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	return p.URL(name), nil
}

// kill stops the postmaster at once (SIGQUIT: immediate shutdown, its
// backends exit too) and waits for it, then SIGKILLs the group if needed.
func (p *Postgres) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.waited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.waited
	}
}

// Stop ends the cluster and removes its directory.
func (p *Postgres) Stop() {
	p.kill()
	_ = os.RemoveAll(p.dir)
}

// GroupCPUByKind is GroupCPU split by what the processes do: "backends"
// (client connections), "autovacuum" (its launcher and live workers),
// "wal writer" (walwriter, checkpointer, background writer), and
// "postmaster" (itself, and what exited children left it: autovacuum
// workers that finished, closed connections).
func (p *Postgres) GroupCPUByKind() (map[string]time.Duration, error) {
	pgid := p.PID()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := map[string]time.Duration{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 15 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid != pgid && pid != pgid {
			continue
		}
		d, err := parseStat(s)
		if err != nil {
			continue
		}
		if pid == pgid {
			cu, _ := strconv.ParseInt(f[13], 10, 64)
			cs, _ := strconv.ParseInt(f[14], 10, 64)
			out["postmaster"] += d + time.Duration(cu+cs)*time.Second/100
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		title := strings.TrimPrefix(string(cmd), "postgres: ")
		switch {
		case strings.HasPrefix(title, "autovacuum"):
			out["autovacuum"] += d
		case strings.HasPrefix(title, "walwriter"), strings.HasPrefix(title, "checkpointer"),
			strings.HasPrefix(title, "background writer"):
			out["wal writer"] += d
		default:
			out["backends"] += d
		}
	}
	return out, nil
}

// GroupCPU is the CPU time of the postmaster and its backends so far: the
// postmaster, its live children (each backend calls setsid, so they are
// found by parent, not by process group) and what exited children left in
// the postmaster's cutime/cstime.
func (p *Postgres) GroupCPU() (time.Duration, error) {
	kinds, err := p.GroupCPUByKind()
	var total time.Duration
	for _, d := range kinds {
		total += d
	}
	return total, err
}

// The cluster shared by one test binary: started by the first test that
// asks, stopped by PostgresMain once every test ran.
var (
	sharedPGOnce sync.Once
	sharedPG     *Postgres
	sharedPGErr  error
)

// PostgresMain runs a test binary's tests (call it from TestMain) and then
// stops the shared cluster if one was started.
func PostgresMain(m *testing.M) int {
	code := m.Run()
	if sharedPG != nil {
		sharedPG.Stop()
	}
	return code
}

// PostgresURL returns the URL of a new, empty database on the test
// binary's shared cluster (started on first use; TestMain must call
// PostgresMain). Without PostgreSQL the test is skipped, unless
// REQUIRE_E2E=1 makes that a failure.
func PostgresURL(t testing.TB) string {
	t.Helper()
	sharedPGOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sharedPG, sharedPGErr = StartPostgres(ctx, PostgresOptions{})
	})
	if sharedPGErr != nil {
		if os.Getenv("REQUIRE_E2E") != "" {
			t.Fatalf("PostgreSQL: %v", sharedPGErr)
		}
		t.Skipf("SKIPPED: PostgreSQL: %v; set REQUIRE_E2E=1 to make this a failure", sharedPGErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := sharedPG.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
