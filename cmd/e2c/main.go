// Command e2c runs declarative edge-to-cloud experiments: the same
// scenario, on Grid'5000, a Raspberry Pi cluster or one Linux machine,
// repeated until the results can be trusted.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	_ "github.com/e2c-dev/e2c/providers/g5k"
	_ "github.com/e2c-dev/e2c/providers/local"
	_ "github.com/e2c-dev/e2c/providers/netns"
	_ "github.com/e2c-dev/e2c/providers/static"
	"github.com/spf13/cobra"
)

// version is set by the Makefile (-ldflags "-X main.version=...").
var version = ""

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	go interrupts(cancel)
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2c:", err)
		os.Exit(1)
	}
}

// interrupts turns the first Ctrl-C or SIGTERM into a cancellation (the
// run stops what it launched, finalizes and releases); the second one exits
// at once, skipping cleanup.
func interrupts(cancel context.CancelCauseFunc) {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	s := <-sig
	fmt.Fprintf(os.Stderr, "\ne2c: %v: stopping; finalizing what ran (again to exit at once, skipping cleanup)\n", s)
	cancel(fmt.Errorf("%v received", s))
	s = <-sig
	fmt.Fprintf(os.Stderr, "\ne2c: %v again: exiting without cleanup; `e2c destroy` releases the hosts\n", s)
	os.Exit(130)
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "e2c",
		Short: "Run reproducible edge-to-cloud experiments",
		Long: `e2c runs the experiment a scenario folder describes (layers_services.yaml,
network.yaml, workflow.yaml) on Grid'5000, a static cluster or emulated hosts,
and writes each run to its own result folder.`,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newValidate(), newDeploy(), newLayersServices(), newNetwork(), newWorkflow(), newFinalize(), newDestroy(), newResults(), newReproduce(), newSweep(), newAgent())
	return root
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// dirArg returns the i-th argument, or the environment variable that
// E2Clab users set instead.
func dirArg(args []string, i int, env string) (string, error) {
	if i < len(args) && args[i] != "" {
		return args[i], nil
	}
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("missing argument %d (or set %s)", i+1, env)
}

// scenarioAndArtifacts reads SCENARIO_DIR and ARTIFACTS_DIR, the first two
// arguments of the commands that run an experiment.
func scenarioAndArtifacts(args []string) (scenario, artifacts string, err error) {
	if scenario, err = dirArg(args, 0, "E2C_SCENARIO_DIR"); err != nil {
		return "", "", err
	}
	artifacts, err = dirArg(args, 1, "E2C_ARTIFACTS_DIR")
	return scenario, artifacts, err
}
