// Package plot draws the figures a researcher puts in a paper from a
// summary, as SVG and PNG side by side: a metric per configuration with its
// 95 % confidence intervals, and a metric over time, per run the median of
// each bin with its 25–75 % band. It uses gonum's plot, which writes both
// formats without a browser or system libraries.
package plot

import (
	"cmp"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/results/summary"
)

// Formats every figure is written in.
var Formats = []string{"svg", "png"}

const (
	width, height = 16 * vg.Centimeter, 10 * vg.Centimeter
	margin        = 3 * vg.Millimeter // around the figure, so that nothing touches its edge
	dpi           = 150               // of the PNGs: sharp in print
)

// ErrTooShort is OverTime's error when no run has a complete bin.
var ErrTooShort = errors.New("no run lasts longer than its first and last bins, which are incomplete")

// ciPoints are the means of the configurations with their intervals.
type ciPoints struct {
	plotter.XYs
	plotter.XErrors
}

// PerConfig draws one metric's mean per configuration with its 95 %
// confidence interval (none where a configuration has a single run) into
// dir/<base>.svg and .png, a row per configuration: names as long as a
// sweep point's stay readable, however many. It returns the files written.
func PerConfig(stats []summary.Stats, metric, dir, base string) ([]string, error) {
	var ss []summary.Stats
	for _, s := range stats {
		if s.Metric == metric {
			ss = append(ss, s)
		}
	}
	if len(ss) == 0 {
		return nil, fmt.Errorf("no values of %s to plot", metric)
	}
	var means plotter.XYs
	var cis ciPoints // the rows with an interval
	names := make([]string, len(ss))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, s := range ss {
		row := len(ss) - 1 - i // the first at the top
		means = append(means, plotter.XY{X: s.Mean, Y: float64(row)})
		lo, hi = min(lo, s.Mean), max(hi, s.Mean)
		names[row] = fmt.Sprintf("n=%d", s.Runs)
		if math.IsNaN(s.CIHigh) {
			names[row] = "n=1, no CI"
		}
		if s.Config != "" {
			names[row] = s.Config + " (" + names[row] + ")"
		}
		if math.IsNaN(s.CIHigh) {
			continue
		}
		half := s.CIHigh - s.Mean
		lo, hi = min(lo, s.Mean-half), max(hi, s.Mean+half)
		cis.XYs = append(cis.XYs, means[len(means)-1])
		cis.XErrors = append(cis.XErrors, struct{ Low, High float64 }{half, half})
	}
	p := newPlot(metric+" per configuration (mean, 95% CI)", label(metric, ss[0].Unit), "")
	p.Add(plotter.NewGrid())
	if len(cis.XYs) > 0 {
		bars, err := plotter.NewXErrorBars(cis)
		if err != nil {
			return nil, err
		}
		p.Add(bars)
	}
	dots, err := plotter.NewScatter(means)
	if err != nil {
		return nil, err
	}
	dots.Shape, dots.Radius = draw.CircleGlyph{}, vg.Points(2.5)
	p.Add(dots)
	p.NominalY(names...)
	// Half a row above and below leaves the first and last labels room
	// (NominalY pads the x axis away for that instead).
	p.Y.Min, p.Y.Max, p.X.Padding = -0.5, float64(len(names))-0.5, 0
	p.X.Min, p.X.Max = padded(lo, hi)
	return save(p, nil, 35*vg.Millimeter+vg.Length(len(names))*7*vg.Millimeter, dir, base)
}

// Series is one run's values of a metric, for OverTime, with the changes
// made to the running experiment that have a place on its x
// (summary.SeriesWithChanges) and how many have none.
type Series struct {
	Run, Config string
	Points      []summary.Point
	Marks       []summary.Mark
	Unplaced    int
}

// OverTime draws one metric over time, x being the time column's seconds
// from each run's first value (timed) or the value's position, into
// dir/<base>.svg and .png. Each run's values are cut into bins
// (summary.Binned), and each bin drawn as its median, a line, and its
// 25–75 % band: the trend and the spread stay readable where every value
// would fill the plot, and no run hides another. Incomplete bins are left
// out. With several configurations, a colour is a configuration (its runs'
// lines together show how much they vary); with one, a colour is a run.
// Each change is a dashed vertical line labelled with what was asked (see
// changeMarkers); the legend says when some runs' changes have no place.
func OverTime(series []Series, metric, unit string, timed bool, dir, base string) ([]string, error) {
	all := make([][]summary.Point, len(series))
	var confs []string
	for i, s := range series {
		all[i] = s.Points
		if !slices.Contains(confs, s.Config) {
			confs = append(confs, s.Config)
		}
	}
	w, bins := summary.Binned(all, timed)
	xLabel := fmt.Sprintf("value number (bins of %s values)", number(w, w))
	if timed {
		xLabel = fmt.Sprintf("seconds since the run's first value (%s s bins)", number(w, w))
	}
	p := newPlot(metric+" over time", xLabel, label(metric, unit))
	p.Add(plotter.NewGrid())
	type entry struct {
		name string
		runs int
		area *plotter.Polygon
		line *plotter.Line
	}
	var entries []*entry
	byName := map[string]*entry{}
	var marks []mark
	drawn, unplaced := 0, 0 // runs drawn, and with changes not drawn
	lo, hi, xMax, spread := math.Inf(1), math.Inf(-1), 0.0, false
	var lines []plot.Plotter // drawn over every band
	// Bands the fainter the more there are, so that where all overlap the
	// lines still show through.
	alpha := uint8(max(0x14, 0xa0/(len(series)+1)))
	for i, s := range series {
		if len(bins[i]) == 0 {
			continue
		}
		name, k := s.Run, i
		if s.Config != "" {
			name += " " + s.Config
		}
		if len(confs) > 1 {
			name, k = s.Config, slices.Index(confs, s.Config)
		}
		e := byName[name]
		if e == nil {
			e = &entry{name: name}
			byName[name] = e
			entries = append(entries, e)
		}
		e.runs++
		drawn++
		for _, m := range s.Marks {
			marks = append(marks, mark{x: m.X, label: markLabel(m.Change), colour: k})
		}
		if s.Unplaced > 0 {
			unplaced++
		}
		c := plotutil.Color(k)
		r, g, b, _ := c.RGBA()
		band := color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: alpha}
		for _, seg := range segments(bins[i], w) {
			median, quartiles := make(plotter.XYs, len(seg)), make(plotter.XYs, 0, 2*len(seg))
			for j, bin := range seg {
				median[j] = plotter.XY{X: bin.X, Y: bin.Median}
				quartiles = append(quartiles, plotter.XY{X: bin.X, Y: bin.Q1})
				lo, hi, xMax = min(lo, bin.Q1), max(hi, bin.Q3), max(xMax, bin.X+w/2)
				spread = spread || bin.Q3 > bin.Q1
			}
			for j := len(seg) - 1; j >= 0; j-- {
				quartiles = append(quartiles, plotter.XY{X: seg[j].X, Y: seg[j].Q3})
			}
			var err error
			if e.area, err = plotter.NewPolygon(quartiles); err != nil {
				return nil, err
			}
			e.area.Color, e.area.LineStyle.Width = band, 0
			if e.line, err = plotter.NewLine(median); err != nil {
				return nil, err
			}
			e.line.Color, e.line.Width, e.line.Dashes = c, vg.Points(1.5), plotutil.Dashes(k/7)
			p.Add(e.area)
			lines = append(lines, e.line)
			if len(seg) == 1 { // a lone bin: a line of one point shows nothing
				dot, _ := plotter.NewScatter(median)
				dot.Color, dot.Shape = c, draw.CircleGlyph{}
				lines = append(lines, dot)
			}
		}
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s over time: %w", metric, ErrTooShort)
	}
	p.Add(lines...)
	markers := changeMarkers(marks, w, drawn == 1)
	p.Add(markers)
	for _, m := range markers {
		xMax = max(xMax, m.x)
	}
	legend := newLegend()
	for _, e := range entries {
		name := e.name
		if len(confs) > 1 {
			name = fmt.Sprintf("%s (n=%d)", cmp.Or(name, "(default)"), e.runs)
		}
		if spread {
			legend.Add(name, e.area, e.line)
		} else {
			legend.Add(name, e.line) // one value a bin: no band to show
		}
	}
	if unplaced > 0 {
		runs := "1 run"
		if unplaced > 1 {
			runs = strconv.Itoa(unplaced) + " runs"
		}
		why := "no time column to place them"
		if timed {
			why = "outside their values' time"
		}
		legend.Add("changes of " + runs + " not drawn:")
		legend.Add(why)
	}
	if spread {
		p.Title.Text += ": median per bin, 25–75% band"
	}
	p.X.Min, p.X.Max = 0, xMax
	p.Y.Min, p.Y.Max = padded(lo, hi)
	return save(p, &legend, height, dir, base)
}

// segments splits bins where one is missing: the line does not join
// values across a stretch without any.
func segments(bins []summary.Bin, w float64) [][]summary.Bin {
	var out [][]summary.Bin
	start := 0
	for i := 1; i <= len(bins); i++ {
		if i == len(bins) || bins[i].X-bins[i-1].X > 1.5*w {
			out = append(out, bins[start:i])
			start = i
		}
	}
	return out
}

// newLegend lists from the top, thumbnails left of the names.
func newLegend() plot.Legend {
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	legend.TextStyle.Font.Size = vg.Points(10)
	return legend
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text, p.Title.Padding = title, 2*vg.Millimeter
	p.X.Label.Text, p.Y.Label.Text = x, y
	p.X.Tick.Marker, p.Y.Tick.Marker = roundTicks{}, roundTicks{}
	return p
}

func label(metric, unit string) string {
	if unit == "" {
		return metric
	}
	return metric + " (" + unit + ")"
}

// save draws p in every format into dir.
func save(p *plot.Plot, legend *plot.Legend, height vg.Length, dir, base string) ([]string, error) {
	title := p.Title.Text
	p.Title.Text = "" // drawn by drawFigure
	var out []string
	for _, f := range Formats {
		var c interface {
			vg.CanvasSizer
			io.WriterTo
		}
		if f == "svg" {
			c = vgsvg.New(width, height)
		} else {
			c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(dpi))}
		}
		drawFigure(draw.New(c), p, title, legend)
		name := base + "." + f
		if err := results.WriteFile(dir, name, func(w io.Writer) error { _, err := c.WriteTo(w); return err }); err != nil {
			return out, err
		}
		out = append(out, filepath.Join(dir, name))
	}
	return out, nil
}

// drawFigure draws on white, inside a margin: the title, centred on the
// figure (it may be wider than the plot area beside the legend), the plot,
// and the legend right of the plot's data area, where it hides no data.
// It returns the data area and the legend's.
func drawFigure(dc draw.Canvas, p *plot.Plot, title string, legend *plot.Legend) (data, legendArea vg.Rectangle) {
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	area := draw.Crop(dc, margin, -margin, margin, -margin)
	ts := p.Title.TextStyle
	area.FillText(ts, vg.Point{X: area.Center().X, Y: area.Max.Y + ts.FontExtents().Descent}, title)
	area.Max.Y -= ts.Rectangle(title).Size().Y + p.Title.Padding
	if legend == nil {
		p.Draw(area)
		return p.DataCanvas(area).Rectangle, vg.Rectangle{}
	}
	lw := legend.Rectangle(area).Size().X
	plotArea := draw.Crop(area, 0, -lw-margin, 0, 0)
	p.Draw(plotArea)
	data = p.DataCanvas(plotArea).Rectangle
	legendArea = vg.Rectangle{Min: vg.Point{X: area.Max.X - lw, Y: data.Min.Y}, Max: vg.Point{X: area.Max.X, Y: data.Max.Y}}
	legend.Draw(draw.Canvas{Canvas: dc.Canvas, Rectangle: legendArea})
	return data, legendArea
}

// roundTicks marks round values, steps of 1, 2 or 5 × 10^k, as many as
// fit up to seven, labelled as a reader would write them (80, 85, 90; 82.5),
// with unlabelled ticks halfway.
type roundTicks struct{}

func (roundTicks) Ticks(lo, hi float64) []plot.Tick {
	step := summary.RoundUp((hi - lo) / 10)
	for (hi-lo)/step > 7+1e-9 {
		step = summary.RoundUp(step * 1.01) // the next round value
	}
	half := step / 2
	var ticks []plot.Tick
	for i := math.Ceil(lo/half - 1e-9); i*half <= hi+1e-9*step; i++ {
		t := plot.Tick{Value: i * half}
		if math.Mod(i, 2) == 0 {
			t.Label = number(t.Value, step)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// padded widens [lo, hi] by 5 % each side: nothing drawn at the edge of
// the plot is cut.
func padded(lo, hi float64) (float64, float64) {
	pad := (hi - lo) * 0.05
	if pad == 0 {
		pad = max(math.Abs(lo)*0.05, 1)
	}
	return lo - pad, hi + pad
}

// number writes a multiple of step with the decimals step needs, without
// trailing zeros: 80, 82.5, 0.001.
func number(v, step float64) string {
	decimals := max(0, int(math.Ceil(-math.Log10(step)-1e-9)))
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if decimals > 0 {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		return "0"
	}
	return s
}
