package main

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// series is one curve of a panel: a label and how to read it off a sample.
type series struct {
	label string
	value func(sample) float64
	color color.Color
}

const mib = 1 << 20

var (
	blue   = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	orange = color.RGBA{R: 255, G: 127, B: 14, A: 255}
)

// panels are the chart's rows, top to bottom: what a leak or unbounded
// growth would show in.
var panels = []struct {
	title, unit string
	curves      []series
}{
	{"Memory", "MiB", []series{
		{"RSS", func(s sample) float64 { return float64(s.RSSBytes) / mib }, blue},
		{"Go heap in use", func(s sample) float64 { return float64(s.HeapInuse) / mib }, orange},
	}},
	{"Goroutines and open files", "count", []series{
		{"goroutines", func(s sample) float64 { return float64(s.Goroutines) }, blue},
		{"open fds", func(s sample) float64 { return float64(s.FDs) }, orange},
	}},
	{"Storage on disk", "MiB", []series{
		{"snapshot database", func(s sample) float64 { return float64(s.DBBytes) / mib }, blue},
		{"history", func(s sample) float64 { return float64(s.HistoryBytes) / mib }, orange},
	}},
	{"Snapshots stored", "thousands", []series{
		{"stored", func(s sample) float64 { return float64(s.Snapshots) / 1000 }, blue},
	}},
}

// writeChart draws the samples as a PNG of width x height pixels: one
// panel a row, time in minutes across.
func writeChart(w io.Writer, samples []sample, title string, width, height int) error {
	if len(samples) < 2 {
		return errors.New("need at least two samples to draw a curve")
	}
	rows := make([][]*plot.Plot, len(panels))
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		if i == 0 && title != "" {
			p.Title.Text = title + "\n" + pn.title
		}
		p.Y.Label.Text = pn.unit
		p.Y.Min = 0
		if i == len(panels)-1 {
			p.X.Label.Text = "minutes"
		}
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
		p.Legend.Left = true
		for _, c := range pn.curves {
			pts := make(plotter.XYs, len(samples))
			for k, s := range samples {
				pts[k].X = s.Elapsed.Minutes()
				pts[k].Y = c.value(s)
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			l.Color = c.color
			l.Width = vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(c.label, l)
		}
		// Zero at the bottom and some room above the highest point, so
		// that a flat curve looks flat and the legend stays clear of it.
		p.Y.Min = 0
		p.Y.Max *= 1.25
		if p.Y.Max == 0 {
			p.Y.Max = 1
		}
		rows[i] = []*plot.Plot{p}
	}
	img := vgimg.NewWith(vgimg.UseWH(vg.Length(width)*vg.Inch/96, vg.Length(height)*vg.Inch/96), vgimg.UseDPI(96))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(rows), Cols: 1, PadX: vg.Millimeter, PadY: vg.Millimeter * 3,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align(rows, tiles, dc)
	for i := range rows {
		rows[i][0].Draw(canvases[i][0])
	}
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

// summary is the verdict of a run against the goal of issue 16: heap and
// RSS at the end within 10 % of their value after warm-up, goroutines and
// fds constant after it, the database bounded. Single samples are noisy
// (the heap in use swings with each GC cycle, goroutines with requests in
// flight), so each figure is the mean over a window of samples: the window
// that starts at warm-up against the window that ends the run.
type summary struct {
	At, End                         time.Duration // start of the first window, end of the last
	RSS, Heap, Goroutines, FDs      [2]float64    // means: after warm-up, at the end
	MinGoroutines, MaxGoroutines    int64         // after warm-up
	MinFDs, MaxFDs                  int64
	DB, History, Snapshots          [2]int64 // last sample of each window
	MaxDBBytes, MaxSnapshots        int64    // whole run
	RateAfterWarmup, CPUAfterWarmup float64  // acknowledged snapshots/s, cores
	FailedAfterWarmup               int64
	Pruned                          [2]int64
	RSSTrend, HeapTrend             float64 // least-squares slope from warm-up on, bytes an hour
}

// trend is the least-squares slope of f over the samples, per hour.
func trend(samples []sample, f func(sample) int64) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, s := range samples {
		x, y := s.Elapsed.Hours(), float64(f(s))
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	d := n*sxx - sx*sx
	if n < 2 || d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// summarize compares the samples in [warmup, warmup+window) with those in
// the last window of the run.
func summarize(samples []sample, warmup, window time.Duration) (summary, error) {
	var s summary
	if len(samples) == 0 {
		return s, errors.New("no samples")
	}
	last := samples[len(samples)-1].Elapsed
	var first, final []sample
	for _, x := range samples {
		if x.Elapsed >= warmup && x.Elapsed < warmup+window {
			first = append(first, x)
		}
		if x.Elapsed > last-window {
			final = append(final, x)
		}
	}
	if len(first) == 0 || first[len(first)-1].Elapsed >= final[0].Elapsed {
		return s, fmt.Errorf("the run (%s) is too short to compare a %s window after a %s warm-up with the last %s", last, window, warmup, window)
	}
	mean := func(xs []sample, f func(sample) int64) float64 {
		var t float64
		for _, x := range xs {
			t += float64(f(x))
		}
		return t / float64(len(xs))
	}
	for k, w := range [][]sample{first, final} {
		s.RSS[k] = mean(w, func(x sample) int64 { return x.RSSBytes })
		s.Heap[k] = mean(w, func(x sample) int64 { return x.HeapInuse })
		s.Goroutines[k] = mean(w, func(x sample) int64 { return x.Goroutines })
		s.FDs[k] = mean(w, func(x sample) int64 { return x.FDs })
		e := w[len(w)-1]
		s.DB[k], s.History[k], s.Snapshots[k], s.Pruned[k] = e.DBBytes, e.HistoryBytes, e.Snapshots, e.Pruned
	}
	s.At, s.End = first[0].Elapsed, last
	s.MinGoroutines, s.MaxGoroutines = first[0].Goroutines, first[0].Goroutines
	s.MinFDs, s.MaxFDs = first[0].FDs, first[0].FDs
	for _, x := range samples {
		if x.Elapsed >= first[0].Elapsed {
			s.MinGoroutines, s.MaxGoroutines = min(s.MinGoroutines, x.Goroutines), max(s.MaxGoroutines, x.Goroutines)
			s.MinFDs, s.MaxFDs = min(s.MinFDs, x.FDs), max(s.MaxFDs, x.FDs)
		}
		s.MaxDBBytes = max(s.MaxDBBytes, x.DBBytes)
		s.MaxSnapshots = max(s.MaxSnapshots, x.Snapshots)
	}
	var after []sample
	for _, x := range samples {
		if x.Elapsed >= first[0].Elapsed {
			after = append(after, x)
		}
	}
	s.RSSTrend = trend(after, func(x sample) int64 { return x.RSSBytes })
	s.HeapTrend = trend(after, func(x sample) int64 { return x.HeapInuse })
	a, b := first[0], samples[len(samples)-1]
	if d := (b.Elapsed - a.Elapsed).Seconds(); d > 0 {
		s.RateAfterWarmup = float64(b.Pushed-a.Pushed) / d
		s.CPUAfterWarmup = (b.CPUSeconds - a.CPUSeconds) / d
	}
	s.FailedAfterWarmup = b.Failed - a.Failed
	return s, nil
}

// change is the relative change from the first window to the last.
func change(v [2]float64) float64 { return (v[1] - v[0]) / max(v[0], 1) }

func (s summary) print(w io.Writer) {
	m := func(b float64) string { return fmt.Sprintf("%.1f MiB", b/mib) }
	at, end := s.At.Round(time.Second), s.End.Round(time.Second)
	_, _ = fmt.Fprintf(w, "means of the window from %s and of the window ending at %s:\n", at, end)
	_, _ = fmt.Fprintf(w, "  RSS        %s -> %s (%+.1f%%)\n", m(s.RSS[0]), m(s.RSS[1]), 100*change(s.RSS))
	_, _ = fmt.Fprintf(w, "  heap inuse %s -> %s (%+.1f%%)\n", m(s.Heap[0]), m(s.Heap[1]), 100*change(s.Heap))
	_, _ = fmt.Fprintf(w, "  goroutines %.0f -> %.0f (%+.1f%%; %d..%d from %s on)\n", s.Goroutines[0], s.Goroutines[1], 100*change(s.Goroutines), s.MinGoroutines, s.MaxGoroutines, at)
	_, _ = fmt.Fprintf(w, "  open fds   %.0f -> %.0f (%+.1f%%; %d..%d from %s on)\n", s.FDs[0], s.FDs[1], 100*change(s.FDs), s.MinFDs, s.MaxFDs, at)
	_, _ = fmt.Fprintf(w, "trend from %s on (least squares): RSS %+.1f MiB an hour, heap in use %+.1f MiB an hour\n", at, s.RSSTrend/mib, s.HeapTrend/mib)
	_, _ = fmt.Fprintf(w, "database %s -> %s (at most %s in the run); snapshots stored %d -> %d (at most %d); rows pruned %d -> %d\n",
		m(float64(s.DB[0])), m(float64(s.DB[1])), m(float64(s.MaxDBBytes)), s.Snapshots[0], s.Snapshots[1], s.MaxSnapshots, s.Pruned[0], s.Pruned[1])
	_, _ = fmt.Fprintf(w, "history  %s -> %s\n", m(float64(s.History[0])), m(float64(s.History[1])))
	_, _ = fmt.Fprintf(w, "from %s on: %.0f snapshots/s acknowledged, %d failed, aggregator CPU %.2f cores\n",
		at, s.RateAfterWarmup, s.FailedAfterWarmup, s.CPUAfterWarmup)
}

// flat reports whether the run met the goal, and why not: each mean
// within 10 % from the first window to the last, no push failed.
func (s summary) flat() []string {
	var why []string
	for _, c := range []struct {
		name string
		v    [2]float64
	}{{"RSS", s.RSS}, {"heap in use", s.Heap}, {"goroutines", s.Goroutines}, {"open fds", s.FDs}} {
		if d := change(c.v); d > 0.10 || d < -0.10 {
			why = append(why, fmt.Sprintf("%s changed %+.1f%% after warm-up", c.name, 100*d))
		}
	}
	if s.FailedAfterWarmup > 0 {
		why = append(why, fmt.Sprintf("%d pushes failed after warm-up", s.FailedAfterWarmup))
	}
	return why
}
