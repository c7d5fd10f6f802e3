package dockerinstall

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	eplan "github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/providers/netns"
)

// TestInstallOnALabHost runs the installation on a real sshd of a lab in
// 10.235.62.0/24, up to what is safe on this machine, whose file system
// (but /tmp, /opt, /root and /etc/hosts) the emulated host shares: the
// probe, apt-get update and apt-get install -y docker.io when it would
// install nothing new, and the bounded wait. Starting the system dockerd
// is not run: it would listen on /var/run/docker.sock, which this machine
// and every emulated host share.
func TestInstallOnALabHost(t *testing.T) {
	if err := netns.Preflight(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	name := fmt.Sprintf("dockerinstall-%d", os.Getpid())
	t.Cleanup(func() {
		if err := netns.Cleanup(context.Background(), name); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	lab, err := netns.Create(ctx, netns.Options{Name: name, Hosts: []string{"a"},
		Subnet: netip.MustParsePrefix("10.235.62.0/24"), StateDir: filepath.Join(t.TempDir(), "lab")})
	if err != nil {
		t.Fatal(err)
	}
	lh := lab.Hosts()[0]
	h := providers.Host{Machine: eplan.Machine{Name: "a", Address: lh.Address4.String()},
		SSH: &transport.Endpoint{Host: lh.Address4.String(), User: "root", KeyFiles: []string{lab.KeyFile()}, KnownHosts: lab.KnownHostsFile()}}
	pool := transport.NewPool(transport.PoolOptions{})
	defer pool.Close()
	r, err := pool.Runner(ctx, *h.SSH)
	if err != nil {
		t.Fatal(err)
	}

	f, err := probe(ctx, r, "/root/no-such-setup")
	if err != nil {
		t.Fatal(err)
	}
	// The probe sees this machine's system, as the host runs on it.
	own, _ := os.ReadFile("/etc/os-release")
	_, dockerd := exec.LookPath("dockerd")
	_, systemd := os.Stat("/run/systemd/system")
	if want := parseOSRelease(string(own))["ID"]; f.osRelease["ID"] != want || !f.root || !f.sudo || f.platform ||
		f.dockerd != (dockerd == nil) || f.systemd != (systemd == nil) {
		t.Fatalf("probe: %+v, want ID %s, root, dockerd %v, systemd %v", f, want, dockerd == nil, systemd == nil)
	}
	if !debianLike(f.osRelease) {
		t.Skipf("skipping: this machine runs %s, not Debian or Ubuntu", f.osRelease["ID"])
	}

	// What a host of this system lacking Docker gets.
	f.dockerd = false
	steps, err := plan(f, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		t.Run(s.what, func(t *testing.T) {
			switch {
			case !strings.HasPrefix(s.what, "apt-get"):
				t.Skipf("not run here: %q would start a system dockerd on /var/run/docker.sock, which this machine and every emulated host share", s.cmd.Script)
			case os.Getenv("E2C_TEST_APT") == "":
				t.Skip("not run unless E2C_TEST_APT=1: it runs apt-get on this machine's package lists (240 s here, waiting for the network and other apt runs)")
			case exec.Command("dpkg-query", "-W", "-f=${Status}", "docker.io").Run() != nil:
				t.Skip("not run here: docker.io is not installed on this machine, and the test installs nothing new")
			}
			if s.what == "apt-get install docker.io" {
				sim, err := exec.Command("apt-get", "-s", "install", "-y", "docker.io").Output()
				if err != nil || !strings.Contains(string(sim), "0 upgraded, 0 newly installed") {
					t.Skipf("not run here: apt-get install docker.io would change this machine's packages (%v):\n%s", err, sim)
				}
			}
			if err := runStep(ctx, r, s); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("the wait is bounded", func(t *testing.T) {
		h := h
		h.DockerSocket = "/root/none.sock"
		_, err := waitAnswers(ctx, pool, h, time.Second)
		if err == nil || !strings.Contains(err.Error(), "no Docker Engine answers 1s later") || !strings.Contains(err.Error(), "/root/none.sock") {
			t.Errorf("error: %v", err)
		}
	})

	t.Run("a failing step shows its last lines", func(t *testing.T) {
		err := runStep(ctx, r, step{what: "setup", cmd: transport.Command{Script: "for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; done; echo oops >&2; exit 3"}})
		// The two streams arrive apart: only the count and the newest are sure.
		if err == nil || !strings.HasPrefix(err.Error(), "setup: exit status 3: oops\n") || strings.Count(err.Error(), "\n    | ") != lastLines ||
			!strings.Contains(err.Error(), "| line 10") || strings.Contains(err.Error(), "| line 1\n") {
			t.Errorf("error: %v", err)
		}
	})
}
