package history

import (
	"flag"
	"fmt"
	"strconv"
	"sync"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/fs"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/logger"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"
)

// VictoriaMetrics' lib packages read their settings from Go's global
// flag.CommandLine and refuse to open storage before it is parsed. The
// aggregator parses its own command line with kingpin, so the settings are
// pushed into flag.CommandLine here, once per process: the lib keeps
// process-wide state (memory limits, logger) that cannot be changed later.
var (
	vmInitOnce sync.Once
	vmInitErr  error
)

// vmSettings are the lib's global flags we set. Everything else keeps the
// lib's default.
type vmSettings struct {
	memoryBytes  int64
	minFreeBytes int64
}

func initVM(s vmSettings) error {
	vmInitOnce.Do(func() {
		vmInitErr = initVMOnce(s)
	})
	return vmInitErr
}

func initVMOnce(s vmSettings) (err error) {
	defer func() {
		// logger.Init validates its flags with panics.
		if r := recover(); r != nil {
			err = fmt.Errorf("configure victoriametrics: %v", r)
		}
	}()
	settings := map[string]string{
		// Caches are sized from this; the default (60% of RAM) is far more
		// than a few thousand series need and would squeeze SQLite's cache.
		"memory.allowedBytes": strconv.FormatInt(s.memoryBytes, 10),
		// INFO logs every part merge; warnings (read-only mode, dropped
		// rows) are what an operator needs to see.
		"loggerLevel": "WARN",
		// The json format makes logger.Panicf call os.Exit instead of
		// panicking, which would defeat our recover at the boundaries.
		"loggerFormat": "default",
	}
	for name, value := range settings {
		if flag.Lookup(name) == nil {
			return fmt.Errorf("victoriametrics flag %q is not registered", name)
		}
		if err := flag.Set(name, value); err != nil {
			return fmt.Errorf("set victoriametrics flag %q: %w", name, err)
		}
	}
	if !flag.Parsed() {
		// MustOpenStorage panics unless flag.Parsed(); parse an empty
		// command line so only the values set above apply.
		if err := flag.CommandLine.Parse(nil); err != nil {
			return fmt.Errorf("parse victoriametrics flags: %w", err)
		}
	}
	storage.SetFreeDiskSpaceLimit(s.minFreeBytes)
	// InitNoLogFlags: logger.Init would print all ~23 flags at startup.
	logger.InitNoLogFlags()
	return nil
}

// freeSpace reports the free bytes of the filesystem holding dir.
func freeSpace(dir string) (n uint64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("check free space of %s: %v", dir, r)
		}
	}()
	return fs.MustGetFreeSpace(dir), nil
}
