package experiment

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestCommandsRecorded: run.json says per host how its commands ran, and
// why not through the agent; a host that falls back is said on the
// terminal.
func TestCommandsRecorded(t *testing.T) {
	for _, tt := range []struct {
		name     string
		o        Options
		commands string
		noAgent  string // in run.json and the warning; "" for none
	}{
		{"through the agent", Options{Agent: testAgent}, "agent", ""},
		{"no agent for the host's architecture", Options{Agent: func(goarch string) (string, error) {
			return "", errors.New("no e2c for linux/" + goarch)
		}}, "ssh", "no agent for"},
		{"turned off", Options{Agent: testAgent, NoAgent: true}, "ssh", "turned off (--no-agent)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir, artifacts := scenario(t, "10.232.20.0/24", fourHosts, touchWorkflow)
			var out strings.Builder
			o := tt.o
			o.ScenarioDir, o.ArtifactsDir, o.Out = dir, artifacts, &out
			runs, err := deploy(context.Background(), o, Release)
			if err != nil {
				t.Fatalf("deploy: %v\n%s", err, out.String())
			}
			rec, err := readRecord(runs[0])
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.Hosts) != 4 {
				t.Fatalf("run.json has %d hosts, want 4", len(rec.Hosts))
			}
			for _, h := range rec.Hosts {
				if h.Commands != tt.commands || !strings.Contains(h.NoAgent, tt.noAgent) || (tt.noAgent == "") != (h.NoAgent == "") {
					t.Errorf("host %s: commands %q, no_agent %q; want %q, %q", h.Name, h.Commands, h.NoAgent, tt.commands, tt.noAgent)
				}
			}
			warned := strings.Contains(out.String(), "runs its commands over an SSH session each: no agent for")
			if warned != (tt.noAgent == "no agent for") {
				t.Errorf("warning said: %v, want %v:\n%s", warned, !warned, out.String())
			}
		})
	}
}
