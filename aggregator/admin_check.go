package main

import (
	"io"
	"log/slog"
)

func storageCheck(stdout, stderr io.Writer, logger *slog.Logger, storage string) int {
	return exitFailed
}
