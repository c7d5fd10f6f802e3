package static

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
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/providers/netns"
)

// TestProvideDocker runs ProvideDocker against real sshds of a lab in
// 10.235.60.0/24. Installing for real (apt-get, starting the system
// dockerd) is tested on a lab host by providers/dockerinstall, as far as
// this machine allows.
func TestProvideDocker(t *testing.T) {
	if err := netns.Preflight(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	name := fmt.Sprintf("static-docker-%d", os.Getpid())
	t.Cleanup(func() {
		if err := netns.Cleanup(context.Background(), name); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lab, err := netns.Create(ctx, netns.Options{Name: name, Hosts: []string{"a", "b"},
		Subnet: netip.MustParsePrefix("10.235.60.0/24"), StateDir: filepath.Join(t.TempDir(), "lab")})
	if err != nil {
		t.Fatal(err)
	}
	p := New()
	dp := p.(providers.DockerProvider)
	// reserve reserves hosts a and b with the block's extra keys.
	reserve := func(t *testing.T, socket string, extra map[string]any) (*providers.Reservation, providers.Request) {
		settings := map[string]any{"hosts": []any{labHost(lab, 0, "docker_socket", socket), labHost(lab, 1)}}
		for k, v := range extra {
			settings[k] = v
		}
		req := request(t, lab, "exp-docker", settings, inst("svc", 2, ""))
		r, err := p.Reserve(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return r, req
	}

	t.Run("an engine that answers is left alone", func(t *testing.T) {
		d := dockerdtest.Start(t, lab, lab.Hosts()[0])
		r, req := reserve(t, d.HostSocket, map[string]any{"docker": "install"})
		var out strings.Builder
		if err := dp.ProvideDocker(ctx, r, []string{"h-a"}, req.Settings, &out); err != nil {
			t.Fatal(err)
		}
		if out.Len() > 0 {
			t.Errorf("said %q about a host whose engine answers", out.String())
		}
	})

	t.Run("no engine and no install: nothing done, no error", func(t *testing.T) {
		// Host b has no daemon at /var/run/docker.sock (this machine runs none).
		if _, err := os.Stat("/var/run/docker.sock"); err == nil {
			t.Skip("skipping: this machine runs a dockerd on /var/run/docker.sock, which the emulated hosts share")
		}
		r, req := reserve(t, "/root/none.sock", nil)
		before := touched(t)
		var out strings.Builder
		if err := dp.ProvideDocker(ctx, r, []string{"h-a", "h-b"}, req.Settings, &out); err != nil {
			t.Fatal(err)
		}
		if out.Len() > 0 {
			t.Errorf("said %q without docker: install", out.String())
		}
		if after := touched(t); after != before {
			t.Errorf("apt or dpkg ran: %s, then %s", before, after)
		}
	})

	t.Run("a host not in the reservation", func(t *testing.T) {
		r, req := reserve(t, "/root/none.sock", nil)
		if err := dp.ProvideDocker(ctx, r, []string{"h-z"}, req.Settings, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "no host h-z in the reservation") {
			t.Errorf("error: %v", err)
		}
	})
}

// touched is when apt last updated its lists and dpkg its status here.
func touched(t *testing.T) string {
	var s []string
	for _, f := range []string{"/var/lib/apt/lists", "/var/lib/dpkg/status"} {
		if st, err := os.Stat(f); err == nil {
			s = append(s, st.ModTime().String())
		}
	}
	return strings.Join(s, ", ")
}
