package collector

import "syscall"

// haveFstatat: this architecture's fstatat fills a syscall.Stat_t as is.
const haveFstatat = true

const sysFstatat = syscall.SYS_NEWFSTATAT
