package push

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// textLogger is a debug-level text logger writing into logs.
func textLogger(logs *logBuf) *slog.Logger {
	return slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// countLevel counts the log lines at level (ERROR, WARN, ...) containing sub.
func countLevel(logs, level, sub string) int {
	n := 0
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "level="+level) && strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// TestRefusedKeepsQueue: a reinstalled exporter's key is refused (403)
// until the host's key is reset at the aggregator. Nothing is dropped,
// attempts are spaced by RefusedRetry whatever is enqueued meanwhile, the
// fix is logged once at error level, and the recovery once at info.
func TestRefusedKeepsQueue(t *testing.T) {
	const refusals = 3
	const interval = 150 * time.Millisecond
	r := newReceiver(t)
	var mu sync.Mutex
	var at []time.Time
	r.setRespond(func(n int, w http.ResponseWriter) bool {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		if n <= refusals {
			w.WriteHeader(http.StatusForbidden)
			_, _ = fmt.Fprint(w, `{"error":"the API key does not match this host"}`)
			return true
		}
		return false
	})
	logs := &logBuf{}
	p := newPusher(t, t.TempDir(), r.url(), 100, logs, 2*time.Second)
	p.o.RefusedRetry = interval
	p.o.Hostname = "web-1"
	for i := 0; i < 3; i++ {
		if err := p.Enqueue(snap(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	stop := run(p)
	defer stop()
	waitFor(t, "a refusal", func() bool { return p.Stats().Failed >= 1 })
	// Collection goes on during the outage and wakes the sender; it must
	// not retry sooner for that.
	for i := 3; i < 6; i++ {
		if err := p.Enqueue(snap(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the backlog", func() bool { return p.Stats().Waiting == 0 })
	wantSequence(t, r.received(), 0, 6)
	if st := p.Stats(); st.Dropped != 0 || st.Sent != 6 || st.Failed != refusals {
		t.Errorf("stats %+v, want nothing dropped, %d failed attempts", st, refusals)
	}
	mu.Lock()
	for i := 1; i <= refusals; i++ {
		if gap := at[i].Sub(at[i-1]); gap < interval {
			t.Errorf("attempt %d came %v after a refusal, want at least %v", i+1, gap, interval)
		}
	}
	mu.Unlock()
	l := logs.String()
	if n := strings.Count(l, "level=ERROR"); n != 1 {
		t.Errorf("%d error lines, want one for the whole outage:\n%s", n, l)
	}
	if countLevel(l, "ERROR", "the API key does not match this host") != 1 ||
		countLevel(l, "ERROR", "procscope-aggregator hosts reset-key web-1") != 1 {
		t.Errorf("the error line lacks the aggregator's message or the command to run:\n%s", l)
	}
	if countLevel(l, "INFO", "pushes succeed again") != 1 {
		t.Errorf("recovery not logged once at info:\n%s", l)
	}
	if strings.Contains(l, testKey) {
		t.Error("the API key appears in the log")
	}
}

// TestRefusedFix: what the error line tells the user to do, by the
// aggregator's answer.
func TestRefusedFix(t *testing.T) {
	f := func(status int, msg, token, want string) {
		t.Helper()
		logs := &logBuf{}
		p := newPusher(t, t.TempDir(), "http://127.0.0.1:1/api/v1/ingest", 10, logs, time.Second)
		p.o.Hostname, p.o.EnrollmentToken = "web-1", token
		p.logRefused(result{status: status, msg: msg})
		if l := logs.String(); countLevel(l, "ERROR", want) != 1 || !strings.Contains(l, msg) ||
			(token != "" && strings.Contains(l, token)) {
			t.Errorf("%d %q: log %q, want one error line with %q and the message", status, msg, l, want)
		}
	}
	f(403, "the API key does not match this host", "", "hosts reset-key web-1")
	f(403, "new host web-1 refused: enrolment is token, send X-Enrollment-Token", "", "--push.enrollment-token-file")
	f(403, "new host web-1 refused: bad enrollment token", "s3cret-token", "enrolment token this exporter sends was refused")
	f(403, "new host web-1 refused: run procscope-aggregator hosts add web-1", "", "aggregator's message")
	f(401, "authentication required", "", "aggregator's message")
}

// TestRedirectNeverFollowed: an aggregator answering 3xx must not get the
// key (or the token) sent to the other URL, whoever built the client; the
// snapshot is kept and the redirect logged once with its Location.
func TestRedirectNeverFollowed(t *testing.T) {
	for _, code := range []int{301, 302, 307, 308} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			var stolen atomic.Int32
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				stolen.Add(1)
				t.Errorf("redirect followed: %s %s with key %q", r.Method, r.URL, r.Header.Get("X-API-KEY"))
			}))
			defer other.Close()
			r := newReceiver(t)
			r.setRespond(func(n int, w http.ResponseWriter) bool {
				if n <= 3 {
					w.Header().Set("Location", other.URL+"/api/v1/ingest")
					w.WriteHeader(code)
					return true
				}
				return false
			})
			logs := &logBuf{}
			q, _, err := OpenQueue(t.TempDir(), 10)
			if err != nil {
				t.Fatal(err)
			}
			// A plain client, which follows redirects by default: New
			// must not let it.
			p, err := New(Options{URL: r.url(), APIKey: testKey, EnrollmentToken: "tok3n", Queue: q,
				Client: &http.Client{Timeout: 2 * time.Second}, Logger: textLogger(logs),
				MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Enqueue(snap(t, 0)); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if left := p.Flush(ctx); left != 0 {
				t.Fatalf("%d left", left)
			}
			wantSequence(t, r.received(), 0, 1)
			if st := p.Stats(); st.Failed != 3 || st.Dropped != 0 || st.Sent != 1 {
				t.Errorf("stats %+v", st)
			}
			if n := stolen.Load(); n != 0 {
				t.Errorf("the other server got %d requests", n)
			}
			l := logs.String()
			if countLevel(l, "ERROR", "location="+other.URL+"/api/v1/ingest") != 1 {
				t.Errorf("redirect not logged once with its location:\n%s", l)
			}
			if strings.Contains(l, testKey) || strings.Contains(l, "tok3n") {
				t.Error("a secret appears in the log")
			}
		})
	}
}

func TestPlainHTTPWarning(t *testing.T) {
	f := func(u string, warn bool) {
		t.Helper()
		logs := &logBuf{}
		q, _, err := OpenQueue(t.TempDir(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := New(Options{URL: u, APIKey: testKey, Queue: q, Logger: textLogger(logs)}); err != nil {
			t.Fatal(err)
		}
		if got := countLevel(logs.String(), "WARN", "plain http") == 1; got != warn {
			t.Errorf("%s: warned %v, want %v: %q", u, got, warn, logs.String())
		}
		if strings.Contains(logs.String(), testKey) {
			t.Error("the API key appears in the log")
		}
	}
	f("http://agg.example:8000/api/v1/ingest", true)
	f("http://10.0.0.5:8000/api/v1/ingest", true)
	f("http://[2001:db8::1]:8000/api/v1/ingest", true)
	f("http://127.0.0.1:8000/api/v1/ingest", false)
	f("http://127.3.4.5:8000/api/v1/ingest", false)
	f("http://[::1]:8000/api/v1/ingest", false)
	f("http://localhost:8000/api/v1/ingest", false)
	f("http://LOCALHOST./api/v1/ingest", false)
	f("https://agg.example/api/v1/ingest", false)
}

// TestClockSkewWarnedOnce: the aggregator's Date tells this host its
// clock is off; one warning says which way and by how much.
func TestClockSkewWarnedOnce(t *testing.T) {
	f := func(offset time.Duration, want string) {
		t.Helper()
		r := newReceiver(t)
		r.setRespond(func(n int, w http.ResponseWriter) bool {
			w.Header().Set("Date", time.Now().Add(offset).UTC().Format(http.TimeFormat))
			return false
		})
		logs := &logBuf{}
		p := newPusher(t, t.TempDir(), r.url(), 10, logs, 2*time.Second)
		for i := 0; i < 3; i++ {
			if err := p.Enqueue(snap(t, i)); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Flush(ctx)
		l := logs.String()
		if want == "" {
			if strings.Contains(l, "clock") {
				t.Errorf("offset %v: unexpected clock warning:\n%s", offset, l)
			}
			return
		}
		if strings.Count(l, "clock") != 1 || countLevel(l, "WARN", want) != 1 {
			t.Errorf("offset %v: want one warning with %q:\n%s", offset, want, l)
		}
	}
	f(5*time.Minute, "behind the aggregator's; fix NTP")
	f(-5*time.Minute, "ahead of the aggregator's; fix NTP")
	f(-2*time.Hour, "clock is 2h0m")
	f(10*time.Second, "")
}

// TestClockAheadRejection: the aggregator's 400 for a captured_at in its
// future drops the snapshot, as any 400, and the log says why, once.
func TestClockAheadRejection(t *testing.T) {
	r := newReceiver(t)
	r.setRespond(func(n int, w http.ResponseWriter) bool {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, `{"error":"captured_at is %dm0s ahead of the aggregator's clock (max 10m0s)"}`, 10+n)
		return true
	})
	logs := &logBuf{}
	p := newPusher(t, t.TempDir(), r.url(), 10, logs, 2*time.Second)
	for i := 0; i < 3; i++ {
		if err := p.Enqueue(snap(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.Flush(ctx)
	if st := p.Stats(); st.Dropped != 3 || st.Waiting != 0 {
		t.Errorf("stats %+v", st)
	}
	if l := logs.String(); strings.Count(l, "ahead of the aggregator's clock") != 1 || countLevel(l, "ERROR", "fix NTP") != 1 {
		t.Errorf("want one line with the clock hint:\n%s", l)
	}
}

// TestWrongURLHint: a --push.url without the ingest path gets 405 from
// the aggregator forever; the log says once which URL was meant.
func TestWrongURLHint(t *testing.T) {
	r := newReceiver(t)
	r.setRespond(func(n int, w http.ResponseWriter) bool {
		if n <= 3 {
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = fmt.Fprint(w, `{"error":"method not allowed"}`)
			return true
		}
		return false
	})
	logs := &logBuf{}
	base := "http://" + r.Addr()
	p := newPusher(t, t.TempDir(), base, 10, logs, 2*time.Second)
	if err := p.Enqueue(snap(t, 0)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.Flush(ctx)
	want := "did you mean " + base + "/api/v1/ingest?"
	if l := logs.String(); countLevel(l, "ERROR", want) != 1 {
		t.Errorf("want one error line with %q:\n%s", want, l)
	}
	if st := p.Stats(); st.Failed != 3 || st.Sent != 1 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestIngestURLHint(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := ingestURLHint(u); got != want {
			t.Errorf("ingestURLHint(%q) = %q, want %q", in, got, want)
		}
	}
	f("http://agg:8000", "http://agg:8000/api/v1/ingest")
	f("http://agg:8000/", "http://agg:8000/api/v1/ingest")
	f("https://proxy/procscope/", "https://proxy/procscope/api/v1/ingest")
	f("http://agg:8000/api/v1/ingest", "")
	f("http://agg:8000/api/v1/ingest/", "")
}

// TestOutageSummary: while pushes keep failing, a summary line comes once
// per SummaryInterval instead of one line and then silence.
func TestOutageSummary(t *testing.T) {
	r := newReceiver(t)
	r.Down()
	logs := &logBuf{}
	p := newPusher(t, t.TempDir(), r.url(), 10, logs, time.Second)
	p.o.SummaryInterval = 100 * time.Millisecond
	if err := p.Enqueue(snap(t, 0)); err != nil {
		t.Fatal(err)
	}
	if err := p.Enqueue(snap(t, 1)); err != nil {
		t.Fatal(err)
	}
	stop := run(p)
	defer stop()
	waitFor(t, "two summaries", func() bool { return strings.Count(logs.String(), "pushes still failing") >= 2 })
	r.Up()
	waitFor(t, "the backlog", func() bool { return p.Stats().Waiting == 0 })
	stop()
	l := logs.String()
	for _, line := range strings.Split(l, "\n") {
		if !strings.Contains(line, "pushes still failing") {
			continue
		}
		for _, want := range []string{"level=WARN", "failed_attempts=", "oldest_queued_age=", "waiting=2", "last_err=", "connection refused"} {
			if !strings.Contains(line, want) {
				t.Errorf("summary lacks %q: %s", want, line)
			}
		}
	}
	if n := strings.Count(l, "level=WARN msg=\"push failed"); n != 1 {
		t.Errorf("first failure logged %d times at warn, want once:\n%s", n, l)
	}
	if countLevel(l, "INFO", "pushes succeed again") != 1 {
		t.Errorf("recovery not logged:\n%s", l)
	}
}

// TestEnrollmentTokenSentNotLogged: the token goes with every push,
// refused or not, and never into the log; no token, no header.
func TestEnrollmentTokenSentNotLogged(t *testing.T) {
	const token = "enrol-me-0123456789"
	r := newReceiver(t)
	r.setRespond(func(n int, w http.ResponseWriter) bool {
		switch n {
		case 1:
			w.WriteHeader(http.StatusForbidden)
			_, _ = fmt.Fprint(w, `{"error":"new host refused: wrong enrollment token"}`)
			return true
		case 2:
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	logs := &logBuf{}
	p := newPusher(t, t.TempDir(), r.url(), 10, logs, 2*time.Second)
	p.o.EnrollmentToken = token
	p.o.RefusedRetry = 10 * time.Millisecond
	stop := run(p)
	defer stop()
	for i := 0; i < 3; i++ {
		if err := p.Enqueue(snap(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "delivery", func() bool { return p.Stats().Sent == 3 })
	stop()
	r.mu.Lock()
	tokens := append([]string(nil), r.tokens...)
	r.mu.Unlock()
	if len(tokens) < 5 {
		t.Fatalf("%d requests", len(tokens))
	}
	for i, tok := range tokens {
		if tok != token {
			t.Errorf("request %d carried token %q", i+1, tok)
		}
	}
	if l := logs.String(); strings.Contains(l, token) || !strings.Contains(l, "enrolment token this exporter sends was refused") {
		t.Errorf("the token is logged, or the refusal is not explained:\n%s", l)
	}

	r2 := newReceiver(t)
	p2 := newPusher(t, t.TempDir(), r2.url(), 10, nil, 2*time.Second)
	if err := p2.Enqueue(snap(t, 0)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p2.Flush(ctx)
	r2.mu.Lock()
	defer r2.mu.Unlock()
	if len(r2.tokens) != 1 || r2.tokens[0] != "" {
		t.Errorf("without a token: headers %q", r2.tokens)
	}
}
