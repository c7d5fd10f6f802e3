// Package summary aggregates the metrics of runs: each run's files are
// read once, streaming, into a mean per run and configuration, and the
// runs of one configuration are summarised across repeats: n, mean,
// median, standard deviation, min, max and a 95 % confidence interval.
package summary

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/e2c-dev/e2c/engine/fanout"
	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
	"gonum.org/v1/gonum/stat/distuv"
)

// Run is one run's results folder for one configuration.
type Run struct {
	ID     string // the run folder's name
	Config string // the app_conf, "" for none
	Dir    string // where its files are: the run folder, or <run>/<app_conf>
	// Changes are those made to the running experiment (the run folder's
	// timeline.json), as Scenario reads them; each app_conf's the same.
	Changes []*results.Change
}

// Value is what one run gave for one metric.
type Value struct {
	Run, Config, Metric string
	Samples             int
	Mean                float64
}

// Stats summarise a metric over the runs of one configuration.
type Stats struct {
	Metric  string  `json:"metric"`
	Unit    string  `json:"unit,omitempty"`
	Config  string  `json:"config"`
	Runs    int     `json:"n"`       // runs that had the metric
	Samples int     `json:"samples"` // values read in all of them
	Mean    float64 `json:"mean"`
	Median  float64 `json:"median"`
	SD      float64 `json:"sd"` // sample standard deviation of the run means; NaN for one run
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	CILow   float64 `json:"ci95_low"` // NaN for one run
	CIHigh  float64 `json:"ci95_high"`
}

// MarshalJSON writes the values undefined for a single run (NaN) as null.
func (s Stats) MarshalJSON() ([]byte, error) {
	type plain Stats
	return json.Marshal(struct {
		plain
		SD     *float64 `json:"sd"`
		CILow  *float64 `json:"ci95_low"`
		CIHigh *float64 `json:"ci95_high"`
	}{plain(s), nullable(s.SD), nullable(s.CILow), nullable(s.CIHigh)})
}

func nullable(f float64) *float64 {
	if math.IsNaN(f) {
		return nil
	}
	return &f
}

// Read reads every metric of every run, with as many runs at once as
// there are CPUs. A metric whose files a run lacks is left out of that
// run; a file that cannot be read as declared is an error naming it.
func Read(runs []Run, metrics []schema.Metric) ([]Value, error) {
	n := len(runs) * len(metrics)
	values := make([]Value, n)
	// A line buffer for each reader at work, not for each file.
	bufs := sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}
	errs := fanout.Each(context.Background(), n, runtime.GOMAXPROCS(0), func(_ context.Context, i int) error {
		r, m := runs[i/len(metrics)], metrics[i%len(metrics)]
		buf := bufs.Get().(*[]byte)
		defer bufs.Put(buf)
		k, sum, err := readMetric(r.Dir, m, *buf)
		if err != nil {
			return fmt.Errorf("run %s, metric %s: %w", r.ID, m.Name, err)
		}
		if k > 0 {
			values[i] = Value{Run: r.ID, Config: r.Config, Metric: m.Name, Samples: k, Mean: sum / float64(k)}
		}
		return nil
	})
	values = slices.DeleteFunc(values, func(v Value) bool { return v.Samples == 0 })
	errs = slices.DeleteFunc(errs, func(err error) bool { return err == nil })
	slices.SortFunc(values, func(a, b Value) int {
		return strings.Compare(a.Metric+"\x00"+a.Config+"\x00"+a.Run, b.Metric+"\x00"+b.Config+"\x00"+b.Run)
	})
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		if len(errs) == 1 {
			return values, errs[0]
		}
		return values, fmt.Errorf("%d problems reading metrics, first: %w", len(errs), errs[0])
	}
	return values, nil
}

// Gap is a metric one run (and configuration) gave no value of.
type Gap struct {
	Run, Config, Metric string
	Files               int // how many files matched the metric's glob: none, or files without a value
}

// Gaps lists, per metric in order, the runs that values has no value of.
func Gaps(runs []Run, metrics []schema.Metric, values []Value) []Gap {
	have := map[[3]string]bool{}
	for _, v := range values {
		have[[3]string{v.Metric, v.Run, v.Config}] = true
	}
	var out []Gap
	for _, m := range metrics {
		for _, r := range runs {
			if !have[[3]string{m.Name, r.ID, r.Config}] {
				files, _ := filepath.Glob(filepath.Join(r.Dir, filepath.FromSlash(m.Files)))
				out = append(out, Gap{Run: r.ID, Config: r.Config, Metric: m.Name, Files: len(files)})
			}
		}
	}
	return out
}

// readMetric streams the files of m in dir: how many values, and their sum.
func readMetric(dir string, m schema.Metric, buf []byte) (int, float64, error) {
	n, sum := 0, 0.0
	err := eachValue(dir, m, buf, func(_, v float64) { n, sum = n+1, sum+v })
	return n, sum, err
}

// eachValue calls f with every value of m in dir's files, in file order,
// and its x: the time column's value, or the value's position.
func eachValue(dir string, m schema.Metric, buf []byte, f func(x, y float64)) error {
	files, err := filepath.Glob(filepath.Join(dir, filepath.FromSlash(m.Files)))
	if err != nil {
		return err
	}
	pos := 0
	for _, name := range files {
		if err := readFile(name, m, buf, func(x, y float64, hasX bool) {
			if !hasX {
				x = float64(pos)
			}
			pos++
			f(x, y)
		}); err != nil {
			return err
		}
	}
	return nil
}

func readFile(name string, m schema.Metric, buf []byte, emit func(x, y float64, hasX bool)) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(buf, 16<<20)
	col, tcol := -1, -1
	for line := 1; sc.Scan(); line++ {
		text := sc.Bytes()
		var field, tfield []byte
		switch {
		case m.Column != "":
			if col < 0 {
				header, err := csv.NewReader(bytes.NewReader(text)).Read()
				if err != nil && err != io.EOF {
					return fmt.Errorf("%s:1: %v", name, err)
				}
				if col = slices.Index(header, m.Column); col < 0 {
					return fmt.Errorf("%s:1: no column %q (columns: %s)", name, m.Column, strings.Join(header, ", "))
				}
				if m.TimeColumn != "" {
					if tcol = slices.Index(header, m.TimeColumn); tcol < 0 {
						return fmt.Errorf("%s:1: no time column %q (columns: %s)", name, m.TimeColumn, strings.Join(header, ", "))
					}
				}
				continue
			}
			field = nthField(text, col)
			if tcol >= 0 {
				tfield = bytes.TrimSpace(nthField(text, tcol))
			}
		case m.Regex != nil:
			sub := m.Regex.FindSubmatch(text)
			if sub == nil {
				continue // lines without the metric are other output
			}
			field = sub[len(sub)-1]
			if len(sub) > 1 {
				field = sub[1]
			}
		default:
			field = bytes.TrimSpace(text)
		}
		field = bytes.TrimSpace(field)
		if len(field) == 0 {
			continue
		}
		v, ok := number(field)
		if !ok {
			return fmt.Errorf("%s:%d: %q is not a number", name, line, field)
		}
		x, hasX := 0.0, len(tfield) > 0
		if hasX {
			if x, ok = number(tfield); !ok {
				return fmt.Errorf("%s:%d: time %q is not a number", name, line, tfield)
			}
		}
		emit(x, v, hasX)
	}
	return sc.Err()
}

// number parses b without copying it (most of the time on large files is
// here); ParseFloat's error, which would keep the string, is dropped.
func number(b []byte) (float64, bool) {
	v, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
	return v, err == nil
}

// Point is one value of a series: x is seconds from the earliest value's
// time (the time column), or the value's position.
type Point struct{ X, Y float64 }

// Series reads one run's values of m, for a plot over time.
func Series(dir string, m schema.Metric) ([]Point, error) {
	pts, _, err := series(dir, m)
	return pts, err
}

// series is Series and the x its points are from (the earliest value's time).
func series(dir string, m schema.Metric) ([]Point, float64, error) {
	var pts []Point
	err := eachValue(dir, m, make([]byte, 256<<10), func(x, y float64) { pts = append(pts, Point{x, y}) })
	if err != nil || len(pts) == 0 {
		return nil, 0, err
	}
	x0, _ := xRange(pts)
	for i := range pts {
		pts[i].X -= x0
	}
	return pts, x0, nil
}

// nthField is the i-th comma-separated field of a line, nil when missing.
// Values are numbers: no quoting to handle.
func nthField(line []byte, i int) []byte {
	for ; i > 0; i-- {
		k := bytes.IndexByte(line, ',')
		if k < 0 {
			return nil
		}
		line = line[k+1:]
	}
	if k := bytes.IndexByte(line, ','); k >= 0 {
		line = line[:k]
	}
	return line
}

// Summarize aggregates the values per metric and configuration, in the
// order of metrics, then configurations sorted.
func Summarize(values []Value, metrics []schema.Metric) []Stats {
	var out []Stats
	for _, m := range metrics {
		byConf := map[string][]Value{}
		for _, v := range values {
			if v.Metric == m.Name {
				byConf[v.Config] = append(byConf[v.Config], v)
			}
		}
		confs := make([]string, 0, len(byConf))
		for c := range byConf {
			confs = append(confs, c)
		}
		slices.Sort(confs)
		for _, c := range confs {
			out = append(out, stats(m, c, byConf[c]))
		}
	}
	return out
}

func stats(m schema.Metric, conf string, vs []Value) Stats {
	s := Stats{Metric: m.Name, Unit: m.Unit, Config: conf, Runs: len(vs), SD: math.NaN(), CILow: math.NaN(), CIHigh: math.NaN()}
	xs := make([]float64, len(vs))
	sum := 0.0
	for i, v := range vs {
		xs[i] = v.Mean
		sum += v.Mean
		s.Samples += v.Samples
	}
	slices.Sort(xs)
	n := float64(len(xs))
	s.Mean, s.Min, s.Max = sum/n, xs[0], xs[len(xs)-1]
	if mid := len(xs) / 2; len(xs)%2 == 1 {
		s.Median = xs[mid]
	} else {
		s.Median = (xs[mid-1] + xs[mid]) / 2
	}
	if len(xs) > 1 {
		ss := 0.0
		for _, x := range xs {
			ss += (x - s.Mean) * (x - s.Mean)
		}
		s.SD = math.Sqrt(ss / (n - 1))
		half := tQuantile(len(xs)-1) * s.SD / math.Sqrt(n)
		s.CILow, s.CIHigh = s.Mean-half, s.Mean+half
	}
	return s
}

// tQuantile is Student's t at 0.975 for df degrees of freedom: the factor
// of a two-sided 95 % confidence interval.
func tQuantile(df int) float64 {
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(df)}.Quantile(0.975)
}

// WriteCSV writes the statistics as CSV, one row per metric and
// configuration; undefined values are empty.
func WriteCSV(w io.Writer, ss []Stats) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"metric", "unit", "config", "n", "samples", "mean", "median", "sd", "min", "max", "ci95_low", "ci95_high"})
	for _, s := range ss {
		cw.Write([]string{s.Metric, s.Unit, s.Config, strconv.Itoa(s.Runs), strconv.Itoa(s.Samples),
			num(s.Mean), num(s.Median), num(s.SD), num(s.Min), num(s.Max), num(s.CILow), num(s.CIHigh)})
	}
	cw.Flush()
	return cw.Error()
}

func num(f float64) string {
	if math.IsNaN(f) {
		return ""
	}
	return strconv.FormatFloat(f, 'g', 6, 64)
}
