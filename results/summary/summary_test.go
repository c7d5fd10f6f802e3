package summary

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/schema"
)

func write(t testing.TB, dir, name, text string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

var metrics = []schema.Metric{
	{Name: "latency", Files: "res/latency.csv", Column: "latency_ms", Unit: "ms"},
	{Name: "throughput", Files: "res/*/tput.log", Regex: regexp.MustCompile(`rate=([0-9.]+)`), Unit: "rec/s"},
	{Name: "count", Files: "res/count.txt", Lines: true},
}

// Three runs of one configuration and one of another, with values whose
// statistics are known exactly.
func TestSummarizeKnownData(t *testing.T) {
	root := t.TempDir()
	var runs []Run
	for i := range 3 {
		runs = append(runs, Run{ID: fmt.Sprint(i), Config: "fast", Dir: filepath.Join(root, fmt.Sprint(i))})
	}
	// CSV with the column not first, a regex over noisy logs in two files,
	// and lines.
	for i := range runs {
		data := "" // latencies 1 3, 4, 5 7: run means 2, 4, 6
		for _, l := range strings.Fields([]string{"1 3", "4", "5 7"}[i]) {
			data += "x" + l + "," + l + ",y\n"
		}
		write(t, runs[i].Dir, "res/latency.csv", "name,latency_ms,other\n"+data)
		write(t, runs[i].Dir, "res/a/tput.log", "starting\nrate=10\n")
		write(t, runs[i].Dir, "res/b/tput.log", fmt.Sprintf("rate=%d\nstopped\n", 20+10*i))
	}
	write(t, runs[0].Dir, "res/count.txt", "7\n\n9\n")
	slow := Run{ID: "s", Config: "slow", Dir: filepath.Join(root, "s")}
	write(t, slow.Dir, "res/latency.csv", "latency_ms\n100\n")
	values, err := Read(append(runs, slow), metrics)
	if err != nil {
		t.Fatal(err)
	}
	got := Summarize(values, metrics)
	if len(got) != 4 {
		t.Fatalf("%d stats: %+v", len(got), got)
	}
	// Run means 2, 4, 6: mean 4, median 4, sd 2, half width
	// t(0.975, 2) * 2 / sqrt(3); for 2 degrees of freedom Student's t has
	// the closed form (2p-1) / sqrt(2p(1-p)).
	half := 0.95 / math.Sqrt(2*0.975*0.025) * 2 / math.Sqrt(3)
	want := Stats{Metric: "latency", Unit: "ms", Config: "fast", Runs: 3, Samples: 5, Mean: 4, Median: 4, SD: 2, Min: 2, Max: 6, CILow: 4 - half, CIHigh: 4 + half}
	if !equal(got[0], want) {
		t.Errorf("latency fast:\n got %+v\nwant %+v", got[0], want)
	}
	if s := got[1]; s.Config != "slow" || s.Runs != 1 || s.Mean != 100 || !math.IsNaN(s.SD) || !math.IsNaN(s.CILow) {
		t.Errorf("latency slow: %+v", s)
	}
	// Throughput run means: 15, 20, 25.
	if s := got[2]; s.Metric != "throughput" || s.Mean != 20 || s.Median != 20 || s.SD != 5 || s.Samples != 6 {
		t.Errorf("throughput: %+v", s)
	}
	if s := got[3]; s.Metric != "count" || s.Runs != 1 || s.Mean != 8 || s.Samples != 2 {
		t.Errorf("count: %+v", s)
	}
	var csv bytes.Buffer
	WriteCSV(&csv, got)
	if lines := strings.Split(csv.String(), "\n"); lines[2] != "latency,ms,slow,1,1,100,100,,100,100,," {
		t.Errorf("csv:\n%s", csv.String())
	}
	data, err := json.Marshal(got[1])
	if err != nil || !strings.Contains(string(data), `"sd":null`) || !strings.Contains(string(data), `"mean":100`) {
		t.Errorf("json %s, %v", data, err)
	}
}

func equal(a, b Stats) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	return a.Metric == b.Metric && a.Unit == b.Unit && a.Config == b.Config && a.Runs == b.Runs && a.Samples == b.Samples &&
		eq(a.Mean, b.Mean) && eq(a.Median, b.Median) && eq(a.SD, b.SD) && eq(a.Min, b.Min) && eq(a.Max, b.Max) &&
		eq(a.CILow, b.CILow) && eq(a.CIHigh, b.CIHigh)
}

// TestTQuantile: the factor of the 95 % interval is Student's t at 0.975,
// as the tables give it, between their rows too (a table that stepped from
// 30 to 40 degrees of freedom made the intervals of 31 to 39 runs too
// narrow).
func TestTQuantile(t *testing.T) {
	for _, tt := range []struct {
		df   int
		want float64
	}{{1, 12.706}, {2, 4.303}, {5, 2.571}, {10, 2.228}, {30, 2.042}, {35, 2.030}, {50, 2.009}, {100, 1.984}, {1000, 1.962}} {
		if got := tQuantile(tt.df); math.Abs(got-tt.want) > 0.0005 {
			t.Errorf("t(0.975, %d) = %.4f, want %.3f", tt.df, got, tt.want)
		}
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "res/latency.csv", "id,lat\n1,2\n")
	write(t, dir, "res/count.txt", "1\nabc\n")
	_, err := Read([]Run{{ID: "r", Dir: dir}}, metrics[:1])
	if err == nil || !strings.Contains(err.Error(), `latency.csv:1: no column "latency_ms" (columns: id, lat)`) {
		t.Errorf("missing column: %v", err)
	}
	_, err = Read([]Run{{ID: "r", Dir: dir}}, metrics[2:])
	if err == nil || !strings.Contains(err.Error(), `count.txt:2: "abc" is not a number`) {
		t.Errorf("not a number: %v", err)
	}
	// A run without the files has no value, and no error.
	values, err := Read([]Run{{ID: "r", Dir: t.TempDir()}}, metrics)
	if err != nil || len(values) != 0 {
		t.Errorf("empty run: %v, %v", values, err)
	}
}

// BenchmarkSummarize1000Runs reads 1,000 runs of 100,000 samples each (one
// CSV file per run) and summarises them; it reports the time per summary
// and the heap it needed.
func BenchmarkSummarize1000Runs(b *testing.B) {
	root := b.TempDir()
	var runs []Run
	line := []byte("0,12.375\n")
	body := append([]byte("t,latency_ms\n"), bytes.Repeat(line, 100_000)...)
	for i := range 1000 {
		dir := filepath.Join(root, fmt.Sprint(i))
		os.MkdirAll(filepath.Join(dir, "res"), 0o755)
		os.WriteFile(filepath.Join(dir, "res", "latency.csv"), body, 0o644)
		runs = append(runs, Run{ID: fmt.Sprint(i), Config: fmt.Sprint(i % 4), Dir: dir})
	}
	ms := metrics[:1]
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		values, err := Read(runs, ms)
		if err != nil || len(values) != 1000 {
			b.Fatal(len(values), err)
		}
		if s := Summarize(values, ms); len(s) != 4 || s[0].Mean != 12.375 || s[0].Samples != 250*100_000 {
			b.Fatalf("%+v", s)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/1e6, "MB-alloc/op")
	b.ReportMetric(float64(after.Sys)/1e6, "MB-sys")
	b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/summary")
}

func TestSeries(t *testing.T) {
	dir := t.TempDir()
	// Two files, the second one's times earlier: x is from the earliest.
	write(t, dir, "a/t.csv", "unix_second,records\n1002,20\n1003,30\n")
	write(t, dir, "b/t.csv", "unix_second,records\n1000,0\n1001,10\n")
	m := schema.Metric{Name: "tput", Files: "*/t.csv", Column: "records", TimeColumn: "unix_second"}
	pts, err := Series(dir, m)
	if want := "[{2 20} {3 30} {0 0} {1 10}]"; err != nil || fmt.Sprint(pts) != want {
		t.Errorf("got %v, %v; want %v", pts, err, want)
	}
	m.Column, m.TimeColumn, m.Lines = "", "", true
	write(t, dir, "n.txt", "5\n6\n")
	m.Files = "n.txt"
	if pts, _ := Series(dir, m); fmt.Sprint(pts) != "[{0 5} {1 6}]" {
		t.Errorf("positions: %v", pts)
	}
}

func TestBinned(t *testing.T) {
	// By position: 253 values, one per x, and 101: bins of 10 (about 50
	// over the longest), the last 3 and 1 values, an incomplete bin, left
	// out.
	var long, short []Point
	for i := range 253 {
		long = append(long, Point{float64(i), float64(i)})
	}
	for i := range 101 {
		short = append(short, Point{float64(i), 1})
	}
	width, bins := Binned([][]Point{long, short}, false)
	if width != 10 || len(bins) != 2 || len(bins[0]) != 25 || len(bins[1]) != 10 {
		t.Fatalf("width %g, bins %d %d", width, len(bins[0]), len(bins[1]))
	}
	if b := bins[0][0]; b != (Bin{X: 5, N: 10, Q1: 2.25, Median: 4.5, Q3: 6.75}) {
		t.Errorf("first bin %+v", b)
	}
	if b := bins[0][24]; b.X != 245 || b.Median != 244.5 {
		t.Errorf("last bin %+v", b)
	}

	// Over time: a count per second, as the quickstart's sink writes, the
	// first and last seconds partial; four producers' files at once (four
	// values a second); a run with a second without any value.
	counts := []float64{96, 388, 414, 400, 390, 402, 410, 395, 399, 401, 30}
	var sink, producers, gap []Point
	for i, c := range counts {
		sink = append(sink, Point{float64(i), c})
		for p := range 4 {
			producers = append(producers, Point{float64(i), float64(100 + p)})
		}
		if i != 5 {
			gap = append(gap, Point{float64(i), c})
		}
	}
	width, bins = Binned([][]Point{sink, producers, gap}, true)
	if width != 1 {
		t.Fatalf("width %g", width)
	}
	var xs, medians []float64
	for _, b := range bins[0] {
		xs, medians = append(xs, b.X), append(medians, b.Median)
	}
	if fmt.Sprint(xs) != "[1.5 2.5 3.5 4.5 5.5 6.5 7.5 8.5 9.5]" || fmt.Sprint(medians) != fmt.Sprint(counts[1:10]) {
		t.Errorf("sink bins at %v: %v", xs, medians)
	}
	if b := bins[1][0]; b != (Bin{X: 1.5, N: 4, Q1: 100.75, Median: 101.5, Q3: 102.25}) {
		t.Errorf("producers' bin %+v", b)
	}
	if len(bins[2]) != 8 || bins[2][3].X != 4.5 || bins[2][4].X != 6.5 {
		t.Errorf("bins around the missing second: %+v", bins[2])
	}
}

// A run without a metric's files and a run whose files hold no value are
// gaps, each with how many files matched.
func TestGaps(t *testing.T) {
	root := t.TempDir()
	runs := []Run{{ID: "full", Dir: filepath.Join(root, "full")}, {ID: "none", Dir: filepath.Join(root, "none")},
		{ID: "empty", Config: "c", Dir: filepath.Join(root, "empty")}}
	write(t, runs[0].Dir, "res/count.txt", "7\n")
	write(t, runs[2].Dir, "res/count.txt", "\n")
	ms := metrics[2:]
	values, err := Read(runs, ms)
	if err != nil {
		t.Fatal(err)
	}
	got := Gaps(runs, ms, values)
	want := []Gap{{Run: "none", Metric: "count", Files: 0}, {Run: "empty", Config: "c", Metric: "count", Files: 1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("gaps %v, want %v", got, want)
	}
}
