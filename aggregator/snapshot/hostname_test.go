package snapshot

import (
	"strings"
	"testing"
)

// TestCheckHostname: the one hostname rule, with the reason it gives.
func TestCheckHostname(t *testing.T) {
	f := func(h, want string) {
		t.Helper()
		if got := CheckHostname(h); got != want {
			t.Errorf("CheckHostname(%q) = %q, want %q", h, got, want)
		}
	}
	f("web-1", "")
	f(strings.Repeat("a", 253), "")
	f(strings.Repeat("é", 126), "") // 252 bytes
	f("日本語ホスト", "")
	f("with space", "")
	f("a\u00a0b", "") // NBSP is not a control character
	f("", "hostname must not be empty")
	f(strings.Repeat("a", 254), "hostname is 254 bytes long, the limit is 253")
	f("a\xffb", "hostname must be valid UTF-8")
	f("a\x00b", "hostname contains the control character U+0000")
	f("a\tb", "hostname contains the control character U+0009")
	f("a\x7fb", "hostname contains the control character U+007F")
	f("a\u0085b", "hostname contains the control character U+0085")
	f("a\u009fb", "hostname contains the control character U+009F")
}
