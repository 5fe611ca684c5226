package inflate

import (
	"bytes"
	"errors"
	"testing"

	"github.com/procscope/procscope/tools/loadgen/gen"
)

// FuzzGunzip: on any input Gunzip never panics, never returns more than
// the limit nor asks grow for more, and whatever it accepts the streaming
// reader (ingest's fallback and reference) reads identically. Run with
// `make fuzz` or
// go test -run '^$' -fuzz FuzzGunzip -fuzztime 60s ./aggregator/internal/inflate
func FuzzGunzip(f *testing.F) {
	if ok, _ := Available(); !ok {
		f.Skip("SKIPPING: libdeflate is not usable here")
	}
	body := gen.Body(5, "web-1", "2026-11-25T17:00:00.000Z", true)
	for _, s := range [][]byte{
		gz(f, 6, body), gz(f, 0, body), gz(f, 1, body[:10], nil, body[10:]),
		gz(f, 9, make([]byte, 64<<10)), gz(f, 6, nil), {}, {0x1f, 0x8b},
	} {
		f.Add(s, uint16(4096), false)
		f.Add(s, uint16(100), true)
	}
	f.Fuzz(func(t *testing.T, src []byte, limit uint16, bigDst bool) {
		var dst []byte
		if bigDst {
			dst = make([]byte, 0, 70000)
		}
		var asked int
		out, err := Gunzip(dst, src, int(limit), func(c int) bool { asked = max(asked, c); return true })
		if asked > int(limit) || len(out) > int(limit) {
			t.Fatalf("limit %d: asked for %d, returned %d bytes", limit, asked, len(out))
		}
		if err != nil {
			if !errors.Is(err, ErrBad) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			if len(out) != 0 {
				t.Fatalf("%d bytes returned with error %v", len(out), err)
			}
			return
		}
		if want := reference(src); want == nil || !bytes.Equal(out, want) {
			t.Fatalf("accepted %d bytes the streaming reader rejects or reads differently (%d)", len(out), len(want))
		}
	})
}
