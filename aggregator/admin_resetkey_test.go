package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/procscope/procscope/aggregator/internal/api"
	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/internal/testutil"
	"github.com/procscope/procscope/tools/loadgen/gen"
)

// keyServer is a running API on either store, for the key commands.
type keyServer struct {
	t   *testing.T
	srv *httptest.Server
}

func startKeyServer(t *testing.T, dir, pgURL string, enroll api.Enrollment) *keyServer {
	t.Helper()
	st, _, err := openStore(context.Background(), dir, pgURL, store.Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	a, err := api.New(api.Options{Logger: slog.New(slog.DiscardHandler), Enrollment: enroll})
	if err != nil {
		t.Fatal(err)
	}
	a.SetStore(st)
	s := &keyServer{t: t, srv: httptest.NewServer(a)}
	t.Cleanup(func() {
		a.Close()
		s.srv.Close()
		_ = st.Close()
	})
	return s
}

// push sends one snapshot of host with key (and token, if any); it
// returns the status and the error message of a refusal.
func (s *keyServer) push(key, token, host string, at time.Time) (int, string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+api.IngestPath, bytes.NewReader(gen.Body(3, host, at.UTC().Format(time.RFC3339Nano), false)))
	req.Header.Set("X-API-KEY", key)
	if token != "" {
		req.Header.Set(api.EnrollmentTokenHeader, token)
	}
	res, err := s.srv.Client().Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	b, _ := io.ReadAll(res.Body)
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return res.StatusCode, e.Error
}

// TestResetKeyWhileServing: `hosts reset-key` run while the server holds
// the store (SQLite or PostgreSQL) gives the host a new key at once, in
// every enrolment mode: the old key is refused with a 403 naming the
// fix, and so is any other key, the enrolment token notwithstanding
// (before, the next push after a reset bound whatever key it carried);
// the printed key works.
func TestResetKeyWhileServing(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, mode := range []api.EnrollMode{api.EnrollClosed, api.EnrollToken, api.EnrollOpen} {
			t.Run(backend+"/"+string(mode), func(t *testing.T) {
				dir, pgURL := t.TempDir(), ""
				if backend == "postgres" {
					pgURL = testutil.PostgresURL(t)
					t.Setenv("PROCSCOPE_STORAGE_POSTGRES_URL", pgURL)
				}
				enroll := api.Enrollment{Mode: mode, MaxHosts: 10000, RatePerMinute: 60, MinKeyLen: 8}
				if mode == api.EnrollToken {
					enroll.Token = token
				}
				s := startKeyServer(t, dir, pgURL, enroll)
				sp := "--storage.path=" + dir

				code, out, errOut := runCLI("hosts", "add", "web-1", sp)
				oldKey := keyLine.FindString(out)
				if code != 0 || oldKey == "" {
					t.Fatalf("hosts add: exit %d %s%s", code, out, errOut)
				}
				now := time.Now()
				if code, msg := s.push(oldKey, "", "web-1", now); code != http.StatusCreated {
					t.Fatalf("the added key: %d %s", code, msg)
				}

				code, out, errOut = runCLI("hosts", "reset-key", "web-1", sp)
				newKey := keyLine.FindString(out)
				if code != 0 || newKey == "" || newKey == oldKey || !strings.Contains(out, "only this once") ||
					!strings.Contains(out, "old key is refused") || !strings.Contains(out, "--push.api-key-file") {
					t.Fatalf("hosts reset-key printed no new key or no hint: exit %d\n%s%s", code, out, errOut)
				}
				// The server remembers the old key as checked; the store's
				// own check refuses it at once all the same.
				code, msg := s.push(oldKey, "", "web-1", now.Add(time.Second))
				if code != http.StatusForbidden || !strings.Contains(msg, "does not match this host") || !strings.Contains(msg, "hosts reset-key web-1") {
					t.Fatalf("the old key after reset-key: %d %q, want 403 naming the fix", code, msg)
				}
				for _, tok := range []string{"", token} {
					if code, msg := s.push("key-of-a-squatter", tok, "web-1", now.Add(2*time.Second)); code != http.StatusForbidden {
						t.Fatalf("a random key (token %q) after reset-key: %d %s, want 403", tok, code, msg)
					}
				}
				if code, msg := s.push(newKey, "", "web-1", now.Add(3*time.Second)); code != http.StatusCreated {
					t.Fatalf("the printed key: %d %s", code, msg)
				}
				if code, _ := s.push(oldKey, "", "web-1", now.Add(4*time.Second)); code != http.StatusForbidden {
					t.Fatalf("the old key once the new one pushed: %d", code)
				}
				if code, _, errOut := runCLI("hosts", "reset-key", "no-such-host", sp); code != 1 || !strings.Contains(errOut, "no host named") {
					t.Fatalf("reset-key of an unknown host: exit %d %s", code, errOut)
				}
			})
		}
	}
}

// TestResetKeyUnbind: `--unbind` leaves the host without a key, and the
// server then admits its next push only as it would a new host's: in
// closed mode none (403 naming reset-key), in token mode only with the
// token, in open mode any.
func TestResetKeyUnbind(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	for _, mode := range []api.EnrollMode{api.EnrollClosed, api.EnrollToken, api.EnrollOpen} {
		t.Run(string(mode), func(t *testing.T) {
			dir := t.TempDir()
			enroll := api.Enrollment{Mode: mode, MaxHosts: 10000, RatePerMinute: 60, MinKeyLen: 8}
			if mode == api.EnrollToken {
				enroll.Token = token
			}
			s := startKeyServer(t, dir, "", enroll)
			sp := "--storage.path=" + dir
			if code, _, errOut := runCLI("hosts", "add", "web-1", sp); code != 0 {
				t.Fatalf("hosts add: %s", errOut)
			}
			code, out, errOut := runCLI("hosts", "reset-key", "--unbind", "web-1", sp)
			if code != 0 || keyLine.MatchString(out) || !strings.Contains(out, "has no key now") {
				t.Fatalf("reset-key --unbind: exit %d\n%s%s", code, out, errOut)
			}
			now := time.Now()
			code, msg := s.push("key-reinstalled", "", "web-1", now)
			switch mode {
			case api.EnrollOpen:
				if code != http.StatusCreated {
					t.Fatalf("open: the next key binds: %d %s", code, msg)
				}
			case api.EnrollClosed:
				if code != http.StatusForbidden || !strings.Contains(msg, "hosts reset-key web-1") {
					t.Fatalf("closed: %d %q, want 403 naming reset-key", code, msg)
				}
			case api.EnrollToken:
				if code != http.StatusForbidden || !strings.Contains(msg, "enrollment token") {
					t.Fatalf("token, without it: %d %q, want 403 naming the token", code, msg)
				}
				if code, msg := s.push("key-reinstalled", token, "web-1", now); code != http.StatusCreated {
					t.Fatalf("token, with it: %d %s", code, msg)
				}
			}
		})
	}
}
