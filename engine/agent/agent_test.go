package agent

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// start serves an agent on one end of a connection and returns a yamux
// client on the other, the stop channel and Serve's end.
func start(t *testing.T) (*yamux.Session, chan struct{}, <-chan error) {
	t.Helper()
	a, b := net.Pipe()
	stop := make(chan struct{})
	served := make(chan error, 1)
	go func() { served <- Serve(a, stop) }()
	c, err := yamux.Client(b, Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, stop, served
}

func request(t *testing.T, c *yamux.Session, req Request) *yamux.Stream {
	t.Helper()
	st, err := c.OpenStream()
	if err == nil {
		err = json.NewEncoder(st).Encode(req)
	}
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestUnknownOperation(t *testing.T) {
	c, _, _ := start(t)
	var e Exit
	if err := json.NewDecoder(request(t, c, Request{Op: "format-disk"})).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if e.Code != -1 || !strings.Contains(e.Error, `unknown operation "format-disk"`) {
		t.Errorf("exit %+v, want one naming the operation", e)
	}
}

// TestStopKillsWhatRuns: an exec reports its process group as e2c's
// scripts do; when the agent stops, that group is killed and Serve returns.
func TestStopKillsWhatRuns(t *testing.T) {
	c, stop, served := start(t)
	st := request(t, c, Request{Op: OpExec, ID: 1, Argv: []string{"sh", "-c", `printf '` + GroupMarker + `%s\n' $$ >&2; echo $$; sleep 100 & wait`}})
	st.Close()
	// The first stdout record: the group's ID.
	r := bufio.NewReader(st)
	var line string
	for line == "" {
		var h [RecordHeader]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, binary.BigEndian.Uint32(h[1:]))
		if _, err := io.ReadFull(r, b); err != nil || h[0] == FDExit {
			t.Fatalf("record %d %q: %v", h[0], b, err)
		}
		if h[0] == FDStdout {
			line = string(b)
		}
	}
	pgid, _ := strconv.Atoi(strings.TrimSpace(line))
	if pgid <= 0 || syscall.Kill(-pgid, 0) != nil {
		t.Fatalf("the command's group %q is not running", line)
	}
	close(stop)
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after stop")
	}
	if err := syscall.Kill(-pgid, 0); err != syscall.ESRCH {
		t.Errorf("group %d still there after the agent stopped (kill -0: %v)", pgid, err)
	}
}

// TestProtocolRefused: an agent told e2c speaks another protocol refuses
// to start, saying which each speaks.
func TestProtocolRefused(t *testing.T) {
	t.Setenv("E2C_AGENT_PROTOCOL", "999")
	err := ServeStdio()
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("speaks protocol %d, e2c 999", Protocol)) {
		t.Fatalf("ServeStdio: %v, want a refusal naming both protocols", err)
	}
}
