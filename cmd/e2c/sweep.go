package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/e2c-dev/e2c/engine/experiment"
	"github.com/e2c-dev/e2c/engine/sweep"
	"github.com/e2c-dev/e2c/results"
	"github.com/spf13/cobra"
)

func newSweep() *cobra.Command {
	var (
		params []string
		dryRun bool
		o      experiment.Options
	)
	cmd := &cobra.Command{
		Use:   "sweep [SCENARIO_DIR ARTIFACTS_DIR] [--param path=v1,v2]...",
		Short: "Run the experiment for every point of a parameter sweep (sweep.yaml, --param)",
		Long: `Runs the whole lifecycle, with --repeat N + 1 runs, for every combination of
the parameters of SCENARIO_DIR/sweep.yaml and --param flags (a flag replaces
the same path of the file). A parameter is a path into a scenario file:

  layers_services.layers.fog.services.gateway.quantity   (list elements by name or index)
  network.networks.0.delay
  workflow_env.default.rate

Each point gets its own scenario folder, SCENARIO_DIR/sweep/NN-<values>/,
with its files, its point.json and its run folders. Run the same sweep again
and the points that succeeded are skipped; failed or interrupted ones run
again. e2c results summarize SCENARIO_DIR compares the points.`,
		Example: `  e2c sweep examples/quickstart examples/quickstart/artifacts --param layers_services.layers.edge.services.producer.repeat=1,3 --duration 30
  e2c sweep examples/quickstart examples/quickstart/artifacts --param workflow_env.default.rate=10,100 --dry-run`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			scenario, artifacts, err := scenarioAndArtifacts(args)
			if err != nil {
				return err
			}
			var spec sweep.Spec
			data, err := os.ReadFile(filepath.Join(scenario, sweep.File))
			switch {
			case err == nil:
				if spec, err = sweep.Parse(data); err != nil {
					return err
				}
			case !errors.Is(err, fs.ErrNotExist):
				return err
			}
			for _, p := range params {
				if err := spec.ParseParam(p); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if dryRun {
				points, err := spec.Points()
				if err != nil {
					return err
				}
				t := newTable(out)
				t.Header("point", "parameters")
				for _, p := range points {
					var kv []string
					for k, v := range p.Params {
						kv = append(kv, k+"="+v)
					}
					slices.Sort(kv)
					t.Append(p.Name, strings.Join(kv, " "))
				}
				t.Render()
				fmt.Fprintf(out, "%d points, %d runs each\n", len(points), o.Repeat+1)
				return nil
			}
			o.ScenarioDir, o.ArtifactsDir, o.Out, o.Version, o.NoAgent = scenario, artifacts, out, versionString(), noAgent(cmd)
			points, err := experiment.Sweep(cmd.Context(), spec, o)
			if len(points) > 0 {
				fmt.Fprintf(out, "sweep: %d points in %s; compare them with e2c results summarize %s\n", len(points), filepath.Join(scenario, results.SweepDir), scenario)
			}
			return err
		},
	}
	cmd.Flags().StringArrayVar(&params, "param", nil, "path=v1,v2: a parameter and its values (repeatable)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list the points only")
	cmd.Flags().IntVar(&o.Repeat, "repeat", 0, "run each point N more times (N+1 runs)")
	cmd.Flags().Var((*seconds)(&o.Duration), "duration", "how long each run waits between launch and finalize")
	cmd.Flags().StringSliceVar(&o.AppConfs, "app-conf", nil, "workflow_env.yaml configurations to run in turn")
	testbedFlags(cmd, &o)
	return cmd
}
