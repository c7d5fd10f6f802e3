package main

import (
	"github.com/e2c-dev/e2c/engine/probe"
	"github.com/spf13/cobra"
)

// newAgent is the end e2c copies to hosts: to validate the network
// emulation (`e2c agent serve` on one host, `e2c agent measure` on
// another), to sample them (`e2c agent monitor`), and to run commands and
// serve files over one SSH session (`e2c agent session`). It is not meant
// to be typed.
func newAgent() *cobra.Command { return probe.Command() }
