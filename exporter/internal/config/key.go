package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFileName is the generated key's file under --state.dir.
const KeyFileName = "api-key"

// KeySource says where the API key (or the enrolment token) came from, for
// the startup log line (which never shows the secret itself).
type KeySource string

// Where a key can come from, in order of precedence.
const (
	KeyFromFile      KeySource = "file"
	KeyFromEnv       KeySource = "environment or config file"
	KeyFromState     KeySource = "state dir"
	KeyFromGenerated KeySource = "generated"
)

// ResolveKey returns the API key to push with: the configured one (key
// file, environment or config file api_key), else the one stored under the
// state dir, else a new random key stored there with mode 0600. A host's
// first ingest binds its hostname to whatever key it sends, so a stable
// generated key is enough to get going with zero setup.
func (c *Config) ResolveKey() (string, KeySource, error) {
	if c.APIKeyFile != "" {
		k, err := ReadKeyFile(c.APIKeyFile)
		if err != nil {
			return "", "", err
		}
		return k, KeyFromFile, nil
	}
	if c.APIKey != "" {
		return c.APIKey, KeyFromEnv, nil
	}
	return LoadOrCreateKey(c.StateDir)
}

// ReadKeyFile reads a key file: one line, surrounding whitespace ignored.
func ReadKeyFile(path string) (string, error) { return readSecretFile(path, "api key file") }

// ResolveEnrollmentToken returns the enrolment token to send with every
// push, from --push.enrollment-token-file, PROCSCOPE_ENROLLMENT_TOKEN or
// the config file; "" and "" when none is configured, which is fine for
// an aggregator whose enrolment is open or a host it already knows.
func (c *Config) ResolveEnrollmentToken() (string, KeySource, error) {
	if c.EnrollmentTokenFile != "" {
		t, err := readSecretFile(c.EnrollmentTokenFile, "enrollment token file")
		if err != nil {
			return "", "", err
		}
		return t, KeyFromFile, nil
	}
	if c.EnrollmentToken != "" {
		return c.EnrollmentToken, KeyFromEnv, nil
	}
	return "", "", nil
}

// readSecretFile reads a one-line secret; surrounding whitespace (the
// trailing newline of `echo token > file`) is ignored. Errors name what
// was read and never contain the secret.
func readSecretFile(path, what string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	defer func() { _ = fh.Close() }()
	data, err := io.ReadAll(io.LimitReader(fh, MaxKeyLen+64))
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", what, path, err)
	}
	k := strings.TrimSpace(string(data))
	if err := ValidateKey(k); err != nil {
		return "", fmt.Errorf("%s %s: %w", what, path, err)
	}
	return k, nil
}

// LoadOrCreateKey reads stateDir/api-key, creating it with a fresh random
// key (32 bytes from crypto/rand, hex) when it does not exist. The file is
// created with O_EXCL and mode 0600 so a concurrent start cannot interleave
// two keys and no other user can read it.
func LoadOrCreateKey(stateDir string) (string, KeySource, error) {
	path := filepath.Join(stateDir, KeyFileName)
	k, err := ReadKeyFile(path)
	if err == nil {
		return k, KeyFromState, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", "", err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", "", fmt.Errorf("state dir: %w", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("generate api key: %w", err)
	}
	k = hex.EncodeToString(b[:])
	tmp, err := os.CreateTemp(stateDir, ".api-key-*")
	if err != nil {
		return "", "", fmt.Errorf("write api key: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	// CreateTemp already uses 0600; Chmod makes it explicit against odd umasks.
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return "", "", fmt.Errorf("write api key: %w", err)
	}
	if _, err := tmp.WriteString(k + "\n"); err != nil {
		_ = tmp.Close()
		return "", "", fmt.Errorf("write api key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return "", "", fmt.Errorf("write api key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", "", fmt.Errorf("write api key: %w", err)
	}
	// Link fails if another process created the key first; then its key wins.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			k2, err := ReadKeyFile(path)
			return k2, KeyFromState, err
		}
		return "", "", fmt.Errorf("write api key: %w", err)
	}
	syncDir(stateDir)
	return k, KeyFromGenerated, nil
}

// syncDir makes a new directory entry durable; best effort because not
// every OS or filesystem supports fsync on a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
