//go:build !unix

package store

import "log/slog"

// makePrivate does nothing without unix permissions (Windows: the
// directory's ACL applies).
func makePrivate(string, *slog.Logger) {}
