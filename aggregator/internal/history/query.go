package history

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
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

// Query returns the series named metric whose labels equal every entry of
// match (exact byte comparison: hostile text is never a regexp), with their
// samples in [from, to].
func (h *History) Query(ctx context.Context, metric string, match map[string]string, from, to time.Time) (out []Series, err error) {
	if to.Before(from) {
		return nil, errors.New("history: query range ends before it starts")
	}
	tfs := storage.NewTagFilters()
	if err := tfs.Add(nil, []byte(metric), false, false); err != nil {
		return nil, fmt.Errorf("history: filter: %w", err)
	}
	for k, v := range match {
		if err := tfs.Add([]byte(k), []byte(capLabelFor(k, v)), false, false); err != nil {
			return nil, fmt.Errorf("history: filter: %w", err)
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
		return nil, errors.New("history: closed")
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("history: search: %v", r)
		}
	}()

	type acc struct {
		labels map[string]string
		pts    []Point
	}
	byName := make(map[string]*acc)
	var order []string
	var sr storage.Search
	sr.Init(nil, h.storage, []*storage.TagFilters{tfs}, tr, maxSeriesPerQuery, uint64(deadline.Unix()))
	defer sr.MustClose()
	var block storage.Block
	var mn storage.MetricName
	var ts []int64 // one block's rows, reused
	var vs []float64
	for sr.NextMetricBlock() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		a := byName[string(sr.MetricBlockRef.MetricName)]
		if a == nil {
			if err := mn.Unmarshal(sr.MetricBlockRef.MetricName); err != nil {
				return nil, fmt.Errorf("history: decode series name: %w", err)
			}
			labels := make(map[string]string, len(mn.Tags))
			for _, t := range mn.Tags {
				labels[string(t.Key)] = string(t.Value)
			}
			a = &acc{labels: labels}
			name := string(sr.MetricBlockRef.MetricName)
			byName[name] = a
			order = append(order, name)
		}
		sr.MetricBlockRef.BlockRef.MustReadBlock(&block)
		if err := block.UnmarshalData(); err != nil {
			return nil, fmt.Errorf("history: decode block: %w", err)
		}
		ts, vs = block.AppendRowsWithTimeRangeFilter(ts[:0], vs[:0], tr)
		if len(ts) == 0 {
			continue
		}
		if a.pts == nil {
			// Size the series once from its first block's density, so a
			// long range is not copied over and over while it grows.
			est := len(ts)
			if span := ts[len(ts)-1] - ts[0]; span > 0 {
				est = int(min(int64(len(ts))*(tr.MaxTimestamp-tr.MinTimestamp)/span+1, 1<<22))
			}
			a.pts = make([]Point, 0, max(est, len(ts)))
		}
		for i := range ts {
			a.pts = append(a.pts, Point{T: ts[i], V: vs[i]})
		}
	}
	if err := sr.Error(); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}

	sort.Strings(order) // stable output order between calls
	out = make([]Series, 0, len(order))
	for _, name := range order {
		a := byName[name]
		pts := a.pts
		// Blocks arrive ordered by their first timestamp, so the points
		// are usually sorted already; blocks of overlapping parts are
		// sorted, stably so that the last written of equal times wins.
		if !slices.IsSortedFunc(pts, cmpPointTime) {
			slices.SortStableFunc(pts, cmpPointTime)
		}
		dedup := pts[:0]
		for _, p := range pts {
			if n := len(dedup); n > 0 && dedup[n-1].T == p.T {
				dedup[n-1] = p
				continue
			}
			dedup = append(dedup, p)
		}
		if len(dedup) == 0 {
			continue // blocks overlapped the range, no sample fell in it
		}
		out = append(out, Series{Labels: a.labels, Points: dedup})
	}
	return out, nil
}

func cmpPointTime(a, b Point) int { return cmp.Compare(a.T, b.T) }

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
