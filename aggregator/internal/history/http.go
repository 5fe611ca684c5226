package history

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/procscope/procscope/aggregator/internal/httpapi"
	"github.com/procscope/procscope/aggregator/internal/store"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// Limits of the read API.
const (
	// maxPoints is the most points one series carries in a response; a
	// longer range is downsampled (see seriesStep).
	maxPoints = 1000
	// maxAnswerPoints bounds the points of all series of one answer
	// together (~16 bytes each held, ~25 in JSON): 64 filesystems at
	// maxPoints each fit four times over.
	maxAnswerPoints = 250_000
	// maxRange bounds from..to so a typo cannot ask for centuries.
	maxRange = 400 * 24 * time.Hour
	// defaultRange is from's distance from to when from is absent.
	defaultRange = time.Hour
)

// hostMetrics maps the API's metric names to stored series names.
var hostMetrics = map[string]string{
	"cpu":        MetricCPU,
	"memory":     MetricMemoryUsed,
	"available":  MetricMemoryAvail,
	"swap":       MetricSwapUsed,
	"load1":      MetricLoad1,
	"load5":      MetricLoad5,
	"load15":     MetricLoad15,
	"processes":  MetricProcesses,
	"filesystem": MetricFilesystemUsed,
}

// Handler serves the history additions to the API. History may be nil
// (history disabled): the series routes then answer 404 and the snapshot
// routes, which only need the store, keep working.
type Handler struct {
	hist atomic.Pointer[History]
	// reader, when set (SetReader), serves the series routes instead of
	// hist's embedded storage: a remote query API.
	reader atomic.Pointer[readerBox]
	store  store.Store
	logger *slog.Logger
	now    func() time.Time
}

// NewHandler returns the handler; mount it with Mount and feed it with
// OnIngest. h may be nil and set later with SetHistory (the aggregator
// builds its router before it opens storage).
func NewHandler(h *History, st store.Store, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	hd := &Handler{store: st, logger: logger, now: time.Now}
	hd.hist.Store(h)
	return hd
}

// SetHistory sets (or, with nil, removes) the history the routes read and
// OnIngest writes.
func (hd *Handler) SetHistory(h *History) { hd.hist.Store(h) }

type readerBox struct{ r Reader }

// SetReader makes the series routes read from r (a RemoteReader) rather
// than from the history's embedded storage; nil undoes it. OnIngest still
// writes to the History.
func (hd *Handler) SetReader(r Reader) {
	if r == nil {
		hd.reader.Store(nil)
		return
	}
	hd.reader.Store(&readerBox{r: r})
}

// seriesReader is what the series routes read: the reader if set, else
// the embedded storage; nil while history is off or not open yet.
func (hd *Handler) seriesReader() Reader {
	if b := hd.reader.Load(); b != nil {
		return b.r
	}
	if h := hd.hist.Load(); h != nil && h.storage != nil {
		return h
	}
	return nil
}

// OnIngest is the API's ingest hook: it records the series of a snapshot
// that was newly stored. A repeated ingest (Created false) stored nothing
// new and is ignored, so a retrying exporter does not write twice.
func (hd *Handler) OnIngest(_ context.Context, req *store.IngestRequest, res store.IngestResult) {
	if !res.Created {
		return
	}
	if h := hd.hist.Load(); h != nil {
		h.Add(req)
	}
}

// Mount registers the routes on r, the API's /api/v1 sub-router (its
// middleware for trailing slashes, 405 bodies and auth applies). The time
// travel routes /snapshots/at and /hosts/{hostname}/snapshots belong to the
// api package, which serves them from the store alone.
//
// Answers are never cached (Cache-Control: no-store): a series' last point
// and a diff against the latest snapshot change within seconds.
func (hd *Handler) Mount(r chi.Router) {
	ad := httpapi.Adapter{Log: hd.logger, NoStore: true}
	r.With(httpapi.Route("host_series")).Get("/hosts/{hostname}/series", ad.Handle(hd.hostSeries))
	r.With(httpapi.Route("process_series")).Get("/hosts/{hostname}/processes/{pid}/series", ad.Handle(hd.processSeries))
	r.With(httpapi.Route("diff")).Get("/snapshots/{id}/diff", ad.Handle(hd.diff))
}

// knownHost answers 404 for a host the store has never seen. A host known
// only to history (the store pruned it) still reads as unknown: it has
// been deleted.
func (hd *Handler) knownHost(ctx context.Context, hostname string) error {
	if hd.store == nil {
		return nil
	}
	if _, err := hd.store.Latest(ctx, hostname); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return httpapi.NotFound("unknown host %q", hostname)
		}
		return err
	}
	return nil
}

// parseTime accepts RFC 3339 or Unix seconds (fractions allowed).
func parseTime(name, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
		return time.Time{}, httpapi.BadRequest("invalid %s %q: want RFC 3339 or Unix seconds", name, truncate(s))
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return capLabel(s[:64]) + "..."
	}
	return s
}

// seriesParams are the query parameters the series routes share, parsed.
type seriesParams struct {
	from, to time.Time
	step     int64 // milliseconds; 0: raw points while a series fits maxPoints
	agg      Aggregation
}

// parseSeriesParams reads from and to (defaults: to=now, from=to-1h), step
// and agg. Every error is a 400 that names the parameter. The range it
// returns is at most maxRange long, and a step at least the range over
// maxPoints (and at most maxRange), so no series of the answer holds more
// than maxPoints+1 points whatever was asked (the step in the answer says
// which was used: the way Grafana's maxDataPoints widens a panel's step).
func parseSeriesParams(q url.Values, now time.Time) (p seriesParams, err error) {
	p.to = now.UTC()
	if s := q.Get("to"); s != "" {
		if p.to, err = parseTime("to", s); err != nil {
			return p, err
		}
	}
	p.from = p.to.Add(-defaultRange)
	if s := q.Get("from"); s != "" {
		if p.from, err = parseTime("from", s); err != nil {
			return p, err
		}
	}
	if p.to.Before(p.from) {
		return p, httpapi.BadRequest("from is after to")
	}
	if p.to.Sub(p.from) > maxRange {
		return p, httpapi.BadRequest("range longer than %d days", int(maxRange/(24*time.Hour)))
	}
	if p.step, err = seriesStep(q, p.from, p.to); err != nil {
		return p, err
	}
	p.agg, err = parseAgg(q)
	return p, err
}

// autoStep is the step (milliseconds) that folds [from, to] into at most
// maxPoints buckets.
func autoStep(from, to time.Time) int64 {
	return max((to.Sub(from).Milliseconds()+maxPoints-1)/maxPoints, 1)
}

// seriesStep decides the downsampling step in milliseconds: the requested
// step (a Go duration like "30s" or plain seconds), raised so that the
// range holds at most maxPoints steps; 0 (raw points) when no step is
// asked: QueryWith then folds with autoStep if a series has more than
// maxPoints raw points.
func seriesStep(q url.Values, from, to time.Time) (step int64, err error) {
	s := q.Get("step")
	if s == "" {
		return 0, nil
	}
	d, derr := time.ParseDuration(s)
	if derr != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || !(f > 0) || f > maxRange.Seconds() {
			return 0, httpapi.BadRequest("invalid step %q: want a duration like 30s or seconds", truncate(s))
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d <= 0 {
		return 0, httpapi.BadRequest("step must be positive")
	}
	if d > maxRange {
		return 0, httpapi.BadRequest("step longer than %d days", int(maxRange/(24*time.Hour)))
	}
	return max(d.Milliseconds(), autoStep(from, to)), nil
}

func parseAgg(q url.Values) (Aggregation, error) {
	switch q.Get("agg") {
	case "", "avg":
		return AggAvg, nil
	case "max":
		return AggMax, nil
	default:
		return 0, httpapi.BadRequest("invalid agg %q: want avg or max", truncate(q.Get("agg")))
	}
}

// SeriesJSON is one series in a response.
type SeriesJSON struct {
	Labels map[string]string `json:"labels"`
	// Values are [unix_seconds, value] pairs, oldest first.
	Values [][2]float64 `json:"values"`
}

// SeriesResponse is the body of the series routes.
type SeriesResponse struct {
	Metric   string       `json:"metric"`
	Hostname string       `json:"hostname"`
	PID      *int64       `json:"pid,omitempty"`
	From     string       `json:"from"`
	To       string       `json:"to"`
	Step     float64      `json:"step"` // seconds; 0 when points are raw
	Agg      string       `json:"agg,omitempty"`
	Series   []SeriesJSON `json:"series"`
}

// query reads one metric's series for the routes, folded so that the
// answer is bounded: at most maxPoints+1 points a series and
// maxAnswerPoints in all (a 400 beyond), at most maxSeriesPerQuery series.
func (hd *Handler) query(ctx context.Context, h Reader, metric string, match map[string]string, p seriesParams) ([]Series, int64, error) {
	series, step, err := h.QueryWith(ctx, metric, match, p.from, p.to, QueryOptions{
		Step: p.step, Agg: p.agg,
		MaxRaw: maxPoints, AutoStep: autoStep(p.from, p.to),
		MaxPoints: maxAnswerPoints,
	})
	switch {
	case errors.Is(err, ErrTooManyPoints):
		return nil, 0, httpapi.BadRequest("the answer would hold more than %d points: ask for a shorter range or a larger step", maxAnswerPoints)
	case errors.Is(err, ErrTooManySeries):
		return nil, 0, httpapi.BadRequest("more than %d series match: ask for a shorter range", maxSeriesPerQuery)
	case errors.Is(err, ErrRemote):
		hd.logger.Warn("history query failed", "err", err)
		return nil, 0, httpapi.Errorf(httpapi.KindUnavailable, "history is read from an external TSDB that failed to answer; try again, or see the aggregator's log")
	}
	return series, step, err
}

// seriesJSON is the series of an answer as JSON values.
func seriesJSON(series []Series) []SeriesJSON {
	out := make([]SeriesJSON, 0, len(series))
	for _, s := range series {
		vals := make([][2]float64, len(s.Points))
		for i, p := range s.Points {
			vals[i] = [2]float64{float64(p.T) / 1000, p.V}
		}
		out = append(out, SeriesJSON{Labels: s.Labels, Values: vals})
	}
	return out
}

func (hd *Handler) hostSeries(r *http.Request) (any, error) {
	host, err := httpapi.PathHostname(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	metric, name, err := parseMetric(q)
	if err != nil {
		return nil, err
	}
	p, err := parseSeriesParams(q, hd.now())
	if err != nil {
		return nil, err
	}
	h := hd.seriesReader()
	if h == nil {
		return nil, httpapi.NotFound("history is disabled on this aggregator")
	}
	if err := hd.knownHost(r.Context(), host); err != nil {
		return nil, err
	}
	series, step, err := hd.query(r.Context(), h, name, map[string]string{LabelHostname: host}, p)
	if err != nil {
		return nil, err
	}
	return SeriesResponse{
		Metric: metric, Hostname: host, From: formatTime(p.from), To: formatTime(p.to),
		Step: float64(step) / 1000, Agg: aggName(step, p.agg), Series: seriesJSON(series),
	}, nil
}

// parseMetric reads a host series' metric (default cpu): its name in the
// API and the stored series' name.
func parseMetric(q url.Values) (metric, stored string, err error) {
	metric = q.Get("metric")
	if metric == "" {
		metric = "cpu"
	}
	stored, ok := hostMetrics[metric]
	if !ok {
		return "", "", httpapi.BadRequest("unknown metric %q: want cpu, memory, available, swap, load1, load5, load15, processes or filesystem", truncate(metric))
	}
	return metric, stored, nil
}

// aggName is the answer's agg: empty for raw points.
func aggName(step int64, agg Aggregation) string {
	switch {
	case step == 0:
		return ""
	case agg == AggMax:
		return "max"
	default:
		return "avg"
	}
}

// ProcessSeriesResponse is the body of the process series route: one CPU
// and one RSS series per process that used the PID in the range (a reused
// PID has another create_time or name and so another series).
type ProcessSeriesResponse struct {
	Hostname string       `json:"hostname"`
	PID      int64        `json:"pid"`
	From     string       `json:"from"`
	To       string       `json:"to"`
	Step     float64      `json:"step"`
	Agg      string       `json:"agg,omitempty"`
	CPU      []SeriesJSON `json:"cpu"`    // cpu_percent, share of one core
	Memory   []SeriesJSON `json:"memory"` // resident bytes
}

func (hd *Handler) processSeries(r *http.Request) (any, error) {
	host, err := httpapi.PathHostname(r)
	if err != nil {
		return nil, err
	}
	pidStr, err := httpapi.PathParam(r, "pid")
	if err != nil {
		return nil, err
	}
	pid, err := parsePID(pidStr)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	p, err := parseSeriesParams(q, hd.now())
	if err != nil {
		return nil, err
	}
	match := map[string]string{LabelHostname: host, LabelPID: strconv.FormatInt(pid, 10)}
	if ct := q.Get("create_time"); ct != "" {
		match[LabelCreateTime] = ct
	}
	h := hd.seriesReader()
	if h == nil {
		return nil, httpapi.NotFound("history is disabled on this aggregator")
	}
	if err := hd.knownHost(r.Context(), host); err != nil {
		return nil, err
	}
	cpu, cpuStep, err := hd.query(r.Context(), h, MetricProcessCPU, match, p)
	if err != nil {
		return nil, err
	}
	mem, memStep, err := hd.query(r.Context(), h, MetricProcessRSS, match, p)
	if err != nil {
		return nil, err
	}
	// One step for both: when only one needed folding (it had more raw
	// points), the other's raw points (at most maxPoints a series) are
	// folded the same way.
	step := max(cpuStep, memStep)
	for _, ss := range [][]Series{cpu, mem} {
		for i := range ss {
			if cpuStep != memStep {
				ss[i].Points = Downsample(ss[i].Points, step, p.agg)
			}
		}
	}
	return ProcessSeriesResponse{
		Hostname: host, PID: pid, From: formatTime(p.from), To: formatTime(p.to),
		Step: float64(step) / 1000, Agg: aggName(step, p.agg), CPU: seriesJSON(cpu), Memory: seriesJSON(mem),
	}, nil
}

func parsePID(s string) (int64, error) {
	pid, err := strconv.ParseInt(s, 10, 64)
	if err != nil || pid < 0 {
		return 0, httpapi.BadRequest("invalid pid %q: want a non-negative integer", truncate(s))
	}
	return pid, nil
}

func parseID(name, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, httpapi.BadRequest("invalid %s %q: want a positive integer", name, truncate(s))
	}
	return id, nil
}

func (hd *Handler) diff(r *http.Request) (any, error) {
	idStr, err := httpapi.PathParam(r, "id")
	if err != nil {
		return nil, err
	}
	id, err := parseID("snapshot id", idStr)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	against := q.Get("against")
	if against == "" {
		return nil, httpapi.BadRequest("missing against: the id of the snapshot to compare with")
	}
	otherID, err := parseID("against", against)
	if err != nil {
		return nil, err
	}
	limit, err := parseDiffLimit(q.Get("limit"))
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	a, err := hd.meta(ctx, id)
	if err != nil {
		return nil, err
	}
	b, err := hd.meta(ctx, otherID)
	if err != nil {
		return nil, err
	}
	if a.Hostname != b.Hostname {
		return nil, httpapi.BadRequest("snapshots %d and %d are of different hosts", a.ID, b.ID)
	}
	older, newer := a, b
	if b.CapturedAt.Before(a.CapturedAt) || (b.CapturedAt.Equal(a.CapturedAt) && b.ID < a.ID) {
		older, newer = b, a
	}
	po, err := hd.processes(ctx, older.ID)
	if err != nil {
		return nil, err
	}
	pn, err := hd.processes(ctx, newer.ID)
	if err != nil {
		return nil, err
	}
	return DiffProcessesRAM(older.ID, po, newer.ID, pn, limit, ramMiB(newer.SystemInfo, older.SystemInfo)), nil
}

// ramMiB reads system_info.memory.total_bytes of the first snapshot that
// has it, in MiB (0: none does).
func ramMiB(infos ...json.RawMessage) float64 {
	for _, raw := range infos {
		var si struct {
			Memory struct {
				TotalBytes float64 `json:"total_bytes"`
			} `json:"memory"`
		}
		if len(raw) == 0 || json.Unmarshal(raw, &si) != nil {
			continue
		}
		if t := si.Memory.TotalBytes; t > 0 && !math.IsInf(t, 0) {
			return t / (1 << 20)
		}
	}
	return 0
}

// parseDiffLimit reads a diff's limit: how many started and exited
// processes it lists (defaultDiffLimit when absent).
func parseDiffLimit(s string) (int, error) {
	if s == "" {
		return defaultDiffLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxDiffLimit {
		return 0, httpapi.BadRequest("invalid limit %q: want an integer from 1 to %d", truncate(s), maxDiffLimit)
	}
	return n, nil
}

func (hd *Handler) meta(ctx context.Context, id int64) (store.SnapshotMeta, error) {
	m, err := hd.store.Snapshot(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return m, httpapi.NotFound("unknown snapshot %d", id)
	}
	return m, err
}

func (hd *Handler) processes(ctx context.Context, id int64) ([]snapshot.Process, error) {
	ps, err := hd.store.Processes(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		// Pruned between the two reads.
		return nil, httpapi.NotFound("unknown snapshot %d", id)
	}
	return ps, err
}

// formatTime is the API's time format: RFC 3339 in UTC, milliseconds kept.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
