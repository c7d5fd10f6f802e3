package dockerdtest

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/providers/netns"
)

// TestStopLeavesNothing starts a daemon with a running container and checks
// that the cleanup leaves no process, mount, cgroup or file of it. The lab
// lives in 10.237.2.0/24.
func TestStopLeavesNothing(t *testing.T) {
	if err := netns.Preflight(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	archive, ref := Image(t, "mosquitto")
	name := fmt.Sprintf("dockerdtest-%d", os.Getpid())
	t.Cleanup(func() {
		if err := netns.Cleanup(context.Background(), name); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lab, err := netns.Create(ctx, netns.Options{Name: name, Hosts: []string{"h"},
		Subnet: netip.MustParsePrefix("10.237.2.0/24"), StateDir: filepath.Join(t.TempDir(), "lab")})
	if err != nil {
		t.Fatal(err)
	}

	var d *Daemon
	var pid int
	var cgroup string // the container's, below the daemon's cgroup parent
	h := lab.Hosts()[0]
	t.Run("running", func(t *testing.T) {
		if _, err := exec.LookPath("docker"); err != nil {
			t.Skip("skipping: no docker CLI (docker.io)")
		}
		d = Start(t, lab, h)
		docker := func(args ...string) string {
			out, err := exec.Command("docker", append([]string{"--host", "unix://" + d.Socket}, args...)...).Output()
			if err != nil {
				t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
			}
			return strings.TrimSpace(string(out))
		}
		docker("load", "-i", archive)
		// sleep as PID 1 ignores TERM: stopping it waits 1 s, then kills.
		docker("run", "-d", "--name", "left", "--network", "host", "--stop-timeout", "1", ref, "sleep", "600")
		if pid, err = strconv.Atoi(docker("inspect", "--format", "{{.State.Pid}}", "left")); err != nil || pid <= 0 {
			t.Fatalf("container pid %d, %v", pid, err)
		}
		// It runs in the host's network namespace, not this machine's.
		self, _ := os.Readlink("/proc/self/ns/net")
		its, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if its == "" || its == self {
			t.Errorf("container's network namespace %q, this machine's %q", its, self)
		}
		// pids:/e2c-…/ID: the top one is the daemon's cgroup parent.
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		for _, l := range strings.Split(string(cg), "\n") {
			if f := strings.SplitN(l, ":", 3); len(f) == 3 && f[1] == "pids" {
				cgroup = strings.Split(strings.TrimPrefix(f[2], "/"), "/")[0]
			}
		}
		if !strings.HasPrefix(cgroup, "e2c-") {
			t.Errorf("container's cgroups %q, want them below an e2c- parent", cg)
		}
	})
	if d == nil || t.Failed() {
		return
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("the container's process %d is still running", pid)
	}
	// The daemon's exec root is the socket's grandparent, RUN/host/docker.sock.
	run := filepath.Dir(filepath.Dir(d.Socket))
	hostDir := filepath.Join(lab.StateDir(), "hosts", h.Name)
	data := filepath.Join(netns.DockerDataDir(name), filepath.Base(run))
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(cmd, []byte(run+"/")) || bytes.Contains(cmd, []byte(data)) {
			t.Errorf("process left: %s: %q", e.Name(), cmd)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, s := range []string{run, data} {
		if bytes.Contains(mounts, []byte(s)) {
			t.Errorf("mounts of %s left:\n%s", s, mounts)
		}
	}
	if cg, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", cgroup)); cgroup == "" || len(cg) > 0 {
		t.Errorf("cgroups left: %v", cg)
	}
	for _, p := range []string{run, data, filepath.Join(hostDir, "root", ".e2c-docker")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left (%v)", p, err)
		}
	}
}
