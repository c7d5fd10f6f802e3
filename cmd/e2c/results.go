package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/experiment"
	"github.com/e2c-dev/e2c/results"
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
			runs, err := experiment.Runs(dir)
			if err != nil {
				return err
			}
			if len(runs) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no runs in %s yet\n", dir)
				return nil
			}
			t := newTable(cmd.OutOrStdout())
			t.Header("run", "status", "repeat", "app_conf", "duration", "hosts", "e2c")
			for _, r := range runs {
				took := "-"
				if d := r.Took(); d > 0 {
					took = d.Round(time.Second).String()
				}
				status := r.Status
				if r.Reproduces != "" {
					status += " (reproduces " + filepath.Base(r.Reproduces) + ")"
				}
				if err := t.Append(filepath.Base(r.Dir()), status, fmt.Sprintf("%d/%d", r.Repeat+1, r.RepeatCount),
					strings.Join(r.AppConfs, ","), took, strconv.Itoa(len(r.Hosts)), r.E2C); err != nil {
					return err
				}
			}
			return t.Render()
		},
	}
	cmd.AddCommand(newSummarize())
	return cmd
}

func newSummarize() *cobra.Command {
	return &cobra.Command{
		Use:   "summarize SCENARIO_DIR [RUN...]",
		Short: "Aggregate each metric of metrics.yaml per configuration across the runs",
		Long: `Reads the metrics SCENARIO_DIR/metrics.yaml declares from the runs (all of
them, or those named), takes each run's mean, and summarises the runs of each
configuration (app_conf): n, mean, median, standard deviation, min, max and a
95 % confidence interval (Student's t). Prints a table and writes
summary.csv and summary.json to SCENARIO_DIR/summaries/YYYYMMDD-HHMMSS/.`,
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
			runs, err := experiment.SummaryRuns(dir, args[1:])
			if err != nil {
				return err
			}
			values, err := summary.Read(runs, metrics)
			if err != nil {
				return err
			}
			stats := summary.Summarize(values, metrics)
			t := newTable(cmd.OutOrStdout())
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
				if err := t.Append(s.Metric+" ("+s.Unit+")", config, strconv.Itoa(s.Runs), fmt.Sprintf("%.4g", s.Mean),
					fmt.Sprintf("%.4g", s.Median), sd, fmt.Sprintf("%.4g", s.Min), fmt.Sprintf("%.4g", s.Max), ci); err != nil {
					return err
				}
			}
			if err := t.Render(); err != nil {
				return err
			}
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
			if err := results.WriteFile(out, "summary.json", func(w io.Writer) error {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(stats)
			}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d runs; wrote %s/{summary.csv,summary.json}\n", len(runs), out)
			return nil
		},
	}
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
