package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/alecthomas/kingpin/v2"

	"github.com/procscope/procscope/aggregator/internal/api"
	"github.com/procscope/procscope/internal/cli"
)

// enrollFlags are the server's host enrolment settings (api/enroll.go).
type enrollFlags struct {
	mode      *string
	tokenFile *string
	maxHosts  *int
	rate      *int
}

// minKeyLen is the shortest key a host may bind: 8, so that the original
// agent's default key TESTKEY123 keeps working, while one-letter keys that
// anyone can guess do not.
const minKeyLen = 8

// minTokenLen: the enrolment token is the one secret that lets a stranger
// create hosts; a short one could be guessed.
const minTokenLen = 16

func addEnrollFlags(app *kingpin.Application) *enrollFlags {
	return &enrollFlags{
		mode: cli.Enum(app.Flag("hosts.enrollment", "Who may create a host: open (the first key seen for a hostname binds it), token (a new hostname needs the token of --hosts.enrollment-token-file), closed (only `hosts add` creates hosts). Default: open when every listen address is loopback, else closed; token when only --hosts.enrollment-token-file is given.").
			PlaceHolder("MODE"), string(api.EnrollOpen), string(api.EnrollToken), string(api.EnrollClosed)),
		tokenFile: app.Flag("hosts.enrollment-token-file", "File holding the enrollment token new hosts must send (X-Enrollment-Token) in token mode; at least 16 characters, surrounding white space ignored.").
			PlaceHolder("FILE").Default("").String(),
		maxHosts: cli.Int(app.Flag("hosts.max", "Most hosts the aggregator keeps; a new hostname beyond it gets 403 (0: no limit). `hosts add` is not bound by it.").
			Default("10000")),
		rate: cli.Int(app.Flag("hosts.enroll-rate", "Most new hostnames per minute per client address (IPv6: per /64), in every enrollment mode; more get 429 (0: no limit).").
			Default("60")),
	}
}

// enrollment turns the flags into the API's settings, and the one startup
// line that says which mode applies, why, and which flag changes it.
func (f *enrollFlags) enrollment(listen []string, systemdSocket bool) (api.Enrollment, string, slog.Level, error) {
	cfg := api.Enrollment{MaxHosts: *f.maxHosts, RatePerMinute: *f.rate, MinKeyLen: minKeyLen}
	if *f.maxHosts < 0 {
		return cfg, "", 0, usageError{fmt.Errorf("--hosts.max=%d: must not be negative (0: no limit)", *f.maxHosts)}
	}
	if *f.rate < 0 {
		return cfg, "", 0, usageError{fmt.Errorf("--hosts.enroll-rate=%d: must not be negative (0: no limit)", *f.rate)}
	}
	mode := api.EnrollMode(*f.mode)
	var why string
	switch {
	case mode != "":
		why = "set by --hosts.enrollment"
	case *f.tokenFile != "":
		mode, why = api.EnrollToken, "--hosts.enrollment-token-file is given"
	default:
		var loopback bool
		loopback, why = allLoopback(listen, systemdSocket)
		mode = api.EnrollClosed
		if loopback {
			mode = api.EnrollOpen
		}
	}
	cfg.Mode = mode
	level := slog.LevelInfo
	var msg string
	switch mode {
	case api.EnrollToken:
		if *f.tokenFile == "" {
			return cfg, "", 0, usageError{errors.New("--hosts.enrollment=token needs --hosts.enrollment-token-file (create one with: head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > FILE; chmod 600 FILE)")}
		}
		tok, err := readToken(*f.tokenFile)
		if err != nil { // a missing or bad file is the config's to fix, as in the exporter
			return cfg, "", 0, usageError{err}
		}
		cfg.Token = tok
		msg = fmt.Sprintf("host enrollment is token (%s): a new host needs the token of %s (exporters: --push.enrollment-token-file), known hosts only their key; --hosts.enrollment=open|closed changes it",
			why, *f.tokenFile)
	case api.EnrollOpen:
		msg = fmt.Sprintf("host enrollment is open (%s): the first key seen for a new hostname binds it; --hosts.enrollment=token|closed changes it", why)
		if *f.mode != "" {
			if lo, _ := allLoopback(listen, systemdSocket); !lo {
				level = slog.LevelWarn
				msg = fmt.Sprintf("host enrollment is open (%s) on a non-loopback listener: anyone who reaches it can create hosts and claim hostnames before their exporters do; --hosts.enrollment=token|closed changes it", why)
			}
		}
	case api.EnrollClosed:
		if *f.mode == "" {
			// Like Redis' protected mode: exporters elsewhere get 403
			// until someone chooses, so say it loudly.
			level = slog.LevelWarn
		}
		msg = fmt.Sprintf("host enrollment is closed (%s): new hostnames get 403 until created with `procscope-aggregator hosts add NAME`; --hosts.enrollment=token (with --hosts.enrollment-token-file) or --hosts.enrollment=open changes it", why)
	}
	if mode != api.EnrollToken && *f.tokenFile != "" {
		msg += fmt.Sprintf(" (--hosts.enrollment-token-file is not used in %s mode)", mode)
	}
	return cfg, msg, level, nil
}

// allLoopback reports whether every listen address is a loopback one, and
// says why in words for the startup line.
func allLoopback(listen []string, systemdSocket bool) (bool, string) {
	if systemdSocket {
		return false, "listening on systemd sockets, which may be reachable from anywhere"
	}
	if len(listen) == 0 {
		return false, "no listen address"
	}
	for _, l := range listen {
		if !isLoopback(l) {
			return false, fmt.Sprintf("listen address %s is not loopback-only", l)
		}
	}
	return true, "every listen address is loopback: " + strings.Join(listen, ", ")
}

// isLoopback: 127.0.0.0/8, ::1 or localhost with a port. An empty host
// (":8000") is every interface; other names may resolve to anything.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false // vsock://, or not host:port
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// usageError is a bad combination of flags (exit code 2), not a failure.
type usageError struct{ error }

// readToken reads the enrolment token from path.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--hosts.enrollment-token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	for _, c := range []byte(tok) {
		if c <= ' ' || c > '~' {
			return "", fmt.Errorf("--hosts.enrollment-token-file %s: the token must be printable ASCII without spaces (it travels in an HTTP header)", path)
		}
	}
	if len(tok) < minTokenLen {
		return "", fmt.Errorf("--hosts.enrollment-token-file %s: the token has %d characters, at least %d are needed (generate one: head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > %s)",
			path, len(tok), minTokenLen, path)
	}
	return tok, nil
}
