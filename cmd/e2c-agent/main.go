// Command e2c-agent is what e2c runs on the hosts, and nothing else: the
// agent that runs a run's commands and serves its files (`e2c-agent agent
// session`), the network probe and the sampler, as `e2c agent` does. At
// about 5 MB it is a seventh of e2c, which is what a host's first
// connection copies: make build and make agents put it beside e2c, which
// uses it when it finds it there.
package main

import (
	"fmt"
	"os"

	"github.com/e2c-dev/e2c/engine/probe"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "agent" {
		fmt.Fprintln(os.Stderr, "e2c-agent runs on hosts, started by e2c (as e2c-agent agent session); run e2c instead")
		os.Exit(2)
	}
	cmd := probe.Command()
	cmd.SetArgs(os.Args[2:])
	if err := cmd.Execute(); err != nil {
		os.Exit(1) // cobra said why
	}
}
