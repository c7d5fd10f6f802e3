package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/experiment"
	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/results/plot"
	"github.com/e2c-dev/e2c/results/summary"
	"github.com/e2c-dev/e2c/schema"
	"github.com/spf13/cobra"
)

func newResults() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "results SCENARIO_DIR",
		Short: "List the runs of a scenario",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := dirArg(args, 0, "E2C_SCENARIO_DIR")
			if err != nil {
				return err
			}
			runs, points, err := results.AllRuns(dir)
			if err != nil {
				return err
			}
			names := make([]string, len(runs))
			for i, r := range runs {
				names[i] = filepath.Base(r.Dir())
			}
			// The reproductions of the scenario's runs and of its points'.
			for _, p := range slices.Compact(append([]string{""}, points...)) {
				home := dir
				if p != "" {
					home = filepath.Join(dir, results.SweepDir, p)
				}
				recs, err := reproductions(home)
				if err != nil {
					return err
				}
				for _, r := range recs {
					rel, _ := filepath.Rel(home, r.Dir())
					runs, points, names = append(runs, r), append(points, p), append(names, rel)
				}
			}
			if len(runs) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no runs in %s yet\n", dir)
				return nil
			}
			t := newTable(cmd.OutOrStdout())
			t.Header("run", "status", "repeat", "app_conf", "sweep point", "duration", "hosts", "e2c")
			for i, r := range runs {
				took := "-"
				if d := r.Took(); d > 0 {
					took = d.Round(time.Second).String()
				}
				status := string(r.Status)
				if r.Reproduces != "" {
					status += " (reproduces " + filepath.Base(r.Reproduces) + ")"
				}
				if err := t.Append(names[i], status, fmt.Sprintf("%d/%d", r.Repeat+1, r.RepeatCount),
					strings.Join(r.AppConfs, ","), points[i], took, strconv.Itoa(len(r.Hosts)), r.E2C); err != nil {
					return err
				}
			}
			return t.Render()
		},
	}
	cmd.AddCommand(newSummarize(), newCompare(), newArchive())
	return cmd
}

// reproductions are the runs e2c reproduce wrote into the
// reproduce-<run>-N folders of dir (beside its runs), and into theirs.
func reproductions(dir string) ([]*results.Record, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []*results.Record
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "reproduce-") {
			continue
		}
		recs, err := results.Runs(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		more, err := reproductions(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(append(out, recs...), more...)
	}
	return out, nil
}

func newSummarize() *cobra.Command {
	return &cobra.Command{
		Use:   "summarize SCENARIO_DIR [RUN...]",
		Short: "Aggregate each metric of metrics.yaml per configuration across the runs",
		Long: `Reads the metrics SCENARIO_DIR/metrics.yaml declares from the runs that
succeeded (all of them, or those named; the others are listed and left out:
their data may be partial), takes each run's mean, and summarises the runs of
each configuration (app_conf): n, mean, median, standard deviation, min, max
and a 95 % confidence interval (Student's t). Prints a table and writes
summary.csv, summary.json and figures to SCENARIO_DIR/summaries/YYYYMMDD-HHMMSS/.
Names the runs in which a metric has no data, and fails when a metric has
none in any run.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			file := filepath.Join(dir, schema.MetricsFile)
			data, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("%w: declare the metrics first (see the README, \"Metrics and summaries\")", err)
			}
			metrics, err := schema.DecodeMetrics(file, data)
			if err != nil {
				return err
			}
			all, err := experiment.SummaryRuns(dir, args[1:])
			if err != nil {
				return err
			}
			runs, left, total, err := succeeded(dir, all)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			list, counts := leftOut(dir, left)
			if len(left) > 0 {
				fmt.Fprintf(w, "left out, not succeeded (their data may be partial): %s\n", list)
			}
			switch {
			case total == 0:
				return fmt.Errorf("no runs in %s yet: nothing to summarize", dir)
			case len(runs) == 0:
				return fmt.Errorf("%s: none of its %s succeeded: nothing to summarize", dir, plural(total, "run"))
			}
			values, err := summary.Read(runs, metrics)
			if err != nil {
				return err
			}
			stats := summary.Summarize(values, metrics)
			if err := statsTable(w, stats); err != nil {
				return err
			}
			noData := reportGaps(w, metrics, summary.Gaps(runs, metrics, values), len(runs))
			if err := os.MkdirAll(filepath.Join(dir, "summaries"), 0o755); err != nil {
				return err
			}
			out, err := results.NewRunDir(filepath.Join(dir, "summaries"), time.Now())
			if err != nil {
				return err
			}
			if err := results.WriteFile(out, "summary.csv", func(w io.Writer) error { return summary.WriteCSV(w, stats) }); err != nil {
				return err
			}
			if err := results.WriteJSON(out, "summary.json", stats); err != nil {
				return err
			}
			figures, err := figures(w, out, runs, metrics, stats)
			counted := plural(total, "run")
			if len(left) > 0 {
				counted += " (" + counts + ", their data left out)"
			}
			fmt.Fprintf(w, "%s; wrote %s/{summary.csv,summary.json} and %s\n", counted, out, plural(len(figures), "figure"))
			return errors.Join(err, noData)
		},
	}
}

// succeeded keeps the runs whose run folder's status is succeeded: a
// failed, interrupted or crashed run's data may be partial. It also returns
// the other run folders' records, and how many run folders there are.
func succeeded(scenario string, runs []summary.Run) (kept []summary.Run, left []*results.Record, total int, err error) {
	recs, _, err := results.AllRuns(scenario)
	if err != nil {
		return nil, nil, 0, err
	}
	byDir := map[string]*results.Record{}
	for _, r := range recs {
		byDir[r.Dir()] = r
	}
	seen := map[*results.Record]bool{}
	for _, r := range runs {
		rec := byDir[r.Dir]
		if rec == nil {
			rec = byDir[filepath.Dir(r.Dir)] // <run>/<app_conf>
		}
		if !seen[rec] {
			seen[rec] = true
			total++
			if rec.Status != results.Succeeded {
				left = append(left, rec)
			}
		}
		if rec.Status == results.Succeeded {
			kept = append(kept, r)
		}
	}
	return kept, left, total, nil
}

// leftOut says which runs were left out and why, and how many of each status.
func leftOut(scenario string, left []*results.Record) (list, counts string) {
	var names []string
	n := map[results.Status]int{}
	for _, r := range left {
		rel, _ := filepath.Rel(scenario, r.Dir())
		names = append(names, rel+" ("+string(r.Status)+")")
		n[r.Status]++
	}
	var parts []string
	for _, st := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%d %s", n[st], st))
	}
	return some(names), strings.Join(parts, ", ")
}

// statsTable prints the statistics, one row per metric and configuration.
func statsTable(w io.Writer, stats []summary.Stats) error {
	t := newTable(w)
	t.Header("metric", "config", "n", "mean", "median", "sd", "min", "max", "95% CI")
	for _, s := range stats {
		config := s.Config
		if config == "" {
			config = "-"
		}
		ci := "-"
		if !math.IsNaN(s.CILow) {
			ci = fmt.Sprintf("[%.4g, %.4g]", s.CILow, s.CIHigh)
		}
		sd := "-"
		if !math.IsNaN(s.SD) {
			sd = fmt.Sprintf("%.4g", s.SD)
		}
		if err := t.Append(withUnit(s.Metric, s.Unit), config, strconv.Itoa(s.Runs), fmt.Sprintf("%.4g", s.Mean),
			fmt.Sprintf("%.4g", s.Median), sd, fmt.Sprintf("%.4g", s.Min), fmt.Sprintf("%.4g", s.Max), ci); err != nil {
			return err
		}
	}
	return t.Render()
}

// reportGaps names, per metric, the runs that gave no value of it, and
// returns an error naming each metric that no run gave a value of.
func reportGaps(w io.Writer, metrics []schema.Metric, gaps []summary.Gap, runs int) error {
	var errs []error
	for _, m := range metrics {
		var none, empty []string // no file matched; files without a value
		for _, g := range gaps {
			if g.Metric != m.Name {
				continue
			}
			name := g.Run
			if g.Config != "" {
				name += " (" + g.Config + ")"
			}
			if g.Files == 0 {
				none = append(none, name)
			} else {
				empty = append(empty, name)
			}
		}
		var why []string
		if len(none) > 0 {
			why = append(why, fmt.Sprintf("no file matches %s in %s", m.Files, some(none)))
		}
		if len(empty) > 0 {
			why = append(why, fmt.Sprintf("the files %s hold no value in %s", m.Files, some(empty)))
		}
		switch {
		case len(why) == 0:
		case len(none)+len(empty) == runs:
			errs = append(errs, fmt.Errorf("metric %s has no data in any run: %s", m.Name, strings.Join(why, "; ")))
		default:
			fmt.Fprintf(w, "metric %s has no data in %s: %s\n", m.Name, plural(len(none)+len(empty), "run"), strings.Join(why, "; "))
		}
	}
	return errors.Join(errs...)
}

// withUnit is "latency (ms)", or the name alone without a unit.
func withUnit(name, unit string) string {
	if unit == "" {
		return name
	}
	return name + " (" + unit + ")"
}

// some lists names, the first few of many.
func some(names []string) string {
	const most = 5
	if len(names) > most {
		return fmt.Sprintf("%s and %d more", strings.Join(names[:most], ", "), len(names)-most)
	}
	return strings.Join(names, ", ")
}

// plural is "1 run", "2 runs".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func newReproduce() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "reproduce RUN_DIR [ARTIFACTS_DIR]",
		Short: "Run a run folder's configuration again, after checking the artifacts against its manifest",
		Long: `Runs again exactly what RUN_DIR ran: the scenario files it recorded (copied
into a new scenario folder beside the original, reproduce-<run>-N), the same
app_conf, run index and duration, on freshly reserved hosts released at the
end. The artifacts (ARTIFACTS_DIR, default the run's own) are first checked
against the run's artifacts.sha256: any file changed, missing or added is
reported and the reproduction refused unless --force.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := experiment.ReproduceOptions{Force: force, Out: cmd.OutOrStdout(), Version: versionString()}
			if len(args) == 2 {
				o.Artifacts = args[1]
			}
			run, err := experiment.Reproduce(cmd.Context(), args[0], o)
			if run != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "results: %s\n", run)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "run even when the artifacts differ from the manifest")
	return cmd
}

func newArchive() *cobra.Command {
	var out, artifacts string
	cmd := &cobra.Command{
		Use:   "archive SCENARIO_DIR",
		Short: "Pack the scenario, its runs and a README on reproducing them into one tar.gz",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := filepath.Clean(args[0])
			if out == "" {
				out = fmt.Sprintf("%s-%s.tar.gz", dir, time.Now().Format(results.TimeLayout))
			}
			if err := results.Archive(cmd.Context(), dir, out, artifacts); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the archive to write (never overwritten; default SCENARIO_DIR-<time>.tar.gz)")
	cmd.Flags().StringVar(&artifacts, "artifacts", "", "also pack this artifacts folder")
	return cmd
}

func newCompare() *cobra.Command {
	return &cobra.Command{
		Use:   "compare RUN_A RUN_B",
		Short: "Show two runs' configurations and metrics side by side",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var recs [2]*results.Record
			for i, dir := range args {
				r, err := results.ReadRecord(dir)
				if err != nil {
					return fmt.Errorf("%s is not a run folder: %w", dir, err)
				}
				recs[i] = r
			}
			a, b := recs[0], recs[1]
			t := newTable(cmd.OutOrStdout())
			t.Header("", filepath.Base(args[0]), filepath.Base(args[1]))
			row := func(what, x, y string) { t.Append(what, x, y) }
			row("status", string(a.Status), string(b.Status))
			row("repeat", fmt.Sprintf("%d/%d", a.Repeat+1, a.RepeatCount), fmt.Sprintf("%d/%d", b.Repeat+1, b.RepeatCount))
			row("app_conf", strings.Join(a.AppConfs, ","), strings.Join(b.AppConfs, ","))
			row("duration", a.Took().Round(time.Second).String(), b.Took().Round(time.Second).String())
			row("e2c", a.E2C, b.E2C)
			row("hosts", strconv.Itoa(len(a.Hosts)), strconv.Itoa(len(b.Hosts)))
			for _, f := range scenarioFiles(args[0], args[1]) {
				x, _ := os.ReadFile(filepath.Join(args[0], "scenario", f))
				y, _ := os.ReadFile(filepath.Join(args[1], "scenario", f))
				same := "same"
				if string(x) != string(y) {
					same = "differs"
				}
				row(f, size(x), size(y)+" ("+same+")")
			}
			row("artifacts", manifestLine(args[0], args[1]), "")
			if err := t.Render(); err != nil {
				return err
			}
			return compareMetrics(cmd.OutOrStdout(), args[0], args[1])
		},
	}
}

// scenarioFiles lists the scenario files either run recorded.
func scenarioFiles(a, b string) []string {
	seen := map[string]bool{}
	for _, dir := range []string{a, b} {
		root := filepath.Join(dir, "scenario")
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(root, path)
				seen[filepath.ToSlash(rel)] = true
			}
			return nil
		})
	}
	return slices.Sorted(maps.Keys(seen))
}

func size(data []byte) string {
	if data == nil {
		return "absent"
	}
	return fmt.Sprintf("%d bytes", len(data))
}

// manifestLine says how the two runs' artifacts differ.
func manifestLine(a, b string) string {
	read := func(dir string) []results.Sum {
		f, err := os.Open(filepath.Join(dir, results.ManifestFile))
		if err != nil {
			return nil
		}
		defer f.Close()
		sums, _ := results.ReadManifest(f)
		return sums
	}
	diff := results.Diff(read(a), read(b))
	if len(diff) == 0 {
		return "the same files"
	}
	return strings.Join(diff, "; ")
}

// compareMetrics shows each metric's mean in both runs, read as the first
// run's scenario declares them.
func compareMetrics(w io.Writer, a, b string) error {
	file := filepath.Join(a, "scenario", schema.MetricsFile)
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(w, "no metrics.yaml in the first run's scenario: no metrics to compare")
		return nil
	}
	metrics, err := schema.DecodeMetrics(file, data)
	if err != nil {
		return err
	}
	var runs []summary.Run
	for _, dir := range []string{a, b} {
		r, _ := results.ReadRecord(dir)
		if len(r.AppConfs) == 0 {
			runs = append(runs, summary.Run{ID: dir, Dir: dir})
		}
		for _, c := range r.AppConfs {
			runs = append(runs, summary.Run{ID: dir, Config: c, Dir: filepath.Join(dir, c)})
		}
	}
	values, err := summary.Read(runs, metrics)
	if err != nil {
		return err
	}
	t := newTable(w)
	t.Header("metric", "config", filepath.Base(a), filepath.Base(b), "change")
	for _, m := range metrics {
		confs := map[string][2]*float64{}
		for _, v := range values {
			if v.Metric != m.Name {
				continue
			}
			pair := confs[v.Config]
			mean := v.Mean
			if v.Run == a {
				pair[0] = &mean
			} else {
				pair[1] = &mean
			}
			confs[v.Config] = pair
		}
		for _, c := range slices.Sorted(maps.Keys(confs)) {
			p := confs[c]
			cell := func(f *float64) string {
				if f == nil {
					return "-"
				}
				return fmt.Sprintf("%.4g", *f)
			}
			change := "-"
			if p[0] != nil && p[1] != nil && *p[0] != 0 {
				change = fmt.Sprintf("%+.1f%%", 100*(*p[1]-*p[0])/math.Abs(*p[0]))
			}
			t.Append(withUnit(m.Name, m.Unit), c, cell(p[0]), cell(p[1]), change)
		}
	}
	return t.Render()
}

// maxLines bounds the runs drawn in one plot over time: past a dozen lines
// nobody can tell them apart.
const maxLines = 12

// figures draws, next to the summary, each metric per configuration and
// over time (the first maxLines runs), and says which it could not draw.
func figures(w io.Writer, dir string, runs []summary.Run, metrics []schema.Metric, stats []summary.Stats) ([]string, error) {
	var out []string
	for _, m := range metrics {
		files, err := plot.PerConfig(stats, m.Name, dir, m.Name+"-per-config")
		if err != nil {
			continue // a metric no run has
		}
		out = append(out, files...)
		var series []plot.Series
		for _, r := range runs[:min(len(runs), maxLines)] {
			pts, err := summary.Series(r.Dir, m)
			if err != nil {
				return out, err
			}
			if len(pts) > 0 {
				series = append(series, plot.Series{Run: r.ID, Config: r.Config, Points: pts})
			}
		}
		files, err = plot.OverTime(series, m.Name, m.Unit, m.TimeColumn != "", dir, m.Name+"-over-time")
		if errors.Is(err, plot.ErrTooShort) {
			fmt.Fprintf(w, "no figure of %s\n", err)
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, files...)
	}
	return out, nil
}
