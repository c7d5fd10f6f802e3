// Package agenttest lets a package's test binary be the e2c agent its
// tests copy to the hosts (over real sshd), so that they need no e2c
// build. It imports only engine/agent: transport's own tests can use it.
package agenttest

import (
	"fmt"
	"os"
	"runtime"

	"github.com/e2c-dev/e2c/engine/agent"
)

// BeTheAgent serves as the agent and exits if this process was started
// as one on a host (E2C_AGENT=1 and the arguments "agent session", the
// line transport starts the agent with), else returns. TestMain calls it
// first.
func BeTheAgent() {
	if os.Getenv("E2C_AGENT") != "1" || len(os.Args) != 3 || os.Args[1] != "agent" || os.Args[2] != "session" {
		return
	}
	if err := agent.ServeStdio(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Binary gives this test binary as the agent for goarch, which must be
// this machine's architecture: a transport.PoolOptions.Agent.
func Binary(goarch string) (string, error) {
	if goarch != runtime.GOARCH {
		return "", fmt.Errorf("the test binary is for %s", runtime.GOARCH)
	}
	return os.Executable()
}
