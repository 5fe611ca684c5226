package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/procscope/procscope/aggregator/internal/history"
)

func parseHistoryURLFlags(t *testing.T, args ...string) *historyURLFlags {
	t.Helper()
	app := kingpin.New("t", "")
	f := addHistoryURLFlags(app)
	if _, err := app.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f
}

func writeSecret(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHistoryURLFlags: the combinations refused before anything starts,
// and the error never shows a secret.
func TestHistoryURLFlags(t *testing.T) {
	good := writeSecret(t, "reader:pa55word\n")
	f := func(historyOn bool, want string, args ...string) {
		t.Helper()
		err := parseHistoryURLFlags(t, args...).check(historyOn)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", args, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want %q", args, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), "pa55word") || strings.Contains(err.Error(), "s3cret")) {
			t.Errorf("%q: the error shows a secret: %v", args, err)
		}
	}
	f(true, "")
	f(true, "", "--history.url=http://vm:8428")
	f(true, "", "--history.url=http://vmselect:8481/select/0/prometheus/", "--history.basic-auth-file="+good)
	f(true, "", "--history.url=https://mimir/prometheus", "--history.bearer-token-file="+good)
	f(false, "needs history", "--history.url=http://vm:8428")
	f(true, "need --history.url", "--history.basic-auth-file="+good)
	f(true, "keep one", "--history.url=http://vm:8428", "--history.basic-auth-file="+good, "--history.bearer-token-file="+good)
	f(true, "user:password", "--history.url=http://u:s3cret@vm:8428")
	f(true, "no such file", "--history.url=http://vm:8428", "--history.bearer-token-file=/nonexistent/token")
	f(true, "want one line user:password", "--history.url=http://vm:8428", "--history.basic-auth-file="+writeSecret(t, "pa55word\n"))
	f(true, "one non-empty line", "--history.url=http://vm:8428", "--history.bearer-token-file="+writeSecret(t, "\n"))
	f(true, "one non-empty line", "--history.url=http://vm:8428", "--history.bearer-token-file="+writeSecret(t, "a\nb\n"))
}

// TestHistoryURLAuthSent: the credentials of the files go with every
// request to --history.url.
func TestHistoryURLAuthSent(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1000000,"2"]}]}}`)
	}))
	defer srv.Close()
	for _, tc := range []struct{ flag, file, want string }{
		{"--history.basic-auth-file", "reader:pa55word\n", "Basic cmVhZGVyOnBhNTV3b3Jk"},
		{"--history.bearer-token-file", "t0ken\r\n", "Bearer t0ken"},
	} {
		got = nil
		fl := parseHistoryURLFlags(t, "--history.url="+srv.URL, tc.flag+"="+writeSecret(t, tc.file))
		rr, err := fl.reader(nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, _ = rr.QueryWith(ctx, history.MetricCPU, map[string]string{history.LabelHostname: "h"}, time.Unix(0, 0), time.Unix(60, 0), history.QueryOptions{})
		cancel()
		if len(got) == 0 || got[0] != tc.want {
			t.Errorf("%s: Authorization %q, want %q", tc.flag, got, tc.want)
		}
	}
}
