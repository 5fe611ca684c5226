package history

import (
	"cmp"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"
)

// testBlock is one storage block's rows: sorted by time, duplicates allowed.
type testBlock struct {
	ts []int64
	vs []float64
}

// referenceFold is what the reader did before folding on the fly: collect
// every point of the blocks in arrival order, sort stably, keep the last
// of equal times, keep the range, then Downsample.
func referenceFold(blocks []testBlock, tr storage.TimeRange, step int64, agg Aggregation) []Point {
	var pts []Point
	for _, b := range blocks {
		for i, t := range b.ts {
			if t >= tr.MinTimestamp && t <= tr.MaxTimestamp {
				pts = append(pts, Point{T: t, V: b.vs[i]})
			}
		}
	}
	slices.SortStableFunc(pts, func(a, b Point) int { return cmp.Compare(a.T, b.T) })
	dedup := pts[:0]
	for _, p := range pts {
		if n := len(dedup); n > 0 && dedup[n-1].T == p.T {
			dedup[n-1] = p
			continue
		}
		dedup = append(dedup, p)
	}
	return Downsample(dedup, step, agg)
}

// foldBlocks runs blocks of one series through a folder as QueryWith does.
func foldBlocks(f *folder, blocks []testBlock, tr storage.TimeRange) ([]Point, error) {
	a := &seriesAcc{}
	f.series = append(f.series, a)
	for _, b := range blocks {
		if err := f.block(a, b.ts, b.vs, tr); err != nil {
			return nil, err
		}
	}
	if err := f.finish(a); err != nil {
		return nil, err
	}
	if f.step > 0 && f.agg == AggAvg {
		for i := range a.pts {
			a.pts[i].V /= float64(a.counts[i])
		}
	}
	return a.pts, nil
}

// randomBlocks makes blocks as a search returns them: sorted by their first
// timestamp, some overlapping the previous ones, some with duplicates.
func randomBlocks(r *rand.Rand) []testBlock {
	n := 1 + r.IntN(8)
	var blocks []testBlock
	first := int64(r.IntN(1000)) - 500
	for range n {
		first += int64(r.IntN(400))
		var b testBlock
		t := first
		for range 1 + r.IntN(60) {
			b.ts = append(b.ts, t)
			b.vs = append(b.vs, float64(r.IntN(100)))
			t += int64(r.IntN(30)) // 0: a duplicate time within the block
		}
		blocks = append(blocks, b)
	}
	return blocks
}

func TestFolderMatchesSortThenDownsample(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		blocks := randomBlocks(r)
		tr := storage.TimeRange{MinTimestamp: int64(r.IntN(600)) - 300, MaxTimestamp: int64(r.IntN(3000))}
		if tr.MaxTimestamp < tr.MinTimestamp {
			tr.MaxTimestamp = tr.MinTimestamp
		}
		step := []int64{0, 1, 7, 100, 5000}[r.IntN(5)]
		agg := Aggregation(r.IntN(2))
		want := referenceFold(blocks, tr, step, agg)
		got, err := foldBlocks(&folder{step: step, agg: agg}, blocks, tr)
		if err != nil {
			t.Fatal(err)
		}
		if !pointsClose(got, want) {
			t.Fatalf("case %d (step %d agg %d range %v): blocks %v\ngot  %v\nwant %v", i, step, agg, tr, blocks, got, want)
		}
	}
}

func pointsClose(a, b []Point) bool {
	return slices.EqualFunc(a, b, func(p, q Point) bool {
		return p.T == q.T && math.Abs(p.V-q.V) <= 1e-9*math.Max(1, math.Abs(q.V))
	})
}

// A series whose name has two ids (one per partition's index) brings its
// blocks in two runs; the second run's earlier points go in their place.
func TestFolderSeriesInTwoRuns(t *testing.T) {
	all := storage.TimeRange{MinTimestamp: math.MinInt64, MaxTimestamp: math.MaxInt64}
	for _, step := range []int64{0, 10} {
		f := &folder{step: step, agg: AggMax}
		a := &seriesAcc{}
		f.series = []*seriesAcc{a}
		run := func(ts []int64, vs []float64) {
			if err := f.block(a, ts, vs, all); err != nil {
				t.Fatal(err)
			}
			if err := f.finish(a); err != nil {
				t.Fatal(err)
			}
		}
		run([]int64{10, 30, 50}, []float64{1, 3, 5})
		run([]int64{5, 30, 40}, []float64{0.5, 9, 4})
		want := []Point{{5, 0.5}, {10, 1}, {30, 9}, {40, 4}, {50, 5}}
		if step == 10 {
			want = []Point{{0, 0.5}, {10, 1}, {30, 9}, {40, 4}, {50, 5}}
		}
		if !slices.Equal(a.pts, want) {
			t.Errorf("step %d: %v, want %v", step, a.pts, want)
		}
	}
}

// Raw points switch to buckets once a series has more than MaxRaw, for
// every series; the answer's total is bounded by MaxPoints.
func TestFolderLimits(t *testing.T) {
	all := storage.TimeRange{MinTimestamp: math.MinInt64, MaxTimestamp: math.MaxInt64}
	block := func(n int, every int64) ([]int64, []float64) {
		ts, vs := make([]int64, n), make([]float64, n)
		for i := range ts {
			ts[i], vs[i] = int64(i)*every, float64(i)
		}
		return ts, vs
	}
	f := &folder{maxRaw: 10, autoStep: 100, agg: AggAvg}
	small, big := &seriesAcc{}, &seriesAcc{}
	f.series = []*seriesAcc{small, big}
	ts, vs := block(5, 1)
	if err := f.block(small, ts, vs, all); err != nil || f.finish(small) != nil {
		t.Fatal(err)
	}
	if f.step != 0 || len(small.pts) != 5 {
		t.Fatalf("5 raw points: step %d, %d points", f.step, len(small.pts))
	}
	ts, vs = block(1000, 1)
	if err := f.block(big, ts, vs, all); err != nil || f.finish(big) != nil {
		t.Fatal(err)
	}
	if f.step != 100 || len(big.pts) != 10 || len(small.pts) != 1 || small.counts[0] != 5 || f.total != 11 {
		t.Fatalf("after 1000 points: step %d, %d and %d points, total %d", f.step, len(big.pts), len(small.pts), f.total)
	}

	f = &folder{step: 1, maxPoints: 50}
	a := &seriesAcc{}
	f.series = []*seriesAcc{a}
	ts, vs = block(100, 1)
	err := f.block(a, ts, vs, all)
	if err == nil {
		err = f.finish(a)
	}
	if !errors.Is(err, ErrTooManyPoints) {
		t.Fatalf("100 buckets with MaxPoints 50: %v", err)
	}
}

// More matching series than MaxSeries is ErrTooManySeries (a 400 for the
// routes), not a storage failure.
func TestQueryTooManySeries(t *testing.T) {
	h := openTest(t, t.TempDir(), Options{TopK: -1})
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	h.Add(fsRequest("h", at, []string{"/a", "/b", "/c"}, nil))
	flush(t, h)
	ctx := context.Background()
	match := map[string]string{LabelHostname: "h"}
	got, _, err := h.QueryWith(ctx, MetricFilesystemUsed, match, at.Add(-time.Minute), at, QueryOptions{MaxSeries: 3})
	if err != nil || len(got) != 3 {
		t.Fatalf("3 series with MaxSeries 3: %d, %v", len(got), err)
	}
	_, _, err = h.QueryWith(ctx, MetricFilesystemUsed, match, at.Add(-time.Minute), at, QueryOptions{MaxSeries: 2})
	if !errors.Is(err, ErrTooManySeries) {
		t.Fatalf("3 series with MaxSeries 2: %v, want ErrTooManySeries", err)
	}
}
