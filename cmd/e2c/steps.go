package main

import (
	"errors"

	"github.com/e2c-dev/e2c/engine/experiment"
	"github.com/spf13/cobra"
)

// The step commands run the lifecycle one step at a time, on the hosts
// and run folder the saved state keeps (SCENARIO_DIR/.e2c/state.json).

func newLayersServices() *cobra.Command {
	var (
		appConf []string
		testbed string
	)
	cmd := &cobra.Command{
		Use:     "layers-services [SCENARIO_DIR ARTIFACTS_DIR]",
		Short:   "Step 1: reserve the hosts and open a new run folder",
		Example: "  e2c layers-services examples/quickstart examples/quickstart/artifacts\n  e2c layers-services examples/cctv examples/cctv/artifacts --testbed netns",
		Args:    cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			scenario, artifacts, err := scenarioAndArtifacts(args)
			if err != nil {
				return err
			}
			o := experiment.Options{ScenarioDir: scenario, ArtifactsDir: artifacts, AppConfs: appConf, Testbed: testbed, Version: versionString()}
			return stepSession(cmd, o, func(x *experiment.Session) error {
				_, err := x.LayersServices(cmd.Context())
				return err
			})
		},
	}
	cmd.Flags().StringSliceVar(&appConf, "app-conf", nil, "check under these workflow_env.yaml configurations")
	cmd.Flags().StringVar(&testbed, "testbed", "", "run every service on this testbed with its default settings (the next step commands follow)")
	return withJSON(cmd)
}

func newNetwork() *cobra.Command {
	var network string
	cmd := &cobra.Command{
		Use:     "network [SCENARIO_DIR]",
		Short:   "Step 2: apply network.yaml to the kept hosts",
		Example: "  e2c network examples/quickstart\n  e2c network examples/cctv --network rates-only",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			scenario, err := dirArg(args, 0, "E2C_SCENARIO_DIR")
			if err != nil {
				return err
			}
			o := experiment.Options{ScenarioDir: scenario, Network: network}
			return stepSession(cmd, o, func(x *experiment.Session) error { return x.Network(cmd.Context()) })
		},
	}
	cmd.Flags().StringVar(&network, "network", experiment.NetworkFull, "how much of network.yaml to apply: full, rates-only (no delay or loss) or off")
	return withJSON(cmd)
}

func newWorkflow() *cobra.Command {
	var appConf string
	cmd := &cobra.Command{
		Use:       "workflow [SCENARIO_DIR] prepare|launch|finalize",
		Short:     "Step 3: run one phase of the workflow on the kept hosts",
		Example:   "  e2c workflow examples/quickstart prepare\n  e2c workflow my-scenario launch --app-conf fast\n  E2C_SCENARIO_DIR=examples/quickstart e2c workflow launch",
		Args:      cobra.RangeArgs(1, 2),
		ValidArgs: []string{"prepare", "launch", "finalize"},
		RunE: func(cmd *cobra.Command, args []string) error {
			// The phase is the last argument; the scenario folder before
			// it, or E2C_SCENARIO_DIR.
			scenario, err := dirArg(args[:len(args)-1], 0, "E2C_SCENARIO_DIR")
			if err != nil {
				return err
			}
			o := experiment.Options{ScenarioDir: scenario}
			return stepSession(cmd, o, func(x *experiment.Session) error { return x.Phase(cmd.Context(), args[len(args)-1], appConf) })
		},
	}
	cmd.Flags().StringVar(&appConf, "app-conf", "", "the workflow_env.yaml configuration (launch and finalize)")
	return withJSON(cmd)
}

func newFinalize() *cobra.Command {
	var (
		appConf string
		destroy bool
	)
	cmd := &cobra.Command{
		Use:     "finalize [SCENARIO_DIR]",
		Short:   "Step 4: run finalize, close the run's record, and with --destroy release the hosts",
		Example: "  e2c finalize examples/quickstart --destroy\n  e2c finalize my-scenario --app-conf fast",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			scenario, err := dirArg(args, 0, "E2C_SCENARIO_DIR")
			if err != nil {
				return err
			}
			return stepSession(cmd, experiment.Options{ScenarioDir: scenario}, func(x *experiment.Session) error {
				err := x.Finalize(cmd.Context(), appConf)
				if destroy {
					err = errors.Join(err, x.Destroy(cmd.Context()))
				}
				return err
			})
		},
	}
	cmd.Flags().StringVar(&appConf, "app-conf", "", "the workflow_env.yaml configuration")
	cmd.Flags().BoolVar(&destroy, "destroy", false, "release the hosts afterwards")
	return withJSON(cmd)
}

// withSession runs f on the experiment of o, opened for it alone, with
// the agent unless cmd has --no-agent.
func withSession(cmd *cobra.Command, o experiment.Options, f func(*experiment.Session) error) error {
	o.NoAgent = noAgent(cmd)
	x, err := experiment.Open(o)
	if err != nil {
		return err
	}
	defer x.Close()
	return f(x)
}

// withJSON gives a step command --json.
func withJSON(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().Bool("json", false, "print the run's record (run.json) as JSON afterwards, even after a failure, and the step's lines on standard error")
	return cmd
}

// stepSession runs f, a step command, on the experiment of o; with --json
// the step's lines go to standard error and the current run's record to
// standard output.
func stepSession(cmd *cobra.Command, o experiment.Options, f func(*experiment.Session) error) error {
	asJSON, _ := cmd.Flags().GetBool("json")
	o.Out = cmd.OutOrStdout()
	if asJSON {
		o.Out = cmd.ErrOrStderr()
	}
	return withSession(cmd, o, func(x *experiment.Session) error {
		err := f(x)
		if asJSON {
			rec, rerr := x.CurrentRun()
			if rerr == nil {
				rerr = writeJSON(cmd.OutOrStdout(), rec)
			}
			err = errors.Join(err, rerr)
		}
		return err
	})
}
