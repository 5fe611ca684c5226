package apptest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/procscope/procscope/tools/loadgen/gen"
)

// TestTLSAndBasicAuth: with a web config holding TLS (relative paths) and
// basic auth users, the binary serves HTTPS only, the read API needs the
// password, and ingest needs only the host key.
func TestTLSAndBasicAuth(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	pool := writeCert(t, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	cfg := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(cfg, []byte("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  admin: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	p, err := startTLS(t, bin, filepath.Join(dir, "data"), pool, "--web.config.file="+cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(30 * time.Second)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := strings.Replace(p.URL, "http://", "https://", 1)

	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/ingest/", bytes.NewReader(gen.Body(5, "tls-host", "2026-11-25T17:00:00Z", false)))
	req.Header.Set("X-API-KEY", "key-tls-host") // a new host's key has at least 8 characters
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("ingest over TLS with a host key only: %d", res.StatusCode)
	}
	get := func(user, pw string) int {
		req, _ := http.NewRequest(http.MethodGet, url+"/api/v1/hosts", nil)
		if user != "" {
			req.SetBasicAuth(user, pw)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		return res.StatusCode
	}
	if c := get("", ""); c != 401 {
		t.Errorf("read API without credentials: %d", c)
	}
	if c := get("admin", "s3cret"); c != 200 {
		t.Errorf("read API with credentials: %d", c)
	}
	if res, err := http.Get(p.URL + "/-/healthy"); err == nil {
		_ = res.Body.Close()
		if res.StatusCode < 400 {
			t.Errorf("plain HTTP answered %d on the TLS port", res.StatusCode)
		}
	}
}

// startTLS is Start for a server whose readiness is probed over HTTPS
// (trusting only pool).
func startTLS(t *testing.T, bin, storage string, pool *x509.CertPool, extra ...string) (*Process, error) {
	t.Helper()
	return startWithProbe(bin, storage, 2*time.Minute, func(url string) bool {
		c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		res, err := c.Get(strings.Replace(url, "http://", "https://", 1) + "/-/ready")
		if err != nil {
			return false
		}
		_ = res.Body.Close()
		return res.StatusCode == 200
	}, extra...)
}
