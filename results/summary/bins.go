package summary

import (
	"maps"
	"math"
	"slices"
)

// Bin summarises the values of one stretch of a series: X is its middle,
// Q1 and Q3 the 25th and 75th percentiles.
type Bin struct {
	X              float64
	N              int
	Q1, Median, Q3 float64
}

// binsWanted is about how many bins the longest series is cut into: enough
// to show a trend, few enough that a bin holds several values.
const binsWanted = 50

// Binned cuts each series (a run's) into bins of one width, the same for
// all: a round number (RoundUp), about binsWanted bins over the
// longest series and no narrower than the usual spacing of the x values,
// so that a bin is seldom empty. It keeps only complete bins: a bin the
// run's data ends inside holds less than the others and would read as a
// drop. By position (timed false), that is a last bin with fewer values
// than the width; over time, it is the bins of the first and the last
// values, which the run started and stopped inside (the count of the first
// and last seconds is a part of a second's).
func Binned(series [][]Point, timed bool) (width float64, bins [][]Bin) {
	span, spacing := 0.0, 0.0
	for _, s := range series {
		lo, hi := xRange(s)
		span = max(span, hi-lo)
		if timed {
			spacing = max(spacing, medianSpacing(s))
		}
	}
	if !timed {
		spacing = 1 // by position, values are 1 apart
	}
	width = RoundUp(max(span/binsWanted, spacing))
	for _, s := range series {
		bins = append(bins, binSeries(s, width, timed))
	}
	return width, bins
}

func binSeries(s []Point, width float64, timed bool) []Bin {
	if len(s) == 0 {
		return nil
	}
	lo, hi := xRange(s)
	index := func(x float64) int { return int(math.Floor((x-lo)/width + 1e-9)) }
	byBin := map[int][]float64{}
	for _, p := range s {
		k := index(p.X)
		byBin[k] = append(byBin[k], p.Y)
	}
	last := index(hi)
	if timed {
		delete(byBin, 0)
		delete(byBin, last)
	} else if len(byBin[last]) < int(width) {
		delete(byBin, last)
	}
	var out []Bin
	for _, k := range slices.Sorted(maps.Keys(byBin)) {
		ys := byBin[k]
		slices.Sort(ys)
		out = append(out, Bin{X: (float64(k) + 0.5) * width, N: len(ys), Q1: quantile(ys, 0.25), Median: quantile(ys, 0.5), Q3: quantile(ys, 0.75)})
	}
	return out
}

func xRange(s []Point) (lo, hi float64) {
	if len(s) == 0 {
		return 0, 0
	}
	lo, hi = s[0].X, s[0].X
	for _, p := range s {
		lo, hi = min(lo, p.X), max(hi, p.X)
	}
	return lo, hi
}

// medianSpacing is the median gap between the distinct x values of s, 0
// for fewer than two.
func medianSpacing(s []Point) float64 {
	xs := make([]float64, len(s))
	for i, p := range s {
		xs[i] = p.X
	}
	slices.Sort(xs)
	xs = slices.Compact(xs)
	if len(xs) < 2 {
		return 0
	}
	gaps := make([]float64, len(xs)-1)
	for i := range gaps {
		gaps[i] = xs[i+1] - xs[i]
	}
	slices.Sort(gaps)
	return quantile(gaps, 0.5)
}

// RoundUp is the smallest of 1, 2 and 5 × 10^k not below v (1 for v <= 0):
// a round bin width, or step between ticks.
func RoundUp(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// quantile of sorted values, interpolated between the two nearest.
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[i]
	}
	return sorted[i] + (pos-float64(i))*(sorted[i+1]-sorted[i])
}
