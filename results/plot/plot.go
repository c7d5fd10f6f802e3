// Package plot draws the figures a researcher puts in a paper from a
// summary, as SVG and PNG side by side: a metric per configuration with its
// 95 % confidence intervals, and a metric over time, one line per run. It
// uses gonum's plot, which writes both formats without a browser or
// system libraries.
package plot

import (
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/e2c-dev/e2c/results/summary"
)

// Formats every figure is written in.
var Formats = []string{"svg", "png"}

const width, height = 16 * vg.Centimeter, 10 * vg.Centimeter

// ciPoints are the means of the configurations with their intervals.
type ciPoints struct {
	plotter.XYs
	plotter.YErrors
}

// PerConfig draws one metric's mean per configuration with its 95 %
// confidence interval (none where a configuration has a single run) into
// dir/<base>.svg and .png. It returns the files written.
func PerConfig(stats []summary.Stats, metric, dir, base string) ([]string, error) {
	var pts ciPoints
	var names []string
	unit := ""
	for _, s := range stats {
		if s.Metric != metric {
			continue
		}
		unit = s.Unit
		half := 0.0
		if !math.IsNaN(s.CIHigh) {
			half = s.CIHigh - s.Mean
		}
		pts.XYs = append(pts.XYs, plotter.XY{X: float64(len(names)), Y: s.Mean})
		pts.YErrors = append(pts.YErrors, struct{ Low, High float64 }{half, half})
		name := s.Config
		if name == "" {
			name = "(default)"
		}
		names = append(names, fmt.Sprintf("%s (n=%d)", name, s.Runs))
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no values of %s to plot", metric)
	}
	p := plot.New()
	p.Title.Text = metric + " per configuration (mean, 95% CI)"
	p.Y.Label.Text = label(metric, unit)
	dots, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	bars, err := plotter.NewYErrorBars(pts)
	if err != nil {
		return nil, err
	}
	p.Add(dots, bars, plotter.NewGrid())
	p.NominalX(names...)
	p.X.Padding = vg.Centimeter
	return save(p, dir, base)
}

// OverTime draws one metric over time, a line per run, x being the time
// column's seconds from each run's first value (or the value's position
// without one) into dir/<base>.svg and .png.
func OverTime(series map[string][]summary.Point, metric, unit, xLabel, dir, base string) ([]string, error) {
	if len(series) == 0 {
		return nil, fmt.Errorf("no values of %s to plot", metric)
	}
	p := plot.New()
	p.Title.Text = metric + " over time"
	p.X.Label.Text = xLabel
	p.Y.Label.Text = label(metric, unit)
	p.Add(plotter.NewGrid())
	for i, run := range slices.Sorted(maps.Keys(series)) {
		xys := make(plotter.XYs, len(series[run]))
		for j, pt := range series[run] {
			xys[j] = plotter.XY{X: pt.X, Y: pt.Y}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i / 7)
		p.Add(l)
		p.Legend.Add(run, l)
	}
	p.Legend.Top = true
	return save(p, dir, base)
}

func label(metric, unit string) string {
	if unit == "" {
		return metric
	}
	return metric + " (" + unit + ")"
}

func save(p *plot.Plot, dir, base string) ([]string, error) {
	var out []string
	for _, f := range Formats {
		name := filepath.Join(dir, base+"."+f)
		if err := p.Save(width, height, name); err != nil {
			return out, err
		}
		out = append(out, name)
	}
	return out, nil
}
