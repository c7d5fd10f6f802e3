package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"github.com/spf13/cobra"
)

func newResults() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "results [SCENARIO_DIR]",
		Short: "List, summarize, compare and archive the runs of a scenario",
		Long: `With a folder, or none (E2C_SCENARIO_DIR), lists its runs as e2c results list
does; a word that is neither a folder nor a subcommand is taken for a
mistyped subcommand.`,
		Example: `  e2c results list examples/quickstart
  e2c results summarize examples/quickstart
  e2c results compare examples/quickstart/20261202-150405 examples/quickstart/20261202-151230`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// A word that names no folder is a mistyped subcommand; a path
			// is a folder, found or not.
			if len(args) == 1 && !strings.ContainsRune(args[0], filepath.Separator) {
				if st, err := os.Stat(args[0]); err != nil || !st.IsDir() {
					return unknownCommand(cmd, args[0])
				}
			}
			return listRuns(cmd, args, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the runs as a JSON array")
	cmd.AddCommand(newList(), newSummarize(), newCompare(), newArchive())
	return cmd
}

func newList() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list [SCENARIO_DIR]",
		Short:   "List the runs of a scenario, of its sweep's points and their reproductions",
		Example: "  e2c results list examples/quickstart\n  E2C_SCENARIO_DIR=examples/quickstart e2c results list --json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return listRuns(cmd, args, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the runs as a JSON array")
	return cmd
}

// runRow is a run as e2c results lists it (and compare, with --json).
type runRow struct {
	Run         string   `json:"run"` // its folder, from the scenario folder
	Dir         string   `json:"dir"`
	Status      string   `json:"status"`
	Reproduces  string   `json:"reproduces,omitempty"`
	Repeat      int      `json:"current_repeat"` // from 0, as in run.json
	RepeatCount int      `json:"repeat_count"`
	AppConfs    []string `json:"app_conf"`
	Point       string   `json:"sweep_point,omitempty"`
	Duration    float64  `json:"duration_seconds"` // 0 while it runs
	Hosts       int      `json:"hosts"`
	E2C         string   `json:"e2c_version"`
}

func rowOf(r *results.Record, name, point string) runRow {
	return runRow{Run: name, Dir: r.Dir(), Status: string(r.Status), Reproduces: r.Reproduces, Repeat: r.Repeat, RepeatCount: r.RepeatCount,
		AppConfs: append([]string{}, r.AppConfs...), Point: point, Duration: r.Took().Seconds(), Hosts: len(r.Hosts), E2C: r.E2C}
}

// repeat is "2/3": the run's place among its repeats.
func (r runRow) repeat() string { return fmt.Sprintf("%d/%d", r.Repeat+1, r.RepeatCount) }

func (r runRow) took() string {
	if r.Duration <= 0 {
		return "-"
	}
	return (time.Duration(r.Duration * float64(time.Second))).Round(time.Second).String()
}

func listRuns(cmd *cobra.Command, args []string, asJSON bool) error {
	dir, err := dirArg(args, 0, "E2C_SCENARIO_DIR")
	if err != nil {
		return err
	}
	rows, err := allRuns(dir)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	switch {
	case asJSON:
		return writeJSON(w, rows)
	case len(rows) == 0:
		fmt.Fprintf(w, "no runs in %s yet\n", dir)
		return nil
	}
	t := newTable(w)
	t.Header("run", "status", "repeat", "app_conf", "sweep point", "duration", "hosts", "e2c")
	for _, r := range rows {
		status := r.Status
		if r.Reproduces != "" {
			status += " (reproduces " + filepath.Base(r.Reproduces) + ")"
		}
		if err := t.Append(r.Run, status, r.repeat(), strings.Join(r.AppConfs, ","), r.Point, r.took(), strconv.Itoa(r.Hosts), r.E2C); err != nil {
			return err
		}
	}
	return t.Render()
}

// allRuns are the runs of a scenario and its sweep's points, then the
// reproductions of each.
func allRuns(dir string) ([]runRow, error) {
	recs, points, err := results.AllRuns(dir)
	if err != nil {
		return nil, err
	}
	rows := []runRow{} // [] in JSON, not null
	for i, r := range recs {
		rows = append(rows, rowOf(r, filepath.Base(r.Dir()), points[i]))
	}
	for _, p := range slices.Compact(append([]string{""}, points...)) {
		home := dir
		if p != "" {
			home = filepath.Join(dir, results.SweepDir, p)
		}
		recs, err := results.Reproductions(home)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			rel, _ := filepath.Rel(home, r.Dir())
			rows = append(rows, rowOf(r, rel, p))
		}
	}
	return rows, nil
}

// writeJSON writes v as indented JSON, for --json.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newSummarize() *cobra.Command {
	return &cobra.Command{
		Use:   "summarize [SCENARIO_DIR [RUN...]]",
		Short: "Aggregate each metric of metrics.yaml per configuration across the runs",
		Long: `Reads the metrics SCENARIO_DIR/metrics.yaml declares from the runs that
succeeded (all of them, or those named; the others are listed and left out:
their data may be partial), takes each run's mean, and summarises the runs of
each configuration (app_conf): n, mean, median, standard deviation, min, max
and a 95 % confidence interval (Student's t). Prints a table and writes
summary.csv, summary.json and figures to SCENARIO_DIR/summaries/YYYYMMDD-HHMMSS/.
Names the runs in which a metric has no data, and fails when a metric has
none in any run.`,
		Example: "  e2c results summarize examples/quickstart\n  e2c results summarize examples/quickstart 20261202-150405 20261202-151230",
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := dirArg(args, 0, "E2C_SCENARIO_DIR")
			if err != nil {
				return err
			}
			metrics, err := summary.LoadMetrics(dir)
			if err != nil {
				return err
			}
			runs, recs, err := summary.ScenarioRuns(dir, args[min(len(args), 1):])
			if err != nil {
				return err
			}
			s, err := summary.Scenario(dir, runs, recs, metrics)
			w := cmd.OutOrStdout()
			if s != nil && len(s.Left) > 0 {
				fmt.Fprintf(w, "left out, not succeeded (their data may be partial): %s\n", leftOut(dir, s.Left))
			}
			if err != nil {
				return err
			}
			if err := statsTable(w, s.Stats); err != nil {
				return err
			}
			noData := reportMissing(w, s.Missing)
			out, err := summary.Write(dir, s, time.Now())
			if err != nil {
				return err
			}
			figures, skipped, err := plot.Figures(out, s)
			for _, why := range skipped {
				fmt.Fprintf(w, "no figure of %s\n", why)
			}
			counted := plural(s.Folders, "run")
			if len(s.Left) > 0 {
				counted += " (" + statusCounts(s.Left) + ", their data left out)"
			}
			files := summary.CSVFile + "," + summary.JSONFile
			if _, err := os.Stat(filepath.Join(out, summary.ChangesFile)); err == nil {
				files += "," + summary.ChangesFile
			}
			fmt.Fprintf(w, "%s; wrote %s/{%s} and %s\n", counted, out, files, plural(len(figures), "figure"))
			return errors.Join(err, noData)
		},
	}
}

// leftOut names the run folders left out, each with its status.
func leftOut(scenario string, left []*results.Record) string {
	var names []string
	for _, r := range left {
		rel, _ := filepath.Rel(scenario, r.Dir())
		names = append(names, rel+" ("+string(r.Status)+")")
	}
	return some(names)
}

// statusCounts says how many folders have each status: "1 crashed, 2 failed".
func statusCounts(recs []*results.Record) string {
	n := map[results.Status]int{}
	for _, r := range recs {
		n[r.Status]++
	}
	var parts []string
	for _, st := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%d %s", n[st], st))
	}
	return strings.Join(parts, ", ")
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

// reportMissing names, per metric, the runs that gave no value of it, and
// returns an error naming each metric that no run gave a value of.
func reportMissing(w io.Writer, missing []summary.Missing) error {
	var errs []error
	for _, m := range missing {
		var why []string
		if len(m.NoFile) > 0 {
			why = append(why, fmt.Sprintf("no file matches %s in %s", m.Metric.Files, some(m.NoFile)))
		}
		if len(m.NoValue) > 0 {
			why = append(why, fmt.Sprintf("the files %s hold no value in %s", m.Metric.Files, some(m.NoValue)))
		}
		if m.All {
			errs = append(errs, fmt.Errorf("metric %s has no data in any run: %s", m.Metric.Name, strings.Join(why, "; ")))
		} else {
			fmt.Fprintf(w, "metric %s has no data in %s: %s\n", m.Metric.Name, plural(len(m.NoFile)+len(m.NoValue), "run"), strings.Join(why, "; "))
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
		Use: "reproduce RUN_DIR [ARTIFACTS_DIR]",
		Example: `  e2c reproduce examples/quickstart/20261202-150405
  e2c reproduce examples/quickstart/20261202-150405 artifacts-2 --force`,
		Short: "Run a run folder's configuration again, after checking the artifacts against its manifest",
		Long: `Runs again exactly what RUN_DIR ran: the scenario files it recorded (copied
into a new scenario folder beside the original, reproduce-<run>-N), the same
app_conf, run index and duration, on freshly reserved hosts released at the
end. The artifacts (ARTIFACTS_DIR, default the run's own) are first checked
against the run's artifacts.sha256: any file changed, missing or added is
reported and the reproduction refused unless --force. E2C_ARTIFACTS_DIR stands
for ARTIFACTS_DIR when it is not given.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := experiment.ReproduceOptions{Force: force, Out: cmd.OutOrStdout(), Version: versionString(), NoAgent: noAgent(cmd)}
			o.Artifacts, _ = dirArg(args, 1, "E2C_ARTIFACTS_DIR") // none: the run's own
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
		Use:     "archive [SCENARIO_DIR]",
		Short:   "Pack the scenario, its runs and a README on reproducing them into one tar.gz",
		Example: "  e2c results archive examples/quickstart -o quickstart-paper.tar.gz\n  e2c results archive examples/quickstart --artifacts examples/quickstart/artifacts",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := dirArg(args, 0, "E2C_SCENARIO_DIR")
			if err != nil {
				return err
			}
			dir = filepath.Clean(dir)
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

// comparison is what e2c results compare --json prints.
type comparison struct {
	Runs [2]runRow `json:"runs"`
	*summary.Comparison
}

func newCompare() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "compare RUN_A RUN_B",
		Short:   "Show two runs' configurations and metrics side by side",
		Example: "  e2c results compare examples/quickstart/20261202-150405 examples/quickstart/20261202-151230",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var c comparison
			var sides [2]summary.Side
			for i, dir := range args {
				r, err := results.ReadRecord(dir)
				if err != nil {
					return fmt.Errorf("%s is not a run folder: %w", dir, err)
				}
				c.Runs[i] = rowOf(r, filepath.Base(dir), "")
				sides[i] = summary.Side{Dir: dir, Configs: r.AppConfs}
			}
			var err error
			if c.Comparison, err = summary.Compare(sides[0], sides[1]); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), c)
			}
			return c.render(cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the comparison as JSON")
	return cmd
}

func (c comparison) render(w io.Writer) error {
	a, b := c.Runs[0], c.Runs[1]
	t := newTable(w)
	t.Header("", a.Run, b.Run)
	row := func(what, x, y string) { t.Append(what, x, y) }
	row("status", a.Status, b.Status)
	row("repeat", a.repeat(), b.repeat())
	row("app_conf", strings.Join(a.AppConfs, ","), strings.Join(b.AppConfs, ","))
	row("duration", a.took(), b.took())
	row("e2c", a.E2C, b.E2C)
	row("hosts", strconv.Itoa(a.Hosts), strconv.Itoa(b.Hosts))
	for _, f := range c.Files {
		same := "same"
		if !f.Same {
			same = "differs"
		}
		row(f.Path, size(f.Size[0]), size(f.Size[1])+" ("+same+")")
	}
	artifacts := "the same files"
	if len(c.Artifacts) > 0 {
		artifacts = strings.Join(c.Artifacts, "; ")
	}
	row("artifacts", artifacts, "")
	if err := t.Render(); err != nil {
		return err
	}
	if c.NoMetrics {
		fmt.Fprintln(w, "no metrics.yaml in the first run's scenario: no metrics to compare")
		return nil
	}
	t = newTable(w)
	t.Header("metric", "config", a.Run, b.Run, "change")
	cell := func(f *float64, format string) string {
		if f == nil {
			return "-"
		}
		return fmt.Sprintf(format, *f)
	}
	for _, m := range c.Metrics {
		t.Append(withUnit(m.Metric, m.Unit), m.Config, cell(m.Means[0], "%.4g"), cell(m.Means[1], "%.4g"), cell(m.Percent, "%+.1f%%"))
	}
	return t.Render()
}

func size(n int64) string {
	if n < 0 {
		return "absent"
	}
	return fmt.Sprintf("%d bytes", n)
}
