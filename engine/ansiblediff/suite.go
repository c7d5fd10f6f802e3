// Package ansiblediff is the differential suite: each case of testdata/, a
// small play, is run by ansible-playbook (ansible-core 2.14, the
// reference) and by e2c (experiment.Deploy on the netns provider) on the
// same two emulated hosts, and their results are compared: the outcome per
// host (and which task failed it), the files left on the hosts, the files
// of the working folder (fetched files), the values tasks registered or
// set, and whether a secret was printed.
//
// Each case gets hosts of its own for each tool (the same names, addresses
// and setup: a lab on the case's own subnet, created afresh), so that a
// failing case, or a job one tool leaves running, never touches another
// run; cases run several at a time.
package ansiblediff

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Outcome is how a case ended.
type Outcome struct {
	Case *Case
	// Skip is why the case did not run (deliberate, or a need missing).
	Skip string
	// Differences are how e2c differs from Ansible; none is the same result.
	Differences []string
	// Err is a failure of the suite itself (a lab not created, a case
	// Ansible refuses): the case tells nothing.
	Err error
	// Ansible and E2C are how long each tool took, its hosts' creation and
	// removal included.
	Ansible, E2C time.Duration
}

// Subnet is the case's lab's range: each case has its own, so that cases
// run at once. Labs live in 10.236.0.0/16, which no other test uses.
func Subnet(i int) (netip.Prefix, error) {
	if i < 0 || i > 255 {
		return netip.Prefix{}, fmt.Errorf("case %d: only 256 cases fit in 10.236.0.0/16", i)
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 236, byte(i), 0}), 24), nil
}

// Run runs the case with both tools, in dir, on subnet, and compares them.
func (c *Case) Run(ctx context.Context, dir string, subnet netip.Prefix) (o Outcome) {
	o.Case = c
	if c.Deliberate != "" {
		o.Skip = "deliberate: " + c.Deliberate
		return o
	}
	if o.Skip = missing(c.Needs); o.Skip != "" {
		return o
	}
	aDir, eDir := filepath.Join(dir, "ansible"), filepath.Join(dir, "e2c")
	// One at a time: both labs use the case's subnet.
	start := time.Now()
	e, err := c.runE2C(ctx, eDir, subnet)
	o.E2C = time.Since(start)
	if err != nil {
		o.Err = fmt.Errorf("e2c: %w", err)
		return o
	}
	a, err := c.runAnsible(ctx, aDir, subnet)
	o.Ansible = time.Since(start) - o.E2C
	if err != nil {
		o.Err = fmt.Errorf("ansible: %w", err)
		return o
	}
	o.Differences = c.compare(a, e, filepath.Join(aDir, "work"), filepath.Join(eDir, "work"))
	return o
}

// missing says which of needs this machine lacks, or "".
func missing(needs []string) string {
	var lack []string
	for _, n := range needs {
		if why := lacks(n); why != "" {
			lack = append(lack, why)
		}
	}
	if len(lack) == 0 {
		return ""
	}
	return "needs " + strings.Join(lack, "; ")
}

func lacks(need string) string {
	switch need {
	case "systemd":
		if _, err := os.Stat("/run/systemd/system"); err != nil {
			return "systemd: this machine was not booted with it"
		}
	case "docker":
		if err := exec.Command("docker", "info").Run(); err != nil {
			return "docker: no Docker daemon answers"
		}
	default:
		if strings.Contains(need, ".") { // a collection: ansible.posix
			if out, _ := exec.Command("ansible-galaxy", "collection", "list", need).CombinedOutput(); !strings.Contains(string(out), need+" ") {
				return need + ": Ansible's collection is not installed (Debian: apt-get install ansible)"
			}
			return ""
		}
		if _, err := exec.LookPath(need); err != nil {
			return need + ": not installed"
		}
	}
	return ""
}

// Summary is one line on how the case ended, for the suite's table.
func (o Outcome) Summary() string {
	switch {
	case o.Err != nil:
		return "error: " + firstLine(o.Err.Error())
	case o.Skip != "":
		return o.Skip
	case len(o.Differences) == 0:
		return ""
	}
	s := o.Differences[0]
	if r := []rune(s); len(r) > 150 {
		s = string(r[:147]) + "..."
	}
	if n := len(o.Differences) - 1; n > 0 {
		s += fmt.Sprintf(" (+%d more)", n)
	}
	return s
}

// Status is same, different, skipped or error.
func (o Outcome) Status() string {
	switch {
	case o.Err != nil:
		return "error"
	case o.Skip != "":
		return "skipped"
	case len(o.Differences) > 0:
		return "different"
	}
	return "same"
}
