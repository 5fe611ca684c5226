package snapshot

import (
	"fmt"
	"unicode/utf8"
)

// MaxHostnameBytes is the longest hostname accepted, in bytes of UTF-8.
const MaxHostnameBytes = 253

// CheckHostname returns why h is not an acceptable hostname, or "" when it
// is: 1-253 bytes of UTF-8 with no control characters (C0, DEL, C1). It is
// the one hostname rule of docs/api.md: the exporter checks its own name
// with it before the first push, and the aggregator's ingest decoder, read
// API, history routes, store and admin commands check theirs.
func CheckHostname(h string) string {
	if h == "" {
		return "hostname must not be empty"
	}
	if len(h) > MaxHostnameBytes {
		return fmt.Sprintf("hostname is %d bytes long, the limit is %d", len(h), MaxHostnameBytes)
	}
	if !utf8.ValidString(h) {
		return "hostname must be valid UTF-8"
	}
	for _, r := range h {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return fmt.Sprintf("hostname contains the control character U+%04X", r)
		}
	}
	return ""
}
