package g5k

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/containers/dockerdtest"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/providers/netns"
)

// standIn stands in for Grid'5000's g5k-setup-docker, which cannot be run
// here: like it, it is run as the login user with -t and returns once the
// node's Docker Engine runs. The engine itself is started by the test
// (dockerdtest) when the script has been run, since a dockerd cannot start
// in an emulated host's sshd session, and must not listen on this
// machine's /var/run/docker.sock.
const standIn = `#!/bin/sh
echo "$(id -un) $*" > /tmp/g5k-setup-docker.ran
i=0
while [ ! -S /root/.e2c-docker/docker.sock ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
echo "Docker is installed."
`

// failing is a setup that fails, as the platform's does when apt fails.
const failing = `#!/bin/sh
echo "Installing docker-ce..."
echo "E: Unable to fetch some archives" >&2
exit 100
`

// TestProvideDocker runs ProvideDocker on emulated nodes (a lab in
// 10.235.61.0/24): b runs the stand-in setup, c a failing one.
func TestProvideDocker(t *testing.T) {
	t.Parallel()
	if err := netns.Preflight(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	name := fmt.Sprintf("g5k-docker-%d", os.Getpid())
	t.Cleanup(func() {
		if err := netns.Cleanup(context.Background(), name); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lab, err := netns.Create(ctx, netns.Options{Name: name, Hosts: []string{"b", "c"},
		Subnet: netip.MustParsePrefix("10.235.61.0/24"), StateDir: filepath.Join(t.TempDir(), "lab")})
	if err != nil {
		t.Fatal(err)
	}
	r := &providers.Reservation{Provider: "g5k", Hosts: [][]providers.Host{nil}}
	for i, script := range []string{standIn, failing} {
		h := lab.Hosts()[i]
		if err := os.WriteFile(filepath.Join(lab.StateDir(), "hosts", h.Name, "root", "g5k-setup-docker"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		r.Hosts[0] = append(r.Hosts[0], providers.Host{Machine: plan.Machine{Name: h.Name, Address: h.Address4.String()},
			SSH:          &transport.Endpoint{Host: h.Address4.String(), User: "root", KeyFiles: []string{lab.KeyFile()}, KnownHosts: lab.KnownHostsFile()},
			DockerSocket: "/root/.e2c-docker/docker.sock"})
	}
	ran := func(h string) string {
		b, _ := os.ReadFile(filepath.Join(lab.StateDir(), "hosts", h, "tmp", "g5k-setup-docker.ran"))
		return string(b)
	}
	p := &Provider{SetupDocker: "/root/g5k-setup-docker"}

	t.Run("without install nothing runs", func(t *testing.T) {
		var out strings.Builder
		if err := p.ProvideDocker(ctx, r, []string{"b", "c"}, testbed(t, "cluster: parasilo\n"), &out); err != nil || out.Len() > 0 {
			t.Fatalf("error %v, said %q", err, out.String())
		}
		if ran("b") != "" || ran("c") != "" {
			t.Errorf("the setup ran without docker: install")
		}
	})

	t.Run("install", func(t *testing.T) {
		var out strings.Builder
		done := make(chan error, 1)
		go func() {
			done <- p.ProvideDocker(ctx, r, []string{"b", "c"}, testbed(t, "cluster: parasilo\ndocker: install\n"), &out)
		}()
		for ran("b") == "" {
			select {
			case err := <-done:
				t.Fatalf("ProvideDocker returned before the setup ran on b: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
		}
		dockerdtest.Start(t, lab, lab.Hosts()[0]) // what the setup starts on b
		err := <-done
		if got := ran("b"); got != "root -t\n" {
			t.Errorf("the setup ran as %q, want the login user with -t", got)
		}
		if err == nil || !strings.Contains(err.Error(), "could not give 1 of 2 hosts a Docker Engine:\n  c: /root/g5k-setup-docker -t: exit status 100: E: Unable to fetch some archives") ||
			!strings.Contains(err.Error(), "| Installing docker-ce...") || strings.Contains(err.Error(), "\n  b:") {
			t.Errorf("error: %v", err)
		}
		if !strings.HasPrefix(out.String(), "docker: b: Docker Engine ") || !strings.HasSuffix(out.String(), " answers (/root/g5k-setup-docker -t)\n") {
			t.Errorf("said %q", out.String())
		}
		// Now that it answers, it is left alone.
		os.Remove(filepath.Join(lab.StateDir(), "hosts", "b", "tmp", "g5k-setup-docker.ran"))
		out.Reset()
		if err := p.ProvideDocker(ctx, r, []string{"b"}, testbed(t, "docker: install\n"), &out); err != nil || out.Len() > 0 || ran("b") != "" {
			t.Errorf("second time: error %v, said %q, setup ran: %q", err, out.String(), ran("b"))
		}
	})
}
