package plot

import (
	"cmp"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/e2c-dev/e2c/results"
)

// maxLabel is how many characters of a change a marker's label keeps.
const maxLabel = 32

// mark is a change of one run on the x axis, colour its run's (or its
// configuration's) colour index.
type mark struct {
	x      float64
	label  string
	colour int
}

// marker is a change drawn: one or more marks of the same label.
type marker struct {
	x     float64
	label string
	color color.Color
}

// markLabel is a change in short: its kind and what was asked
// ("scale edge.producer=6"), cut at maxLabel, and whether it failed.
func markLabel(c *results.Change) string {
	label := []rune(c.Kind + " " + c.Asked)
	if len(label) > maxLabel {
		label = append(label[:maxLabel-1], '…')
	}
	if c.Status == results.Failed {
		return string(label) + " (failed)"
	}
	return string(label)
}

// changeMarkers merges the marks of one label within a bin (w) of the
// earliest into one marker at their mean: the runs of one configuration, made with
// one timeline, make the same changes within a second or two of each
// other, which one line shows. A marker is its runs' colour when all of
// its marks are of one colour and more than one run is drawn, else grey.
func changeMarkers(marks []mark, w float64, oneRun bool) changeMarks {
	slices.SortFunc(marks, func(a, b mark) int { return cmp.Or(cmp.Compare(a.label, b.label), cmp.Compare(a.x, b.x)) })
	var out changeMarks
	for i := 0; i < len(marks); {
		j, sum, colour := i, 0.0, marks[i].colour
		for ; j < len(marks) && marks[j].label == marks[i].label && marks[j].x-marks[i].x <= w; j++ {
			sum += marks[j].x
			if marks[j].colour != colour {
				colour = -1
			}
		}
		m := marker{x: sum / float64(j-i), label: marks[i].label, color: color.Gray{Y: 0x70}}
		if colour >= 0 && !oneRun {
			m.color = plotutil.Color(colour)
		}
		out = append(out, m)
		i = j
	}
	slices.SortStableFunc(out, func(a, b marker) int { return cmp.Compare(a.x, b.x) })
	return out
}

// changeMarks draws each marker as a dashed line across the data area,
// its label along it at the top, right of the line (left of it near the
// right edge, where the label would leave the data area).
type changeMarks []marker

func (ms changeMarks) Plot(c draw.Canvas, p *plot.Plot) {
	sty := p.X.Tick.Label
	sty.Font.Size, sty.Rotation, sty.XAlign = vg.Points(8), math.Pi/2, draw.XRight
	gap := vg.Points(1.5)
	for _, m := range ms {
		x := c.X(p.X.Norm(m.x))
		c.StrokeLine2(draw.LineStyle{Color: m.color, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}, x, c.Min.Y, x, c.Max.Y)
		sty.Color, sty.YAlign = m.color, draw.YTop
		at := vg.Point{X: x + gap, Y: c.Max.Y - gap}
		if x+gap+sty.Height(m.label) > c.Max.X {
			sty.YAlign, at.X = draw.YBottom, x-gap
		}
		c.FillText(sty, at, m.label)
	}
}
