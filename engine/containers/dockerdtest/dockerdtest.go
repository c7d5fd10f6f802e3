// Package dockerdtest gives tests a Docker Engine inside an emulated host of
// a netns lab, and the test image built from Debian's packages.
//
// Each dockerd runs in its host's network namespace only (nsenter --net:
// `ip netns exec` remounts /sys and hides the cgroups dockerd needs), with
// its own data root, exec root, pid file and socket (in the host's /root,
// so that only that host's sshd reaches it), no bridge and no iptables
// rules, so that it touches neither this machine's network nor
// another daemon. It shares this machine's mount namespace: bind mounts of
// its containers name this machine's paths, not the host's /tmp or /opt.
package dockerdtest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/providers/netns"
)

// Daemon is a dockerd started by Start.
type Daemon struct {
	// Socket is its unix socket on this machine, in the host's own /root,
	// where the host's sshd sees it at HostSocket and no other host's
	// does (they all share this machine's /run).
	Socket     string
	HostSocket string
	Log        string // its log file
	cmd        *exec.Cmd
	execDir    string // exec root and pid file
	dataDir    string // data root
	cgroup     string // the cgroup parent of its containers
}

// Start starts a dockerd in host h of lab and stops it when the test ends,
// removing its containers, mounts, cgroups and files; the cleanup fails the
// test if a process of it is left. It skips the test, saying why, when
// dockerd or what it needs of the kernel is missing.
func Start(t testing.TB, lab *netns.Lab, h netns.Host) *Daemon {
	t.Helper()
	bin := skipUnlessDockerd(t)
	sum := sha256.Sum256([]byte(h.Namespace))
	// Short: containerd's socket is below it, and a unix socket's path
	// has at most 107 bytes.
	id := hex.EncodeToString(sum[:4])
	d := &Daemon{
		execDir: filepath.Join("/run/e2c-docker", id),
		dataDir: filepath.Join(lab.StateDir(), "hosts", h.Name, "docker"),
		cgroup:  "e2c-" + id,
	}
	d.Socket = filepath.Join(lab.StateDir(), "hosts", h.Name, "root", ".e2c-docker", "docker.sock")
	d.HostSocket = "/root/.e2c-docker/docker.sock"
	if len(d.Socket) > 107 {
		t.Fatalf("dockerd socket path %s: longer than a unix socket's 107 bytes (use a shorter lab state directory)", d.Socket)
	}
	d.Log = filepath.Join(d.dataDir, "dockerd.log")
	for _, dir := range []string{d.dataDir, d.execDir, filepath.Dir(d.Socket)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Its own (empty) configuration, not this machine's daemon.json.
	conf := filepath.Join(d.dataDir, "daemon.json")
	if err := os.WriteFile(conf, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(d.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	d.cmd = exec.Command("nsenter", "--net=/run/netns/"+h.Namespace, bin,
		"--config-file", conf,
		"--data-root", filepath.Join(d.dataDir, "root"),
		"--exec-root", filepath.Join(d.execDir, "exec"),
		"--pidfile", filepath.Join(d.execDir, "dockerd.pid"),
		"--host", "unix://"+d.Socket,
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
		"--cgroup-parent", d.cgroup,
		"--log-level", "warn")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Its own session: a ^C to the test must not reach it before the
	// cleanup does.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting dockerd in %s: %v", h.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(exited) }()
	t.Cleanup(func() { d.stop(t, exited) })
	if err := d.waitReady(exited, 30*time.Second); err != nil {
		t.Fatalf("dockerd in %s: %v\n%s", h.Name, err, tailOf(d.Log))
	}
	return d
}

// skipUnlessDockerd returns dockerd's path, or skips the test naming what
// is missing.
func skipUnlessDockerd(t testing.TB) string {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("skipping: dockerd in an emulated host needs Linux and root")
	}
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		t.Skip("skipping: no dockerd (Debian: apt-get install docker.io)")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("skipping: no nsenter (util-linux)")
	}
	fs, _ := os.ReadFile("/proc/filesystems")
	if !strings.Contains(string(fs), "\toverlay\n") {
		t.Skip("skipping: the kernel has no overlay filesystem, which dockerd stores images on (modprobe overlay)")
	}
	_, v1 := os.Stat("/sys/fs/cgroup/devices")
	_, v2 := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	if v1 != nil && v2 != nil {
		t.Skip("skipping: neither the cgroup v1 devices controller nor cgroup v2 is mounted at /sys/fs/cgroup")
	}
	return bin
}

// waitReady waits until the daemon answers /_ping on its socket.
func (d *Daemon) waitReady(exited <-chan struct{}, timeout time.Duration) error {
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.Socket)
	}}, Timeout: time.Second}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for {
		if resp, err := c.Get("http://docker/_ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("exited while starting (%v)", d.cmd.ProcessState)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer on %s after %v", d.Socket, timeout)
		}
	}
}

// stop ends the daemon, which stops its containers and its containerd,
// then removes what it leaves: mounts, cgroups, files.
func (d *Daemon) stop(t testing.TB, exited <-chan struct{}) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(40 * time.Second):
		t.Errorf("dockerd (pid %d) still running 40s after TERM: killed", d.cmd.Process.Pid)
		_ = d.cmd.Process.Kill()
		<-exited
	}
	// What dockerd started (containerd, shims) names its exec root.
	for _, pid := range pidsNaming(d.execDir) {
		t.Errorf("left running after dockerd stopped: pid %d: %s", pid, cmdline(pid))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	var errs []error
	for _, m := range mountsUnder(d.execDir, d.dataDir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	cg, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", d.cgroup))
	for _, dir := range cg {
		if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("cgroup %s: %w", dir, err))
		}
	}
	for _, dir := range []string{d.execDir, filepath.Join(d.dataDir, "root"), filepath.Dir(d.Socket)} {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	_ = os.Remove(filepath.Dir(d.execDir)) // if no other daemon uses it
	if err := errors.Join(errs...); err != nil {
		t.Errorf("dockerd cleanup: %v", err)
	}
}

// pidsNaming lists the processes whose command line contains s.
func pidsNaming(s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if strings.Contains(cmdline(pid), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// mountsUnder lists the mount points below any of dirs, deepest first.
func mountsUnder(dirs ...string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		m := unescape(fields[4])
		for _, d := range dirs {
			if m == d || strings.HasPrefix(m, d+"/") {
				out = append(out, m)
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// tailOf is the end of a log file, for a failure message.
func tailOf(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
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
