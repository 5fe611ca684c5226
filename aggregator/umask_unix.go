//go:build unix

package main

import "syscall"

// restrictUmask makes every file and directory the aggregator creates
// private to its user, whatever umask it was started with: the storage
// holds process tables and key hashes, and the embedded VictoriaMetrics
// creates its files 0644 and directories 0755, leaving the umask to decide.
func restrictUmask() { syscall.Umask(0o077) }
