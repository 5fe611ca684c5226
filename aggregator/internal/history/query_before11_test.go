package history

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"
)

// queryBefore11 is Query as it was before issue 11 (every raw point
// collected, each series sized from its first block's density), kept as
// BenchmarkQuery's baseline.
func (h *History) queryBefore11(ctx context.Context, metric string, match map[string]string, from, to time.Time) (out []Series, err error) {
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
