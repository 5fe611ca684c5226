package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"

	"github.com/procscope/procscope/aggregator/internal/history"
	"github.com/procscope/procscope/internal/cli"
)

// historyURLFlags read history from an external Prometheus-compatible
// TSDB instead of the embedded store (issue 14).
type historyURLFlags struct {
	url            *string
	basicAuthFile  *string
	bearerFile     *string
	timeout        *time.Duration
	maxAnswerBytes *units.Base2Bytes
}

func addHistoryURLFlags(app *kingpin.Application) *historyURLFlags {
	return &historyURLFlags{
		url: app.Flag("history.url", "Read history (the History tab, the series routes) from this Prometheus-compatible query API instead of the embedded store, which is then not opened: "+
			"the base of /api/v1/query_range, e.g. http://victoria-metrics:8428, http://vmselect:8481/select/0/prometheus, http://prometheus:9090, http://mimir:8080/prometheus. "+
			"Series get there by --remote-write.url.").Default("").String(),
		basicAuthFile: app.Flag("history.basic-auth-file", "File holding user:password for --history.url (basic auth).").
			PlaceHolder("FILE").Default("").String(),
		bearerFile: app.Flag("history.bearer-token-file", "File holding a bearer token for --history.url.").
			PlaceHolder("FILE").Default("").String(),
		timeout: cli.Duration(app.Flag("history.timeout", "Timeout of one request to --history.url.").
			Default(history.DefaultRemoteTimeout.String())),
		maxAnswerBytes: cli.Bytes(app.Flag("history.max-answer-bytes", "Largest answer read from --history.url; a larger one is refused as too many points (400).").
			Default("64MiB")),
	}
}

// check validates the combinations; the files are read by reader.
func (f *historyURLFlags) check(historyOn bool) error {
	switch {
	case *f.url == "" && (*f.basicAuthFile != "" || *f.bearerFile != ""):
		return errors.New("--history.basic-auth-file and --history.bearer-token-file need --history.url")
	case *f.url != "" && !historyOn:
		return errors.New("--history.url needs history (drop --no-history)")
	case *f.basicAuthFile != "" && *f.bearerFile != "":
		return errors.New("--history.basic-auth-file and --history.bearer-token-file: keep one")
	case *f.timeout <= 0:
		return fmt.Errorf("--history.timeout=%s: must be positive", *f.timeout)
	case *f.maxAnswerBytes <= 0:
		return fmt.Errorf("--history.max-answer-bytes=%s: must be positive", *f.maxAnswerBytes)
	}
	// The URL and the files, now: a mistake is a usage error found before
	// storage is touched. Nothing is contacted.
	_, err := f.reader(slog.New(slog.DiscardHandler))
	return err
}

// reader builds the remote reader, nil without --history.url. The
// credentials are read from their files and never logged.
func (f *historyURLFlags) reader(logger *slog.Logger) (*history.RemoteReader, error) {
	if *f.url == "" {
		return nil, nil
	}
	o := history.RemoteOptions{URL: *f.url, Timeout: *f.timeout, MaxResponseBytes: int64(*f.maxAnswerBytes), Logger: logger}
	if *f.basicAuthFile != "" {
		s, err := readSecretFile("--history.basic-auth-file", *f.basicAuthFile)
		if err != nil {
			return nil, err
		}
		user, pass, ok := strings.Cut(s, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("--history.basic-auth-file=%s: want one line user:password", *f.basicAuthFile)
		}
		o.BasicAuthUser, o.BasicAuthPassword = user, pass
	}
	if *f.bearerFile != "" {
		s, err := readSecretFile("--history.bearer-token-file", *f.bearerFile)
		if err != nil {
			return nil, err
		}
		o.BearerToken = s
	}
	rr, err := history.NewRemoteReader(o)
	if err != nil {
		return nil, fmt.Errorf("--history.url=%s: %w", redactURL(*f.url), err)
	}
	return rr, nil
}

// redactURL hides a password in a URL given by mistake.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// readSecretFile reads a small secret file, without its trailing newline.
// The error names the file, never its content.
func readSecretFile(flag, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	if len(b) > 64<<10 {
		return "", fmt.Errorf("%s=%s: larger than 64 KiB", flag, path)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" || strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("%s=%s: want one non-empty line", flag, path)
	}
	return s, nil
}

// openHistory opens the embedded history store under dir, or, with
// --history.url, a history without it that only forwards by remote write,
// and points the series routes at the remote API.
func openHistory(f *historyURLFlags, dir string, hd *history.Handler, opts history.Options, logger *slog.Logger) (*history.History, error) {
	rr, err := f.reader(logger)
	if err != nil {
		return nil, err
	}
	if rr == nil {
		h, err := history.Open(dir, opts)
		if err != nil {
			return nil, err
		}
		hd.SetHistory(h)
		return h, nil
	}
	if opts.RemoteWriteURL == "" {
		logger.Warn("--history.url without --remote-write.url: this aggregator writes no history; something else must fill " + rr.URL())
	}
	h, err := history.OpenRemoteOnly(opts)
	if err != nil {
		return nil, err
	}
	hd.SetReader(rr)
	hd.SetHistory(h)
	auth := "none"
	switch {
	case *f.basicAuthFile != "":
		auth = "basic"
	case *f.bearerFile != "":
		auth = "bearer"
	}
	logger.Info("history is read from an external TSDB; the embedded store is not opened", "url", rr.URL(), "auth", auth)
	return h, nil
}
