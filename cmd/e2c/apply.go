package main

import (
	"errors"
	"strings"

	"github.com/e2c-dev/e2c/engine/experiment"
	"github.com/spf13/cobra"
)

// apply and scale change a kept experiment: the hosts a deploy --keep or
// the step commands left running.

func newApply() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply [SCENARIO_DIR]",
		Short: "Change the kept experiment to what the edited scenario says, touching only what changed",
		Long: `Compare the scenario's files with the plan the kept hosts run and print the
difference, one line each (+ added, - removed, ~ changed); then make it: new
instances get hosts, services, network rules, prepare and launch; removed ones
run finalize (their results land in the run folder) and are released; links
are re-applied where their rules changed; hosts whose rendered tasks changed
run their play's reconfigure tasks, or are named as needing them. The change is
recorded in the run folder's timeline.json. An unchanged scenario runs nothing.`,
		Example: "  e2c apply examples/quickstart --dry-run\n  e2c apply examples/quickstart",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			scenario, err := dirArg(args, 0, "E2C_SCENARIO_DIR")
			if err != nil {
				return err
			}
			return applyEdit(cmd, scenario, experiment.Edit{DryRun: dryRun})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the difference and change nothing")
	return withJSON(cmd)
}

func newScale() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "scale [SCENARIO_DIR] layer.service=N ...",
		Short: "Set how many machines a service of the kept experiment has, as apply does",
		Long: `Give each instance of layer.service N machines (with repeat, every copy), as
e2c apply would after editing quantity in layers_services.yaml, without editing
it. The quantities hold for the step commands that follow, until the next
apply or deploy.`,
		Example: "  e2c scale examples/quickstart edge.producer=6\n  E2C_SCENARIO_DIR=my-scenario e2c scale edge.producer=2 fog.gateway=1 --dry-run",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var dirs []string
			if len(args) > 0 && !isScaleArg(args[0]) {
				dirs, args = args[:1], args[1:]
			}
			scenario, err := dirArg(dirs, 0, "E2C_SCENARIO_DIR")
			if err != nil {
				return err
			}
			scale, err := experiment.ParseScale(args)
			if err != nil {
				return usageError{err}
			}
			return applyEdit(cmd, scenario, experiment.Edit{DryRun: dryRun, Scale: scale})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the difference and change nothing")
	return withJSON(cmd)
}

// applyEdit makes e on the kept experiment of scenario, or hands it to the
// deploy working on it, whose run waits.
func applyEdit(cmd *cobra.Command, scenario string, e experiment.Edit) error {
	err := stepSession(cmd, experiment.Options{ScenarioDir: scenario}, func(x *experiment.Session) error {
		_, err := x.Apply(cmd.Context(), e)
		return err
	})
	if errors.Is(err, experiment.ErrLocked) {
		_, err = experiment.HandToRun(cmd.Context(), experiment.Options{ScenarioDir: scenario, Out: cmd.OutOrStdout()}, e)
	}
	return err
}

// isScaleArg tells layer.service=N from a scenario folder.
func isScaleArg(s string) bool { return strings.Contains(s, "=") }
