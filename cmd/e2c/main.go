// Command e2c runs declarative edge-to-cloud experiments: the same
// scenario, on Grid'5000, a Raspberry Pi cluster or one Linux machine,
// repeated until the results can be trusted.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/e2c-dev/e2c/providers/g5k"
	"github.com/e2c-dev/e2c/schema"
	"github.com/e2c-dev/e2c/schema/suggest"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is set by the Makefile (-ldflags "-X main.version=...").
var version = ""

func main() {
	g5k.Version = versionString()
	ctx, cancel := context.WithCancelCause(context.Background())
	go interrupts(cancel)
	os.Exit(execute(ctx, newRoot(), os.Stderr))
}

// Exit codes, told apart so that a script knows what went wrong; exitCodes
// says what each means, for e2c --help (and the README's command reference).
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInvalid     = 3
	exitInterrupted = 130 // 128 + SIGINT, as shells say
)

var exitCodes = []struct {
	code int
	what string
}{
	{exitOK, "success"},
	{exitFailed, "a run, or the command, failed"},
	{exitUsage, "a mistake in the command line (arguments, flags)"},
	{exitInvalid, "the scenario is invalid (each problem at its file:line:column); nothing was run"},
	{exitInterrupted, "interrupted (Ctrl-C, SIGTERM): what ran was finalized and released"},
}

// execute runs the command line and prints its error; a mistake in the
// command line itself also gets the command's usage line.
func execute(ctx context.Context, root *cobra.Command, stderr io.Writer) int {
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "e2c:", err)
	code := exitCode(ctx, err)
	if code == exitUsage {
		fmt.Fprintf(stderr, "usage: %s\nsee: %s --help\n", cmd.UseLine(), cmd.CommandPath())
	}
	return code
}

// exitCode is the exit code of a command that ended with err.
func exitCode(ctx context.Context, err error) int {
	switch {
	case err == nil:
		return exitOK
	case ctx.Err() != nil:
		return exitInterrupted
	case errors.As(err, new(usageError)):
		return exitUsage
	case errors.As(err, new(*schema.Error)):
		return exitInvalid
	}
	return exitFailed
}

// usageError is a mistake in the command line: arguments or flags.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

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
	os.Exit(exitInterrupted)
}

func newRoot() *cobra.Command {
	var codes strings.Builder
	for _, c := range exitCodes {
		fmt.Fprintf(&codes, "\n  %3d  %s", c.code, c.what)
	}
	root := &cobra.Command{
		Use:   "e2c",
		Short: "Run reproducible edge-to-cloud experiments",
		Long: `e2c runs the experiment a scenario folder describes (layers_services.yaml,
network.yaml, workflow.yaml) on Grid'5000, a static cluster or emulated hosts,
and writes each run to its own result folder.

SCENARIO_DIR and ARTIFACTS_DIR, when not given, are read from E2C_SCENARIO_DIR
and E2C_ARTIFACTS_DIR.

Exit status:` + codes.String(),
		Example: `  e2c validate examples/quickstart
  e2c deploy examples/quickstart examples/quickstart/artifacts --duration 30 --destroy
  e2c results summarize examples/quickstart`,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          subcommandArgs,
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		// Flags that exclude each other are a mistake in the command line,
		// checked here (cobra checks them again, after PreRun) to say so.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmd.ValidateFlagGroups(); err != nil {
				return usageError{err}
			}
			return nil
		},
	}
	root.AddGroup(
		&cobra.Group{ID: groupExperiment, Title: "Experiment:"},
		&cobra.Group{ID: groupChange, Title: "Changing a kept experiment:"},
		&cobra.Group{ID: groupSteps, Title: "Step by step (the lifecycle one step at a time, on kept hosts):"},
		&cobra.Group{ID: groupResults, Title: "Results:"},
	)
	for _, c := range []struct {
		group string
		cmds  []*cobra.Command
	}{
		{groupExperiment, []*cobra.Command{newValidate(), newDeploy(), newDestroy(), newSweep(), newReproduce()}},
		{groupChange, []*cobra.Command{newApply(), newScale()}},
		{groupSteps, []*cobra.Command{newLayersServices(), newNetwork(), newWorkflow(), newFinalize()}},
		{groupResults, []*cobra.Command{newResults()}},
	} {
		for _, cmd := range c.cmds {
			cmd.GroupID = c.group
			root.AddCommand(cmd)
		}
	}
	root.PersistentFlags().Bool("no-agent", false, "run every command on the hosts in an SSH session of its own, not through the e2c agent")
	root.AddCommand(newAgent())
	root.SetFlagErrorFunc(flagError) // inherited by every command
	argsAreUsage(root)
	return root
}

// noAgent is --no-agent, given to e2c or to any command that reaches hosts.
func noAgent(cmd *cobra.Command) bool {
	off, _ := cmd.Flags().GetBool("no-agent")
	return off
}

// e2c --help lists the commands in the order they are used, steps 1 to 4
// too.
func init() { cobra.EnableCommandSorting = false }

// The groups of commands e2c --help shows.
const (
	groupExperiment = "experiment"
	groupChange     = "change"
	groupSteps      = "steps"
	groupResults    = "results"
)

// subcommandArgs refuses the arguments of a command that groups others:
// a mistyped subcommand gets cobra's did-you-mean.
func subcommandArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return unknownCommand(c, args[0])
}

// unknownCommand says that arg is not a subcommand of c, suggesting those
// it is near (cobra's suggestions: edit distance 2, or a prefix) or else
// listing them.
func unknownCommand(c *cobra.Command, arg string) error {
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2
	}
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() && sub.Name() != "help" && sub.Name() != "completion" {
			names = append(names, sub.Name())
		}
	}
	hint := "; expected one of: " + strings.Join(names, ", ")
	if s := c.SuggestionsFor(arg); len(s) > 0 {
		hint = ` (did you mean "` + strings.Join(s, `" or "`) + `"?)`
	}
	return usageError{fmt.Errorf("unknown command %q for %q%s", arg, c.CommandPath(), hint)}
}

// argsAreUsage marks the argument-count errors of c and its subcommands as
// command-line mistakes.
func argsAreUsage(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		argsAreUsage(sub)
	}
}

// flagError says what is wrong with a flag in words, rather than with the
// parser's internals ("strconv.ParseInt: parsing ...").
func flagError(c *cobra.Command, err error) error {
	var invalid *pflag.InvalidValueError
	var unknown *pflag.NotExistError
	var num *strconv.NumError
	switch {
	case errors.As(err, &invalid) && errors.As(err, &num):
		what := "is not a number"
		switch {
		case errors.Is(num, strconv.ErrRange):
			what = "is out of range"
		case strings.HasPrefix(num.Func, "ParseInt"), strings.HasPrefix(num.Func, "ParseUint"):
			what = "is not a whole number"
		case num.Func == "ParseBool":
			what = "is not true or false"
		}
		err = fmt.Errorf("--%s: %q %s", invalid.GetFlag().Name, invalid.GetValue(), what)
	case errors.As(err, &invalid):
		err = fmt.Errorf("--%s: %w", invalid.GetFlag().Name, errors.Unwrap(invalid))
	case errors.As(err, &unknown) && unknown.GetSpecifiedShortnames() == "":
		var names []string
		c.Flags().VisitAll(func(f *pflag.Flag) { names = append(names, "--"+f.Name) })
		err = fmt.Errorf("unknown flag --%s%s", unknown.GetSpecifiedName(), suggest.Hint("--"+unknown.GetSpecifiedName(), names))
	}
	return usageError{err}
}

// versionString is what runs record as e2c's version: the one the
// Makefile sets; else the commit the go command stamped (go build or go
// install in a checkout), "-dirty" when the tree had changes; else a
// module version (go install ...@v1.2.3); else dev, as go run stamps
// nothing (golang/go#75033).
func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	return buildVersion(bi)
}

func buildVersion(bi *debug.BuildInfo) string {
	var rev string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	switch {
	case rev != "":
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "-dirty"
		}
		return rev
	case bi.Main.Version != "" && bi.Main.Version != "(devel)":
		return bi.Main.Version
	}
	return "dev"
}

// dirArg returns the i-th argument, or the environment variable that
// E2Clab users set instead (E2C_SCENARIO_DIR for SCENARIO_DIR).
func dirArg(args []string, i int, env string) (string, error) {
	if i < len(args) && args[i] != "" {
		return args[i], nil
	}
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	return "", usageError{fmt.Errorf("missing %s (or set %s)", strings.TrimPrefix(env, "E2C_"), env)}
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
