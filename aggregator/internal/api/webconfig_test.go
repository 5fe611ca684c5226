package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
	"golang.org/x/crypto/bcrypt"
)

// writeCert writes a self-signed certificate for 127.0.0.1 into dir.
func writeCert(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "procscope test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

func bcryptHash(t *testing.T, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestLoadWebConfigSplit: the toolkit's copy keeps TLS (paths made
// absolute) and loses users and rate_limit; bad files are refused.
func TestLoadWebConfigSplit(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir)
	cfg := filepath.Join(dir, "web.yml")
	os.WriteFile(cfg, []byte("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"+
		"basic_auth_users:\n  admin: "+bcryptHash(t, "s3cret")+"\n"+
		"rate_limit:\n  burst: 5\n  interval: 1s\n"), 0o600)
	wc, err := LoadWebConfig(cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !wc.AuthEnabled() || wc.ToolkitFile == "" {
		t.Fatalf("auth %v, toolkit file %q", wc.AuthEnabled(), wc.ToolkitFile)
	}
	raw, _ := os.ReadFile(wc.ToolkitFile)
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc["basic_auth_users"]; ok {
		t.Error("the toolkit's copy still has basic_auth_users: ingest would need basic auth")
	}
	if _, ok := doc["rate_limit"]; ok {
		t.Error("the toolkit's copy still has rate_limit")
	}
	if !strings.Contains(string(raw), filepath.Join(dir, "cert.pem")) {
		t.Errorf("relative cert path not made absolute:\n%s", raw)
	}
	if err := web.Validate(wc.ToolkitFile); err != nil {
		t.Errorf("toolkit copy invalid: %v", err)
	}

	// Only users: nothing left for the toolkit, no copy.
	usersOnly := filepath.Join(dir, "users.yml")
	os.WriteFile(usersOnly, []byte("basic_auth_users:\n  admin: "+bcryptHash(t, "x")+"\n"), 0o600)
	wc2, err := LoadWebConfig(usersOnly, t.TempDir())
	if err != nil || wc2.ToolkitFile != "" || !wc2.AuthEnabled() {
		t.Errorf("users-only config: %+v %v", wc2, err)
	}

	f := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		if _, err := LoadWebConfig(p, t.TempDir()); err == nil {
			t.Errorf("%s: accepted an invalid web config", name)
		}
	}
	f("plain-password.yml", "basic_auth_users:\n  admin: not-a-bcrypt-hash\n")
	f("unknown-key.yml", "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  bogus: 1\n")
	f("missing-cert.yml", "tls_server_config:\n  cert_file: nope.pem\n  key_file: key.pem\n")
	if _, err := LoadWebConfig(filepath.Join(dir, "absent.yml"), t.TempDir()); err == nil {
		t.Error("accepted a missing file")
	}
}

// TestBasicAuthExemptsIngest: with users configured the UI, the read API
// and /metrics need credentials; ingest (host keys) and health do not.
func TestBasicAuthExemptsIngest(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "web.yml")
	os.WriteFile(cfg, []byte("basic_auth_users:\n  admin: "+bcryptHash(t, "s3cret")+"\n"), 0o600)
	wc, err := LoadWebConfig(cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ui")) })
	e := newEnv(t, func(o *Options) { o.Auth = wc.BasicAuth(); o.UI = ui })

	mustStatus(t, e.ingest("k", snap("h", "2026-11-25T17:00:00Z", proc1)), http.StatusCreated)
	mustStatus(t, e.get("/-/healthy"), 200)
	mustStatus(t, e.get("/-/ready"), 200)
	for _, p := range []string{"/api/v1/hosts", "/api/v1/hosts/", "/api/v1/snapshots/latest?hostname=h", "/api/v1/snapshots/1/processes",
		"/api/v1/stream?hostname=h", "/metrics", "/", "/index.html", "/api/v1/nope"} {
		r := e.get(p)
		if r.code != http.StatusUnauthorized || !strings.HasPrefix(r.hdr.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("GET %s without credentials: %d %q", p, r.code, r.hdr.Get("WWW-Authenticate"))
			continue
		}
		mustJSONError(t, r)
	}
	auth := func(user, pw string) int {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/api/v1/hosts", nil)
		req.SetBasicAuth(user, pw)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if c := auth("admin", "s3cret"); c != 200 {
		t.Errorf("right credentials: %d", c)
	}
	if c := auth("admin", "s3cret"); c != 200 { // cached result
		t.Errorf("right credentials again: %d", c)
	}
	if c := auth("admin", "wrong"); c != 401 {
		t.Errorf("wrong password: %d", c)
	}
	if c := auth("nobody", "s3cret"); c != 401 {
		t.Errorf("unknown user: %d", c)
	}
}

func TestRateLimit(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "web.yml")
	os.WriteFile(cfg, []byte("rate_limit:\n  burst: 2\n  interval: 1m\n"), 0o600)
	wc, err := LoadWebConfig(cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nil)
	h := wc.RateLimit(e.a)
	codes := []int{}
	for range 3 {
		rec := newRecorder()
		h.ServeHTTP(rec, mustRequest(t, "/api/v1/hosts"))
		codes = append(codes, rec.Code)
		if rec.Code == 429 && rec.Header().Get("Retry-After") != "60" {
			t.Errorf("429 without Retry-After: %v", rec.Header())
		}
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Fatalf("codes %v, want 200 200 429", codes)
	}
	rec := newRecorder()
	h.ServeHTTP(rec, mustRequest(t, "/-/healthy"))
	if rec.Code != 200 {
		t.Errorf("health must not be rate limited: %d", rec.Code)
	}
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func mustRequest(t *testing.T, path string) *http.Request {
	t.Helper()
	return httptest.NewRequest(http.MethodGet, path, nil)
}
