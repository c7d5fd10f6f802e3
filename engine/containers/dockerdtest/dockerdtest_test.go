package dockerdtest

import (
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
	t.Run("running", func(t *testing.T) {
		if _, err := exec.LookPath("docker"); err != nil {
			t.Skip("skipping: no docker CLI (docker.io)")
		}
		d = Start(t, lab, lab.Hosts()[0])
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
	})
	if d == nil || t.Failed() {
		return
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("the container's process %d is still running", pid)
	}
	if pids := pidsNaming(d.execDir); len(pids) > 0 {
		t.Errorf("processes left: %v", pids)
	}
	if m := mountsUnder(d.execDir, d.dataDir); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	if cg, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", d.cgroup)); len(cg) > 0 {
		t.Errorf("cgroups left: %v", cg)
	}
	for _, p := range []string{d.execDir, filepath.Join(d.dataDir, "root"), filepath.Dir(d.Socket)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left (%v)", p, err)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\134y`: `/x\y`, `/end\04`: `/end\04`} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
