package main

import (
	"github.com/e2c-dev/e2c/engine/probe"
	"github.com/spf13/cobra"
)

// newAgent is the measuring end e2c copies to hosts to validate the
// network emulation: `e2c agent serve` on one host, `e2c agent measure` on
// another. It is not meant to be typed.
func newAgent() *cobra.Command {
	return &cobra.Command{
		Use:                "agent serve|measure|monitor [flags]",
		Short:              "Measure the network between hosts (run by e2c on the hosts)",
		Example:            "  e2c agent serve -for 2m\n  e2c agent measure -to 10.0.0.2 -port 40000 -echoes 10 -stream 2s\n  e2c agent monitor -interval 1s -stats cpu,mem -out monitoring.csv",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return probe.Main(cmd.Context(), args, cmd.OutOrStdout())
		},
	}
}
