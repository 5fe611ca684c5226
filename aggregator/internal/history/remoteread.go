package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Reader reads stored series for the API. The embedded storage (*History)
// and a Prometheus-compatible query API (*RemoteReader) give the same
// answers for the same samples, so the handlers do not care which.
type Reader interface {
	QueryWith(ctx context.Context, metric string, match map[string]string, from, to time.Time, opts QueryOptions) ([]Series, int64, error)
}

var _ Reader = (*History)(nil)

// ErrRemote wraps a failure of the remote query API (unreachable, an
// error answer, an answer that does not parse): the API answers 503.
var ErrRemote = errors.New("history: remote query API")

// Defaults of RemoteOptions.
const (
	DefaultRemoteTimeout       = 30 * time.Second
	DefaultRemoteMaxBytes      = 64 << 20
	defaultRemoteMaxIdleConns  = 4
	remoteProbeTime            = 1_000_000 // Unix seconds of the probe; any time does
	remoteErrorBodyBytes       = 512
	remoteUserAgent            = "procscope-aggregator"
	remoteMaxConcurrentQueries = 4
)

// RemoteOptions configure a RemoteReader.
type RemoteOptions struct {
	// URL is the base of a Prometheus-compatible query API: the part
	// before /api/v1/query_range (http://prometheus:9090,
	// http://victoria-metrics:8428, http://vmselect:8481/select/0/prometheus,
	// http://mimir:8080/prometheus, http://thanos-query:10902).
	URL string
	// BasicAuthUser and BasicAuthPassword, or BearerToken, authenticate
	// every request; they are never logged.
	BasicAuthUser, BasicAuthPassword string
	BearerToken                      string
	// Timeout bounds one request (DefaultRemoteTimeout).
	Timeout time.Duration
	// MaxResponseBytes bounds one answer's body (DefaultRemoteMaxBytes);
	// a larger one is refused as too many points.
	MaxResponseBytes int64
	Logger           *slog.Logger
}

// RemoteReader reads history from a Prometheus-compatible query API with
// /api/v1/query (raw samples of a range selector, per-series counts) and
// /api/v1/query_range (one bucket a step), shaped like the embedded
// storage's answers: the same buckets (aligned to the epoch, stamped with
// their start), the same averages (sum / count, not avg_over_time, whose
// running mean rounds differently), the same bounds.
type RemoteReader struct {
	base   *url.URL
	o      RemoteOptions
	client *http.Client
	log    *slog.Logger
	sem    chan struct{} // bounds concurrent requests to the TSDB

	// requests and failures count the requests to the TSDB, for the
	// aggregator's /metrics.
	requests, failures atomic.Uint64

	mu sync.Mutex
	// closed: the engine's range selectors include their start
	// ([t-w, t], Prometheus 2); else (t-w, t] (VictoriaMetrics,
	// Prometheus 3). Learned once by probe.
	closed, probed bool
}

// NewRemoteReader checks the options; it does not contact the URL (the
// TSDB may start after the aggregator).
func NewRemoteReader(o RemoteOptions) (*RemoteReader, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("invalid URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("want http(s)://host[/path]")
	}
	if u.User != nil {
		return nil, errors.New("must not hold user:password; use --history.basic-auth-file")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("no query or fragment, only the base of /api/v1/query_range")
	}
	if o.BearerToken != "" && o.BasicAuthUser != "" {
		return nil, errors.New("basic auth and a bearer token: keep one")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if o.Timeout <= 0 {
		o.Timeout = DefaultRemoteTimeout
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultRemoteMaxBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &RemoteReader{
		base: u, o: o, log: o.Logger, sem: make(chan struct{}, remoteMaxConcurrentQueries),
		client: &http.Client{
			Timeout: o.Timeout,
			// Credentials go to the configured URL only.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: defaultRemoteMaxIdleConns},
		},
	}, nil
}

// URL is the base URL, for logs.
func (r *RemoteReader) URL() string { return r.base.String() }

// QueryWith answers as History.QueryWith does, from the remote API.
func (r *RemoteReader) QueryWith(ctx context.Context, metric string, match map[string]string, from, to time.Time, opts QueryOptions) ([]Series, int64, error) {
	if to.Before(from) {
		return nil, 0, errors.New("history: query range ends before it starts")
	}
	if opts.Step < 0 || opts.AutoStep < 0 || (opts.MaxRaw > 0 && opts.AutoStep == 0) {
		return nil, 0, errors.New("history: invalid query options")
	}
	if opts.MaxSeries <= 0 {
		opts.MaxSeries = maxSeriesPerQuery
	}
	if err := r.probe(ctx); err != nil {
		return nil, 0, err
	}
	sel := selector(metric, match)
	lo, hi := from.UnixMilli(), to.UnixMilli()
	if opts.Step > 0 {
		out, err := r.folded(ctx, sel, lo, hi, opts.Step, opts)
		return out, opts.Step, err
	}
	// Raw points unless a series has more than MaxRaw of them: count
	// first, so a long range never brings its raw samples over the wire.
	if opts.MaxRaw > 0 {
		counts, err := r.instant(ctx, "count_over_time("+sel+r.window(lo, hi)+")", hi, opts)
		if err != nil {
			return nil, 0, err
		}
		for _, s := range counts {
			if len(s.Points) > 0 && s.Points[0].V > float64(opts.MaxRaw) {
				out, err := r.folded(ctx, sel, lo, hi, opts.AutoStep, opts)
				return out, opts.AutoStep, err
			}
		}
	}
	series, err := r.instant(ctx, sel+r.window(lo, hi), hi, opts)
	if err != nil {
		return nil, 0, err
	}
	total := 0
	for i := range series {
		// A closed engine also returns a sample at exactly from-w.
		pts := series[i].Points
		series[i].Points = pts[sortIndex(pts, lo):]
		total += len(series[i].Points)
	}
	if opts.MaxPoints > 0 && total > opts.MaxPoints {
		return nil, 0, fmt.Errorf("%w (more than %d)", ErrTooManyPoints, opts.MaxPoints)
	}
	return finishSeries(series), 0, nil
}

// sortIndex is the first index of pts (sorted by T) with T >= t.
func sortIndex(pts []Point, t int64) int {
	i, _ := slices.BinarySearchFunc(pts, t, func(p Point, t int64) int { return int(min(max(p.T-t, -1), 1)) })
	return i
}

// window is the range selector covering [lo, hi] (ms) evaluated at hi.
func (r *RemoteReader) window(lo, hi int64) string {
	w := hi - lo
	if !r.closed {
		w++ // (hi-w, hi] must hold lo
	}
	if w <= 0 {
		// A closed engine asked for one instant: [hi-1ms, hi]; the
		// caller drops the sample before lo.
		w = 1
	}
	return "[" + strconv.FormatInt(w, 10) + "ms]"
}

// folded reads [lo, hi] folded into epoch-aligned buckets of step ms:
// the buckets wholly inside the range with one query_range evaluated at
// each bucket's last millisecond, the partial ones at either end with an
// instant query over their part of the range.
func (r *RemoteReader) folded(ctx context.Context, sel string, lo, hi, step int64, opts QueryOptions) ([]Series, error) {
	agg := func(w string) string {
		if opts.Agg == AggMax {
			return "max_over_time(" + sel + w + ")"
		}
		return "sum_over_time(" + sel + w + ") / count_over_time(" + sel + w + ")"
	}
	first, last := floorDiv(lo, step)*step, floorDiv(hi, step)*step
	acc := map[string]*Series{}
	var order []string
	add := func(ss []Series, bucket func(t int64) int64) {
		for _, s := range ss {
			k := labelsKey(s.Labels)
			a := acc[k]
			if a == nil {
				a = &Series{Labels: s.Labels}
				acc[k] = a
				order = append(order, k)
			}
			for _, p := range s.Points {
				a.Points = append(a.Points, Point{T: bucket(p.T), V: p.V})
			}
		}
	}
	at := func(b int64) func(int64) int64 { return func(int64) int64 { return b } }
	// Whole buckets: [b, b+step-1] for b in [fullLo, fullHi].
	fullLo, fullHi := first, last
	if first < lo {
		fullLo += step
	}
	if last+step-1 > hi {
		fullHi -= step
	}
	if first < lo || (first == last && last+step-1 > hi) {
		// The first bucket is partial: [lo, min(first+step-1, hi)].
		end := min(first+step-1, hi)
		ss, err := r.instant(ctx, agg(r.window(lo, end)), end, opts)
		if err != nil {
			return nil, err
		}
		add(ss, at(first))
	}
	if fullLo <= fullHi {
		w := step
		if r.closed {
			w = step - 1
		}
		if w > 0 {
			ss, err := r.queryRange(ctx, agg("["+strconv.FormatInt(w, 10)+"ms]"), fullLo+step-1, fullHi+step-1, step, opts)
			if err != nil {
				return nil, err
			}
			add(ss, func(t int64) int64 { return t + 1 - step })
		} else {
			// A 1 ms step on a closed engine: each bucket is one instant,
			// read raw.
			ss, err := r.instant(ctx, sel+r.window(fullLo, fullHi), fullHi, opts)
			if err != nil {
				return nil, err
			}
			for i := range ss {
				ss[i].Points = ss[i].Points[sortIndex(ss[i].Points, fullLo):]
			}
			add(ss, func(t int64) int64 { return t })
		}
	}
	if last > first && last+step-1 > hi {
		// The last bucket is partial: [last, hi].
		ss, err := r.instant(ctx, agg(r.window(last, hi)), hi, opts)
		if err != nil {
			return nil, err
		}
		add(ss, at(last))
	}
	if len(acc) > opts.MaxSeries {
		return nil, fmt.Errorf("%w (more than %d)", ErrTooManySeries, opts.MaxSeries)
	}
	out := make([]Series, 0, len(acc))
	total := 0
	for _, k := range order {
		s := acc[k]
		slices.SortFunc(s.Points, func(a, b Point) int { return int(min(max(a.T-b.T, -1), 1)) })
		s.Points = slices.CompactFunc(s.Points, func(a, b Point) bool { return a.T == b.T })
		total += len(s.Points)
		out = append(out, *s)
	}
	if opts.MaxPoints > 0 && total > opts.MaxPoints {
		return nil, fmt.Errorf("%w (more than %d)", ErrTooManyPoints, opts.MaxPoints)
	}
	return finishSeries(out), nil
}

// finishSeries drops empty series and orders them as sortSeries does.
func finishSeries(ss []Series) []Series {
	return sortSeries(slices.DeleteFunc(ss, func(s Series) bool { return len(s.Points) == 0 }))
}

// sortSeries orders the series of an answer by their labels (names
// sorted, then name and value compared in turn), whichever storage they
// come from: the embedded one's internal order is VictoriaMetrics' own
// (some label names, such as "name", sort first), which no query API shows.
func sortSeries(ss []Series) []Series {
	type keyed struct {
		key string
		s   Series
	}
	ks := make([]keyed, len(ss))
	for i, s := range ss {
		ks[i] = keyed{labelsKey(s.Labels), s}
	}
	slices.SortFunc(ks, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	for i := range ks {
		ss[i] = ks[i].s
	}
	return ss
}

func labelsKey(l map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(l)) {
		b.WriteString(strconv.Quote(k))
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l[k]))
		b.WriteByte(',')
	}
	return b.String()
}

// selector is metric{k="v",...} with every value an exact match, quoted:
// hostile text (a hostname, a create_time from the query string) stays a
// string, never a regexp or a piece of PromQL. Values are capped as they
// were written (capLabelFor).
func selector(metric string, match map[string]string) string {
	var b strings.Builder
	b.WriteString(metric)
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(match)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(promQuote(capLabelFor(k, match[k])))
	}
	b.WriteByte('}')
	return b.String()
}

// promQuote quotes s for PromQL and MetricsQL: both read a double-quoted
// string with Go's escapes. Only \\, \" and the control characters are
// escaped (as \xHH); every other rune goes as is, which both parsers take
// (strconv.Quote's \u escapes of unprintable runes are not read by every
// MetricsQL version).
func promQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// probe learns once whether the engine's range selectors include their
// start: a subquery of a constant at 1 s steps over [t-2s, t] has three
// points where the start is included and two where it is not.
func (r *RemoteReader) probe(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.probed {
		return nil
	}
	ss, err := r.instant(ctx, "count_over_time(vector(1)[2s:1s])", remoteProbeTime*1000, QueryOptions{MaxSeries: 1})
	if err != nil {
		return err
	}
	if len(ss) != 1 || len(ss[0].Points) != 1 || (ss[0].Points[0].V != 2 && ss[0].Points[0].V != 3) {
		return fmt.Errorf("%w: unexpected answer to the range probe (%d series)", ErrRemote, len(ss))
	}
	r.closed, r.probed = ss[0].Points[0].V == 3, true
	r.log.Info("history read from a remote query API", "url", r.base.Redacted(), "range_includes_start", r.closed)
	return nil
}

// instant runs /api/v1/query at t (ms).
func (r *RemoteReader) instant(ctx context.Context, q string, t int64, opts QueryOptions) ([]Series, error) {
	v := url.Values{"query": {q}, "time": {promTime(t)}, "nocache": {"1"}}
	return r.do(ctx, "/api/v1/query", v, opts)
}

// queryRange runs /api/v1/query_range over [start, end] (ms) every step.
func (r *RemoteReader) queryRange(ctx context.Context, q string, start, end, step int64, opts QueryOptions) ([]Series, error) {
	v := url.Values{"query": {q}, "start": {promTime(start)}, "end": {promTime(end)},
		"step": {strconv.FormatInt(step, 10) + "ms"}, "nocache": {"1"}}
	return r.do(ctx, "/api/v1/query_range", v, opts)
}

// promTime is t (ms) as the API's decimal seconds, exact.
func promTime(t int64) string {
	sign := ""
	if t < 0 {
		sign, t = "-", -t
	}
	return fmt.Sprintf("%s%d.%03d", sign, t/1000, t%1000)
}

// promResponse is the query API's envelope; Result is a vector or matrix.
type promResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  []json.RawMessage `json:"value"`  // vector: [t, "v"]
			Values [][2]any          `json:"values"` // matrix: [[t, "v"], ...]
		} `json:"result"`
	} `json:"data"`
}

// do POSTs the query (a long selector fits no URL limit) and decodes the
// answer into series without __name__, bounded in bytes and in series.
func (r *RemoteReader) do(ctx context.Context, path string, v url.Values, opts QueryOptions) (out []Series, err error) {
	r.requests.Add(1)
	defer func() {
		if err != nil {
			r.failures.Add(1)
		}
	}()
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-r.sem }()
	u := *r.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(v.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRemote, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", remoteUserAgent)
	switch {
	case r.o.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+r.o.BearerToken)
	case r.o.BasicAuthUser != "":
		req.SetBasicAuth(r.o.BasicAuthUser, r.o.BasicAuthPassword)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is logged at start; not on every failure
		}
		return nil, fmt.Errorf("%w %s: %v", ErrRemote, r.base.Redacted(), err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, r.o.MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w %s: read answer: %v", ErrRemote, r.base.Redacted(), err)
	}
	if int64(len(body)) > r.o.MaxResponseBytes {
		return nil, fmt.Errorf("%w (the answer is larger than %d bytes)", ErrTooManyPoints, r.o.MaxResponseBytes)
	}
	var pr promResponse
	jerr := json.Unmarshal(body, &pr)
	if resp.StatusCode != http.StatusOK || jerr != nil || pr.Status != "success" {
		msg := pr.Error
		if msg == "" {
			msg = strings.TrimSpace(string(body[:min(len(body), remoteErrorBodyBytes)]))
		}
		if len(msg) > remoteErrorBodyBytes {
			msg = msg[:remoteErrorBodyBytes] + "..."
		}
		return nil, fmt.Errorf("%w %s answered %s: %s", ErrRemote, r.base.Redacted(), resp.Status, msg)
	}
	if len(pr.Data.Result) > opts.MaxSeries {
		return nil, fmt.Errorf("%w (more than %d)", ErrTooManySeries, opts.MaxSeries)
	}
	out = make([]Series, 0, len(pr.Data.Result))
	for _, res := range pr.Data.Result {
		delete(res.Metric, labelName)
		s := Series{Labels: res.Metric}
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		switch pr.Data.ResultType {
		case "vector":
			if len(res.Value) != 2 {
				return nil, fmt.Errorf("%w: malformed vector sample", ErrRemote)
			}
			p, err := parsePromPoint(res.Value[0], res.Value[1])
			if err != nil {
				return nil, err
			}
			s.Points = []Point{p}
		case "matrix":
			s.Points = make([]Point, 0, len(res.Values))
			for _, pv := range res.Values {
				p, err := parsePromPointAny(pv[0], pv[1])
				if err != nil {
					return nil, err
				}
				s.Points = append(s.Points, p)
			}
		default:
			return nil, fmt.Errorf("%w: unexpected result type %q", ErrRemote, pr.Data.ResultType)
		}
		out = append(out, s)
	}
	return out, nil
}

func parsePromPoint(t, v json.RawMessage) (Point, error) {
	var ta, va any
	if json.Unmarshal(t, &ta) != nil || json.Unmarshal(v, &va) != nil {
		return Point{}, fmt.Errorf("%w: malformed sample", ErrRemote)
	}
	return parsePromPointAny(ta, va)
}

// parsePromPointAny reads [unix_seconds, "value"]: the time a JSON number
// with at most millisecond precision, the value a string.
func parsePromPointAny(t, v any) (Point, error) {
	tf, ok := t.(float64)
	vs, ok2 := v.(string)
	if !ok || !ok2 {
		return Point{}, fmt.Errorf("%w: malformed sample", ErrRemote)
	}
	f, err := strconv.ParseFloat(vs, 64)
	if err != nil {
		return Point{}, fmt.Errorf("%w: malformed value %q", ErrRemote, truncate(vs))
	}
	return Point{T: int64(math.Round(tf * 1000)), V: f}, nil
}
