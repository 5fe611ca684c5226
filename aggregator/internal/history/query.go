package history

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"
)

// Series is one stored series over a time range: its labels (without
// __name__) and its points, oldest first, one per timestamp.
type Series struct {
	Labels map[string]string
	Points []Point
}

// Point is one sample; T is milliseconds since the epoch.
type Point struct {
	T int64
	V float64
}

// maxSeriesPerQuery bounds how many series one query may touch, so a
// request cannot walk the whole index.
const maxSeriesPerQuery = 10_000

// Errors of QueryWith that are the request's fault, not the storage's.
var (
	// ErrTooManySeries: more series match than QueryOptions.MaxSeries.
	ErrTooManySeries = errors.New("history: too many series match")
	// ErrTooManyPoints: the answer would hold more points than
	// QueryOptions.MaxPoints.
	ErrTooManyPoints = errors.New("history: the answer holds too many points")
)

// QueryOptions shape what QueryWith returns. The zero value returns every
// raw point of at most maxSeriesPerQuery series.
type QueryOptions struct {
	// Step folds each series into buckets of Step milliseconds aligned to
	// the epoch, with Agg per bucket (the bucket's start is its time), while
	// the blocks are read: memory follows the buckets, not the samples.
	// Zero keeps raw points.
	Step int64
	Agg  Aggregation
	// MaxRaw, with Step zero, is the most raw points one series may carry:
	// when a series has more, every series is folded with AutoStep instead
	// (the step QueryWith returns says which). Zero: no limit.
	MaxRaw   int
	AutoStep int64
	// MaxPoints bounds the points of all series together (ErrTooManyPoints
	// beyond it); zero: no limit.
	MaxPoints int
	// MaxSeries bounds the matching series (ErrTooManySeries beyond it);
	// zero means maxSeriesPerQuery.
	MaxSeries int
}

// Query returns the series named metric whose labels equal every entry of
// match (exact byte comparison: hostile text is never a regexp), with all
// their samples in [from, to].
func (h *History) Query(ctx context.Context, metric string, match map[string]string, from, to time.Time) ([]Series, error) {
	out, _, err := h.QueryWith(ctx, metric, match, from, to, QueryOptions{})
	return out, err
}

// QueryWith is Query shaped by opts; it also returns the step the points
// are folded with (0: raw points).
//
// It allocates in proportion to its answer, never to the range or to the
// samples read: blocks are folded as they are read, one block buffered per
// series. (It used to collect every raw sample, and to reserve room for a
// series from its first block's density: an hour of 2 s samples "predicted"
// 17 million points over 400 days, 64 MiB per series; issue 11.)
func (h *History) QueryWith(ctx context.Context, metric string, match map[string]string, from, to time.Time, opts QueryOptions) (out []Series, step int64, err error) {
	if to.Before(from) {
		return nil, 0, errors.New("history: query range ends before it starts")
	}
	if opts.Step < 0 || opts.AutoStep < 0 || (opts.MaxRaw > 0 && opts.AutoStep == 0) {
		return nil, 0, errors.New("history: invalid query options")
	}
	maxSeries := opts.MaxSeries
	if maxSeries <= 0 {
		maxSeries = maxSeriesPerQuery
	}
	tfs := storage.NewTagFilters()
	if err := tfs.Add(nil, []byte(metric), false, false); err != nil {
		return nil, 0, fmt.Errorf("history: filter: %w", err)
	}
	for k, v := range match {
		if err := tfs.Add([]byte(k), []byte(capLabelFor(k, v)), false, false); err != nil {
			return nil, 0, fmt.Errorf("history: filter: %w", err)
		}
	}
	tr := storage.TimeRange{MinTimestamp: from.UnixMilli(), MaxTimestamp: to.UnixMilli()}
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}

	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return nil, 0, errors.New("history: closed")
	}
	if h.storage == nil {
		return nil, 0, errors.New("history: no embedded storage (history is read from --history.url)")
	}
	defer func() {
		if r := recover(); r != nil {
			out, step, err = nil, 0, fmt.Errorf("history: search: %v", r)
		}
	}()

	f := folder{step: opts.Step, agg: opts.Agg, maxRaw: opts.MaxRaw, autoStep: opts.AutoStep, maxPoints: opts.MaxPoints}
	// Series by marshalled name: blocks come sorted by (series id, first
	// timestamp), so one series' blocks are adjacent, but the same name
	// may have more than one id (one per partition's index).
	byName := make(map[string]*seriesAcc)
	var cur *seriesAcc
	var curName []byte
	var sr storage.Search
	sr.Init(nil, h.storage, []*storage.TagFilters{tfs}, tr, maxSeries, uint64(deadline.Unix()))
	defer sr.MustClose()
	var block storage.Block
	var mn storage.MetricName
	var ts []int64 // one block's rows, reused
	var vs []float64
	all := storage.TimeRange{MinTimestamp: math.MinInt64, MaxTimestamp: math.MaxInt64}
	for sr.NextMetricBlock() {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		if cur == nil || string(sr.MetricBlockRef.MetricName) != string(curName) {
			if err := f.finish(cur); err != nil {
				return nil, 0, err
			}
			cur = byName[string(sr.MetricBlockRef.MetricName)]
			if cur == nil {
				if err := mn.Unmarshal(sr.MetricBlockRef.MetricName); err != nil {
					return nil, 0, fmt.Errorf("history: decode series name: %w", err)
				}
				labels := make(map[string]string, len(mn.Tags))
				for _, t := range mn.Tags {
					labels[string(t.Key)] = string(t.Value)
				}
				cur = &seriesAcc{name: string(sr.MetricBlockRef.MetricName), labels: labels}
				byName[cur.name] = cur
				f.series = append(f.series, cur)
			}
			curName = append(curName[:0], sr.MetricBlockRef.MetricName...)
		}
		sr.MetricBlockRef.BlockRef.MustReadBlock(&block)
		if err := block.UnmarshalData(); err != nil {
			return nil, 0, fmt.Errorf("history: decode block: %w", err)
		}
		// All rows, to learn the block's first timestamp: no later block
		// of this series starts before it.
		n := block.RowsCount() // one allocation, not a doubling series
		ts, vs = block.AppendRowsWithTimeRangeFilter(slices.Grow(ts[:0], n), slices.Grow(vs[:0], n), all)
		if len(ts) == 0 {
			continue
		}
		if err := f.block(cur, ts, vs, tr); err != nil {
			return nil, 0, err
		}
	}
	if err := sr.Error(); err != nil {
		if strings.Contains(err.Error(), "the number of matching timeseries exceeds") {
			return nil, 0, fmt.Errorf("%w (more than %d)", ErrTooManySeries, maxSeries)
		}
		return nil, 0, fmt.Errorf("history: %w", err)
	}
	if err := f.finish(cur); err != nil {
		return nil, 0, err
	}

	out = make([]Series, 0, len(f.series))
	for _, a := range f.series {
		if len(a.pts) == 0 {
			continue // blocks overlapped the range, no sample fell in it
		}
		if f.step > 0 && f.agg == AggAvg {
			for i := range a.pts {
				a.pts[i].V /= float64(a.counts[i])
			}
		}
		out = append(out, Series{Labels: a.labels, Points: a.pts})
	}
	return sortSeries(out), f.step, nil
}

// seriesAcc is one series being read: its answer so far (raw points, or
// buckets whose V is the running sum or max).
type seriesAcc struct {
	name   string
	labels map[string]string
	pts    []Point  // sorted by T, one per T (or bucket)
	counts []uint32 // samples per bucket (average only)
}

// folder turns the blocks of a search into each series' answer. Only one
// series is read at a time (its blocks are adjacent), so one buffer holds
// the points not yet final.
type folder struct {
	step     int64 // current step: 0 raw, else bucket width
	agg      Aggregation
	maxRaw   int
	autoStep int64
	// maxPoints bounds total, the points held in all series.
	maxPoints, total int
	series           []*seriesAcc
	pending          []Point // the current series' points not yet final
	merge            []Point // scratch for merging overlapping blocks
}

// block takes one block's rows (sorted by time, all of the block) of
// series a. Blocks of a series arrive sorted by their first timestamp and
// may overlap: pending points earlier than this block's first one are
// final; the rest are merged with the block, a later block's value winning
// on equal timestamps (what the old sort-then-dedup kept).
func (f *folder) block(a *seriesAcc, ts []int64, vs []float64, tr storage.TimeRange) error {
	final := max(ts[0], tr.MinTimestamp)
	k := 0
	for k < len(f.pending) && f.pending[k].T < final {
		k++
	}
	if err := f.emit(a, f.pending[:k]); err != nil {
		return err
	}
	rest := f.pending[k:]
	i, j := 0, len(ts)
	for i < j && ts[i] < tr.MinTimestamp {
		i++
	}
	for j > i && ts[j-1] > tr.MaxTimestamp {
		j--
	}
	ts, vs = ts[i:j], vs[i:j]
	if len(rest) == 0 {
		f.pending = slices.Grow(f.pending[:0], len(ts))
		for i, t := range ts {
			f.pending = appendDedup(f.pending, Point{T: t, V: vs[i]})
		}
		return nil
	}
	m := slices.Grow(f.merge[:0], len(rest)+len(ts))
	for len(rest) > 0 || len(ts) > 0 {
		// On equal times the pending point goes first: the block's wins.
		if len(ts) == 0 || (len(rest) > 0 && rest[0].T <= ts[0]) {
			m, rest = appendDedup(m, rest[0]), rest[1:]
		} else {
			m, ts, vs = appendDedup(m, Point{T: ts[0], V: vs[0]}), ts[1:], vs[1:]
		}
	}
	f.pending, f.merge = m, f.pending[:0]
	return nil
}

// appendDedup appends p to sorted pts, replacing the last point when it has
// the same time (the later one wins).
func appendDedup(pts []Point, p Point) []Point {
	if n := len(pts); n > 0 && pts[n-1].T == p.T {
		pts[n-1] = p
		return pts
	}
	return append(pts, p)
}

// finish makes the pending points of a (the series whose blocks just ended)
// final. a may be nil.
func (f *folder) finish(a *seriesAcc) error {
	if a == nil {
		return nil
	}
	err := f.emit(a, f.pending)
	f.pending = f.pending[:0]
	return err
}

// emit adds final points of a, sorted by time, to its answer. They
// normally come after every point it holds (appended in bulk); a series
// with more than one id can bring earlier ones, which are inserted in
// place.
func (f *folder) emit(a *seriesAcc, pts []Point) error {
	if len(pts) == 0 {
		return nil
	}
	if f.step == 0 && f.maxRaw > 0 && len(a.pts)+len(pts) > f.maxRaw {
		// Fold before the points arrive rather than after: a block holds
		// up to 8,192 of them. (Should some of them replace points of the
		// same time, which takes a series stored under two ids, this
		// folds at slightly fewer than maxRaw points.)
		f.foldAll(f.autoStep)
	}
	before := len(a.pts)
	switch {
	case f.step > 0:
		for _, p := range pts {
			b := floorDiv(p.T, f.step) * f.step
			n := len(a.pts)
			switch {
			case n > 0 && a.pts[n-1].T == b:
				if f.agg == AggMax {
					a.pts[n-1].V = math.Max(a.pts[n-1].V, p.V)
				} else {
					a.pts[n-1].V += p.V
					a.counts[n-1]++
				}
			case n == 0 || a.pts[n-1].T < b:
				a.pts = append(a.pts, Point{T: b, V: p.V})
				if f.agg == AggAvg {
					a.counts = append(a.counts, 1)
				}
			default:
				a.pts, a.counts = f.insertBucket(a.pts, a.counts, p)
			}
		}
	case before == 0 || a.pts[before-1].T < pts[0].T:
		a.pts = append(a.pts, pts...)
	default:
		for _, p := range pts {
			a.pts = insertRaw(a.pts, p)
		}
	}
	f.total += len(a.pts) - before
	if f.maxPoints > 0 && f.total > f.maxPoints {
		return fmt.Errorf("%w (more than %d)", ErrTooManyPoints, f.maxPoints)
	}
	return nil
}

func insertRaw(pts []Point, p Point) []Point {
	n := len(pts)
	if n == 0 || pts[n-1].T < p.T {
		return append(pts, p)
	}
	i, found := slices.BinarySearchFunc(pts, p.T, func(q Point, t int64) int { return cmp.Compare(q.T, t) })
	if found {
		pts[i] = p
		return pts
	}
	return slices.Insert(pts, i, p)
}

// insertBucket folds p into its bucket of pts (counts alongside, for the
// average).
func (f *folder) insertBucket(pts []Point, counts []uint32, p Point) ([]Point, []uint32) {
	b := floorDiv(p.T, f.step) * f.step
	n := len(pts)
	i := n
	if n > 0 && pts[n-1].T >= b {
		var found bool
		i, found = slices.BinarySearchFunc(pts, b, func(q Point, t int64) int { return cmp.Compare(q.T, t) })
		if found {
			if f.agg == AggMax {
				pts[i].V = math.Max(pts[i].V, p.V)
			} else {
				pts[i].V += p.V
				counts[i]++
			}
			return pts, counts
		}
	}
	pts = slices.Insert(pts, i, Point{T: b, V: p.V})
	if f.agg == AggAvg {
		counts = slices.Insert(counts, i, 1)
	}
	return pts, counts
}

// foldAll switches from raw points to buckets of step: every series' raw
// points are folded in place (a bucket never outnumbers its points).
func (f *folder) foldAll(step int64) {
	f.step = step
	f.total = 0
	for _, a := range f.series {
		raw := a.pts
		a.pts, a.counts = a.pts[:0], nil
		for _, p := range raw {
			a.pts, a.counts = f.insertBucket(a.pts, a.counts, p)
		}
		f.total += len(a.pts)
	}
}

// Aggregation picks how Downsample folds the points of one step.
type Aggregation int

// Aggregations Downsample supports.
const (
	AggAvg Aggregation = iota
	AggMax
)

// Downsample folds points into buckets of step milliseconds aligned to the
// epoch (a bucket's point carries its start time), using agg. A step <= 0
// returns points unchanged.
func Downsample(points []Point, step int64, agg Aggregation) []Point {
	if step <= 0 || len(points) == 0 {
		return points
	}
	out := make([]Point, 0, min(len(points), 1024))
	var cur Point
	n := 0
	emit := func() {
		if n == 0 {
			return
		}
		if agg == AggAvg {
			cur.V /= float64(n)
		}
		out = append(out, cur)
	}
	for _, p := range points {
		b := floorDiv(p.T, step) * step
		if n > 0 && b == cur.T {
			switch agg {
			case AggMax:
				cur.V = math.Max(cur.V, p.V)
			default:
				cur.V += p.V
			}
			n++
			continue
		}
		emit()
		cur, n = Point{T: b, V: p.V}, 1
	}
	emit()
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
