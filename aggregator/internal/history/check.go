package history

import (
	"fmt"
	"math"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"
)

// CheckReport is what Check read of a history store.
type CheckReport struct {
	Series  int
	Samples int64
}

// Check reads every sample of every series of the open store, decoding
// each block, as a query would: a damaged part fails it (the lib's panic
// turned into the error), where opening alone reads only part headers.
func (h *History) Check() (rep CheckReport, err error) {
	tfs := storage.NewTagFilters()
	// Every series: a metric name matching ".+".
	if err := tfs.Add(nil, []byte(".+"), false, true); err != nil {
		return rep, fmt.Errorf("history: filter: %w", err)
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.storage == nil {
		return rep, nil // remote write only: nothing on disk
	}
	if h.closed {
		return rep, fmt.Errorf("history: closed")
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("history: reading %s: %v", h.dir, r)
		}
	}()
	tr := storage.TimeRange{MinTimestamp: 0, MaxTimestamp: time.Now().Add(24 * time.Hour).UnixMilli()}
	var sr storage.Search
	sr.Init(nil, h.storage, []*storage.TagFilters{tfs}, tr, math.MaxInt32, uint64(time.Now().Add(time.Hour).Unix()))
	defer sr.MustClose()
	var block storage.Block
	var last []byte
	var ts []int64
	var vs []float64
	all := storage.TimeRange{MinTimestamp: math.MinInt64, MaxTimestamp: math.MaxInt64}
	for sr.NextMetricBlock() {
		if string(sr.MetricBlockRef.MetricName) != string(last) {
			var mn storage.MetricName
			if err := mn.Unmarshal(sr.MetricBlockRef.MetricName); err != nil {
				return rep, fmt.Errorf("history: decode series name: %w", err)
			}
			rep.Series++
			last = append(last[:0], sr.MetricBlockRef.MetricName...)
		}
		sr.MetricBlockRef.BlockRef.MustReadBlock(&block)
		if err := block.UnmarshalData(); err != nil {
			return rep, fmt.Errorf("history: decode block: %w", err)
		}
		ts, vs = block.AppendRowsWithTimeRangeFilter(ts[:0], vs[:0], all)
		rep.Samples += int64(len(ts))
	}
	if err := sr.Error(); err != nil {
		return rep, fmt.Errorf("history: %w", err)
	}
	return rep, nil
}
