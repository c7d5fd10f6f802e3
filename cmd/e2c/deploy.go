package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/experiment"
	"github.com/e2c-dev/e2c/results"
	"github.com/spf13/cobra"
)

// maxRepeat bounds --repeat: more runs than this is surely a typo.
const maxRepeat = 10_000

func newDeploy() *cobra.Command {
	var (
		dryRun    bool
		repeat    int
		appConf   []string
		o         experiment.Options
		destroy   bool
		keep      bool
		quiet     bool
		logFormat string
	)
	cmd := &cobra.Command{
		Use:   "deploy [SCENARIO_DIR ARTIFACTS_DIR]",
		Short: "Run the experiment (--dry-run: write its plan without touching a machine)",
		Long: `Runs the experiment --repeat N + 1 times, each into its own run folder
SCENARIO_DIR/YYYYMMDD-HHMMSS: reserve hosts, deploy services, prepare, then
for each --app-conf (or once) launch, wait --duration, finalize. Ctrl-C stops
what was launched, finalizes (fetching what was produced) and releases the
hosts; a second Ctrl-C exits at once.

With --dry-run nothing is reserved or run: the plan is computed on synthetic
hosts (one per machine each service instance needs, named after its key) and
written to a new run folder as plan.json, layers_services-validate.yaml and
workflow-validate.out (every task rendered for every host and phase).`,
		Example: `  e2c deploy examples/quickstart examples/quickstart/artifacts --duration 30 --destroy
  e2c deploy my-scenario my-artifacts --repeat 4 --app-conf fast,slow --destroy
  e2c deploy examples/cctv examples/cctv/artifacts --testbed netns --network rates-only
  e2c deploy --dry-run examples/cctv examples/cctv/artifacts`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			scenario, artifacts, err := scenarioAndArtifacts(args)
			if err != nil {
				return err
			}
			if st, err := os.Stat(artifacts); err != nil || !st.IsDir() {
				return fmt.Errorf("artifacts folder %s: not found (it holds what tasks copy to the hosts)", artifacts)
			}
			if repeat < 0 || repeat > maxRepeat {
				return fmt.Errorf("--repeat %d: expected 0 to %d", repeat, maxRepeat)
			}
			if o.Forks < 1 {
				return fmt.Errorf("--forks %d: expected at least 1 (hosts of a play that run at once)", o.Forks)
			}
			o.ScenarioDir, o.ArtifactsDir, o.Repeat, o.AppConfs = scenario, artifacts, repeat, appConf
			if dryRun {
				return dryRunDeploy(cmd.OutOrStdout(), o)
			}
			if logFormat != "text" && logFormat != "json" {
				return fmt.Errorf("--log-format %q: expected text or json", logFormat)
			}
			o.Out, o.JSON, o.Version = cmd.OutOrStdout(), logFormat == "json", versionString()
			if quiet {
				o.Out = io.Discard
			}
			after := experiment.ReleaseIfInterrupted
			if destroy {
				after = experiment.Release
			} else if keep {
				after = experiment.Keep
			}
			return withSession(cmd, o, func(x *experiment.Session) error {
				runs, err := x.Deploy(cmd.Context(), after)
				if len(runs) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "results: %s\n", strings.Join(runs, " "))
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "compute and write the plan only; touch no machine")
	cmd.Flags().IntVar(&repeat, "repeat", 0, "run the experiment N more times (N+1 runs)")
	cmd.Flags().StringSliceVar(&appConf, "app-conf", nil, "workflow_env.yaml configurations to run in turn (a,b)")
	cmd.Flags().Var((*seconds)(&o.Duration), "duration", "how long each run waits between launch and finalize: seconds (240) or a duration (4m)")
	cmd.Flags().BoolVar(&destroy, "destroy", false, "release the hosts when the runs end")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the hosts even when interrupted")
	cmd.Flags().BoolVar(&o.KeepNetwork, "keep-network", false, "leave the network emulation on the hosts after each run (e2c destroy --network removes it)")
	cmd.Flags().BoolVar(&o.SkipNetworkCheck, "no-network-check", false, "apply network.yaml without measuring it")
	cmd.Flags().IntVar(&o.Forks, "forks", 256, "hosts of a play that run at once")
	testbedFlags(cmd, &o)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only errors and where the results are (the run folder's e2c.log has everything)")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "text or json (one object per line, for machines)")
	// A dry run reserves nothing to keep or release, and shapes no network.
	for _, group := range [][]string{{"destroy", "keep"}, {"dry-run", "destroy"}, {"dry-run", "keep"}, {"dry-run", "keep-network"},
		{"dry-run", "no-network-check"}, {"quiet", "log-format"}} {
		cmd.MarkFlagsMutuallyExclusive(group...)
	}
	return cmd
}

// dryRunDeploy writes the plan of the first run into a new run folder and
// says what it holds.
func dryRunDeploy(w io.Writer, o experiment.Options) error {
	dir, c, err := experiment.DryRun(o)
	if err != nil {
		return err
	}
	p := c.Plan
	fmt.Fprintf(w, "dry run of %s: %d hosts, %d plays, %d runs with --repeat %d\n", o.ScenarioDir, len(p.Hosts), len(p.Plays), o.Repeat+1, o.Repeat)
	if n := p.ContainerCount(); n > 0 {
		fmt.Fprintf(w, "containers: %d, started by the services step (each with its env in plan.json, \"hosts\"):\n", n)
		if err := p.WriteContainers(w); err != nil {
			return err
		}
	}
	if len(p.Constraints) > 0 {
		fmt.Fprintf(w, "network: %d constraints, one tc batch per host in plan.json (\"tc\"; DEV is the device routing to each destination, found on the host)\n", len(p.Constraints))
	}
	fmt.Fprintf(w, "wrote %s/{%s,%s,%s}\n", dir, results.PlanFile, results.LayersServicesFile, results.WorkflowFile)
	return nil
}

// seconds is a duration flag that also takes a bare number of seconds, as
// E2Clab's --duration does.
type seconds time.Duration

func (s *seconds) String() string { return time.Duration(*s).String() }
func (s *seconds) Type() string   { return "seconds" }

func (s *seconds) Set(v string) error {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n < 0 || n > 366*24*3600 {
			return fmt.Errorf("%s: expected 0 to a year", v)
		}
		*s = seconds(time.Duration(n * float64(time.Second)))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("%q: expected seconds (240) or a duration (4m)", v)
	}
	*s = seconds(d)
	return nil
}

// testbedFlags are the flags that pick where a scenario runs and how much
// of its network it gets, shared by deploy and sweep.
func testbedFlags(cmd *cobra.Command, o *experiment.Options) {
	cmd.Flags().StringVar(&o.Testbed, "testbed", "", "run every service on this testbed with its default settings (netns, local: the emulated twin of a Grid'5000 scenario)")
	cmd.Flags().StringVar(&o.Network, "network", experiment.NetworkFull, "how much of network.yaml to apply: full, rates-only (no delay or loss: kernels without sch_netem) or off")
}
