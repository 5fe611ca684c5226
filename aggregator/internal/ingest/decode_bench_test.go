package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/procscope/procscope/tools/loadgen/gen"
)

// evolveBody is the body the load generator's default workload (-workload
// evolve) sends for one host of n processes after a few pushes (300 in the
// load generator): processes without
// command lines, members in the exporter's order, encoding/json's output.
// It is made the way the load generator makes it (head member + tail
// member, gunzipped here as the aggregator does), so the decoder sees the
// exact bytes.
func evolveBody(tb testing.TB, host string, n, steps int) []byte {
	tb.Helper()
	h := gen.NewHost(n, gen.Seed(host, 0), false, 5*time.Second)
	for range steps {
		h.Step()
	}
	tail, err := gen.CompressTail(h.SystemInfo(), h.Processes(), gzip.BestSpeed)
	if err != nil {
		tb.Fatal(err)
	}
	gz := append(gen.HeadMember(gen.QuoteHostname(host), "2026-11-25T17:00:05.000Z"), tail...)
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		tb.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// exporterBody is evolveBody with the two fields a real Linux exporter adds
// that the load generator leaves out: create_time (RFC 3339 with trimmed
// nanoseconds, time.RFC3339Nano) and memory_percent (a full-precision
// float). It shows what the slower paths (create_time parsing, strconv for
// 17-digit floats) cost.
func exporterBody(tb testing.TB) []byte {
	tb.Helper()
	var s snapshot.Snapshot
	if err := json.Unmarshal(evolveBody(tb, "web-1", 300, 3), &s); err != nil {
		tb.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	boot := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	for i := range s.Processes {
		p := &s.Processes[i]
		// Jiffies are 10 ms: a start time has at most two decimals.
		start := boot.Add(time.Duration(r.Int64N(int64(5*24*time.Hour/(10*time.Millisecond)))) * 10 * time.Millisecond)
		p.CreateTime = start.Format(time.RFC3339Nano)
		p.MemoryPercent = p.MemoryMB * (1 << 20) / 16777216000 * 100
	}
	b, err := json.Marshal(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkDecode measures Decode on three 300-process bodies against
// github.com/valyala/fastjson (what VictoriaMetrics parses JSON with)
// decoding and validating the same document (fastjsonDecode below, with
// and without fastjson.Validate, which the contract's strictness needs:
// fastjson's parser alone takes NaN, 1e, raw control characters), and
// against encoding/json into the same types (which does less: no presence
// checks, no duplicate pids). Compare them inside one run: the machine is
// shared, so absolute figures drift between runs. The names are key=value
// so that benchstat can put the decoders side by side:
//
//	go test -run '^$' -bench 'Decode/' -benchmem -count 8 ./aggregator/internal/ingest >/tmp/dec.txt
//	benchstat -col /dec /tmp/dec.txt
func BenchmarkDecode(b *testing.B) {
	for _, body := range benchBodies(b) {
		in := body.in
		b.Run("body="+body.name+"/dec=procscope", func(b *testing.B) {
			benchDecode(b, in, func() error { _, err := Decode(in, DecodeOptions{}); return err })
		})
		b.Run("body="+body.name+"/dec=fastjson", func(b *testing.B) {
			var fj fastjsonDecoder
			benchDecode(b, in, func() error { _, err := fj.decode(in, DecodeOptions{}, true); return err })
		})
		b.Run("body="+body.name+"/dec=fastjson_novalidate", func(b *testing.B) {
			var fj fastjsonDecoder
			benchDecode(b, in, func() error { _, err := fj.decode(in, DecodeOptions{}, false); return err })
		})
		b.Run("body="+body.name+"/dec=encoding_json_baseline", func(b *testing.B) {
			benchDecode(b, in, func() error { var s snapshot.Snapshot; return json.Unmarshal(in, &s) })
		})
	}
}

type benchBody struct {
	name string
	in   []byte
}

func benchBodies(tb testing.TB) []benchBody {
	return []benchBody{
		// The load generator's realistic default: no command lines.
		{"evolve", evolveBody(tb, "web-1", 300, 3)},
		// The old benchmark body: command lines on every process.
		{"cmdline", gen.Body(300, "web-1", "2026-11-25T17:00:00.123Z", true)},
		// What a Linux exporter sends: create_time and memory_percent too.
		{"exporter", exporterBody(tb)},
	}
}

// TestFastjsonDecoderIsTheSame: on the benchmark's bodies, and on bodies
// that break a rule, the fastjson decoder gives Decode's values and
// outcome, so BenchmarkDecode compares like with like.
func TestFastjsonDecoderIsTheSame(t *testing.T) {
	var fj fastjsonDecoder
	for _, body := range benchBodies(t) {
		want, err := Decode(body.in, DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, validate := range []bool{true, false} {
			got, err := fj.decode(body.in, DecodeOptions{}, validate)
			if err != nil {
				t.Fatalf("%s: %v", body.name, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s (validate %v): fastjson decoded\n%+v\nDecode\n%+v", body.name, validate, got.Snapshot.Processes[:2], want.Snapshot.Processes[:2])
			}
		}
	}
	proc := func(fields string) []byte { return []byte(body(`[{` + fields + `}]`)) }
	for _, in := range [][]byte{
		proc(`"pid":1.0,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0`),
		proc(`"pid":-1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0`),
		proc(`"pid":1,"ppid":0,"name":"a","cpu_percent":-1,"memory_mb":0`),
		proc(`"pid":1,"ppid":0,"name":"a","cpu_percent":0`),
		proc(`"pid":1,"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":0`),
		proc(`"pid":1,"ppid":0,"name":"a","cpu_percent":0,"memory_mb":NaN`),
		[]byte(body(`[` + okProc + `,` + okProc + `]`)),
		[]byte(body(`null`)),
		[]byte(`{"hostname":"","captured_at":"2026-11-25T17:00:00Z","system_info":{},"processes":[]}`),
		[]byte(`{"hostname":"a","captured_at":"yesterday","system_info":{},"processes":[]}`),
	} {
		_, want := Decode(in, DecodeOptions{})
		_, got := fj.decode(in, DecodeOptions{}, true)
		if (got == nil) != (want == nil) {
			t.Errorf("%s: fastjson %v, Decode %v", in, got, want)
		}
	}
}

// fastjsonDecoder is Decode written on github.com/valyala/fastjson, for
// BenchmarkDecode only: the same rules and the same values, with
// fastjson's own wording for syntax errors. It takes the same shortcuts
// as Decode where fastjson leaves room (strings copied into shared chunks,
// status words as constants, create_time without time.Parse, a reused
// process slice) so that the comparison is of the parsers. It does not
// keep system_info byte for byte (fastjson re-marshals it, which gives the
// same bytes for the compact ASCII bodies benchmarked), nor the 403 before
// 400 ordering when a syntax error comes before the hostname.
type fastjsonDecoder struct {
	p fastjson.Parser
}

func (fj *fastjsonDecoder) decode(data []byte, opts DecodeOptions, validate bool) (*Decoded, error) {
	if opts.MaxProcesses <= 0 {
		opts.MaxProcesses = DefaultMaxProcesses
	}
	invalid := func(format string, args ...any) error {
		return &DecodeError{Kind: KindInvalid, Msg: fmt.Sprintf(format, args...)}
	}
	if validate {
		if err := fastjson.ValidateBytes(data); err != nil {
			return &Decoded{}, invalid("invalid JSON: %v", err)
		}
	}
	v, err := fj.p.ParseBytes(data)
	if err != nil {
		return &Decoded{}, invalid("invalid JSON: %v", err)
	}
	obj, err := v.Object()
	if err != nil {
		return &Decoded{}, invalid("the body must be a JSON object")
	}
	out := &Decoded{}
	var d decoder // for makeString and the cmdline slab
	var first, tooLarge error
	bad := func(format string, args ...any) {
		if first == nil {
			first = invalid(format, args...)
		}
	}
	str := func(b []byte) string {
		if !utf8.Valid(b) {
			b = fixUTF8(nil, b)
		}
		return d.makeString(b)
	}
	seen := 0
	var cbErr error
	obj.Visit(func(key []byte, v *fastjson.Value) {
		if cbErr != nil {
			return
		}
		var bit int
		switch string(key) {
		case "hostname":
			bit = topHostname
		case "captured_at":
			bit = topCapturedAt
		case "system_info":
			bit = topSystemInfo
		case "processes":
			bit = topProcesses
		default:
			return
		}
		if seen&bit != 0 {
			bad("duplicate field %q", key)
			return
		}
		seen |= bit
		switch bit {
		case topHostname:
			b, err := v.StringBytes()
			if err != nil {
				bad("hostname must be a string")
				return
			}
			h := string(b)
			if !utf8.ValidString(h) {
				h = string(fixUTF8(nil, b))
			}
			if msg := snapshot.CheckHostname(h); msg != "" {
				bad("%s", msg)
				return
			}
			out.Snapshot.Hostname = h
			out.HostnameSeen = true
			if opts.OnHostname != nil {
				cbErr = opts.OnHostname(h)
			}
		case topCapturedAt:
			b, err := v.StringBytes()
			if err != nil {
				bad("captured_at must be an RFC 3339 string")
				return
			}
			t, msg := snapshot.ParseTime(str(b))
			if msg != "" {
				bad("captured_at: %s", msg)
				return
			}
			out.CapturedAt = t
			out.Snapshot.CapturedAt = t.Format(snapshot.CapturedAtFormat)
		case topSystemInfo:
			if v.Type() != fastjson.TypeObject {
				bad("system_info must be a JSON object")
				return
			}
			out.Snapshot.SystemInfo = v.MarshalTo(nil)
			fastjsonSystemNumbers(v, &out.System)
		case topProcesses:
			arr, err := v.Array()
			if err != nil {
				bad("processes must be an array")
				return
			}
			if len(arr) > opts.MaxProcesses {
				tooLarge = &DecodeError{Kind: KindTooLarge, Msg: fmt.Sprintf("more than %d processes in one snapshot", opts.MaxProcesses)}
				return
			}
			procs := opts.Processes[:0]
			if cap(procs) < len(arr) {
				procs = make([]snapshot.Process, 0, len(arr))
			}
			procs = procs[:len(arr)]
			for i, pv := range arr {
				fj.process(&d, &procs[i], i, pv, bad, str)
			}
			if first == nil && !pidsAscending(procs) {
				pids := make([]int64, len(procs))
				for i := range procs {
					pids[i] = procs[i].PID
				}
				slices.Sort(pids)
				for i := 1; i < len(pids); i++ {
					if pids[i] == pids[i-1] {
						bad("duplicate pid %d", pids[i])
						return
					}
				}
			}
			if first == nil {
				out.Snapshot.Processes = procs
			}
		}
	})
	if cbErr != nil {
		return out, cbErr
	}
	for _, f := range []struct {
		bit  int
		name string
	}{{topHostname, "hostname"}, {topCapturedAt, "captured_at"}, {topSystemInfo, "system_info"}, {topProcesses, "processes"}} {
		if seen&f.bit == 0 {
			bad("missing required field %q", f.name)
		}
	}
	if tooLarge != nil {
		return out, tooLarge
	}
	if first != nil {
		return out, first
	}
	return out, nil
}

func (fj *fastjsonDecoder) process(d *decoder, p *snapshot.Process, i int, v *fastjson.Value, bad func(string, ...any), str func([]byte) string) {
	o, err := v.Object()
	if err != nil {
		bad("processes[%d] must be an object", i)
		return
	}
	seen := 0
	o.Visit(func(key []byte, v *fastjson.Value) {
		bit, name := processField(key)
		if bit == 0 {
			return
		}
		if seen&bit != 0 {
			bad("processes[%d]: duplicate field %q", i, name)
			return
		}
		seen |= bit
		null := v.Type() == fastjson.TypeNull
		switch bit {
		case pPID, pPPID, pThreads:
			if bit == pThreads && null {
				return
			}
			n, err := v.Int64()
			limit := int64(math.MaxInt64)
			if bit == pThreads {
				limit = math.MaxInt32
			}
			if err != nil || n < 0 || n > limit {
				bad("processes[%d].%s must be a non-negative integer", i, name)
				return
			}
			switch bit {
			case pPID:
				p.PID = n
			case pPPID:
				p.PPID = n
			default:
				p.NumThreads = int32(n)
			}
		case pCPU, pMem, pMemPct:
			if bit == pMemPct && null {
				return
			}
			f, err := v.Float64()
			if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
				bad("processes[%d].%s must be a non-negative number", i, name)
				return
			}
			switch bit {
			case pCPU:
				p.CPUPercent = f
			case pMem:
				p.MemoryMB = f
			default:
				p.MemoryPercent = f
			}
		default:
			if null && bit != pName {
				seen &^= bit
				return
			}
			b, err := v.StringBytes()
			if err != nil {
				bad("processes[%d].%s must be a string", i, name)
				return
			}
			switch bit {
			case pName:
				p.Name = str(b)
			case pCmdline:
				if len(d.cmdlines) == cap(d.cmdlines) {
					d.cmdlines = make([]string, 0, max(64, cap(d.cmdlines)*2))
				}
				d.cmdlines = append(d.cmdlines, str(b))
				p.Cmdline = &d.cmdlines[len(d.cmdlines)-1]
			case pUsername:
				p.Username = str(b)
			case pStatus:
				if p.Status = status(b); p.Status == "" {
					p.Status = str(b)
				}
			case pCreate:
				var buf [canonicalTimeLen]byte
				if canonicalTime(b, &buf) {
					p.CreateTime = d.makeString(buf[:])
					return
				}
				t, msg := snapshot.ParseTime(str(b))
				if msg != "" {
					bad("processes[%d].create_time: %s", i, msg)
					return
				}
				p.CreateTime = t.Format(snapshot.CapturedAtFormat)
			}
		}
	})
	for _, f := range [...]struct {
		bit  int
		name string
	}{{pPID, "pid"}, {pPPID, "ppid"}, {pName, "name"}, {pCPU, "cpu_percent"}, {pMem, "memory_mb"}} {
		if seen&f.bit == 0 {
			bad("processes[%d]: missing required field %q", i, f.name)
			return
		}
	}
}

// benchDecode times decode on in. Besides wall time it reports cpu-ns/op,
// the process's CPU time (GC included) per decode: other people's load on
// the shared machine stretches wall time, much less CPU time.
// BenchmarkDecodeAttributed is Decode on a body where every process has
// attribution and most have I/O rates (attributedBody), the case where
// each process also takes a snapshot.ProcessExt:
//
//	go test -run '^$' -bench 'DecodeAttributed' -benchmem ./aggregator/internal/ingest
func BenchmarkDecodeAttributed(b *testing.B) {
	in := attributedBody(b)
	benchDecode(b, in, func() error { _, err := Decode(in, DecodeOptions{}); return err })
}

func benchDecode(b *testing.B, in []byte, decode func() error) {
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	cpu0, ok := processCPU()
	for b.Loop() {
		if err := decode(); err != nil {
			b.Fatal(err)
		}
	}
	if cpu1, ok1 := processCPU(); ok && ok1 {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
}

// fastjsonSystemNumbers reads what Decode reads of system_info, by exact
// keys only (the benchmark's bodies have no duplicate or case-folded keys).
func fastjsonSystemNumbers(v *fastjson.Value, out *SystemNumbers) {
	num := func(keys ...string) Num {
		x := v.Get(keys...)
		if x == nil || x.Type() != fastjson.TypeNumber {
			return Num{}
		}
		f, err := x.Float64()
		return Num{V: f, OK: err == nil}
	}
	out.CPU = num("cpu", "usage_percent")
	out.MemUsed, out.MemAvail = num("memory", "used_bytes"), num("memory", "available_bytes")
	out.SwapUsed = num("swap", "used_bytes")
	out.Load1, out.Load5, out.Load15 = num("load_average", "load1"), num("load_average", "load5"), num("load_average", "load15")
	out.ProcessCount = num("process_count")
	for _, f := range v.GetArray("filesystems") {
		var fs FSNumber
		if mp := f.GetStringBytes("mountpoint"); mp != nil {
			fs.Mountpoint = string(mp)
		}
		if u := f.Get("used_bytes"); u != nil && u.Type() == fastjson.TypeNumber {
			x, err := u.Float64()
			fs.Used = Num{V: x, OK: err == nil}
		}
		out.Filesystems = append(out.Filesystems, fs)
	}
}
