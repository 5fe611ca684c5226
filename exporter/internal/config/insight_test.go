package config

import (
	"strings"
	"testing"
)

// TestAttributionFlags: attribution and I/O default on and can be turned
// off; --metrics.max-units defaults to 200 and refuses 0.
func TestAttributionFlags(t *testing.T) {
	t.Parallel()
	c, err := Parse(nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !c.CollectCgroup || !c.CollectProcessIO || c.MetricsMaxUnits != DefaultMaxUnits {
		t.Errorf("defaults: cgroup %v io %v max units %d", c.CollectCgroup, c.CollectProcessIO, c.MetricsMaxUnits)
	}
	c, err = Parse([]string{"--no-collect.cgroup", "--no-collect.process-io", "--metrics.max-units=5"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.CollectCgroup || c.CollectProcessIO || c.MetricsMaxUnits != 5 {
		t.Errorf("set: cgroup %v io %v max units %d", c.CollectCgroup, c.CollectProcessIO, c.MetricsMaxUnits)
	}
	if _, err := Parse([]string{"--metrics.max-units=0"}, noEnv); err == nil || !strings.Contains(err.Error(), "--metrics.max-units") {
		t.Errorf("max-units 0: %v", err)
	}
}
