package plot

import (
	"bytes"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/recorder"

	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/results/summary"
	"github.com/e2c-dev/e2c/schema"
)

var grey = color.Gray{Y: 0x70}

// The marks of one label less than a bin apart are one marker, at their
// mean, in their runs' colour when all are of one and more than one run
// is drawn, else grey.
func TestChangeMarkers(t *testing.T) {
	for _, tt := range []struct {
		name   string
		marks  []mark
		oneRun bool
		want   string
	}{
		{"one run: grey", []mark{{10, "scale a=6", 0}, {20, "network b", 0}}, true,
			fmt.Sprintf("10 scale a=6 %v; 20 network b %v", grey, grey)},
		{"two configurations: their colours", []mark{{10, "scale a=6", 0}, {12, "scale a=6", 1}}, false,
			fmt.Sprintf("10 scale a=6 %v; 12 scale a=6 %v", plotutil.Color(0), plotutil.Color(1))},
		{"the runs of one configuration: one marker at the mean", []mark{{10.4, "scale a=6", 2}, {9.8, "scale a=6", 2}, {10.6, "scale a=6", 2}}, false,
			fmt.Sprintf("10.27 scale a=6 %v", plotutil.Color(2))},
		{"several runs' colours merged: grey", []mark{{10, "scale a=6", 0}, {10.5, "scale a=6", 1}}, false,
			fmt.Sprintf("10.25 scale a=6 %v", grey)},
		{"more than a bin apart: two", []mark{{10, "scale a=6", 0}, {11.5, "scale a=6", 0}}, false,
			fmt.Sprintf("10 scale a=6 %v; 11.5 scale a=6 %v", plotutil.Color(0), plotutil.Color(0))},
		{"other labels at one x: one each", []mark{{10, "scale a=6", 0}, {10, "network b", 0}}, false,
			fmt.Sprintf("10 network b %v; 10 scale a=6 %v", plotutil.Color(0), plotutil.Color(0))},
		{"none", nil, false, ""},
	} {
		var got []string
		for _, m := range changeMarkers(tt.marks, 1, tt.oneRun) {
			got = append(got, fmt.Sprintf("%.4g %s %v", m.x, m.label, m.color))
		}
		if s := strings.Join(got, "; "); s != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, s, tt.want)
		}
	}
}

func TestMarkLabel(t *testing.T) {
	for _, tt := range []struct {
		c    results.Change
		want string
	}{
		{results.Change{Kind: "scale", Asked: "edge.producer=6", Status: results.Succeeded}, "scale edge.producer=6"},
		{results.Change{Kind: "network", Asked: "fog -> edge rate 10Mbit delay 20ms loss 1%", Status: results.Succeeded}, "network fog -> edge rate 10Mbit…"},
		{results.Change{Kind: "run", Asked: "reconfigure on cloud.*", Status: results.Failed}, "run reconfigure on cloud.* (failed)"},
	} {
		if got := markLabel(&tt.c); got != tt.want {
			t.Errorf("%q, want %q", got, tt.want)
		}
	}
}

// Figures draws the changes of the runs' timelines on the figures over
// time, labelled; a metric without a time column says it cannot place
// them; a run without timeline.json draws no marker.
func TestFiguresDrawChanges(t *testing.T) {
	root := t.TempDir()
	start := int64(1764740000)
	var runs []summary.Run
	for i, changed := range []bool{true, true, false} {
		dir := filepath.Join(root, fmt.Sprint(i))
		os.MkdirAll(dir, 0o755)
		var csv strings.Builder
		csv.WriteString("unix_second,records\n")
		for s := range int64(60) {
			fmt.Fprintf(&csv, "%d,%d\n", start+s+int64(i), 100+s%7)
		}
		if err := os.WriteFile(filepath.Join(dir, "t.csv"), []byte(csv.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		r := summary.Run{ID: fmt.Sprintf("2026120305%02d00", i), Dir: dir}
		if changed {
			r.Changes = []*results.Change{
				{Kind: "scale", Asked: "edge.producer=6", Start: time.Unix(start+10, 0), Status: results.Succeeded},
				{Kind: "network", Asked: "fog -> edge rate 10Mbit", Start: time.Unix(start+20+int64(i), 0), Status: results.Succeeded},
			}
		}
		runs = append(runs, r)
	}
	tput := schema.Metric{Name: "tput", Files: "t.csv", Column: "records", TimeColumn: "unix_second"}
	untimed := schema.Metric{Name: "count", Files: "t.csv", Column: "records"}
	stats := []summary.Stats{{Metric: "tput", Runs: 3, Mean: 103}, {Metric: "count", Runs: 3, Mean: 103}}
	for _, tt := range []struct {
		name   string
		runs   []summary.Run
		metric schema.Metric
		want   []string
		not    []string
	}{
		{"timed", runs, tput, []string{">scale edge.producer=6<", ">network fog -&gt; edge rate 10Mbit<"}, []string{"not drawn"}},
		{"no time column", runs, untimed, []string{"changes of 2 runs not drawn:", "no time column to place them"}, []string{"edge.producer"}},
		{"no timeline", runs[2:], tput, nil, []string{"edge.producer", "not drawn"}},
	} {
		dir := t.TempDir()
		files, skipped, err := Figures(dir, &summary.Summary{Metrics: []schema.Metric{tt.metric}, Stats: stats, Runs: tt.runs})
		if err != nil || len(skipped) > 0 {
			t.Fatalf("%s: %v, %v", tt.name, err, skipped)
		}
		svg, err := os.ReadFile(filepath.Join(dir, tt.metric.Name+"-over-time.svg"))
		if err != nil {
			t.Fatalf("%s: %v (%v)", tt.name, err, files)
		}
		for _, s := range tt.want {
			if !bytes.Contains(svg, []byte(s)) {
				t.Errorf("%s: no %q in the figure", tt.name, s)
			}
		}
		for _, s := range tt.not {
			if bytes.Contains(svg, []byte(s)) {
				t.Errorf("%s: %q in the figure", tt.name, s)
			}
		}
		// Two runs of one timeline: one marker per change, not one per run.
		if n := bytes.Count(svg, []byte(">scale edge.producer=6<")); tt.name == "timed" && n != 1 {
			t.Errorf("%s: the scale is labelled %d times", tt.name, n)
		}
	}
}

// A marker's label is inside the data area, beside its line: right of it,
// or left of it near the right edge.
func TestMarkLabelsInside(t *testing.T) {
	p := newPlot("t", "x", "y")
	p.X.Min, p.X.Max = 0, 100
	area := vg.Rectangle{Min: vg.Point{X: 10, Y: 10}, Max: vg.Point{X: 310, Y: 210}}
	for _, x := range []float64{0, 50, 99.5, 100} {
		rec := &recorder.Canvas{}
		changeMarks{{x: x, label: "scale edge.producer=6", color: grey}}.Plot(draw.Canvas{Canvas: rec, Rectangle: area}, p)
		var text *recorder.FillString
		for _, a := range rec.Actions {
			if f, ok := a.(*recorder.FillString); ok {
				text = f
			}
		}
		if text == nil {
			t.Fatalf("x=%g: no label drawn", x)
		}
		// Drawn turned a quarter: the baseline's y is the canvas's -x, the
		// text's ascent to the left of it.
		_, above, below := p.X.Tick.Label.Handler.Box(text.String, text.Font)
		left, right := -text.Point.Y-above, -text.Point.Y+below
		line := area.Min.X + vg.Length(x/100)*(area.Max.X-area.Min.X)
		if left < area.Min.X || right > area.Max.X || (left < line && right > line) {
			t.Errorf("x=%g: label from %v to %v, line at %v, area %v to %v", x, left, right, line, area.Min.X, area.Max.X)
		}
	}
}
