package apptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"

	"github.com/procscope/procscope/internal/testutil"
)

// readmeSection returns the text under the first README.md heading that
// contains title, up to the next heading of the same or a higher level.
func readmeSection(t *testing.T, title string) string {
	t.Helper()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	level, start := 0, -1
	inFence := false
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(l, "#") {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, "#"))
		switch {
		case start < 0 && strings.Contains(l, title):
			level, start = n, i+1
		case start >= 0 && n <= level:
			return strings.Join(lines[start:i], "\n")
		}
	}
	if start < 0 {
		t.Fatalf("README.md has no heading with %q", title)
	}
	return strings.Join(lines[start:], "\n")
}

// fencedYAML returns the ```yaml blocks of text, each without the
// indentation of its fence (a block inside a list item is indented).
func fencedYAML(text string) []string {
	var blocks []string
	var cur []string
	indent, in := "", false
	for _, l := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(l)
		switch {
		case !in && (trimmed == "```yaml" || trimmed == "```yml"):
			in, indent, cur = true, l[:len(l)-len(strings.TrimLeft(l, " "))], nil
		case in && trimmed == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n")+"\n")
		case in:
			cur = append(cur, strings.TrimPrefix(l, indent))
		}
	}
	return blocks
}

// bcryptPlaceholder is how the README writes "put a hash here".
var bcryptPlaceholder = regexp.MustCompile(`\$2[aby]\$\d\d\$\.\.\.`)

// htpasswdCommand is the README's command that makes the hash, up to the
// end of its line, a closing backquote or a note in parentheses.
var htpasswdCommand = regexp.MustCompile("htpasswd [^`\n(]*")

// TestREADMEWebConfig: the basic-auth web.yml of the README's Security
// section works as written: with its placeholder replaced by a hash made
// the way the README says (its htpasswd command, when htpasswd is
// installed) and its certificate files generated, the aggregator starts
// with it and the read API asks for that user's password. The section
// names the package htpasswd comes from; the quick start documents make
// run's LISTEN=, which the Makefile honours.
func TestREADMEWebConfig(t *testing.T) {
	section := readmeSection(t, "Security")
	var block string
	for _, b := range fencedYAML(section) {
		if strings.Contains(b, "basic_auth_users") {
			block = b
		}
	}
	if block == "" {
		t.Fatalf("README's Security section has no ```yaml block with basic_auth_users:\n%s", section)
	}
	if !strings.Contains(section, "apache2-utils") {
		t.Errorf("README's Security section does not say htpasswd comes from Debian's apache2-utils")
	}
	const password = "s3cret-Pa55"
	hash := ""
	cmdText := strings.TrimSpace(htpasswdCommand.FindString(section))
	if cmdText == "" {
		t.Errorf("README's Security section gives no htpasswd command for the hash")
	}
	if _, err := exec.LookPath("htpasswd"); err == nil && cmdText != "" {
		// htpasswd asks twice; with a pipe it reads stdin.
		cmd := exec.Command("sh", "-c", cmdText)
		cmd.Stdin = strings.NewReader(password + "\n" + password + "\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", cmdText, err)
		}
		hash = string(out)
		if !strings.HasPrefix(hash, "$2") || strings.ContainsAny(hash, ": \n") {
			t.Fatalf("the README's %q printed %q, not a bare bcrypt hash", cmdText, hash)
		}
	} else {
		t.Logf("htpasswd not installed (apt-get install apache2-utils): hashing with Go's bcrypt instead of %q", cmdText)
		h, err := bcrypt.GenerateFromPassword([]byte(password), 10)
		if err != nil {
			t.Fatal(err)
		}
		hash = string(h)
	}
	if !bcryptPlaceholder.MatchString(block) {
		t.Fatalf("README's web.yml has no $2y$10$... placeholder to fill:\n%s", block)
	}
	webYML := bcryptPlaceholder.ReplaceAllLiteralString(block, hash)

	var cfg struct {
		TLS struct {
			Cert string `yaml:"cert_file"`
			Key  string `yaml:"key_file"`
		} `yaml:"tls_server_config"`
		Users map[string]string `yaml:"basic_auth_users"`
	}
	if err := yaml.Unmarshal([]byte(webYML), &cfg); err != nil {
		t.Fatalf("README's web.yml does not parse: %v\n%s", err, webYML)
	}
	if len(cfg.Users) != 1 {
		t.Fatalf("README's web.yml: want one user, got %v", cfg.Users)
	}
	var user string
	for u := range cfg.Users {
		user = u
	}
	dir := t.TempDir()
	var pool *x509.CertPool
	if cfg.TLS.Cert != "" {
		// Relative to web.yml, as the README says.
		pool = writeCert(t, filepath.Join(dir, cfg.TLS.Cert), filepath.Join(dir, cfg.TLS.Key))
	}
	path := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(path, []byte(webYML), 0o600); err != nil {
		t.Fatal(err)
	}

	bin := binary(t)
	storage := filepath.Join(dir, "data")
	var p *Process
	var err error
	client := &http.Client{Timeout: 10 * time.Second}
	if pool != nil {
		p, err = startTLS(t, bin, storage, pool, "--web.config.file="+path)
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	} else {
		p, err = Start(bin, storage, 2*time.Minute, "--web.config.file="+path)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(30 * time.Second)
	url := p.URL
	if pool != nil {
		url = strings.Replace(url, "http://", "https://", 1)
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
	if c := get("", ""); c != http.StatusUnauthorized {
		t.Errorf("read API without credentials: %d, want 401", c)
	}
	if c := get(user, "wrong"); c != http.StatusUnauthorized {
		t.Errorf("read API with a wrong password: %d, want 401", c)
	}
	if c := get(user, password); c != http.StatusOK {
		t.Errorf("read API as %s with the README's web.yml: %d, want 200", user, c)
	}

	// make run's LISTEN=: documented in the quick start, and what the
	// Makefile hands the aggregator.
	if quick := readmeSection(t, "Quick start"); !strings.Contains(quick, "LISTEN=") {
		t.Errorf("README's quick start does not document make run's LISTEN=")
	}
	root, _ := testutil.ModuleRoot()
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^LISTEN\s*\?=`).Match(mk) || !strings.Contains(string(mk), "procscope-aggregator --web.listen-address=$(LISTEN)") {
		t.Errorf("the Makefile no longer takes LISTEN for the aggregator's --web.listen-address")
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key,
// and returns a pool that trusts it.
func writeCert(t *testing.T, certPath, keyPath string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "procscope"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string][]byte{
		certPath: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPath:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
