package experiment

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAgentBeside: the agent copied to hosts is the small e2c-agent built
// beside e2c when there is one, for the host's architecture, else e2c.
func TestAgentBeside(t *testing.T) {
	for _, tt := range []struct {
		name   string
		goarch string
		native bool
		files  []string // beside e2c; a name ending in / is a folder
		want   string   // "" for an error
	}{
		{"this machine, e2c alone", "amd64", true, nil, "e2c"},
		{"this machine, e2c-agent", "amd64", true, []string{"e2c-agent"}, "e2c-agent"},
		{"this machine, both names", "amd64", true, []string{"e2c-agent", "e2c-agent-linux-amd64"}, "e2c-agent-linux-amd64"},
		{"this machine, a folder is no agent", "amd64", true, []string{"e2c-agent/"}, "e2c"},
		{"a Pi, e2c-agent for it", "arm64", false, []string{"e2c-agent", "e2c-agent-linux-arm64", "e2c-linux-arm64"}, "e2c-agent-linux-arm64"},
		{"a Pi, e2c for it", "arm64", false, []string{"e2c-agent", "e2c-linux-arm64"}, "e2c-linux-arm64"},
		{"a Pi, nothing for it", "arm", false, []string{"e2c-agent", "e2c-agent-linux-arm64"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			self := filepath.Join(dir, "e2c")
			for _, f := range append([]string{"e2c"}, tt.files...) {
				var err error
				if name, ok := strings.CutSuffix(f, "/"); ok {
					err = os.Mkdir(filepath.Join(dir, name), 0o755)
				} else {
					err = os.WriteFile(filepath.Join(dir, f), []byte("#!/bin/sh\n"), 0o755)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			got, err := agentBeside(self, tt.goarch, tt.native)
			switch {
			case tt.want == "" && err == nil:
				t.Fatalf("agentBeside = %s, want an error", got)
			case tt.want == "" && !strings.Contains(err.Error(), "make agents"):
				t.Fatalf("error %q does not say how to build one", err)
			case tt.want != "" && (err != nil || got != filepath.Join(dir, tt.want)):
				t.Fatalf("agentBeside = %q, %v; want %s", got, err, tt.want)
			}
		})
	}
}
