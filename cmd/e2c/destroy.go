package main

import (
	"github.com/e2c-dev/e2c/engine/experiment"
	"github.com/spf13/cobra"
)

func newDestroy() *cobra.Command {
	var network bool
	cmd := &cobra.Command{
		Use:     "destroy [SCENARIO_DIR]",
		Short:   "Release the hosts a deploy kept (--network: only remove the network emulation)",
		Example: "  e2c destroy examples/quickstart\n  e2c destroy examples/cctv --network",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := dirArg(args, 0, "E2C_SCENARIO_DIR")
			if err != nil {
				return err
			}
			return withSession(cmd, experiment.Options{ScenarioDir: dir, Out: cmd.OutOrStdout()}, func(x *experiment.Session) error {
				if network {
					return x.DestroyNetwork(cmd.Context())
				}
				return x.Destroy(cmd.Context())
			})
		},
	}
	cmd.Flags().BoolVar(&network, "network", false, "remove only the tc rules e2c installed, keeping the hosts")
	return cmd
}
