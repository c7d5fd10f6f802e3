package execute

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRunOnceFirstHost: run_once runs on the first host of the play still
// running, as in Ansible, however slow it is to get there; a host that
// failed before the task passes it to the next.
func TestRunOnceFirstHost(t *testing.T) {
	for _, c := range []struct {
		name, before, want string
	}{
		{"first host slowest", "sleep 1", "edge-node-1-1"},
		{"first host failed", "exit 3", "edge-node-1-2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			shared := filepath.Join(t.TempDir(), "once.txt")
			ex, out, _, _ := run(t, 3, `
- hosts: all
  launch:
  - shell: `+c.before+`
    when: inventory_hostname == 'edge-node-1-1'
  - shell: echo {{ inventory_hostname }} >> `+shared+`; echo {{ inventory_hostname }}
    run_once: true
    register: once
`)
			if ran := strings.Fields(read(t, shared)); len(ran) != 1 || ran[0] != c.want {
				t.Fatalf("run_once ran on %v, want %s\n%s", ran, c.want, out)
			}
			if got := registered(t, ex, "edge-node-1-3", "once")["stdout"]; got != c.want {
				t.Errorf("edge-node-1-3 registered %v, want the result of %s", got, c.want)
			}
		})
	}
}
