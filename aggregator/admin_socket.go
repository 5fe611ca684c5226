package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/procscope/procscope/aggregator/internal/history"
)

// The admin socket lets an admin command reach the running server for what
// only the process holding the history store can do: VictoriaMetrics locks
// its directory, so `backup` asks the server for a history snapshot. (The
// database needs no such help: SQLite in WAL mode is read side by side,
// and `hosts delete` records its deletions in a table the server polls.)
//
// It is a unix socket inside the storage directory, mode 0600 in a 0700
// directory: whoever may connect may read the database files anyway. The
// protocol is one line each way: the command sends "history-snapshot"; the
// server answers "ok <dir>", "no-history" or "error <message>", then keeps
// the snapshot until the command closes the connection (or dies: a kill -9
// of the backup closes it too), and deletes it.
const (
	adminSocketFile = "admin.sock"
	// maxSnapshotHold bounds how long one connection may keep a history
	// snapshot (its hard links hold merged-away parts on disk).
	maxSnapshotHold = 24 * time.Hour
	// maxUnixPath is the longest socket path Linux takes (sun_path less
	// its terminating NUL).
	maxUnixPath = 107
)

type adminSocket struct {
	ln   net.Listener
	path string
	hist *history.History // nil without history
	log  *slog.Logger

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// startAdminSocket listens on <storage>/admin.sock; nil (logged) when it
// cannot, which only costs online backups.
func startAdminSocket(storage string, hist *history.History, log *slog.Logger) *adminSocket {
	path := filepath.Join(storage, adminSocketFile)
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if len(path) > maxUnixPath {
		log.Warn("no admin socket: the storage path is too long for a unix socket; `backup` works only while the server is stopped",
			"path", path)
		return nil
	}
	// Only one server holds a storage directory (the history lock, the
	// port): a socket file left here is a dead server's.
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		log.Warn("no admin socket: `backup` works only while the server is stopped", "path", path, "err", err)
		return nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		log.Warn("no admin socket: cannot make it private", "path", path, "err", err)
		return nil
	}
	s := &adminSocket{ln: ln, path: path, hist: hist, log: log, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s
}

func (s *adminSocket) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		s.mu.Lock()
		if s.conns == nil {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			_ = c.Close()
		}()
	}
}

func (s *adminSocket) serve(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReaderSize(c, 256).ReadString('\n')
	if err != nil {
		return
	}
	reply := func(format string, args ...any) {
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, _ = fmt.Fprintf(c, format+"\n", args...)
	}
	switch strings.TrimSpace(line) {
	case "history-snapshot":
	default:
		reply("error unknown command %q", strings.TrimSpace(line))
		return
	}
	if s.hist == nil || s.hist.Dir() == "" { // no history, or remote write only
		reply("no-history")
		return
	}
	dir, release, err := s.hist.Snapshot(time.Minute)
	if err != nil {
		s.log.Error("backup: history snapshot failed", "err", err)
		reply("error %s", strings.ReplaceAll(err.Error(), "\n", " "))
		return
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs // the command runs in another working directory
	}
	s.log.Info("backup: history snapshot taken for a backup", "dir", dir)
	reply("ok %s", dir)
	// Held until the command hangs up, whatever it sends.
	_ = c.SetReadDeadline(time.Now().Add(maxSnapshotHold))
	_, _ = io.Copy(io.Discard, c)
	if err := release(); err != nil {
		s.log.Error("backup: deleting the history snapshot", "dir", dir, "err", err)
		return
	}
	s.log.Info("backup: history snapshot deleted", "dir", dir)
}

// close stops listening, ends the connections (deleting their snapshots)
// and waits for them: before history closes.
func (s *adminSocket) close() {
	if s == nil {
		return
	}
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.SetDeadline(time.Now())
	}
	s.conns = nil
	s.mu.Unlock()
	s.wg.Wait()
	_ = os.Remove(s.path)
}

// askHistorySnapshot asks the server holding storage for a history
// snapshot. It returns the connection to close once the snapshot is
// copied; conn is nil (and err nil) when no server answers.
func askHistorySnapshot(storage string) (dir string, conn net.Conn, noHistory bool, err error) {
	path, err := filepath.Abs(filepath.Join(storage, adminSocketFile))
	if err != nil {
		return "", nil, false, err
	}
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return "", nil, false, nil // no server (or a dead one's socket)
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := io.WriteString(c, "history-snapshot\n"); err != nil {
		_ = c.Close()
		return "", nil, false, fmt.Errorf("asking the server for a history snapshot: %w", err)
	}
	line, err := bufio.NewReaderSize(c, 4096).ReadString('\n')
	if err != nil {
		_ = c.Close()
		return "", nil, false, fmt.Errorf("asking the server for a history snapshot: %w", err)
	}
	_ = c.SetDeadline(time.Time{})
	line = strings.TrimSpace(line)
	switch {
	case line == "no-history":
		_ = c.Close()
		return "", nil, true, nil
	case strings.HasPrefix(line, "ok "):
		return strings.TrimPrefix(line, "ok "), c, false, nil
	case strings.HasPrefix(line, "error "):
		_ = c.Close()
		return "", nil, false, errors.New("the server could not snapshot its history: " + strings.TrimPrefix(line, "error "))
	}
	_ = c.Close()
	return "", nil, false, fmt.Errorf("unexpected answer from the server's admin socket: %q", line)
}
