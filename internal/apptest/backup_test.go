package apptest

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // integrity_check of the source

	"github.com/procscope/procscope/tools/loadgen/gen"
)

// pusher ingests snapshots of a few hosts from goroutines until stopped,
// recording every acknowledged one in order.
type pusher struct {
	mu    sync.Mutex
	acked []sent
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func startPushing(t *testing.T, url string, hosts int, base time.Time) *pusher {
	p := &pusher{stop: make(chan struct{})}
	client := &http.Client{Timeout: 30 * time.Second}
	for w := range hosts {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			host := fmt.Sprintf("backup-w%d", w)
			for i := range 20000 { // bounded; stop ends it sooner
				select {
				case <-p.stop:
					return
				default:
				}
				at := base.Add(time.Duration(i) * time.Second).Format("2006-01-02T15:04:05.000Z07:00")
				procs := gen.Processes(50+i%100, uint64(w*100000+i), i%2 == 0)
				code, id, err := post(client, url, "key-"+host, gen.BodyOf(host, at, procs))
				if err != nil {
					t.Errorf("%s: %v", host, err)
					return
				}
				if code != http.StatusCreated {
					t.Errorf("%s: status %d", host, code)
					return
				}
				p.mu.Lock()
				p.acked = append(p.acked, sent{host: host, at: at, procs: procs, id: id})
				p.mu.Unlock()
			}
		}()
	}
	return p
}

func (p *pusher) soFar() []sent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]sent(nil), p.acked...)
}

func (p *pusher) halt() {
	p.once.Do(func() { close(p.stop) })
	p.wg.Wait()
}

func waitAcked(t *testing.T, p *pusher, n int) {
	t.Helper()
	for range 6000 {
		if len(p.soFar()) >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("fewer than %d snapshots acknowledged in a minute", n)
}

func getBody(t *testing.T, url string) (int, []byte) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

// TestBackupDuringLoad: `backup --to DIR` while the server ingests; an
// aggregator started on DIR serves every snapshot acknowledged before the
// backup began, byte for byte as the source server does, and the same
// history up to them.
func TestBackupDuringLoad(t *testing.T) {
	bin := binary(t)
	storage := t.TempDir()
	p := serve(t, bin, storage)
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Second).UTC()
	push := startPushing(t, p.URL, 4, base)
	waitAcked(t, push, 200)

	before := push.soFar()
	dest := filepath.Join(t.TempDir(), "backup")
	cmd := exec.Command(bin, "backup", "--storage.path="+storage, "--to", dest)
	out, err := cmd.CombinedOutput()
	during := len(push.soFar()) - len(before)
	push.halt()
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	t.Logf("backup output:\n%s", out)
	if !strings.Contains(string(out), "backup: database copied") || !strings.Contains(string(out), "backup: complete: "+dest) {
		t.Fatalf("no progress or completion line:\n%s", out)
	}
	if during == 0 {
		t.Log("no snapshot was acknowledged during the backup: it ran quicker than the load")
	}
	if _, err := os.Stat(filepath.Join(dest, "BACKUP_COMPLETE")); err != nil {
		t.Fatal(err)
	}
	if snaps, _ := filepath.Glob(filepath.Join(storage, "history", "snapshots", "*")); len(snaps) != 0 {
		time.Sleep(time.Second) // the server deletes it once the command hung up
		if snaps, _ := filepath.Glob(filepath.Join(storage, "history", "snapshots", "*")); len(snaps) != 0 {
			t.Fatalf("history snapshots left in the source: %v", snaps)
		}
	}

	r, err := Start(bin, dest, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop(30 * time.Second)
	last := map[string]string{}
	for _, s := range before {
		for _, path := range []string{"/api/v1/snapshots/%d", "/api/v1/snapshots/%d/processes"} {
			u := fmt.Sprintf(path, s.id)
			c1, b1 := getBody(t, p.URL+u)
			c2, b2 := getBody(t, r.URL+u)
			if c1 != 200 || c2 != 200 || !bytes.Equal(b1, b2) {
				t.Fatalf("%s: source %d, restored %d; identical %v", u, c1, c2, bytes.Equal(b1, b2))
			}
		}
		if s.at > last[s.host] {
			last[s.host] = s.at
		}
	}
	verifyAll(t, &http.Client{Timeout: 30 * time.Second}, r.URL, before)
	// History: the source's answer up to the last snapshot acknowledged
	// before the backup, per host, is the restored one's.
	time.Sleep(time.Second) // the source makes its last rows searchable
	for host, at := range last {
		q := fmt.Sprintf("/api/v1/hosts/%s/series?metric=memory&from=%s&to=%s", host,
			url.QueryEscape(base.Add(-time.Minute).Format(time.RFC3339)), url.QueryEscape(at))
		c1, b1 := getBody(t, p.URL+q)
		c2, b2 := getBody(t, r.URL+q)
		if c1 != 200 || c2 != 200 || !bytes.Equal(b1, b2) || !bytes.Contains(b2, []byte(`"values":[[`)) {
			t.Fatalf("history of %s: source %d %.300s\nrestored %d %.300s", host, c1, b1, c2, b2)
		}
	}
	t.Logf("%d snapshots acknowledged before the backup, %d during it: the restored store serves the first identical, with their history", len(before), during)
}

// TestBackupKill9: a backup killed with SIGKILL at some point leaves no
// backup directory (or a complete one, if it had finished), the source
// intact and its server serving, and the server deletes its history
// snapshot.
func TestBackupKill9(t *testing.T) {
	bin := binary(t)
	storage := t.TempDir()
	p := serve(t, bin, storage)
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Second).UTC()
	push := startPushing(t, p.URL, 4, base)
	waitAcked(t, push, 400)
	defer push.halt()

	parent := t.TempDir()
	midway := 0
	// Kill after the k-th line of output: early in the database copy,
	// then later on.
	for k := 1; k <= 4; k++ {
		dest := filepath.Join(parent, fmt.Sprintf("backup-%d", k))
		cmd := exec.Command(bin, "backup", "--storage.path="+storage, "--to", dest)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		for i := 0; i < k && sc.Scan(); i++ {
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		if _, err := os.Stat(dest); err == nil {
			// It finished before the kill: then it is complete.
			if _, err := os.Stat(filepath.Join(dest, "BACKUP_COMPLETE")); err != nil {
				t.Fatalf("kill after line %d: %s exists without its completion marker", k, dest)
			}
			continue
		}
		midway++
	}
	if midway == 0 {
		t.Fatal("every backup finished before its kill: the test proved nothing")
	}
	temps, _ := filepath.Glob(filepath.Join(parent, ".procscope-backup-*"))
	for _, d := range temps {
		if _, err := os.Stat(filepath.Join(d, "BACKUP_COMPLETE")); err == nil {
			t.Fatalf("unfinished backup %s has a completion marker", d)
		}
	}
	// The server still serves and takes snapshots.
	n := len(push.soFar())
	waitAcked(t, push, n+20)
	if code, _ := getBody(t, p.URL+"/-/ready"); code != 200 {
		t.Fatalf("/-/ready %d after the kills", code)
	}
	// It deleted the snapshots of the killed commands.
	var left []string
	for range 100 {
		left, _ = filepath.Glob(filepath.Join(storage, "history", "snapshots", "*"))
		if len(left) == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(left) != 0 {
		t.Fatalf("history snapshots of killed backups left: %v", left)
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(storage, "procscope.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var check string
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("source integrity_check: %q %v", check, err)
	}
	// A new backup notes the unfinished ones, and completes.
	dest := filepath.Join(parent, "final")
	out, err := exec.Command(bin, "backup", "--storage.path="+storage, "--to", dest).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "backup: complete") {
		t.Fatalf("backup after the kills: %v\n%s", err, out)
	}
	if len(temps) > 0 && !strings.Contains(string(out), "unfinished backup") {
		t.Fatalf("the leftovers %v are not reported:\n%s", temps, out)
	}
	t.Logf("%d of 4 backups killed midway; source intact, server serving", midway)
}
