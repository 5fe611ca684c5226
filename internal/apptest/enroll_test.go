package apptest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/procscope/procscope/tools/loadgen/gen"
)

// TestEnrollmentWithTheBinary: the real server with closed enrolment says
// so at startup, refuses a new host with a 403 naming `hosts add`, accepts
// the key `hosts add` printed while it runs, and after `hosts delete` (also
// while it runs) deletes the host's history series itself: a machine
// enrolled again under the name starts with an empty history.
func TestEnrollmentWithTheBinary(t *testing.T) {
	bin := binary(t)
	storage := t.TempDir()
	p := serve(t, bin, storage, "--hosts.enrollment=closed")
	if !strings.Contains(p.Log(), "host enrollment is closed (set by --hosts.enrollment)") {
		t.Fatalf("no startup line about enrollment:\n%s", p.Log())
	}
	client := &http.Client{Timeout: 10 * time.Second}
	t1 := time.Now().Add(-2 * time.Minute).UTC().Truncate(time.Second)
	body := func(at time.Time) []byte { return gen.Body(3, "web-1", at.Format(time.RFC3339), false) }

	req, _ := http.NewRequest(http.MethodPost, p.URL+"/api/v1/ingest", strings.NewReader(string(body(t1))))
	req.Header.Set("X-API-KEY", "key-web-1")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error string `json:"error"`
	}
	derr := json.NewDecoder(res.Body).Decode(&e)
	_ = res.Body.Close()
	if derr != nil {
		t.Fatalf("new host, closed enrolment: the refusal is not JSON: %v", derr)
	}
	if res.StatusCode != http.StatusForbidden || !strings.Contains(e.Error, "procscope-aggregator hosts add web-1") {
		t.Fatalf("new host, closed enrolment: %d %q", res.StatusCode, e.Error)
	}

	admin := func(args ...string) (int, string, string) {
		t.Helper()
		return runBin(t, bin, append(args, "--storage.path="+storage)...)
	}
	code, out, errOut := admin("hosts", "add", "web-1")
	m := regexp.MustCompile(`(?m)^[0-9a-f]{64}$`).FindString(out)
	if code != 0 || m == "" {
		t.Fatalf("hosts add: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, err := post(client, p.URL, m, body(t1)); err != nil || code != http.StatusCreated {
		t.Fatalf("ingest with the key hosts add printed: %d %v", code, err)
	}
	points := func() int {
		t.Helper()
		q := url.Values{"metric": {"cpu"}, "from": {t1.Add(-time.Minute).Format(time.RFC3339)}, "to": {time.Now().Add(time.Minute).UTC().Format(time.RFC3339)}}
		var r struct {
			Series []struct {
				Values [][2]float64 `json:"values"`
			} `json:"series"`
		}
		if code := getJSON(t, client, p.URL+"/api/v1/hosts/web-1/series?"+q.Encode(), &r); code != http.StatusOK {
			t.Fatalf("series: %d", code)
		}
		n := 0
		for _, s := range r.Series {
			n += len(s.Values)
		}
		return n
	}
	waitUntil(t, "the first sample is searchable", func() bool { return points() == 1 })

	code, out, errOut = admin("hosts", "delete", "web-1")
	if code != 0 || !strings.Contains(out, "deleted by the running server") {
		t.Fatalf("hosts delete while serving: exit %d\n%s%s", code, out, errOut)
	}
	waitUntil(t, "the server deletes the history", func() bool {
		return strings.Contains(p.Log(), "deleted the history of a deleted host")
	})
	code, out, _ = admin("hosts", "add", "web-1")
	m = regexp.MustCompile(`(?m)^[0-9a-f]{64}$`).FindString(out)
	if code != 0 || m == "" {
		t.Fatalf("hosts add again: exit %d", code)
	}
	t2 := t1.Add(time.Minute)
	if code, _, err := post(client, p.URL, m, body(t2)); err != nil || code != http.StatusCreated {
		t.Fatalf("ingest after re-adding: %d %v", code, err)
	}
	// Only the new sample: the one from before the delete is gone.
	waitUntil(t, "the new sample is searchable", func() bool { return points() >= 1 })
	if n := points(); n != 1 {
		t.Fatalf("%d samples after delete and re-add, want only the new one", n)
	}
}

// waitUntil polls cond for up to 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runBin runs the binary to its end (an admin command).
func runBin(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}
