package netns_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/containers"
	"github.com/e2c-dev/e2c/engine/containers/dockerdtest"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/providers/netns"
	"github.com/e2c-dev/e2c/schema"
)

// TestProvideDocker reserves a lab of two hosts in 10.239.60.0/24, gives
// one a dockerd, runs a container there through the Engine API over the
// host's SSH, and releases the lab as another process would: no process,
// mount, cgroup or file of the daemon or its container is left. The state
// directory's path is long: the daemon's socket is still reachable.
func TestProvideDocker(t *testing.T) {
	if err := netns.Preflight(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if err := netns.CheckDocker(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	archive, ref := dockerdtest.Image(t, "mosquitto")
	p := netns.New()
	tb, err := schema.TestbedBlock("f.yaml", "netns", "{subnet: 10.239.60.0/24, subnet6: 'fd00:e2c:a:ef3c::/64'}")
	if err != nil {
		t.Fatal(err)
	}
	req := providers.Request{
		Experiment: fmt.Sprintf("test-docker-%d", os.Getpid()),
		StateDir:   filepath.Join(t.TempDir(), strings.Repeat("long-folder-name-", 4), "netns"),
		Settings:   tb,
		Instances: []plan.Instance{
			{Layer: "fog", Name: "broker", Index: 1, Service: &schema.Service{Quantity: 1}},
			{Layer: "edge", Name: "client", Index: 1, Service: &schema.Service{Quantity: 1}},
		},
	}
	t.Cleanup(func() { netns.Cleanup(context.Background(), req.Experiment+"@"+req.StateDir) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := p.Reserve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := json.Marshal(res) // as deploy --keep saves it
	if err != nil {
		t.Fatal(err)
	}
	fog, edge := res.Hosts[0][0].Name, res.Hosts[1][0].Name
	if onMachine := filepath.Join(req.StateDir, "hosts", fog, "root", ".e2c-docker", "docker.sock"); len(onMachine) <= 107 {
		t.Fatalf("%s: want a path longer than a unix socket's 107 bytes", onMachine)
	}
	dp := p.(providers.DockerProvider)

	var out bytes.Buffer
	start := time.Now()
	if err := dp.ProvideDocker(ctx, res, []string{fog}, nil, &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("starting a dockerd: %v", time.Since(start))
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "netns: started dockerd in host "+fog+" (log ") {
		t.Errorf("ProvideDocker said %q, want one line for %s", out.String(), fog)
	}
	if s := res.Hosts[0][0].DockerSocket; s != netns.DockerHostSocket {
		t.Errorf("%s: socket %q, want %q", fog, s, netns.DockerHostSocket)
	}
	if s := res.Hosts[1][0].DockerSocket; s != "" {
		t.Errorf("%s was given no daemon, but socket %q", edge, s)
	}

	// A later process, on the reservation saved before: nothing to start
	// or say, and the socket is set again.
	var again providers.Reservation
	if err := json.Unmarshal(saved, &again); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	start = time.Now()
	if err := dp.ProvideDocker(ctx, &again, []string{fog}, nil, &out); err != nil || out.Len() > 0 {
		t.Errorf("second ProvideDocker: %v, said %q; want nothing", err, out.String())
	}
	t.Logf("finding it answering: %v", time.Since(start))
	if s := again.Hosts[0][0].DockerSocket; s != netns.DockerHostSocket {
		t.Errorf("second ProvideDocker: %s: socket %q", fog, s)
	}

	pool := transport.NewPool(transport.PoolOptions{})
	defer pool.Close()
	h, daemon, err := containers.Connect(ctx, fog, containers.PoolDialer(pool, *res.Hosts[0][0].SSH), res.Hosts[0][0].DockerSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if daemon.OS != "linux" || daemon.Version == "" {
		t.Errorf("daemon %+v", daemon)
	}
	// edge has no daemon, and does not see fog's in its own /root.
	if _, _, err := containers.Connect(ctx, edge, containers.PoolDialer(pool, *res.Hosts[1][0].SSH), netns.DockerHostSocket); err == nil {
		t.Errorf("%s: a Docker Engine answers at %s", edge, netns.DockerHostSocket)
	}

	// A container left running: Release stops it with its daemon.
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.LoadImage(ctx, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("%d", 600000+os.Getpid()%1000)
	if _, err := h.Start(ctx, containers.Spec{Name: "left", Image: ref, Entrypoint: []string{"sleep"}, Cmd: []string{marker}, Experiment: "test"}); err != nil {
		t.Fatal(err)
	}
	sleeps := awaitPids("sleep " + marker)
	if len(sleeps) != 1 {
		t.Fatalf("the container's sleep: pids %v, want one", sleeps)
	}
	cgroup := pidsCgroup(sleeps[0])
	if !strings.HasPrefix(cgroup, "e2c-") {
		t.Errorf("container's cgroup %q, want it below an e2c- parent", cgroup)
	}
	// The lab's own view of the daemon: already running.
	var lab netns.Lab
	if err := json.Unmarshal(res.State, &lab); err != nil {
		t.Fatal(err)
	}
	d, started, err := lab.Docker(ctx, lab.Hosts()[0])
	if err != nil || started || d.HostSocket != netns.DockerHostSocket {
		t.Fatalf("Lab.Docker: %+v, started %v, %v", d, started, err)
	}
	if !slices.ContainsFunc(pidsNaming(filepath.Dir(filepath.Dir(d.Socket))+"/"), func(pid int) bool {
		return strings.Contains(cmdline(pid), "containerd-shim")
	}) {
		t.Errorf("no containerd-shim naming the exec root of %s", d.Socket)
	}
	h.Close()
	pool.Close()

	out.Reset()
	start = time.Now()
	if err := p.Release(context.Background(), &again, &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("releasing the lab with a container running: %v", time.Since(start))
	if out.Len() > 0 {
		t.Errorf("Release had to kill:\n%s", out.String())
	}
	// The daemon's exec root, which containerd and its shims name, is
	// the socket's grandparent, RUN/host/docker.sock.
	run := filepath.Dir(filepath.Dir(d.Socket))
	for _, s := range []string{"sleep " + marker, run + "/", req.StateDir} {
		if pids := pidsNaming(s); len(pids) > 0 {
			t.Errorf("processes naming %s left: %v", s, pids)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	data := netns.DockerDataDir(req.Experiment + "@" + req.StateDir) // images and containers' layers
	for _, s := range []string{req.StateDir, run, data} {
		if bytes.Contains(mounts, []byte(s)) {
			t.Errorf("mounts of %s left:\n%s", s, mounts)
		}
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("data directory %s left: %v", data, err)
	}
	if cg, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", cgroup)); len(cg) > 0 {
		t.Errorf("cgroups left: %v", cg)
	}
	if _, err := os.Stat(req.StateDir); !os.IsNotExist(err) {
		t.Errorf("state directory left: %v", err)
	}
}

// pidsNaming lists the processes whose command line contains s.
func pidsNaming(s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid == os.Getpid() {
			continue
		}
		if strings.Contains(cmdline(pid), s) && syscall.Kill(pid, 0) == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// awaitPids is pidsNaming once a process names s, or after 5 s: a
// started container's runc init execs its command a moment after the
// start returns.
func awaitPids(s string) []int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := pidsNaming(s)
		if len(pids) > 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
}

// pidsCgroup is the top cgroup of process pid in the pids hierarchy.
func pidsCgroup(pid int) string {
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	for _, l := range strings.Split(string(cg), "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && f[1] == "pids" {
			return strings.Split(strings.TrimPrefix(f[2], "/"), "/")[0]
		}
	}
	return ""
}

// TestCleanupAfterDockerCrash kills a host's dockerd, as a crash would,
// while its container runs, in a lab in 10.239.61.0/24: Cleanup, from the
// lab's name alone, kills the container and the shim left behind and
// removes the daemon's mounts, cgroups and files.
func TestCleanupAfterDockerCrash(t *testing.T) {
	if err := netns.Preflight(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if err := netns.CheckDocker(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	archive, ref := dockerdtest.Image(t, "mosquitto")
	name := fmt.Sprintf("test-docker-crash-%d", os.Getpid())
	t.Cleanup(func() { netns.Cleanup(context.Background(), name) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stateDir := filepath.Join(t.TempDir(), "lab")
	lab, err := netns.Create(ctx, netns.Options{Name: name, Hosts: []string{"a"}, StateDir: stateDir,
		Subnet: netip.MustParsePrefix("10.239.61.0/24"), Subnet6: netip.MustParsePrefix("fd00:e2c:a:ef3d::/64")})
	if err != nil {
		t.Fatal(err)
	}
	a := lab.Hosts()[0]
	d, started, err := lab.Docker(ctx, a)
	if err != nil || !started {
		t.Fatalf("Docker: %v, started %v", err, started)
	}
	pool := transport.NewPool(transport.PoolOptions{})
	defer pool.Close()
	e := transport.Endpoint{Host: a.Address4.String(), User: "root", KeyFiles: []string{lab.KeyFile()}, KnownHosts: lab.KnownHostsFile()}
	h, _, err := containers.Connect(ctx, a.Name, containers.PoolDialer(pool, e), d.HostSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.LoadImage(ctx, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("%d", 610000+os.Getpid()%1000)
	if _, err := h.Start(ctx, containers.Spec{Name: "left", Image: ref, Entrypoint: []string{"sleep"}, Cmd: []string{marker}, Experiment: "test"}); err != nil {
		t.Fatal(err)
	}
	sleeps := awaitPids("sleep " + marker)
	if len(sleeps) != 1 {
		t.Fatalf("the container's sleep: pids %v, want one", sleeps)
	}
	cgroup := pidsCgroup(sleeps[0])
	h.Close()
	pool.Close()

	// The daemon dies; its container and shim stay.
	for _, pid := range pidsNaming("--host unix://" + d.Socket) {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	run := filepath.Dir(filepath.Dir(d.Socket))
	shims := slices.DeleteFunc(pidsNaming(run+"/"), func(pid int) bool { return !strings.Contains(cmdline(pid), "containerd-shim") })
	if len(pidsNaming("sleep "+marker)) != 1 || len(shims) == 0 {
		t.Fatalf("after killing dockerd, want its container and shim running; got %v and %v", pidsNaming("sleep "+marker), shims)
	}

	if err := netns.Cleanup(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"sleep " + marker, run + "/", stateDir} {
		if pids := pidsNaming(s); len(pids) > 0 {
			t.Errorf("processes naming %s left: %v", s, pids)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{stateDir, run} {
		if bytes.Contains(mounts, []byte(s)) {
			t.Errorf("mounts of %s left:\n%s", s, mounts)
		}
	}
	if cg, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", cgroup)); cgroup == "" || len(cg) > 0 {
		t.Errorf("cgroups left: %v", cg)
	}
	for _, p := range []string{run, stateDir} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", p, err)
		}
	}
}
