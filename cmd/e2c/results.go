package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/experiment"
	"github.com/spf13/cobra"
)

func newResults() *cobra.Command {
	return &cobra.Command{
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
