package main

import (
	"github.com/e2c-dev/e2c/engine/experiment"
	"github.com/spf13/cobra"
)

func newDestroy() *cobra.Command {
	return &cobra.Command{
		Use:   "destroy SCENARIO_DIR",
		Short: "Release the hosts a deploy kept",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := dirArg(args, 0, "E2C_SCENARIO_DIR")
			if err != nil {
				return err
			}
			return experiment.Destroy(cmd.Context(), dir, cmd.OutOrStdout())
		},
	}
}
