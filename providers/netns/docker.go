package netns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/e2c-dev/e2c/engine/fanout"
)

// A host's dockerd runs in the host's network namespace only (nsenter
// --net: `ip netns exec` remounts /sys and hides the cgroups dockerd
// needs), with its own data root, exec root and socket, no bridge and no
// iptables rules, so that it touches neither this machine's network nor
// another daemon. It shares this machine's mount namespace: bind mounts of
// its containers name this machine's paths, not the host's /tmp or /opt.

// dockerRunDir holds each daemon's exec root, below a directory per lab,
// so that Destroy finds every daemon of a lab from the machine alone. It
// is on tmpfs, like the namespaces.
const dockerRunDir = "/run/e2c-docker"

// dockerDataDir holds each daemon's data root (images, containers) and
// configuration, below a directory per lab: outside the directories each
// host has its own (/tmp, /opt, /root), so that the host's shell sees the
// path the daemon writes to, as on a real machine (df there tells its
// free space), and with the machine's other daemons' data.
const dockerDataDir = "/var/lib/e2c-docker"

// DockerDataDir is where the dockerds of lab name keep their data, a
// folder per host below it.
func DockerDataDir(name string) string { return filepath.Join(dockerDataDir, labID(name)) }

// DockerHostSocket is where a host's sshd sees its dockerd's socket: in
// the host's own /root, which no other host's sshd sees there.
const DockerHostSocket = "/root/.e2c-docker/docker.sock"

// Timeouts of a daemon: to answer once started, and to stop after TERM
// (it stops its containers first, each within its stop timeout).
const (
	dockerStartTimeout = 30 * time.Second
	dockerStopTimeout  = 40 * time.Second
)

// Docker is the dockerd of an emulated host.
type Docker struct {
	// Socket is its unix socket on this machine; HostSocket, the same as
	// the host's sshd sees it.
	Socket, HostSocket string
	Log                string // its output
}

// dockerd names what the daemon of one host has on the machine.
type dockerd struct {
	run    string // /run/e2c-docker/LAB/N: exec root, pid file, and the link "host" to the socket's directory
	data   string // /var/lib/e2c-docker/LAB/N: data root and configuration
	host   string // the host's directory in the lab's state (socket, log); "" when unknown
	cgroup string // the cgroup parent of its containers
}

// dockerdOf names the daemon of host h of r, by its slot. Names are
// short: the socket of its containerd is below run, and a unix socket's
// path has at most 107 bytes.
func dockerdOf(r *record, h Host) dockerd {
	n := strconv.Itoa(h.Slot)
	return dockerd{
		run:    filepath.Join(dockerRunDir, r.ID, n),
		data:   filepath.Join(dockerDataDir, r.ID, n),
		host:   r.hostDir(h.Name),
		cgroup: "e2c-" + r.ID + "-" + n,
	}
}

func (d dockerd) socketDir() string { return filepath.Join(d.host, "root", ".e2c-docker") }

// socket is the daemon's socket reached through run, whatever the length
// of the state directory's path.
func (d dockerd) socket() string { return filepath.Join(d.run, "host", "docker.sock") }

func (d dockerd) info() *Docker {
	return &Docker{Socket: d.socket(), HostSocket: DockerHostSocket, Log: filepath.Join(d.host, "dockerd.log")}
}

// CheckDocker tells whether this machine can run a dockerd in emulated
// hosts, listing everything missing with how to get it.
func CheckDocker() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root: dockerd needs it; run as root (sudo)")
	}
	if _, err := exec.LookPath("dockerd"); err != nil {
		missing = append(missing, "dockerd: apt-get install docker.io")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		missing = append(missing, "nsenter: apt-get install util-linux")
	}
	if fs, err := os.ReadFile("/proc/filesystems"); err == nil && !strings.Contains(string(fs), "\toverlay\n") {
		missing = append(missing, "the overlay filesystem, which dockerd stores images on: modprobe overlay")
	}
	_, v1 := os.Stat("/sys/fs/cgroup/devices")
	_, v2 := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	if v1 != nil && v2 != nil {
		missing = append(missing, "cgroups: neither the cgroup v1 devices controller nor cgroup v2 is mounted at /sys/fs/cgroup")
	}
	if len(missing) == 0 {
		return nil
	}
	return errors.New("this machine cannot run dockerd in emulated hosts; missing:\n  - " + strings.Join(missing, "\n  - "))
}

// Docker makes a dockerd answer in host h: it returns the one that
// already does, or starts one (started is then true). The daemon outlives
// this process and ctx: StopDocker or Destroy stops it.
func (l *Lab) Docker(ctx context.Context, h Host) (d *Docker, started bool, err error) {
	i := slices.IndexFunc(l.rec.Hosts, func(x Host) bool { return x.Name == h.Name })
	if i < 0 {
		return nil, false, fmt.Errorf("netns: lab %q has no host %q", l.rec.Name, h.Name)
	}
	dd := dockerdOf(&l.rec, l.rec.Hosts[i])
	if pid := dd.pid(); pid > 0 {
		// Running, perhaps still starting: it answers or is a fault.
		if err := dd.waitReady(ctx, pid); err != nil {
			return nil, false, fmt.Errorf("netns: host %s: dockerd (pid %d) runs but %w; stop it with e2c destroy%s", h.Name, pid, err, tail(dd.info().Log))
		}
		return dd.info(), false, nil
	}
	// A daemon that died leaves its mounts and files: clear them first.
	if err := dd.stop(ctx, io.Discard); err != nil {
		return nil, false, fmt.Errorf("netns: host %s: clearing what an earlier dockerd left: %w", h.Name, err)
	}
	if err := dd.start(ctx, l.rec.Hosts[i]); err != nil {
		return nil, false, fmt.Errorf("netns: host %s: %w", h.Name, err)
	}
	return dd.info(), true, nil
}

// StopDocker stops host h's dockerd, with its containers, and removes its
// processes, mounts, cgroups and files, keeping its log. What it had to
// kill, which a clean stop leaves nothing of, it says on out.
func (l *Lab) StopDocker(ctx context.Context, h Host, out io.Writer) error {
	i := slices.IndexFunc(l.rec.Hosts, func(x Host) bool { return x.Name == h.Name })
	if i < 0 {
		return fmt.Errorf("netns: lab %q has no host %q", l.rec.Name, h.Name)
	}
	if err := dockerdOf(&l.rec, l.rec.Hosts[i]).stop(ctx, out); err != nil {
		return fmt.Errorf("netns: host %s: %w", h.Name, err)
	}
	return nil
}

// start starts the daemon of h and waits until it answers.
func (d dockerd) start(ctx context.Context, h Host) error {
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		return fmt.Errorf("no dockerd (apt-get install docker.io): %w", err)
	}
	for _, dir := range []string{d.run, d.data, d.socketDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	// The socket's directory, reached through run, keeps the socket's
	// path short; the link also tells Destroy where the host's files are.
	if err := os.Symlink(d.socketDir(), filepath.Join(d.run, "host")); err != nil {
		return err
	}
	// Its own (empty) configuration, not this machine's daemon.json.
	conf := filepath.Join(d.data, "daemon.json")
	if err := os.WriteFile(conf, []byte("{}\n"), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(d.info().Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	// Not CommandContext: the daemon outlives this process.
	cmd := exec.Command("nsenter", "--net="+filepath.Join(netnsDir, h.Namespace), bin,
		"--config-file", conf,
		"--data-root", filepath.Join(d.data, "root"),
		"--exec-root", filepath.Join(d.run, "exec"),
		"--pidfile", filepath.Join(d.run, "dockerd.pid"),
		"--host", "unix://"+d.socket(),
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
		"--cgroup-parent", d.cgroup,
		"--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session: a ^C to e2c must not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting dockerd: %w", err)
	}
	go func() { _ = cmd.Wait() }() // reaped while this process lives
	if err := d.waitReady(ctx, cmd.Process.Pid); err != nil {
		err = fmt.Errorf("dockerd %w%s", err, tail(d.info().Log))
		return errors.Join(err, d.stop(context.WithoutCancel(ctx), io.Discard))
	}
	return nil
}

// waitReady waits until the daemon answers /_ping on its socket.
func (d dockerd) waitReady(ctx context.Context, pid int) error {
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.socket())
	}}, Timeout: time.Second}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(dockerStartTimeout)
	for {
		if resp, err := c.Get("http://docker/_ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !alive(pid) {
			return errors.New("exited while starting")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("does not answer on %s after %v", d.socket(), dockerStartTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// pid is the daemon's process, found by its exec root, or 0.
func (d dockerd) pid() int {
	for _, pid := range pidsNaming(d.run + "/") {
		if args := strings.Split(cmdline(pid), " "); filepath.Base(args[0]) == "dockerd" {
			return pid
		}
	}
	return 0
}

// stop ends the daemon, which stops its containers and its containerd,
// then kills what is left of them (container processes by their cgroups,
// containerd and its shims by the exec root they name), and removes its
// mounts, cgroups and files. Nothing of it may run or be mounted when its
// files are removed: a RemoveAll through a mount would reach beyond them.
func (d dockerd) stop(ctx context.Context, out io.Writer) error {
	if pid := d.pid(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		if !waitGone(ctx, pid, dockerStopTimeout) {
			fmt.Fprintf(out, "netns: dockerd (pid %d) still running %v after TERM: killed\n", pid, dockerStopTimeout)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			waitGone(ctx, pid, 5*time.Second)
		}
	}
	if err := d.killLeft(ctx, out); err != nil {
		return err
	}
	var errs []error
	for _, m := range mountsUnder(d.run, d.data) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	for _, dir := range d.cgroups() {
		if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("cgroup %s: %w", dir, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("stopping dockerd: %w", errors.Join(errs...))
	}
	rm := []string{d.run, d.data}
	if d.host != "" {
		rm = append(rm, d.socketDir())
	}
	for _, dir := range rm {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("stopping dockerd: %w", errors.Join(errs...))
	}
	return nil
}

// killLeft kills the processes of the daemon's containers and whatever
// names its exec root, until none is left.
func (d dockerd) killLeft(ctx context.Context, out io.Writer) error {
	deadline := time.Now().Add(10 * time.Second)
	said := map[int]bool{}
	for {
		var pids []int
		for _, dir := range d.cgroups() {
			pids = append(pids, cgroupProcs(dir)...)
		}
		for _, pid := range pidsNaming(d.run + "/") {
			if daemonProcess(pid) {
				pids = append(pids, pid)
			}
		}
		pids = slices.DeleteFunc(pids, func(pid int) bool { return pid == os.Getpid() || !alive(pid) })
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes of dockerd %v survive SIGKILL", pids)
		}
		for _, pid := range pids {
			if !said[pid] {
				said[pid] = true
				fmt.Fprintf(out, "netns: left running after dockerd stopped: pid %d: %s: killed\n", pid, cmdline(pid))
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// daemonProcess tells Docker's own programs (dockerd, containerd and its
// shims, runc) from anything else that names the exec root, such as a
// user's tail -f of a log there, which is not killed.
func daemonProcess(pid int) bool {
	prog := filepath.Base(strings.SplitN(cmdline(pid), " ", 2)[0])
	return prog == "dockerd" || prog == "runc" || strings.HasPrefix(prog, "containerd") || strings.HasPrefix(prog, "docker-")
}

// cgroups lists the cgroup parent of the daemon's containers and the
// cgroups below it, in every hierarchy (v1 controllers, v2), deepest
// first.
func (d dockerd) cgroups() []string {
	var dirs []string
	tops, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", d.cgroup))
	tops = append(tops, filepath.Join("/sys/fs/cgroup", d.cgroup))
	for _, top := range tops {
		_ = filepath.WalkDir(top, func(path string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
	}
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
	return dirs
}

// stopDockers stops every daemon of lab r that the machine holds, found
// from their directories below dockerRunDir and dockerDataDir, at once.
func stopDockers(ctx context.Context, r *record, out io.Writer) error {
	// By the exec roots, and by the data roots a reboot left without one.
	runs, _ := filepath.Glob(filepath.Join(dockerRunDir, r.ID, "*"))
	datas, _ := filepath.Glob(filepath.Join(dockerDataDir, r.ID, "*"))
	for _, data := range datas {
		if run := filepath.Join(dockerRunDir, r.ID, filepath.Base(data)); !slices.Contains(runs, run) {
			runs = append(runs, run)
		}
	}
	// All at once: each mostly waits for its containers to stop. Every
	// daemon is stopped, interrupted or not.
	errs := fanout.Each(context.WithoutCancel(ctx), len(runs), 0, func(_ context.Context, i int) error {
		run := runs[i]
		n := filepath.Base(run)
		d := dockerd{run: run, data: filepath.Join(dockerDataDir, r.ID, n), cgroup: "e2c-" + r.ID + "-" + n}
		// The link to the socket's directory, HOST/root/.e2c-docker,
		// locates the host's files even without the lab's record.
		if target, err := os.Readlink(filepath.Join(run, "host")); err == nil && filepath.IsAbs(target) {
			d.host = filepath.Dir(filepath.Dir(target))
		}
		if err := d.stop(ctx, out); err != nil {
			return fmt.Errorf("%s: %w", run, err)
		}
		return nil
	})
	// The lab's and the machine's directories, if no other daemon uses
	// them; not when one daemon stops: another of the lab may be starting.
	for _, dir := range []string{filepath.Join(dockerRunDir, r.ID), dockerRunDir, filepath.Join(dockerDataDir, r.ID), dockerDataDir} {
		_ = os.Remove(dir)
	}
	return errors.Join(errs...)
}

// alive tells a process that runs, not a zombie.
func alive(pid int) bool { return !zombie("/proc/" + strconv.Itoa(pid)) }

// waitGone waits up to timeout for pid to end; it tells whether it did.
func waitGone(ctx context.Context, pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// cgroupProcs lists the processes of one cgroup.
func cgroupProcs(dir string) []int {
	data, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
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

// mountsUnder lists the mount points at or below any of dirs, deepest
// first.
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

// tail is the end of a log file, to explain a failure.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	return "\n" + path + ":\n" + strings.Join(lines, "\n")
}
