package history

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// sameHostNumbers compares what both readings of system_info would write:
// values only matter when present.
func sameHostNumbers(a, b *hostNumbers) string {
	num := func(name string, x, y optNum) string {
		if x.ok != y.ok || (x.ok && math.Float64bits(x.v) != math.Float64bits(y.v)) {
			return fmt.Sprintf("%s: %+v vs %+v", name, x, y)
		}
		return ""
	}
	for _, d := range []string{
		num("cpu", a.cpu, b.cpu), num("mem used", a.memUsed, b.memUsed), num("mem avail", a.memAvail, b.memAvail),
		num("swap", a.swapUsed, b.swapUsed), num("load1", a.load1, b.load1), num("load5", a.load5, b.load5),
		num("load15", a.load15, b.load15), num("process_count", a.processCount, b.processCount),
	} {
		if d != "" {
			return d
		}
	}
	if len(a.filesystems) != len(b.filesystems) {
		return fmt.Sprintf("filesystems %+v vs %+v", a.filesystems, b.filesystems)
	}
	for i := range a.filesystems {
		fa, fb := a.filesystems[i], b.filesystems[i]
		if fa.mountpoint != fb.mountpoint {
			return fmt.Sprintf("filesystem %d: mountpoint %q vs %q", i, fa.mountpoint, fb.mountpoint)
		}
		if d := num("filesystem used", fa.used, fb.used); d != "" {
			return d
		}
	}
	return ""
}

func checkHostNumbers(t *testing.T, raw []byte) {
	t.Helper()
	var fast, slow hostNumbers
	readHostNumbers(raw, &fast)
	decodeHostNumbers(raw, &slow)
	if d := sameHostNumbers(&fast, &slow); d != "" {
		t.Errorf("system_info %q: scanner and encoding/json differ: %s", raw, d)
	}
}

// hostileSystemInfos are inputs where a reader that is not encoding/json's
// twin would go wrong.
var hostileSystemInfos = []string{
	``, ` `, `null`, `{}`, `[]`, `[1,2]`, `"garbage"`, `42`, `true`, `{`, `{"cpu":}`, `{} {}`, `{"cpu":{"usage_percent":1}}x`,
	`{"cpu":{"usage_percent":7}}`,
	`{"cpu":{"usage_percent":-0}}`, `{"cpu":{"usage_percent":-12}}`, `{"cpu":{"usage_percent":0.1e1}}`,
	`{"cpu":{"usage_percent":1e400}}`, `{"cpu":{"usage_percent":-1e400}}`, `{"cpu":{"usage_percent":1e-400}}`,
	`{"cpu":{"usage_percent":123456789012345}}`, `{"cpu":{"usage_percent":1234567890123456789}}`,
	`{"cpu":{"usage_percent":"7"}}`, `{"cpu":{"usage_percent":null}}`, `{"cpu":{"usage_percent":[7]}}`,
	`{"cpu":{"usage_percent":{"a":7}}}`, `{"cpu":{"usage_percent":true}}`,
	`{"cpu":null}`, `{"cpu":7}`, `{"cpu":"x"}`, `{"cpu":[{"usage_percent":7}]}`,
	`{"CPU":{"usage_percent":7}}`, `{"cpu":{"Usage_Percent":7}}`, `{"c\u0070u":{"usage_percent":7}}`,
	`{"cpu":{"usage_percent":7},"cpu":{"model":"x"}}`, `{"cpu":{"usage_percent":7},"cpu":null}`,
	`{"cpu":{"usage_percent":7,"usage_percent":8}}`, `{"cpu":{"usage_percent":7,"usage_percent":"x"}}`,
	`{"ſwap":{"used_bytes":3}}`, `{"swap":{"uſed_bytes":3}}`, `{"proceſs_count":3}`, "{\"swap\":{\"used_\u212ay\":1}}",
	`{"memory":{"used_bytes":"12"}}`, `{"memory":{"used_bytes":12,"available_bytes":13,"total_bytes":99}}`,
	`{"swap":{"used_bytes":0},"process_count":9}`, `{"process_count":9.5}`, `{"process_count":"9"}`,
	`{"load_average":{"load1":1,"load5":2,"load15":3}}`, `{"load_average":{"load15":3,"load15":4}}`,
	`{"filesystems":null}`, `{"filesystems":{}}`, `{"filesystems":"x"}`, `{"filesystems":[]}`,
	`{"filesystems":[{"mountpoint":"","used_bytes":1},{"mountpoint":"/x"}]}`,
	`{"filesystems":[1,null,"x",[],{"mountpoint":"/","used_bytes":5}]}`,
	`{"filesystems":[{"mountpoint":null,"used_bytes":5},{"mountpoint":5,"used_bytes":5}]}`,
	`{"filesystems":[{"mountpoint":"/a\"b","used_bytes":5},{"mountpoint":"/\u00e9\n","used_bytes":6}]}`,
	`{"filesystems":[{"mountpoint":"/é","used_bytes":5},{"mountpoint":"/\xff\xfe","used_bytes":6}]}`,
	`{"filesystems":[{"mountpoint":"/a","mountpoint":"/b","used_bytes":5}]}`,
	`{"filesystems":[{"mountpoint":"/a","used_bytes":1}],"filesystems":[{"used_bytes":2}]}`,
	`{"filesystems":[{"Mountpoint":"/a","used_bytes":1}]}`,
	`{"os":{"name":"linux","cpu":{"usage_percent":99}},"x":[{"cpu":1},"}",{"]":"{"}],"cpu":{"usage_percent":3}}`,
	`{"hostname":"a\"},\"cpu\":{\"usage_percent\":50}}","cpu":{"usage_percent":3}}`,
	` { "cpu" : { "usage_percent" : 3 } , "process_count" : 4 } `,
	"{\"cpu\":{\"usage_percent\":3}\n,\t\"process_count\"\r:\n4}",
	`{"cpu":{"usage_percent":3}` + strings.Repeat(`,"pad":[[[[{"a":[1,2,{"b":null}]}]]]]`, 50) + `,"swap":{"used_bytes":1}}`,
	`{"deep":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `,"cpu":{"usage_percent":3}}`,
	`{"deep":` + strings.Repeat("[", 9990) + strings.Repeat("]", 9990) + `,"cpu":{"usage_percent":3}}`,
	// encoding/json's nesting limit is 10000 arrays and objects.
	`{"deep":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `,"cpu":{"usage_percent":3}}`,
	`{"deep":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `,"cpu":{"usage_percent":3}}`,
	`{"deep":` + strings.Repeat(`{"a":`, 9999) + "1" + strings.Repeat("}", 9999) + `,"cpu":{"usage_percent":3}}`,
	`{"deep":` + strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000) + `,"cpu":{"usage_percent":3}}`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000), strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	// Syntax the scanner must reject as encoding/json does.
	`{"cpu":{"usage_percent":01}}`, `{"cpu":{"usage_percent":1.}}`, `{"cpu":{"usage_percent":-}}`,
	`{"cpu":{"usage_percent":1e}}`, `{"cpu":{"usage_percent":.5}}`, `{"cpu":{"usage_percent":+1}}`,
	`{"cpu":{"usage_percent":1e+}}`, `{"cpu":{"usage_percent":1E-2}}`, `{"cpu":{"usage_percent":-0.0e0}}`,
	`{"cpu":{"usage_percent":3}}` + "\x00", "{\"cpu\":{\"usage_percent\":3},\"x\":\"a\tb\"}", "{\"x\":\"a\x7fb\"}",
	`{"x":"\u00"}`, `{"x":"\u00zz"}`, `{"x":"\q"}`, `{"x":"\/\b\f\n\r\t\"\\\u00E9"}`, `{"x":"abc`, `{"x":"abc\`,
	`{"x":nul}`, `{"x":tru}`, `{"x":falsey}`, `{"x":[1,]}`, `{"x":[,1]}`, `{"x":{,}}`, `{"x":1,}`, `{,"x":1}`,
	`{"x" 1}`, `{"x":1 "y":2}`, `{x:1}`, `{"x":[1 2]}`, `{"x":{"a":1,"a":2},"process_count":3}`,
	`{"filesystems":[{"mountpoint":"/","used_bytes":5},]}`, `{"filesystems":[{"mountpoint":"/","used_bytes":5}`,
	`{"filesystems":[{"mountpoint":"/\u0000","used_bytes":5}]}`,
}

func TestHostNumbersMatchEncodingJSON(t *testing.T) {
	for _, s := range hostileSystemInfos {
		checkHostNumbers(t, []byte(s))
	}
	// Generated system_info as exporters send it, then mutated byte by
	// byte: every cut, and random substitutions of JSON's structural bytes.
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Now()
	for i := range 50 {
		raw := newSynthHost(i, 5).next(i, start).SystemInfo
		checkHostNumbers(t, raw)
		for cut := range len(raw) {
			checkHostNumbers(t, raw[:cut])
		}
		const alphabet = `{}[]",:\ 0-.eEnulltrue1aZ` + "\xff\u212a"
		for range 300 {
			m := []byte(string(raw))
			for range 1 + rng.IntN(3) {
				m[rng.IntN(len(m))] = alphabet[rng.IntN(len(alphabet))]
			}
			checkHostNumbers(t, m)
		}
	}
}

// FuzzHostNumbers: go test -run '^$' -fuzz FuzzHostNumbers ./aggregator/internal/history
func FuzzHostNumbers(f *testing.F) {
	for _, s := range hostileSystemInfos {
		f.Add([]byte(s))
	}
	f.Add([]byte(newSynthHost(1, 1).next(1, time.Unix(1.7e9, 0)).SystemInfo))
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkHostNumbers(t, raw)
	})
}

// TestHostNumbersScannerTakesExporterInput: what exporters send is read by
// the scanner itself, not handed to encoding/json.
func TestHostNumbersScannerTakesExporterInput(t *testing.T) {
	f := func(raw string, want bool) {
		t.Helper()
		var out hostNumbers
		sc := sysScanner{b: []byte(raw)}
		if got := sc.top(&out); got != want {
			t.Errorf("scanner read %q itself: %v, want %v", raw, got, want)
		}
	}
	f(string(newSynthHost(1, 1).next(1, time.Unix(1.7e9, 0)).SystemInfo), true)
	f(`{"os":{"Name":"x"},"filesystems":[{"mountpoint":"/é","used_bytes":1}]}`, true)
	f(`{"CPU":{}}`, false)
	f(`{"cpu":{},"cpu":{}}`, false)
	f(`{"filesystems":[{"mountpoint":"/a\nb"}]}`, false)
}
