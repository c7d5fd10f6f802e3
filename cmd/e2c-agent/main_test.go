package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/engine/agent"
	"github.com/hashicorp/yamux"
)

// TestAgentBinary builds e2c-agent as make build does and runs it as e2c
// starts it: a command through a session, a session that ends when its
// stdin closes, a refusal of another protocol, and a word for whoever
// types it.
func TestAgentBinary(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build e2c-agent with")
	}
	bin := filepath.Join(t.TempDir(), "e2c-agent")
	build := exec.Command(goTool, "build", "-ldflags", "-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Run("a command through a session", func(t *testing.T) { runThrough(t, bin) })
	for _, tt := range []struct {
		name string
		args []string
		env  string
		code int
		says string
	}{
		{"a session, stdin closed", []string{"agent", "session"}, fmt.Sprintf("E2C_AGENT_PROTOCOL=%d", agent.Protocol), 0, ""},
		{"another protocol", []string{"agent", "session"}, "E2C_AGENT_PROTOCOL=999", 1, fmt.Sprintf("speaks protocol %d, e2c 999", agent.Protocol)},
		{"typed by hand", nil, "", 2, "run e2c instead"},
		{"an unknown command", []string{"agent", "dance"}, "", 1, "unknown command"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Env = append(os.Environ(), "E2C_AGENT=1", tt.env)
			out, err := cmd.CombinedOutput() // stdin: /dev/null
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || !strings.Contains(string(out), tt.says) {
				t.Fatalf("exit %d, want %d; output %q, want it to say %q", code, tt.code, out, tt.says)
			}
		})
	}
}

// runThrough runs a command through a session of the agent bin, speaking
// to it as e2c does on the SSH session's stdin and stdout.
func runThrough(t *testing.T, bin string) {
	cmd := exec.Command(bin, "agent", "session")
	cmd.Env = append(os.Environ(), "E2C_AGENT=1", fmt.Sprintf("E2C_AGENT_PROTOCOL=%d", agent.Protocol))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	mux, err := yamux.Client(struct {
		io.Reader
		io.WriteCloser
	}{out, in}, agent.Config())
	if err != nil {
		t.Fatal(err)
	}
	st, err := mux.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := json.Marshal(agent.Request{Op: agent.OpExec, ID: 1, Argv: []string{"sh", "-c", "echo hi; echo oops >&2; exit 3"}, NoStdin: true})
	if _, err := st.Write(append(req, '\n')); err != nil {
		t.Fatal(err)
	}
	st.Close()
	got := map[byte]string{}
	var exit agent.Exit
	for {
		var h [agent.RecordHeader]byte
		if _, err := io.ReadFull(st, h[:]); err != nil {
			t.Fatalf("reading the answer: %v (so far %q)", err, got)
		}
		b := make([]byte, binary.BigEndian.Uint32(h[1:]))
		if _, err := io.ReadFull(st, b); err != nil {
			t.Fatal(err)
		}
		if h[0] == agent.FDExit {
			if err := json.Unmarshal(b, &exit); err != nil {
				t.Fatal(err)
			}
			break
		}
		got[h[0]] += string(b)
	}
	if got[agent.FDStdout] != "hi\n" || got[agent.FDStderr] != "oops\n" || exit.Code != 3 {
		t.Errorf("stdout %q, stderr %q, exit %+v; want hi, oops, 3", got[agent.FDStdout], got[agent.FDStderr], exit)
	}
	mux.Close()
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("the agent did not end cleanly when its stdin closed: %v", err)
	}
}
