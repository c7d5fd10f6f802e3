package plot

import (
	"bytes"
	"fmt"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/results/summary"
)

func drawCanvas() draw.Canvas { return draw.New(vgimg.New(width, height)) }

// perConfig are the statistics of one configuration with an interval, one
// without (a single run), and of eight with a sweep point's long names.
var (
	perConfig = []summary.Stats{
		{Metric: "latency", Unit: "ms", Config: "a", Runs: 3, Mean: 81.66, CILow: 80.14, CIHigh: 83.19},
		{Metric: "latency", Unit: "ms", Config: "b", Runs: 1, Mean: 90, CILow: math.NaN(), CIHigh: math.NaN()},
	}
	sweepPoints []summary.Stats
)

func init() {
	for i := range 8 {
		sweepPoints = append(sweepPoints, summary.Stats{Metric: "latency", Unit: "ms", Runs: 2, Mean: float64(10 + 4*i), CILow: float64(9 + 4*i), CIHigh: float64(11 + 4*i),
			Config: fmt.Sprintf("%02d-quantity-%d_delay-%dms_rate-%d", i+1, 1+i%2, 10+40*(i/4), 100*(1+i%2))})
	}
}

// runs are n runs of ~4,000 latencies each: noisy, with a start-up peak.
func runs(n int, config func(i int) string) []Series {
	var out []Series
	r := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		s := Series{Run: fmt.Sprintf("20261202-1443%02d", i), Config: config(i)}
		for j := range 4000 + 50*i {
			y := 80 + 40*r.Float64()*r.Float64()
			if j < 100 {
				y += 200
			}
			s.Points = append(s.Points, summary.Point{X: float64(j), Y: y})
		}
		out = append(out, s)
	}
	return out
}

func noConfig(int) string { return "" }

// The figures are written in both formats and are real images: an SVG
// document holding the title, a PNG with its signature.
func TestFigures(t *testing.T) {
	dir := t.TempDir()
	files, err := PerConfig(perConfig, "latency", dir, "latency-per-config")
	if err != nil || len(files) != 2 {
		t.Fatalf("%v, %v", files, err)
	}
	more, err := OverTime(runs(2, noConfig), "latency", "ms", false, dir, "latency-over-time")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, more...) {
		data, err := os.ReadFile(f)
		if err != nil || len(data) < 500 {
			t.Errorf("%s: %d bytes, %v", f, len(data), err)
			continue
		}
		switch filepath.Ext(f) {
		case ".svg":
			if !bytes.Contains(data, []byte("<svg")) || !bytes.Contains(data, []byte("latency")) {
				t.Errorf("%s is not an SVG of latency", f)
			}
		default:
			if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
				t.Errorf("%s is not a PNG", f)
			}
		}
	}
	if _, err := PerConfig(perConfig, "nothing", dir, "x"); err == nil {
		t.Error("a plot of no values")
	}
}

// Nothing is cut by the figure's edge: the outer margin of every PNG is
// white, whatever the figure holds (titles, whiskers and labels used to
// touch it).
func TestNothingCut(t *testing.T) {
	dir := t.TempDir()
	figures := map[string]func(base string) ([]string, error){
		"one config":   func(b string) ([]string, error) { return PerConfig(perConfig[:1], "latency", dir, b) },
		"two configs":  func(b string) ([]string, error) { return PerConfig(perConfig, "latency", dir, b) },
		"sweep points": func(b string) ([]string, error) { return PerConfig(sweepPoints, "latency", dir, b) },
		"one run":      func(b string) ([]string, error) { return OverTime(runs(1, noConfig), "latency", "ms", false, dir, b) },
		"twelve runs":  func(b string) ([]string, error) { return OverTime(runs(12, noConfig), "latency", "ms", false, dir, b) },
		"changes at the edges": func(b string) ([]string, error) {
			s := runs(1, noConfig)
			for _, x := range []float64{0, 3999} {
				s[0].Marks = append(s[0].Marks, summary.Mark{X: x, Change: &results.Change{Kind: "network", Asked: "fog -> edge rate 10Mbit delay 20ms loss 1%"}})
			}
			return OverTime(s, "latency", "ms", false, dir, b)
		},
		"three configs": func(b string) ([]string, error) {
			return OverTime(runs(9, func(i int) string { return []string{"low", "mid", "high-load-with-a-long-name"}[i%3] }), "latency", "ms", false, dir, b)
		},
	}
	for name, figure := range figures {
		files, err := figure(strings.ReplaceAll(name, " ", "-"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f, err := os.Open(files[1])
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", files[1], err)
		}
		b := img.Bounds()
		edge := int(margin.Points()/72*dpi) * 4 / 5 // pixels: most of the margin
		dark := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if x >= edge && x < b.Max.X-edge && y >= edge && y < b.Max.Y-edge {
					continue
				}
				if r, g, bl, _ := img.At(x, y).RGBA(); r < 0xf000 || g < 0xf000 || bl < 0xf000 {
					dark++
				}
			}
		}
		if dark > 0 {
			t.Errorf("%s: %d pixels drawn in the outer %d pixels of %s", name, dark, edge, files[1])
		}
	}
}

// Over time, the runs are drawn as bins, not as every value: three runs of
// about 4,000 values make a few hundred points, not thousands.
func TestOverTimeDrawsBins(t *testing.T) {
	dir := t.TempDir()
	files, err := OverTime(runs(3, noConfig), "latency", "ms", false, dir, "l")
	if err != nil {
		t.Fatal(err)
	}
	svg, _ := os.ReadFile(files[0])
	// Each segment of a path is an "L": per run, the median line and the
	// band's outline, over 40 bins of 100 values (the last ~50 values, an
	// incomplete bin, left out).
	if n := bytes.Count(svg, []byte("L")); n > 3*3*45+200 {
		t.Errorf("%d path points drawn", n)
	}
	if !bytes.Contains(svg, []byte("value number (bins of 100 values)")) || !bytes.Contains(svg, []byte("median per bin, 25–75% band")) {
		t.Errorf("the figure does not say what it draws")
	}
	// Every run's first two bins are incomplete: nothing to draw.
	short := []Series{{Run: "r", Points: []summary.Point{{X: 0, Y: 1}, {X: 1, Y: 2}}}}
	if _, err := OverTime(short, "tput", "", true, dir, "s"); err == nil || !strings.Contains(err.Error(), ErrTooShort.Error()) {
		t.Errorf("too short: %v", err)
	}
}

// The legend is beside the data, never on it.
func TestLegendBesideData(t *testing.T) {
	p := newPlot("t", "x", "y")
	legend := newLegend()
	legend.Add("20261202-144350 high-load-with-a-long-name")
	data, leg := drawFigure(drawCanvas(), p, "t", &legend)
	if leg.Min.X < data.Max.X || leg.Max.X <= leg.Min.X {
		t.Errorf("legend %v, data %v", leg, data)
	}
}

// Ticks are round values labelled as a reader would write them.
func TestTicks(t *testing.T) {
	for _, tt := range []struct {
		lo, hi float64
		want   string
	}{
		{78.1, 95.3, "80 85 90 95"},
		{81.9, 83.1, "82 82.2 82.4 82.6 82.8 83"},
		{79.2, 84.1, "80 81 82 83 84"},
		{0, 4100, "0 1000 2000 3000 4000"},
		{-0.5, 0.5, "-0.4 -0.2 0 0.2 0.4"},
		{381, 447, "390 400 410 420 430 440"},
		{0.0012, 0.0019, "0.0012 0.0013 0.0014 0.0015 0.0016 0.0017 0.0018 0.0019"},
	} {
		var labels []string
		for _, tick := range (roundTicks{}).Ticks(tt.lo, tt.hi) {
			if tick.Label != "" {
				labels = append(labels, tick.Label)
			}
		}
		if got := strings.Join(labels, " "); got != tt.want {
			t.Errorf("%g to %g: %s, want %s", tt.lo, tt.hi, got, tt.want)
		}
	}
}

func TestSegments(t *testing.T) {
	bins := []summary.Bin{{X: 0.5}, {X: 1.5}, {X: 3.5}, {X: 5.5}, {X: 6.5}}
	if got := fmt.Sprint(segments(bins, 1)); got != "[[{0.5 0 0 0 0} {1.5 0 0 0 0}] [{3.5 0 0 0 0}] [{5.5 0 0 0 0} {6.5 0 0 0 0}]]" {
		t.Errorf("segments %s", got)
	}
}
