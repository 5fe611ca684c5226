package snapshot

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/procscope/procscope/tools/loadgen/gen"
)

// errKeyMismatch stands for the HTTP layer's key check failing.
var errKeyMismatch = errors.New("key mismatch")

// decodeBoth runs Decode and the frozen old decoder (decode_old_test.go) on
// in and fails unless a client could not tell them apart: the same values,
// the same error (kind and message, byte offsets included), the same
// HostnameSeen and the same OnHostname calls. A hostname starting with "x"
// makes the callback fail, so that path is compared too.
func decodeBoth(t *testing.T, in []byte, maxProcs int) {
	t.Helper()
	run := func(dec func([]byte, DecodeOptions) (*Decoded, error)) (*Decoded, error, []string) {
		var calls []string
		d, err := dec(in, DecodeOptions{MaxProcesses: maxProcs, OnHostname: func(h string) error {
			calls = append(calls, h)
			if strings.HasPrefix(h, "x") {
				return errKeyMismatch
			}
			return nil
		}})
		return d, err, calls
	}
	shown := string(in) // the whole input when short, for reproducing
	if len(shown) > 1024 {
		shown = truncateForMsg(shown)
	}
	dn, en, cn := run(Decode)
	do, eo, co := run(oldDecode)
	if fmt.Sprint(en) != fmt.Sprint(eo) || errors.Is(en, errKeyMismatch) != errors.Is(eo, errKeyMismatch) {
		t.Fatalf("input %q:\nerror %v\nold   %v", shown, en, eo)
	}
	var den, deo *DecodeError
	if errors.As(en, &den) != errors.As(eo, &deo) || (den != nil && den.Kind != deo.Kind) {
		t.Fatalf("input %q: error kinds differ: %#v, old %#v", shown, en, eo)
	}
	if !reflect.DeepEqual(cn, co) {
		t.Fatalf("input %q: OnHostname calls %q, old %q", shown, cn, co)
	}
	if dn.HostnameSeen != do.HostnameSeen || !dn.CapturedAt.Equal(do.CapturedAt) {
		t.Fatalf("input %q: HostnameSeen/CapturedAt %v %v, old %v %v", shown,
			dn.HostnameSeen, dn.CapturedAt, do.HostnameSeen, do.CapturedAt)
	}
	if pn, po := dn.Snapshot.Processes, do.Snapshot.Processes; len(pn) == len(po) {
		for i := range pn {
			if !reflect.DeepEqual(pn[i], po[i]) {
				t.Fatalf("input %q: process %d differs:\nnew %+v\nold %+v", shown, i, pn[i], po[i])
			}
		}
	}
	if !reflect.DeepEqual(dn.Snapshot, do.Snapshot) {
		t.Fatalf("input %q: snapshots differ:\nnew %+v\nold %+v", shown, dn.Snapshot, do.Snapshot)
	}
}

// sameSeeds are inputs for the differential checks: realistic bodies, the
// fields in other orders, spaces where the fast paths expect none, every
// optional field, escapes in keys, and numbers at the fast paths' edges.
func sameSeeds(tb testing.TB) [][]byte {
	p := func(fields string) []byte { return []byte(body(`[{` + fields + `}]`)) }
	seeds := [][]byte{
		evolveBody(tb, "web-1", 300, 0),
		evolveBody(tb, "xhost", 300, 2), // the callback refuses it
		evolveBody(tb, "web-3", 4, 1),
		gen.Body(40, "web-2", "2026-11-25T17:00:00.123Z", true),
		exporterBody(tb),
		[]byte(body(`[]`)),
		[]byte(body(`null`)),
		[]byte(body(`[` + okProc + `,` + okProc + `]`)),
		p(`"memory_mb":1,"cpu_percent":2,"name":"n","ppid":3,"pid":4`),
		p(` "pid" : 1 , "ppid" :0,"name": "a" ,"cpu_percent": 0.5 ,"memory_mb":	1.25 `),
		p(`"p\u0069d":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0`),
		p(`"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0,"username":"root","status":"sleeping","num_threads":4,"create_time":"2026-11-25T17:00:00.12Z","memory_percent":0.05119359493255615`),
		p(`"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0,"username":null,"status":null,"num_threads":null,"create_time":null,"memory_percent":null,"cmdline":null`),
		p(`"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0,"create_time":"2026-11-25T17:00:00+01:00"`),
		p(`"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0,"create_time":"0000-01-01T00:00:00Z"`),
		p(`"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0,"create_time":"2024-02-30T00:00:00Z"`),
		p(`"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0,"create_time":"2024-02-29T23:59:59.9999999999Z"`),
		p(`"pid":9223372036854775807,"ppid":9223372036854775808,"name":"a","cpu_percent":123456789012345,"memory_mb":1234567890123456`),
		p(`"pid":0,"ppid":-0,"name":"a","cpu_percent":0.000000000000001,"memory_mb":0.0000000000000001,"num_threads":2147483648`),
		p(`"pid":01,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0`),
		p(`"pid":1.,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0`),
		p(`"pid":1,"ppid":0,"name":"a","cpu_percent":1.5e2,"memory_mb":1E-2`),
		p(`"pid":1,"ppid":0,"name":"a","cpu_percent":-1,"memory_mb":-0.0`),
		p(`"pid":1,"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0`),
		p(`"pid":1,"ppid":0,"name":"a","name":"b","cpu_percent":0,"memory_mb":0`),
		p(`"pid":1,"ppid":0,"name":"\u00e9\ud800","cpu_percent":0,"memory_mb":0,"status":"sleep\u0069ng","username":"r\"oot"`),
		p(`"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0,"pidx":1,"p":2,"nam":3,"status_":4`),
		[]byte(`{"processes":[{"pid":"bad"}],"captured_at":"x","system_info":{},"hostname":"late"}`),
		[]byte(`{"hostname":"a","captured_at":"2026-11-25T17:00:00Z","system_info":{},"processes":[{"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0},{"pid":3,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0},{"pid":2,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0},{"pid":3,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0}]}`),
	}
	return seeds
}

// mutate changes in in one of the ways that reach the decoder's edges:
// a byte replaced, dropped or repeated, a space inserted, a cut.
func mutate(r *rand.Rand, in []byte) []byte {
	out := append([]byte(nil), in...)
	if len(out) == 0 {
		return out
	}
	k := r.IntN(len(out))
	const alphabet = "0123456789.-eE+\" \t\n,:{}[]\\nulltrue\x00\x7f\xc3\xff"
	switch r.IntN(5) {
	case 0:
		out[k] = alphabet[r.IntN(len(alphabet))]
	case 1:
		out = append(out[:k], out[k+1:]...)
	case 2:
		out = append(out[:k+1], out[k:]...)
	case 3:
		out = append(out[:k], append([]byte{" \t\n\r"[r.IntN(4)]}, out[k:]...)...)
	default:
		out = out[:k]
	}
	return out
}

// TestDecodeSameAsOld checks the fast paths against the old decoder on the
// seeds and on many mutations of them (deterministic; the fuzz target
// below keeps looking).
func TestDecodeSameAsOld(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, s := range sameSeeds(t) {
		decodeBoth(t, s, 1000)
		decodeBoth(t, s, 3) // the process limit's path
		n := 2000
		if len(s) > 4096 {
			n = 100 // big bodies: fewer rounds, the edges are the same
		}
		for range n {
			m := mutate(r, s)
			for range r.IntN(3) {
				m = mutate(r, m)
			}
			decodeBoth(t, m, 1000)
		}
	}
}

// FuzzDecodeSameAsOld is TestDecodeSameAsOld for the fuzzer:
// go test -run '^$' -fuzz FuzzDecodeSameAsOld -fuzztime 90s ./aggregator/snapshot
func FuzzDecodeSameAsOld(f *testing.F) {
	for _, s := range sameSeeds(f) {
		// Big seeds make the fuzzer crawl (it minimises what it finds
		// byte by byte); the small ones have the same shapes.
		if len(s) <= 4096 {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) { decodeBoth(t, in, 50) })
}
