package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/results"
	"github.com/spf13/cobra"
)

func newDeploy() *cobra.Command {
	var (
		dryRun  bool
		repeat  int
		appConf []string
	)
	cmd := &cobra.Command{
		Use:   "deploy SCENARIO_DIR ARTIFACTS_DIR",
		Short: "Run the experiment (--dry-run: write its plan without touching a machine)",
		Long: `Runs the experiment --repeat N + 1 times, each into its own run folder
SCENARIO_DIR/YYYYMMDD-HHMMSS.

With --dry-run nothing is reserved or run: the plan is computed on synthetic
hosts (one per machine each service instance needs, named after its key) and
written to a new run folder as plan.json, layers_services-validate.yaml and
workflow-validate.out (every task rendered for every host and phase).`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			scenario, err := dirArg(args, 0, "E2C_SCENARIO_DIR")
			if err != nil {
				return err
			}
			artifacts, err := dirArg(args, 1, "E2C_ARTIFACTS_DIR")
			if err != nil {
				return err
			}
			if st, err := os.Stat(artifacts); err != nil || !st.IsDir() {
				return fmt.Errorf("artifacts folder %s: not found (it holds what tasks copy to the hosts)", artifacts)
			}
			if !dryRun {
				return fmt.Errorf("running on hosts is not available in this version of e2c; use --dry-run to compute and inspect the plan")
			}
			if repeat < 0 {
				return fmt.Errorf("--repeat %d: expected 0 or more", repeat)
			}
			return dryRunDeploy(cmd.OutOrStdout(), scenario, artifacts, repeat, appConf)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "compute and write the plan only; touch no machine")
	cmd.Flags().IntVar(&repeat, "repeat", 0, "run the experiment N more times (N+1 runs)")
	cmd.Flags().StringSliceVar(&appConf, "app-conf", nil, "workflow_env.yaml configurations to run in turn (a,b)")
	return cmd
}

// dryRunDeploy writes the plan of the first run into a new run folder.
func dryRunDeploy(w io.Writer, scenario, artifacts string, repeat int, appConf []string) error {
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	// The run folder's name is only known once it exists, and working_dir in
	// finalize is that folder, so check first and create it only for a valid
	// scenario.
	opt := plan.Options{ScenarioDir: abs(scenario), ArtifactsDir: abs(artifacts), RunDir: "RUN_DIR", RepeatCount: repeat + 1}
	if len(appConf) > 0 {
		opt.AppConf = appConf[0]
	}
	if _, err := dryPlan(scenario, opt); err != nil {
		return err
	}
	runDir, err := results.NewRunDir(scenario, time.Now())
	if err != nil {
		return err
	}
	opt.RunDir = abs(runDir)
	p, err := dryPlan(scenario, opt)
	if err != nil {
		return err
	}
	files := []struct {
		name  string
		write func(io.Writer) error
	}{
		{"plan.json", p.WriteJSON},
		{"layers_services-validate.yaml", p.WriteLayersServices},
		{"workflow-validate.out", func(w io.Writer) error {
			return p.WriteWorkflow(w, "", func(int) string { return "dry run: nothing executed" })
		}},
	}
	for _, f := range files {
		if err := results.WriteFile(runDir, f.name, f.write); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "dry run of %s: %d hosts, %d plays, %d runs with --repeat %d\n", scenario, len(p.Hosts), len(p.Plays), repeat+1, repeat)
	fmt.Fprintf(w, "wrote %s/{plan.json,layers_services-validate.yaml,workflow-validate.out}\n", runDir)
	return nil
}
