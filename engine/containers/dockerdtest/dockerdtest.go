// Package dockerdtest gives tests a Docker Engine inside an emulated host of
// a netns lab (netns.Lab.Docker: the provider's own daemon), and the test
// image built from Debian's packages.
package dockerdtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/providers/netns"
)

// Daemon is a dockerd started by Start.
type Daemon struct {
	// Socket is its unix socket on this machine; the host's sshd sees it
	// at HostSocket, in the host's own /root, and no other host's does.
	Socket     string
	HostSocket string
	Log        string // its log file
}

// Start starts a dockerd in host h of lab and stops it when the test ends,
// removing its containers, mounts, cgroups and files; the cleanup fails the
// test if it had to kill a process of it. It skips the test, saying why,
// when dockerd or what it needs of the kernel is missing.
func Start(t testing.TB, lab *netns.Lab, h netns.Host) *Daemon {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("skipping: dockerd in an emulated host needs Linux")
	}
	if err := netns.CheckDocker(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, _, err := lab.Docker(ctx, h)
	// Registered even after an error: a daemon half started is stopped.
	t.Cleanup(func() {
		var killed strings.Builder
		if err := lab.StopDocker(context.Background(), h, &killed); err != nil {
			t.Errorf("dockerd cleanup: %v", err)
		}
		if killed.Len() > 0 {
			t.Errorf("dockerd in %s did not stop cleanly:\n%s", h.Name, killed.String())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Daemon{Socket: d.Socket, HostSocket: d.HostSocket, Log: d.Log}
}

// Image returns the archive of test image name ("mosquitto" or "zookeeper":
// a docker save archive built from Debian's packages by
// testdata/build-image.sh on first use, then cached) and the name:tag it
// holds. It skips the test when the image cannot be built here for want of
// root or debootstrap.
func Image(t testing.TB, name string) (archive, ref string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: building the test image needs root")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Skip("skipping: no debootstrap to build the test image (Debian: apt-get install debootstrap)")
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "testdata", "build-image.sh")
	out, err := exec.Command("bash", script, name).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		t.Fatalf("building the test image %s: %v", name, err)
	}
	archive = strings.TrimSpace(string(out))
	// NAME-KEY.tar holds e2c-test/NAME:KEY.
	key := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(archive), name+"-"), ".tar")
	return archive, "e2c-test/" + name + ":" + key
}

// PlaceImage puts the archive of a test image at dst (in a scenario's
// artifacts), hard-linked where it can be: the archives are large.
func PlaceImage(t testing.TB, archive, dst string) {
	t.Helper()
	if os.Link(archive, dst) == nil {
		return
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
