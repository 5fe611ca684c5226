package testutil

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SelfCPU is this process's user+system CPU time so far (all threads, the
// garbage collector's included): benchmarks report CPU per operation
// because wall time on a shared machine measures the neighbours too.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rusageThread is Linux's RUSAGE_THREAD, which package syscall lacks.
const rusageThread = 1

// ThreadCPU is the calling OS thread's user+system CPU time so far. The
// caller locks its goroutine to the thread (runtime.LockOSThread) so that
// the figure is its own work and not the garbage collector's or
// VictoriaMetrics' background merges (0 when the kernel says no).
func ThreadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ProcCPU is process pid's user+system CPU time from /proc/PID/stat, to
// charge a started binary (the aggregator under load) with its own work.
func ProcCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, errors.New("no such pid " + strconv.Itoa(pid))
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStat(string(b))
}

// parseStat reads utime and stime from the text of a /proc/PID/stat.
func parseStat(s string) (time.Duration, error) {
	// The fields after the command name, which is in parentheses and may
	// itself hold spaces or parentheses.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat: " + strconv.Quote(s))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const clkTck = 100 // USER_HZ on every Linux Go supports
	return time.Duration(ut+st) * time.Second / clkTck, nil
}
