//go:build linux && !amd64 && !arm64

package collector

// haveFstatat is false where the raw fstatat syscall's struct differs from
// syscall.Stat_t or has another name; there every walk opens
// /proc/PID/stat by path (correct, only a little slower).
const haveFstatat = false

const sysFstatat = 0
