// Package ansible runs ansible-playbook on the hosts of a netns lab, tuned
// as an experiment would tune it (a fork per host, pipelining, multiplexed
// connections), so that e2c can be compared with it on the same hosts: for
// results (engine/ansiblediff) and for speed (BenchmarkVersusAnsible).
package ansible

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/e2c-dev/e2c/providers/netns"
)

// Available says why ansible-playbook cannot run here, or nil.
func Available() error {
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		return errors.New("ansible-playbook not found (Debian: apt-get install ansible-core)")
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		return errors.New("ssh not found, which ansible-playbook connects with (Debian: apt-get install openssh-client)")
	}
	return nil
}

// Options tune a Runner.
type Options struct {
	// StdoutCallback is Ansible's stdout_callback; default "default".
	StdoutCallback string
	// CallbackDir holds callback plugins; Callbacks are the ones enabled.
	CallbackDir string
	Callbacks   []string
}

// Runner runs playbooks on a lab's hosts, which its inventory names as
// the lab does (inventory_hostname is the host's name).
type Runner struct {
	dir   string
	hosts []netns.Host
}

// Setup writes the inventory and the configuration for lab's hosts into
// dir, which also gets Ansible's local files (temporary files, connection
// sockets), so that nothing of the machine's own configuration is used.
func Setup(dir string, lab *netns.Lab, o Options) (*Runner, error) {
	r := &Runner{dir: dir, hosts: lab.Hosts()}
	var inv strings.Builder
	inv.WriteString("[all]\n")
	for _, h := range r.hosts {
		fmt.Fprintf(&inv, "%s ansible_host=%s\n", h.Name, h.Address4)
	}
	if o.StdoutCallback == "" {
		o.StdoutCallback = "default"
	}
	callbacks := ""
	if o.CallbackDir != "" {
		callbacks = fmt.Sprintf("callback_plugins = %s\ncallbacks_enabled = %s\n", o.CallbackDir, strings.Join(o.Callbacks, ","))
	}
	// ControlPersist keeps one connection per host for the whole playbook;
	// Close ends them.
	cfg := fmt.Sprintf(`[defaults]
forks = %d
host_key_checking = True
interpreter_python = /usr/bin/python3
remote_user = root
private_key_file = %s
stdout_callback = %s
%sretry_files_enabled = False
local_tmp = %s
[ssh_connection]
pipelining = True
ssh_args = -F none -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=%s
control_path = %s/%%%%h
`, len(r.hosts), lab.KeyFile(), o.StdoutCallback, callbacks, filepath.Join(dir, "tmp"), lab.KnownHostsFile(), r.sockets())
	if err := os.MkdirAll(r.sockets(), 0o700); err != nil {
		return nil, err
	}
	for name, text := range map[string]string{"inventory.ini": inv.String(), "ansible.cfg": cfg} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *Runner) sockets() string { return filepath.Join(r.dir, "cp") }

// Playbook runs a playbook with extra arguments (-e ...) and environment
// variables (NAME=value), and returns what ansible-playbook printed. A host
// that fails makes err an *exec.ExitError, as ansible-playbook exits 2.
func (r *Runner) Playbook(ctx context.Context, playbook string, args, env []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ansible-playbook", append([]string{"-i", filepath.Join(r.dir, "inventory.ini")}, append(args, playbook)...)...)
	cmd.Env = append(os.Environ(), append([]string{"ANSIBLE_CONFIG=" + filepath.Join(r.dir, "ansible.cfg"), "ANSIBLE_NOCOLOR=1"}, env...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// Close ends the connections Ansible keeps open to the hosts.
func (r *Runner) Close() {
	for _, h := range r.hosts {
		sock := filepath.Join(r.sockets(), h.Address4.String())
		if _, err := os.Stat(sock); err == nil {
			exec.Command("ssh", "-o", "ControlPath="+sock, "-O", "exit", h.Address4.String()).Run()
		}
	}
}
