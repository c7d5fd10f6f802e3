package agenttest

import (
	"os"
	"runtime"
	"testing"
)

// TestBinary: this binary for this machine's architecture, an error
// naming it for any other. (BeTheAgent is what engine/transport's and
// engine/spread's tests run on their hosts.)
func TestBinary(t *testing.T) {
	self, _ := os.Executable()
	if got, err := Binary(runtime.GOARCH); err != nil || got != self {
		t.Errorf("Binary(%s) = %q, %v; want %q", runtime.GOARCH, got, err, self)
	}
	other := "arm64"
	if runtime.GOARCH == other {
		other = "amd64"
	}
	if got, err := Binary(other); err == nil {
		t.Errorf("Binary(%s) = %q, want an error", other, got)
	}
}

// TestBeTheAgentReturns: a process not started as the agent goes on.
func TestBeTheAgentReturns(t *testing.T) {
	t.Setenv("E2C_AGENT", "1") // as on a host, but not the agent's arguments
	BeTheAgent()
}
