// Package config turns the exporter's command line, environment and optional
// YAML file into one validated Config.
//
// Precedence is flag > environment > file > default. Every flag has an
// environment variable, PROCSCOPE_ and its name in upper case with
// underscores (--push.url is PROCSCOPE_PUSH_URL, see EnvName), which kingpin
// applies when the flag is not on the command line. Flags that were set
// explicitly on the command line are detected with kingpin's IsSetByUser,
// and variables that are set (non-empty) with HasEnvarValue, so a file value
// is never overridden by a flag's mere default but always by either. The file also
// accepts the keys of the original Python agent's DEFAULT_CONFIG
// (backend_url, api_key, interval_sec, ...), so an old agent config can be
// pointed at this exporter unchanged.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/procscope/procscope/internal/cli"
)

// Defaults shared by the flags, the docs and the tests.
const (
	DefaultListenAddress = ":9717"
	DefaultPushURL       = "http://127.0.0.1:8000/api/v1/ingest"
	DefaultInterval      = 2 * time.Second
	DefaultSampleWindow  = 200 * time.Millisecond
	DefaultMetricsTopN   = 10
	DefaultStateDir      = "data/exporter"
	DefaultQueueMaxAge   = 10 * time.Minute
	DefaultFlushTimeout  = 5 * time.Second
	DefaultPushTimeout   = 10 * time.Second
	DefaultMaxUnits      = 200

	// APIKeyEnv is the environment variable holding the host's API key.
	// Secrets come from files or the environment, never from a flag value
	// that every user can read in the process list.
	APIKeyEnv = "PROCSCOPE_API_KEY"
	// EnrollmentTokenEnv holds the enrolment token itself, which an
	// aggregator in token mode wants with a new host's first push.
	EnrollmentTokenEnv = "PROCSCOPE_ENROLLMENT_TOKEN"

	// MaxMetricsTopN bounds the per-process series of /metrics: two series
	// families of at most this many series each.
	MaxMetricsTopN = 1000
	// MinInterval keeps a mistyped "--push.interval=1ms" from turning the
	// exporter into a busy loop over /proc.
	MinInterval = 10 * time.Millisecond
)

// ProcessGroup is a named regular expression over process names; /metrics
// reports count, CPU and memory per group.
type ProcessGroup struct {
	Name    string
	Pattern string
	Regexp  *regexp.Regexp
}

// Config is everything the exporter needs to run.
type Config struct {
	Web           *web.FlagConfig
	TelemetryPath string

	// PushURLs are the aggregator ingest URLs in order of preference (the
	// sender fails over to the next on a network error, timeout or 5xx);
	// none disables pushing. PushURL is the first, "" when none.
	PushURLs         []string
	PushURL          string
	PushInterval     time.Duration
	PushTimeout      time.Duration
	PushFlushTimeout time.Duration
	// PushQueueMaxAge bounds the on-disk queue to this much time's worth of
	// snapshots (PushQueueMaxAge / PushInterval files) unless PushQueueSize
	// is set.
	PushQueueMaxAge time.Duration
	PushQueueSize   int

	// APIKeyFile, APIKey: where the key came from. Both may be empty, in
	// which case the key is generated under StateDir (see LoadOrCreateKey).
	APIKeyFile string
	APIKey     string
	// EnrollmentTokenFile, EnrollmentToken: the same for the enrolment
	// token, which is optional (see ResolveEnrollmentToken).
	EnrollmentTokenFile string
	EnrollmentToken     string

	StateDir   string
	ConfigFile string

	ProcRoot            string
	SysRoot             string
	RootFS              string
	CollectCmdline      bool
	CollectTopN         int
	CollectSampleWindow time.Duration

	MetricsTopN   int
	ProcessGroups []ProcessGroup

	// CollectCgroup and CollectProcessIO turn attribution (unit,
	// container, pod) and per-process disk I/O on; MetricsMaxUnits bounds
	// /metrics' per-unit series (the rest are summed as unit="other").
	CollectCgroup    bool
	CollectProcessIO bool
	MetricsMaxUnits  int

	Log *promslog.Config
}

// QueueSize is the number of snapshots the push queue keeps at most.
func (c *Config) QueueSize() int {
	if c.PushQueueSize > 0 {
		return c.PushQueueSize
	}
	n := int((c.PushQueueMaxAge + c.PushInterval - 1) / c.PushInterval)
	return max(n, 1)
}

// EnvPrefix starts the name of every flag's environment variable.
const EnvPrefix = cli.EnvPrefix

// EnvName is the environment variable of a flag: "push.url" gives
// PROCSCOPE_PUSH_URL, "push.api-key-file" PROCSCOPE_PUSH_API_KEY_FILE.
func EnvName(flag string) string { return cli.EnvName(flag) }

// setFlags records which flags the user set, on the command line or in the
// environment, so that the file only fills in the rest.
type setFlags struct {
	pushURL, pushInterval, apiKeyFile, stateDir         bool
	cmdline, topN, sampleWindow, metricsTopN, groups    bool
	telemetryPath, pushTimeout, flushTimeout, queueSize bool
	queueMaxAge, procRoot, sysRoot, rootFS              bool
	tokenFile                                           bool
}

// Parse parses the command line (without the program name), the flags'
// environment variables, the key in PROCSCOPE_API_KEY and the --config.file
// if given, and validates the result. The key is read through getenv; the
// flags' variables are read by kingpin, from the process environment (main
// passes os.Getenv, so both are the same environment). Any error is meant
// for the user as is; main exits 2 on it.
// --help and --version print and exit through kingpin as usual.
func Parse(args []string, getenv func(string) string) (*Config, error) {
	c := &Config{Log: &promslog.Config{}}
	var set setFlags
	var groupSpecs []string

	app := kingpin.New("procscope-exporter",
		"Collects system details and the whole process table once per interval, pushes a snapshot "+
			"to the procscope aggregator and serves Prometheus metrics.")
	app.Version(version.Print("procscope-exporter"))
	app.HelpFlag.Short('h')

	c.Web = kingpinflag.AddFlags(app, DefaultListenAddress)
	app.Flag("web.telemetry-path", "Path under which to expose metrics.").
		Default("/metrics").IsSetByUser(&set.telemetryPath).StringVar(&c.TelemetryPath)
	app.Flag("push.url", `Aggregator ingest URL; "" disables pushing. Repeatable: snapshots go to the first URL `+
		`and fail over to the next on a network error, timeout or 5xx (the first is tried again every minute).`).
		Default(DefaultPushURL).IsSetByUser(&set.pushURL).StringsVar(&c.PushURLs)
	durationFlag(app, "push.interval", "Time between two walks (one walk feeds both the push and /metrics).", DefaultInterval.String(), &c.PushInterval, &set.pushInterval)
	app.Flag("push.api-key-file", "File holding this host's API key (else env "+APIKeyEnv+
		", else the config file, else a key generated under --state.dir).").
		PlaceHolder("FILE").IsSetByUser(&set.apiKeyFile).StringVar(&c.APIKeyFile)
	app.Flag("push.enrollment-token-file", "File holding the aggregator's enrolment token, sent with every push "+
		"so that an aggregator in --hosts.enrollment=token mode accepts this host the first time (else env "+
		EnrollmentTokenEnv+", else the config file, else none).").
		PlaceHolder("FILE").IsSetByUser(&set.tokenFile).StringVar(&c.EnrollmentTokenFile)
	durationFlag(app, "push.timeout", "Timeout of one push request.", DefaultPushTimeout.String(), &c.PushTimeout, &set.pushTimeout)
	durationFlag(app, "push.flush-timeout", "On SIGTERM, time allowed to send what is queued before exiting.", DefaultFlushTimeout.String(), &c.PushFlushTimeout, &set.flushTimeout)
	durationFlag(app, "push.queue.max-age", "The on-disk queue keeps this much time's worth of snapshots while the aggregator is unreachable; older ones are dropped.", DefaultQueueMaxAge.String(), &c.PushQueueMaxAge, &set.queueMaxAge)
	intFlag(app, "push.queue.size", "Maximum number of queued snapshots; 0 derives it from --push.queue.max-age / --push.interval.", "0", &c.PushQueueSize, &set.queueSize)
	app.Flag("state.dir", "Directory for the generated API key and the push queue.").
		Default(DefaultStateDir).IsSetByUser(&set.stateDir).StringVar(&c.StateDir)
	app.Flag("config.file", "Optional YAML configuration file; flags given on the command line win over it.").PlaceHolder("FILE").
		StringVar(&c.ConfigFile)
	app.Flag("path.procfs", "procfs mountpoint (Linux).").
		Default("/proc").IsSetByUser(&set.procRoot).StringVar(&c.ProcRoot)
	app.Flag("path.sysfs", "sysfs mountpoint (Linux: CPU frequencies).").
		Default("/sys").IsSetByUser(&set.sysRoot).StringVar(&c.SysRoot)
	app.Flag("path.rootfs", "The host's root filesystem as seen by the exporter (os-release, user names from its etc/passwd, filesystem sizes), e.g. /host in a container.").
		Default("/").IsSetByUser(&set.rootFS).StringVar(&c.RootFS)
	cli.BoolVar(app.Flag("collect.cmdline", "Send command lines (secrets scrubbed) with each process.").
		IsSetByUser(&set.cmdline), &c.CollectCmdline)
	intFlag(app, "collect.top-n", "Send only the top N processes of each snapshot (0 = all).", "0", &c.CollectTopN, &set.topN)
	durationFlag(app, "collect.sample-window", "Priming window of the very first walk, so its CPU% is not empty.", DefaultSampleWindow.String(), &c.CollectSampleWindow, &set.sampleWindow)
	intFlag(app, "metrics.top-n", "Number of processes reported by CPU and by memory in /metrics.", fmt.Sprint(DefaultMetricsTopN), &c.MetricsTopN, &set.metricsTopN)
	cli.BoolVar(app.Flag("collect.cgroup", "Send each process's systemd unit, container id and pod UID, from its cgroup (Linux).").Default("true"), &c.CollectCgroup)
	cli.BoolVar(app.Flag("collect.process-io", "Send each process's disk read and write bytes per second (Linux, /proc/PID/io).").Default("true"), &c.CollectProcessIO)
	cli.IntVar(app.Flag("metrics.max-units", "Most units and containers with series of their own in /metrics; the rest are summed as unit=\"other\".").Default(fmt.Sprint(DefaultMaxUnits)), &c.MetricsMaxUnits)
	app.Flag("metrics.process-group", "Process group NAME=REGEX over process names (repeatable); replaces the config file's groups.").
		PlaceHolder("NAME=REGEX").IsSetByUser(&set.groups).StringsVar(&groupSpecs)
	promslogflag.AddFlags(app, c.Log)

	// Every flag, ours and the toolkit's and promslog's alike, can come
	// from the environment: a container or a systemd unit is configured
	// with variables more easily than with a command line.
	if _, _, err := cli.Parse(app, args); err != nil {
		return nil, err
	}
	// What the file may set, by flag: a value from the environment beats
	// the file as a typed flag does. apiKeyFileFlag remembers the command
	// line alone, which also beats PROCSCOPE_API_KEY.
	apiKeyFileFlag, tokenFileFlag, groupsFlag := set.apiKeyFile, set.tokenFile, set.groups
	for name, ok := range map[string]*bool{
		"web.telemetry-path": &set.telemetryPath, "push.url": &set.pushURL, "push.interval": &set.pushInterval,
		"push.api-key-file": &set.apiKeyFile, "push.enrollment-token-file": &set.tokenFile, "push.timeout": &set.pushTimeout, "push.flush-timeout": &set.flushTimeout,
		"push.queue.max-age": &set.queueMaxAge, "push.queue.size": &set.queueSize, "state.dir": &set.stateDir,
		"path.procfs": &set.procRoot, "path.sysfs": &set.sysRoot, "path.rootfs": &set.rootFS,
		"collect.cmdline": &set.cmdline, "collect.top-n": &set.topN, "collect.sample-window": &set.sampleWindow,
		"metrics.top-n": &set.metricsTopN, "metrics.process-group": &set.groups,
	} {
		if !*ok && app.GetFlag(name).HasEnvarValue() {
			*ok = true
		}
	}

	var groups []ProcessGroup
	groupSource := "--metrics.process-group"
	if len(groupSpecs) > 0 && !groupsFlag {
		groupSource = "$" + EnvName("metrics.process-group")
	}
	for _, spec := range groupSpecs {
		name, pattern, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, fmt.Errorf("%s %q: want NAME=REGEX", groupSource, spec)
		}
		g, err := newGroup(name, pattern)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", groupSource, err)
		}
		groups = append(groups, g)
	}

	if c.ConfigFile != "" {
		f, err := loadFile(c.ConfigFile)
		if err != nil {
			return nil, err
		}
		if err := f.apply(c, set); err != nil {
			return nil, fmt.Errorf("config file %s: %w", c.ConfigFile, err)
		}
		if !set.groups {
			groups = f.groups
		}
	}
	c.ProcessGroups = groups

	// The key in the environment beats the file but not an explicit
	// --push.api-key-file. Both variables at once is ambiguous: refused.
	// The enrolment token follows the same rules.
	var err error
	if c.APIKey, c.APIKeyFile, err = secretFromEnv(getenv, APIKeyEnv, "push.api-key-file",
		c.APIKey, c.APIKeyFile, set.apiKeyFile, apiKeyFileFlag); err != nil {
		return nil, err
	}
	if c.EnrollmentToken, c.EnrollmentTokenFile, err = secretFromEnv(getenv, EnrollmentTokenEnv, "push.enrollment-token-file",
		c.EnrollmentToken, c.EnrollmentTokenFile, set.tokenFile, tokenFileFlag); err != nil {
		return nil, err
	}
	if len(c.PushURLs) == 1 && c.PushURLs[0] == "" {
		c.PushURLs = nil // --push.url="" disables pushing
	}
	if len(c.PushURLs) > 0 {
		c.PushURL = c.PushURLs[0]
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// secretFromEnv applies a secret's own variable (env, the secret itself)
// to what the flags and the file gave: the variable beats the file's value
// or file name, but not the file flag given on the command line; the
// variable together with the file flag's variable is refused as ambiguous.
// fileSet says the file flag was set on the command line or by its
// variable, fileFlag on the command line alone.
func secretFromEnv(getenv func(string) string, env, fileFlagName, value, file string, fileSet, fileFlag bool) (string, string, error) {
	v := getenv(env)
	if v != "" && fileSet && !fileFlag {
		return "", "", fmt.Errorf("%s and %s are both set; keep one", env, EnvName(fileFlagName))
	}
	if fileSet {
		return "", file, nil
	}
	if v != "" {
		if err := ValidateKey(v); err != nil {
			return "", "", fmt.Errorf("%s: %w", env, err)
		}
		return v, "", nil
	}
	return value, file, nil
}

var groupNameRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

func newGroup(name, pattern string) (ProcessGroup, error) {
	if !groupNameRE.MatchString(name) {
		return ProcessGroup{}, fmt.Errorf("group name %q: want 1-64 of A-Z a-z 0-9 _ . : -", name)
	}
	if pattern == "" {
		return ProcessGroup{}, fmt.Errorf("group %q: empty regular expression", name)
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return ProcessGroup{}, fmt.Errorf("group %q: %w", name, err)
	}
	return ProcessGroup{Name: name, Pattern: pattern, Regexp: re}, nil
}

func (c *Config) validate() error {
	var errs []error
	seenURL := map[string]bool{}
	for _, pu := range c.PushURLs {
		u, err := url.Parse(pu)
		switch {
		case pu == "":
			errs = append(errs, errors.New(`--push.url "": an empty URL disables pushing only when it is the only one`))
		case err != nil:
			errs = append(errs, fmt.Errorf("--push.url: %w", err))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("--push.url %q: scheme must be http or https", pu))
		case u.Host == "":
			errs = append(errs, fmt.Errorf("--push.url %q: no host", pu))
		case u.User != nil:
			// The key goes in X-API-KEY; credentials in the URL would be
			// logged with it.
			errs = append(errs, fmt.Errorf("--push.url: must not contain user:password"))
		case seenURL[pu]:
			errs = append(errs, fmt.Errorf("--push.url %q: given twice", pu))
		}
		seenURL[pu] = true
	}
	if c.PushInterval < MinInterval {
		errs = append(errs, fmt.Errorf("--push.interval %s: must be at least %s", c.PushInterval, MinInterval))
	}
	if c.PushTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--push.timeout %s: must be positive", c.PushTimeout))
	}
	if c.PushFlushTimeout < 0 {
		errs = append(errs, fmt.Errorf("--push.flush-timeout %s: must not be negative", c.PushFlushTimeout))
	}
	if c.PushQueueMaxAge <= 0 && c.PushQueueSize <= 0 {
		errs = append(errs, fmt.Errorf("--push.queue.max-age %s: must be positive", c.PushQueueMaxAge))
	}
	if c.PushQueueSize < 0 {
		errs = append(errs, fmt.Errorf("--push.queue.size %d: must not be negative", c.PushQueueSize))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("--state.dir: must not be empty"))
	}
	if c.CollectTopN < 0 {
		errs = append(errs, fmt.Errorf("--collect.top-n %d: must not be negative (0 = all)", c.CollectTopN))
	}
	if c.CollectSampleWindow < 0 || c.CollectSampleWindow > 10*time.Second {
		errs = append(errs, fmt.Errorf("--collect.sample-window %s: must be between 0 and 10s", c.CollectSampleWindow))
	}
	if c.MetricsMaxUnits < 1 || c.MetricsMaxUnits > MaxMetricsTopN*10 {
		errs = append(errs, fmt.Errorf("--metrics.max-units %d: must be between 1 and %d", c.MetricsMaxUnits, MaxMetricsTopN*10))
	}
	if c.MetricsTopN < 0 || c.MetricsTopN > MaxMetricsTopN {
		errs = append(errs, fmt.Errorf("--metrics.top-n %d: must be between 0 and %d", c.MetricsTopN, MaxMetricsTopN))
	}
	if !strings.HasPrefix(c.TelemetryPath, "/") || c.TelemetryPath == "/" ||
		c.TelemetryPath == "/-/healthy" || c.TelemetryPath == "/-/ready" {
		errs = append(errs, fmt.Errorf("--web.telemetry-path %q: must start with / and not be /, /-/healthy or /-/ready", c.TelemetryPath))
	}
	if f := *c.Web.WebConfigFile; f != "" {
		// Checked here so a broken TLS/auth file is a usage error (exit 2)
		// and not a failure after start.
		if err := web.Validate(f); err != nil {
			errs = append(errs, fmt.Errorf("--web.config.file %s: %w", f, err))
		}
	}
	seen := map[string]bool{}
	for _, g := range c.ProcessGroups {
		if seen[g.Name] {
			errs = append(errs, fmt.Errorf("process group %q defined twice", g.Name))
		}
		seen[g.Name] = true
	}
	if c.APIKey != "" {
		if err := ValidateKey(c.APIKey); err != nil {
			errs = append(errs, fmt.Errorf("api key: %w", err))
		}
	}
	if c.EnrollmentToken != "" {
		if err := ValidateKey(c.EnrollmentToken); err != nil {
			errs = append(errs, fmt.Errorf("enrollment token: %w", err))
		}
	}
	return errors.Join(errs...)
}

// MaxKeyLen bounds an API key; it travels in an HTTP header.
const MaxKeyLen = 512

// ValidateKey checks that a key (or an enrolment token) can travel in an
// HTTP header (X-API-KEY, X-Enrollment-Token) unchanged.
// The error never contains the key itself.
func ValidateKey(k string) error {
	if k == "" {
		return errors.New("empty")
	}
	if len(k) > MaxKeyLen {
		return fmt.Errorf("longer than %d bytes", MaxKeyLen)
	}
	if !utf8.ValidString(k) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range k {
		if r > unicode.MaxASCII || unicode.IsSpace(r) || unicode.IsControl(r) {
			return errors.New("must be printable ASCII without spaces")
		}
	}
	return nil
}
