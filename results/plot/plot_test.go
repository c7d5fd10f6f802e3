package plot

import (
	"bytes"
	"math"
	"os"
	"testing"

	"github.com/e2c-dev/e2c/results/summary"
)

// The figures are written in both formats and are real images: an SVG
// document holding the title, a PNG with its signature.
func TestFigures(t *testing.T) {
	dir := t.TempDir()
	stats := []summary.Stats{
		{Metric: "latency", Unit: "ms", Config: "a", Runs: 3, Mean: 4, CILow: 1, CIHigh: 7},
		{Metric: "latency", Unit: "ms", Config: "b", Runs: 1, Mean: 9, CILow: math.NaN(), CIHigh: math.NaN()},
	}
	files, err := PerConfig(stats, "latency", dir, "latency-per-config")
	if err != nil || len(files) != 2 {
		t.Fatalf("%v, %v", files, err)
	}
	more, err := OverTime(map[string][]summary.Point{"r1": {{X: 0, Y: 1}, {X: 1, Y: 3}}, "r2": {{X: 0, Y: 2}, {X: 1, Y: 2}}}, "latency", "ms", "seconds", dir, "latency-over-time")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, more...) {
		data, err := os.ReadFile(f)
		if err != nil || len(data) < 500 {
			t.Errorf("%s: %d bytes, %v", f, len(data), err)
			continue
		}
		switch {
		case bytes.HasSuffix([]byte(f), []byte(".svg")):
			if !bytes.Contains(data, []byte("<svg")) || !bytes.Contains(data, []byte("latency")) {
				t.Errorf("%s is not an SVG of latency", f)
			}
		case !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
			t.Errorf("%s is not a PNG", f)
		}
	}
	if _, err := PerConfig(stats, "nothing", dir, "x"); err == nil {
		t.Error("a plot of no values")
	}
}
