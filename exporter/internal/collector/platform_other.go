//go:build !linux

package collector

import "log/slog"

// platform is gopsutil wherever there is no procfs to read directly.
type platform = gopsutilPlatform

func newPlatform(opts Options, logger *slog.Logger) (*platform, error) {
	return newGopsutilPlatform(opts, logger)
}
