package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds what we read from --config.file; a config is a few
// hundred bytes, a mistaken path to a huge file should fail, not eat memory.
const maxFileSize = 1 << 20

// file is the YAML configuration. Keys mirror the flags; the second block
// holds the original agent's DEFAULT_CONFIG keys. Pointers tell "absent"
// from "zero". Unknown keys are an error (KnownFields), so a typo does not
// silently fall back to a default.
type file struct {
	PushURL             *string           `yaml:"push_url"`
	PushURLs            []string          `yaml:"push_urls"`
	PushInterval        *time.Duration    `yaml:"push_interval"`
	PushTimeout         *time.Duration    `yaml:"push_timeout"`
	PushFlushTimeout    *time.Duration    `yaml:"push_flush_timeout"`
	PushQueueMaxAge     *time.Duration    `yaml:"push_queue_max_age"`
	PushQueueSize       *int              `yaml:"push_queue_size"`
	APIKeyFile          *string           `yaml:"api_key_file"`
	EnrollmentTokenFile *string           `yaml:"enrollment_token_file"`
	EnrollmentToken     *string           `yaml:"enrollment_token"`
	StateDir            *string           `yaml:"state_dir"`
	ProcRoot            *string           `yaml:"procfs"`
	SysRoot             *string           `yaml:"sysfs"`
	RootFS              *string           `yaml:"rootfs"`
	TelemetryPath       *string           `yaml:"telemetry_path"`
	CollectCmdline      *bool             `yaml:"collect_cmdline"`
	CollectTopN         *int              `yaml:"collect_top_n"`
	CollectSampleWindow *time.Duration    `yaml:"collect_sample_window"`
	MetricsTopN         *int              `yaml:"metrics_top_n"`
	ProcessGroups       map[string]string `yaml:"process_groups"`

	// The original Python agent's keys.
	BackendURL     *string  `yaml:"backend_url"`
	APIKey         *string  `yaml:"api_key"`
	IntervalSec    *float64 `yaml:"interval_sec"`
	SampleSleepMS  *float64 `yaml:"sample_sleep_ms"`
	IncludeCmdline *bool    `yaml:"include_cmdline"`
	// TopNProcesses is null (None in the seed) for "all".
	TopNProcesses *int `yaml:"top_n_processes"`

	groups []ProcessGroup
}

func loadFile(path string) (*file, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer func() { _ = fh.Close() }()
	data, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("config file %s: larger than %d bytes", path, maxFileSize)
	}
	f, err := parseFile(data)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return f, nil
}

func parseFile(data []byte) (*file, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	// A second document is most likely a paste error; refuse it.
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	names := make([]string, 0, len(f.ProcessGroups))
	for n := range f.ProcessGroups {
		names = append(names, n)
	}
	sort.Strings(names) // stable order for /metrics and error messages
	for _, n := range names {
		g, err := newGroup(n, f.ProcessGroups[n])
		if err != nil {
			return nil, fmt.Errorf("process_groups: %w", err)
		}
		f.groups = append(f.groups, g)
	}
	return &f, nil
}

// both reports the error for a setting given under its new and its seed key.
func both(a, b string) error {
	return fmt.Errorf("%s and %s set the same thing; keep one", a, b)
}

// secondsToDuration converts the seed's float seconds, refusing values a
// Duration cannot hold.
func secondsToDuration(key string, sec float64) (time.Duration, error) {
	if math.IsNaN(sec) || sec < 0 || sec > float64(math.MaxInt64/int64(time.Second)) {
		return 0, fmt.Errorf("%s: %v out of range", key, sec)
	}
	return time.Duration(sec * float64(time.Second)), nil
}

// apply copies the file's settings into c where no flag was set explicitly.
func (f *file) apply(c *Config, set setFlags) error {
	if f.PushURL != nil && f.BackendURL != nil {
		return both("push_url", "backend_url")
	}
	if f.PushInterval != nil && f.IntervalSec != nil {
		return both("push_interval", "interval_sec")
	}
	if f.CollectSampleWindow != nil && f.SampleSleepMS != nil {
		return both("collect_sample_window", "sample_sleep_ms")
	}
	if f.CollectCmdline != nil && f.IncludeCmdline != nil {
		return both("collect_cmdline", "include_cmdline")
	}
	if f.CollectTopN != nil && f.TopNProcesses != nil {
		return both("collect_top_n", "top_n_processes")
	}
	if f.APIKey != nil && f.APIKeyFile != nil {
		return both("api_key", "api_key_file")
	}
	if f.EnrollmentToken != nil && f.EnrollmentTokenFile != nil {
		return both("enrollment_token", "enrollment_token_file")
	}

	if f.PushURLs != nil && (f.PushURL != nil || f.BackendURL != nil) {
		if f.PushURL != nil {
			return both("push_urls", "push_url")
		}
		return both("push_urls", "backend_url")
	}
	if f.PushURLs != nil && len(f.PushURLs) == 0 {
		return errors.New(`push_urls: empty list; to disable pushing write push_url: ""`)
	}
	pushURL := firstNonNil(f.PushURL, f.BackendURL)
	switch {
	case set.pushURL:
	case f.PushURLs != nil:
		c.PushURLs = slices.Clone(f.PushURLs)
	case pushURL != nil:
		c.PushURLs = []string{*pushURL}
	}
	if f.IntervalSec != nil {
		d, err := secondsToDuration("interval_sec", *f.IntervalSec)
		if err != nil {
			return err
		}
		f.PushInterval = &d
	}
	if f.SampleSleepMS != nil {
		d, err := secondsToDuration("sample_sleep_ms", *f.SampleSleepMS/1000)
		if err != nil {
			return err
		}
		f.CollectSampleWindow = &d
	}
	setIf(&c.PushInterval, f.PushInterval, set.pushInterval)
	setIf(&c.PushTimeout, f.PushTimeout, set.pushTimeout)
	setIf(&c.PushFlushTimeout, f.PushFlushTimeout, set.flushTimeout)
	setIf(&c.PushQueueMaxAge, f.PushQueueMaxAge, set.queueMaxAge)
	setIf(&c.PushQueueSize, f.PushQueueSize, set.queueSize)
	setIf(&c.StateDir, f.StateDir, set.stateDir)
	setIf(&c.ProcRoot, f.ProcRoot, set.procRoot)
	setIf(&c.SysRoot, f.SysRoot, set.sysRoot)
	setIf(&c.RootFS, f.RootFS, set.rootFS)
	setIf(&c.TelemetryPath, f.TelemetryPath, set.telemetryPath)
	setIf(&c.CollectCmdline, firstNonNil(f.CollectCmdline, f.IncludeCmdline), set.cmdline)
	setIf(&c.CollectTopN, firstNonNil(f.CollectTopN, f.TopNProcesses), set.topN)
	setIf(&c.CollectSampleWindow, f.CollectSampleWindow, set.sampleWindow)
	setIf(&c.MetricsTopN, f.MetricsTopN, set.metricsTopN)
	if !set.apiKeyFile {
		if f.APIKeyFile != nil {
			c.APIKeyFile = *f.APIKeyFile
		}
		if f.APIKey != nil {
			if err := ValidateKey(*f.APIKey); err != nil {
				return fmt.Errorf("api_key: %w", err)
			}
			c.APIKey = *f.APIKey
		}
	}
	if !set.tokenFile {
		if f.EnrollmentTokenFile != nil {
			c.EnrollmentTokenFile = *f.EnrollmentTokenFile
		}
		if f.EnrollmentToken != nil {
			if err := ValidateKey(*f.EnrollmentToken); err != nil {
				return fmt.Errorf("enrollment_token: %w", err)
			}
			c.EnrollmentToken = *f.EnrollmentToken
		}
	}
	return nil
}

func firstNonNil[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

func setIf[T any](dst *T, v *T, flagSet bool) {
	if v != nil && !flagSet {
		*dst = *v
	}
}
