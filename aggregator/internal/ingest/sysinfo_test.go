package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/procscope/procscope/tools/loadgen/gen"
)

// jsonNum is Num as encoding/json reads it: UnmarshalJSON never fails,
// a value that is not a finite number is absent.
type jsonNum Num

func (n *jsonNum) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	*n = jsonNum{V: f, OK: err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)}
	return nil
}

// jsonSystemNumbers is the reference: encoding/json's reading of
// system_info into the struct SystemNumbers documents, with its
// tolerance (a field of the wrong type, or a number out of range, is
// absent and the rest is still read; a syntax error reads nothing).
func jsonSystemNumbers(raw []byte) SystemNumbers {
	var sys struct {
		CPU *struct {
			UsagePercent jsonNum `json:"usage_percent"`
		} `json:"cpu"`
		Memory *struct {
			UsedBytes      jsonNum `json:"used_bytes"`
			AvailableBytes jsonNum `json:"available_bytes"`
		} `json:"memory"`
		Swap *struct {
			UsedBytes jsonNum `json:"used_bytes"`
		} `json:"swap"`
		Filesystems []struct {
			Mountpoint string  `json:"mountpoint"`
			UsedBytes  jsonNum `json:"used_bytes"`
		} `json:"filesystems"`
		LoadAverage *struct {
			Load1  jsonNum `json:"load1"`
			Load5  jsonNum `json:"load5"`
			Load15 jsonNum `json:"load15"`
		} `json:"load_average"`
		ProcessCount jsonNum `json:"process_count"`
	}
	var out SystemNumbers
	err := json.Unmarshal(raw, &sys)
	var typeErr *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &typeErr) {
		return out
	}
	if sys.CPU != nil {
		out.CPU = Num(sys.CPU.UsagePercent)
	}
	if sys.Memory != nil {
		out.MemUsed, out.MemAvail = Num(sys.Memory.UsedBytes), Num(sys.Memory.AvailableBytes)
	}
	if sys.Swap != nil {
		out.SwapUsed = Num(sys.Swap.UsedBytes)
	}
	if sys.LoadAverage != nil {
		out.Load1, out.Load5, out.Load15 = Num(sys.LoadAverage.Load1), Num(sys.LoadAverage.Load5), Num(sys.LoadAverage.Load15)
	}
	out.ProcessCount = Num(sys.ProcessCount)
	for _, f := range sys.Filesystems {
		out.Filesystems = append(out.Filesystems, FSNumber{Mountpoint: f.Mountpoint, Used: Num(f.UsedBytes)})
	}
	return out
}

// sameSystemNumbers compares what two readings of system_info give
// history: values only matter when present.
func sameSystemNumbers(a, b *SystemNumbers) string {
	num := func(name string, x, y Num) string {
		if x.OK != y.OK || (x.OK && math.Float64bits(x.V) != math.Float64bits(y.V)) {
			return fmt.Sprintf("%s: %+v vs %+v", name, x, y)
		}
		return ""
	}
	for _, d := range []string{
		num("cpu", a.CPU, b.CPU), num("mem used", a.MemUsed, b.MemUsed), num("mem avail", a.MemAvail, b.MemAvail),
		num("swap", a.SwapUsed, b.SwapUsed), num("load1", a.Load1, b.Load1), num("load5", a.Load5, b.Load5),
		num("load15", a.Load15, b.Load15), num("process_count", a.ProcessCount, b.ProcessCount),
	} {
		if d != "" {
			return d
		}
	}
	if len(a.Filesystems) != len(b.Filesystems) {
		return fmt.Sprintf("filesystems %+v vs %+v", a.Filesystems, b.Filesystems)
	}
	for i := range a.Filesystems {
		fa, fb := a.Filesystems[i], b.Filesystems[i]
		if fa.Mountpoint != fb.Mountpoint {
			return fmt.Sprintf("filesystem %d: mountpoint %q vs %q", i, fa.Mountpoint, fb.Mountpoint)
		}
		if d := num("filesystem used", fa.Used, fb.Used); d != "" {
			return d
		}
	}
	return ""
}

// checkSystemNumbers decodes a body carrying raw as its system_info and,
// when Decode accepts it (history only ever sees accepted bodies),
// compares Decoded.System with encoding/json's reading of the
// system_info Decode stored. It reports whether Decode accepted the body.
func checkSystemNumbers(t *testing.T, raw []byte) bool {
	t.Helper()
	body := append([]byte(`{"hostname":"h","captured_at":"2026-11-25T17:00:00Z","system_info":`), raw...)
	body = append(body, `,"processes":[]}`...)
	d, err := Decode(body, DecodeOptions{})
	if err != nil {
		return false
	}
	want := jsonSystemNumbers(d.Snapshot.SystemInfo)
	if diff := sameSystemNumbers(&d.System, &want); diff != "" {
		t.Errorf("system_info %q: decoder and encoding/json differ: %s", raw, diff)
	}
	return true
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
	// Duplicate keys decode again into what the first left, as encoding/json
	// does: objects merge, null clears, a wrong type changes nothing, and a
	// later filesystems array decodes into the elements already there, even
	// past a shorter array's length.
	`{"Cpu":{"USAGE_PERCENT":5},"cpu":{"model":1}}`, `{"memory":{"used_bytes":1},"memory":{"available_bytes":2}}`,
	`{"memory":{"used_bytes":1},"memory":7}`, `{"memory":{"used_bytes":1},"memory":null,"memory":{"available_bytes":2}}`,
	`{"process_count":1,"process_count":null}`, `{"process_count":1,"Process_Count":"x"}`,
	`{"filesystems":[{"mountpoint":"/a","used_bytes":1}],"filesystems":[{"mountpoint":null}]}`,
	`{"filesystems":[{"mountpoint":"/a","used_bytes":1},{"mountpoint":"/b","used_bytes":2}],"filesystems":[{"used_bytes":3}],"filesystems":[null,null]}`,
	`{"filesystems":[{"mountpoint":"/a"}],"filesystems":[],"filesystems":[null]}`,
	`{"filesystems":[{"mountpoint":"/a"}],"filesystems":null,"filesystems":[null]}`,
	`{"filesystems":[{"mountpoint":"/a"}],"filesystems":7,"filesystems":[null,{"used_bytes":1}]}`,
	`{"filesystems":[{"mountpoint":"/\ud800x","used_bytes":1},{"mountpoint":"/\ud83d\ude00","used_bytes":2}]}`,
	`{"filesystems":[{"MOUNTPOINT":"/a","Used_Bytes":1},{"mountpoint":"/b","used_bytes":-0}]}`,
}

// TestSystemNumbersMatchEncodingJSON: the numbers the decoder reads while
// it checks system_info are encoding/json's reading of it.
func TestSystemNumbersMatchEncodingJSON(t *testing.T) {
	accepted := 0
	for _, s := range hostileSystemInfos {
		if checkSystemNumbers(t, []byte(s)) {
			accepted++
		}
	}
	// The seeds are meant to reach the comparison, not only Decode's
	// syntax errors.
	if accepted < len(hostileSystemInfos)/2 {
		t.Errorf("Decode accepted only %d of %d seeds", accepted, len(hostileSystemInfos))
	}
	// system_info as exporters send it, then mutated byte by byte: every
	// cut, and random substitutions of JSON's structural bytes.
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 50 {
		h := gen.NewHost(i, 5, false, time.Second)
		for range i % 7 {
			h.Step()
		}
		raw := []byte(h.SystemInfo())
		if !checkSystemNumbers(t, raw) {
			t.Fatalf("Decode refused exporter system_info %s", raw)
		}
		for cut := range len(raw) {
			checkSystemNumbers(t, raw[:cut])
		}
		const alphabet = `{}[]",:\ 0-.eEnulltrue1aZ` + "\xff\u212a"
		for range 300 {
			m := []byte(string(raw))
			for range 1 + rng.IntN(3) {
				m[rng.IntN(len(m))] = alphabet[rng.IntN(len(alphabet))]
			}
			checkSystemNumbers(t, m)
		}
	}
}

// FuzzSystemNumbers: go test -run '^$' -fuzz FuzzSystemNumbers ./aggregator/internal/ingest
func FuzzSystemNumbers(f *testing.F) {
	for _, s := range hostileSystemInfos {
		f.Add([]byte(s))
	}
	f.Add([]byte(gen.NewHost(1, 1, false, time.Second).SystemInfo()))
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkSystemNumbers(t, raw)
	})
}
