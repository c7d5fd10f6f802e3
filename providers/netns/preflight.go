package netns

import (
	"errors"
	"os"
	"os/exec"
	"strings"
)

// Preflight tells whether this machine can run labs. It lists everything
// missing at once, with how to install it, rather than failing on the
// first command that is not there.
func Preflight() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root: namespaces, bridges and mounts need it; run as root (sudo)")
	}
	tools := []struct{ name, pkg string }{
		{"ip", "iproute2"},
		{"unshare", "util-linux"},
		{"mount", "mount"},
		{"sh", "dash"},
	}
	found := true
	for _, t := range tools {
		if _, err := exec.LookPath(t.name); err != nil {
			missing = append(missing, t.name+": apt-get install "+t.pkg)
			found = false
		}
	}
	if _, err := os.Stat(sshdPath); err != nil {
		missing = append(missing, sshdPath+": apt-get install openssh-server")
	}
	// Try namespaces, bridges and veths where it cannot disturb anything:
	// in a network namespace that vanishes with the probe.
	if found && len(missing) == 0 {
		out, err := exec.Command("unshare", "--net", "sh", "-c",
			"ip link add e2c-probe-br type bridge && ip link add e2c-probe-0 type veth peer name e2c-probe-1").CombinedOutput()
		if err != nil {
			missing = append(missing, "network namespaces with bridges and veth pairs ("+
				strings.TrimSpace(string(out))+"): a kernel with CONFIG_NET_NS, CONFIG_BRIDGE and CONFIG_VETH, or modprobe bridge veth; in a container, run it privileged")
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return errors.New("netns: this machine cannot run emulated hosts; missing:\n  - " + strings.Join(missing, "\n  - "))
}
