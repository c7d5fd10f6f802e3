package services_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/arch"
	"github.com/e2c-dev/e2c/engine/containers"
	"github.com/e2c-dev/e2c/engine/containers/dockerdtest"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/services"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers/netns"
)

// TestStart runs the services step's containers against a real dockerd in
// an emulated host, reached over its sshd: one lab and daemon serve the
// subtests, in turn.
func TestStart(t *testing.T) {
	if err := netns.Preflight(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	archive, ref := dockerdtest.Image(t, "mosquitto")
	name := fmt.Sprintf("services-%d", os.Getpid())
	t.Cleanup(func() {
		if err := netns.Cleanup(context.Background(), name); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	ctx := context.Background()
	lab, err := netns.Create(ctx, netns.Options{Name: name, Hosts: []string{"fog"},
		Subnet: netip.MustParsePrefix("10.237.51.0/24"), StateDir: filepath.Join(t.TempDir(), "lab")})
	if err != nil {
		t.Fatal(err)
	}
	fog := lab.Hosts()[0]
	d := dockerdtest.Start(t, lab, fog)
	pool := transport.NewPool(transport.PoolOptions{})
	t.Cleanup(func() { pool.Close() })
	e := transport.Endpoint{Host: fog.Address4.String(), User: "root", KeyFiles: []string{lab.KeyFile()}, KnownHosts: lab.KnownHostsFile()}
	reach := func(host string) (containers.Dialer, string, error) {
		if host != "fog" {
			return nil, "", fmt.Errorf("no host %s", host)
		}
		return containers.PoolDialer(pool, e), d.HostSocket, nil
	}
	const exp = "exp-services"
	t.Cleanup(func() { services.Remove(context.Background(), []string{"fog"}, reach, exp) })

	broker := func(name string, port int, timeout string, command ...string) *plan.Container {
		return &plan.Container{Name: name, Key: "fog.testbroker.1", Archive: archive, Command: command,
			NetworkMode: "host", Readiness: plan.Readiness{Port: port, Timeout: timeout}}
	}
	start := func(cs ...*plan.Container) ([]services.Record, string, error) {
		var out strings.Builder
		p := &plan.Plan{Hosts: []*plan.Host{{Machine: plan.Machine{Name: "fog"}, Containers: cs}}}
		recs, err := services.Start(ctx, p, reach, services.Options{Experiment: exp, Out: &out})
		return recs, out.String(), err
	}

	st, err := os.Stat(archive)
	if err != nil {
		t.Fatal(err)
	}
	size := st.Size()

	t.Run("progress of an image sent: bytes, hosts done of those lacking it", func(t *testing.T) {
		// fog and its alias fog2 both lack the image when it is looked
		// for, so it is sent twice, at once, to the same daemon.
		reach2 := func(host string) (containers.Dialer, string, error) { return reach(strings.TrimSuffix(host, "2")) }
		idle := func(name string) []*plan.Container {
			return []*plan.Container{{Name: name, Key: name + ".a.1", Archive: archive, Command: []string{"sleep", "600"}, NetworkMode: "none"}}
		}
		p := &plan.Plan{Hosts: []*plan.Host{{Machine: plan.Machine{Name: "fog"}, Containers: idle("one")}, {Machine: plan.Machine{Name: "fog2"}, Containers: idle("two")}}}
		var out strings.Builder
		_, err := services.Start(ctx, p, reach2, services.Options{Experiment: exp, Out: &out})
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		for _, want := range []string{
			fmt.Sprintf("services: image %s: ", ref),
			", 1 of 2 hosts done\n",
			fmt.Sprintf("services: image %s: %d bytes sent, 2 of 2 hosts done\n", ref, 2*size),
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("no %q in\n%s", want, out.String())
			}
		}
		if _, err := services.Remove(ctx, []string{"fog"}, reach, exp); err != nil {
			t.Fatal(err)
		}
		removeImage(t, d.Socket, readArchiveID(t, archive)) // for the next subtest to send it again
	})

	t.Run("kept, then replaced when its definition changes", func(t *testing.T) {
		c := broker("broker", 1883, "30s")
		first, out, err := start(c)
		if err != nil || len(first) != 1 || first[0].Kept || first[0].State != "running" || first[0].Ready == nil {
			t.Fatalf("first start: %+v, %v\n%s", first, err, out)
		}
		if want := fmt.Sprintf("services: image %s: %d bytes sent, 1 of 1 hosts done\n", ref, size); !strings.Contains(out, want) {
			t.Errorf("the first start did not send the image: no %q in\n%s", want, out)
		}
		again, out, err := start(c)
		if err != nil || len(again) != 1 || !again[0].Kept || again[0].ID != first[0].ID {
			t.Fatalf("second start: %+v, %v\n%s", again, err, out)
		}
		if strings.Contains(out, "sent") {
			t.Errorf("the image was sent again:\n%s", out)
		}
		changed := broker("broker", 1883, "30s")
		changed.Env = map[string]string{"E2C_CHANGED": "1"}
		third, out, err := start(changed)
		if err != nil || len(third) != 1 || third[0].Kept || third[0].ID == first[0].ID || third[0].State != "running" {
			t.Fatalf("start of a changed definition: %+v, %v\n%s", third, err, out)
		}
		if !strings.Contains(out, "replacing container broker (its definition changed)") {
			t.Errorf("output:\n%s", out)
		}
		if n, err := services.Remove(ctx, []string{"fog"}, reach, exp); err != nil || n != 1 {
			t.Fatalf("remove: %d, %v", n, err)
		}
	})

	t.Run("replaced when its archive is rebuilt, the definition unchanged", func(t *testing.T) {
		rebuilt := filepath.Join(t.TempDir(), "broker.tar")
		dockerdtest.PlaceImage(t, archive, rebuilt)
		c := broker("rebuilt", 1883, "30s")
		c.Archive = rebuilt
		first, out, err := start(c)
		if err != nil || len(first) != 1 {
			t.Fatalf("first start: %+v, %v\n%s", first, err, out)
		}
		// The same tag, the same path, another image.
		os.Remove(rebuilt)
		dockerdtest.Derive(t, archive, rebuilt, ref, func(cfg map[string]any) {
			cfg["config"].(map[string]any)["Labels"] = map[string]string{"rebuilt": "1"}
		})
		again, out, err := start(c)
		if err != nil || len(again) != 1 || again[0].Kept || again[0].ID == first[0].ID {
			t.Fatalf("start after the rebuild: %+v, %v\n%s", again, err, out)
		}
		if !strings.Contains(out, "replacing container rebuilt (its image changed)") {
			t.Errorf("output:\n%s", out)
		}
		if _, err := services.Remove(ctx, []string{"fog"}, reach, exp); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("an early exit fails with its log, and the next container is not started", func(t *testing.T) {
		bad := broker("early", 1883, "30s", "sh", "-c", "echo broken configuration >&2; exit 3")
		next := broker("next", 1884, "30s")
		recs, _, err := start(bad, next)
		if err == nil || !strings.Contains(err.Error(), "fog: ") || !strings.Contains(err.Error(), "container early") ||
			!strings.Contains(err.Error(), "exited (code 3)") || !strings.Contains(err.Error(), "broken configuration") {
			t.Fatalf("got %v", err)
		}
		if len(recs) != 2 || recs[0].State != "exited" || recs[0].Error == "" || recs[0].Ready != nil || recs[1].ID != "" {
			t.Fatalf("records %+v", recs)
		}
		dir := t.TempDir()
		if err := services.Logs(ctx, recs, reach, dir); err != nil {
			t.Fatal(err)
		}
		if log, err := os.ReadFile(filepath.Join(dir, "services", "fog", "early.log")); err != nil || string(log) != "broken configuration\n" {
			t.Errorf("early.log: %q, %v", log, err)
		}
	})

	t.Run("a readiness timeout", func(t *testing.T) {
		start0 := time.Now()
		recs, _, err := start(broker("deaf", 1999, "2s", "sleep", "600"))
		if err == nil || !strings.Contains(err.Error(), "container deaf not ready after 2s") {
			t.Fatalf("got %v", err)
		}
		if len(recs) != 1 || recs[0].State != "running" || recs[0].Ready != nil {
			t.Fatalf("records %+v", recs)
		}
		if el := time.Since(start0); el < 2*time.Second {
			t.Errorf("failed after %v, before its timeout", el)
		}
	})

	t.Run("interrupted while waiting: the container is removed", func(t *testing.T) {
		p := &plan.Plan{Hosts: []*plan.Host{{Machine: plan.Machine{Name: "fog"}, Containers: []*plan.Container{broker("cut", 1998, "60s", "sleep", "600")}}}}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		recs, err := services.Start(cctx, p, reach, services.Options{Experiment: exp})
		if !errors.Is(err, context.DeadlineExceeded) || len(recs) != 1 || recs[0].ID != "" {
			t.Fatalf("got %+v, %v", recs, err)
		}
		h, _, err := containers.Connect(ctx, "fog", containers.PoolDialer(pool, e), d.HostSocket)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		all, err := h.List(ctx, exp)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range all {
			if c.Name == "cut" {
				t.Errorf("the interrupted container is still there: %+v", c)
			}
		}
	})

	t.Run("a host out of reach: nothing starts anywhere", func(t *testing.T) {
		p := &plan.Plan{Hosts: []*plan.Host{
			{Machine: plan.Machine{Name: "fog"}, Containers: []*plan.Container{broker("unstarted", 1883, "30s")}},
			{Machine: plan.Machine{Name: "ghost"}, Containers: []*plan.Container{broker("unreached", 1883, "30s")}},
		}}
		recs, err := services.Start(ctx, p, reach, services.Options{Experiment: exp})
		if err == nil || !strings.Contains(err.Error(), "nothing started: ghost: no host ghost") {
			t.Fatalf("got %v", err)
		}
		if len(recs) != 2 || recs[0].ID != "" || recs[1].ID != "" {
			t.Fatalf("records %+v", recs)
		}
	})

	t.Run("images of another architecture: every problem of every host, nothing started", func(t *testing.T) {
		other, arm := "arm64", "arm"
		if runtime.GOARCH == "arm64" || runtime.GOARCH == "arm" {
			other, arm = "amd64", "386"
		}
		p := &plan.Plan{Hosts: []*plan.Host{
			{Machine: plan.Machine{Name: "fog"}, Containers: []*plan.Container{
				{Name: "broker64", Key: "fog.a.1", Archive: withArch(t, archive, other, ""), NetworkMode: "host"},
				{Name: "broker32", Key: "fog.b.1", Archive: withArch(t, archive, arm, "v7"), NetworkMode: "host"},
			}},
			{Machine: plan.Machine{Name: "ghost"}, Containers: []*plan.Container{broker("unreached", 1883, "30s")}},
		}}
		var out strings.Builder
		recs, err := services.Start(ctx, p, reach, services.Options{Experiment: exp, Out: &out})
		host := arch.Of(runtime.GOARCH)
		for _, want := range []string{
			"nothing started: ",
			"host fog is " + host + ", image " + ref + " (container broker64) is " + other + " only",
			"host fog is " + host + ", image " + ref + " (container broker32) is " + arm + "/v7 only",
			"ghost: no host ghost",
		} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v\nwant %q", err, want)
			}
		}
		if len(recs) != 3 || recs[0].ID != "" || recs[1].ID != "" || strings.Contains(out.String(), "sent") {
			t.Fatalf("records %+v\n%s", recs, out.String())
		}
	})

	t.Run("an image by name the host lacks, and no Docker Engine on this machine: the host pulls it", func(t *testing.T) {
		t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-docker.sock"))
		c := &plan.Container{Name: "pulled", Image: "e2c-test/absent:1", NetworkMode: "host", Readiness: plan.Readiness{Timeout: "5s"}}
		_, out, err := start(c)
		if !strings.Contains(out, "services: image e2c-test/absent:1: no Docker Engine on this machine (") ||
			!strings.Contains(out, "): the hosts lacking it pull it from its registry themselves: fog\n") {
			t.Errorf("output:\n%s", out)
		}
		// No registry is reachable here: the pull fails with the
		// daemon's own message, naming the host.
		if err == nil || !strings.Contains(err.Error(), "fog: image e2c-test/absent:1: docker on fog: pulling e2c-test/absent:1: ") {
			t.Fatalf("got %v", err)
		}
		t.Logf("the host's pull: %v", err)
	})

	t.Run("remove leaves other experiments' containers", func(t *testing.T) {
		h, _, err := containers.Connect(ctx, "fog", containers.PoolDialer(pool, e), d.HostSocket)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		other, err := h.Start(ctx, containers.Spec{Name: "other", Image: readArchiveID(t, archive), Cmd: []string{"sleep", "600"}, Network: "none", Experiment: "exp-other"})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Remove(ctx, other, 0)
		if _, err := services.Remove(ctx, []string{"fog"}, reach, exp); err != nil {
			t.Fatal(err)
		}
		all, err := h.List(ctx, "")
		if err != nil || len(all) != 1 || all[0].ID != other {
			t.Fatalf("after remove: %+v, %v", all, err)
		}
	})
}

// withArch derives from archive an image whose config says arch and
// variant, with its tag: only that label is read before an image is sent,
// so it stands in for an image built for another machine.
func withArch(t *testing.T, archive, arch, variant string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), arch+variant+".tar")
	tag := readArchiveTag(t, archive)
	dockerdtest.Derive(t, archive, path, tag, func(cfg map[string]any) {
		cfg["architecture"], cfg["variant"] = arch, variant
	})
	return path
}

// removeImage removes image id from the daemon at socket.
func removeImage(t *testing.T, socket, id string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	req, err := http.NewRequest(http.MethodDelete, "http://docker/images/"+id+"?force=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("removing image %s: %s: %s", id, res.Status, body)
	}
}

func readArchiveID(t *testing.T, archive string) string { return readArchive(t, archive).ID }

func readArchiveTag(t *testing.T, archive string) string { return readArchive(t, archive).Tags[0] }

// readArchive reads the one image of archive.
func readArchive(t *testing.T, archive string) containers.ArchiveImage {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	imgs, err := containers.ReadArchive(f)
	if err != nil || len(imgs) != 1 || len(imgs[0].Tags) == 0 {
		t.Fatalf("%s: %v, %v", archive, imgs, err)
	}
	return imgs[0]
}

// TestImages gets images given by name from this machine's Docker Engine:
// here the dockerd of lab host ctl, which DOCKER_HOST names and which holds
// the test image, as a researcher's laptop would. Host far lacks it, host
// bare has no dockerd, and host small keeps its images on a 64 MiB tmpfs.
func TestImages(t *testing.T) {
	if err := netns.Preflight(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	archive, ref := dockerdtest.Image(t, "mosquitto")
	ctx := context.Background()
	newLab := func(name, subnet string, hosts ...string) *netns.Lab {
		t.Cleanup(func() {
			if err := netns.Cleanup(context.Background(), name); err != nil {
				t.Errorf("lab cleanup: %v", err)
			}
		})
		lab, err := netns.Create(ctx, netns.Options{Name: name, Hosts: hosts, Subnet: netip.MustParsePrefix(subnet), StateDir: filepath.Join(t.TempDir(), "lab")})
		if err != nil {
			t.Fatal(err)
		}
		return lab
	}
	lab := newLab(fmt.Sprintf("images-%d", os.Getpid()), "10.237.60.0/24", "ctl", "far", "bare")
	// The data folder of small's lab's daemons is the tmpfs, mounted
	// before the lab is made, so that small's sshd, whose mount namespace
	// copies this machine's, sees it too.
	smallName := fmt.Sprintf("images-small-%d", os.Getpid())
	small := netns.DockerDataDir(smallName)
	if err := os.MkdirAll(small, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=64m,mode=0700"); err != nil {
		t.Skipf("skipping: mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(small, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", small, err)
		}
		os.Remove(small)
	})
	smallLab := newLab(smallName, "10.237.61.0/24", "small")

	pool := transport.NewPool(transport.PoolOptions{})
	t.Cleanup(func() { pool.Close() })
	type hostOf struct {
		lab  *netns.Lab
		host netns.Host
		d    *dockerdtest.Daemon
	}
	hosts := map[string]hostOf{}
	for _, l := range []*netns.Lab{lab, smallLab} {
		for _, h := range l.Hosts() {
			hosts[h.Name] = hostOf{lab: l, host: h}
		}
	}
	for _, name := range []string{"ctl", "far", "small"} {
		h := hosts[name]
		h.d = dockerdtest.Start(t, h.lab, h.host)
		hosts[name] = h
	}
	reach := func(name string) (containers.Dialer, string, error) {
		h, ok := hosts[name]
		if !ok {
			return nil, "", fmt.Errorf("no host %s", name)
		}
		socket := "/root/.e2c-docker/docker.sock" // where bare would have one
		if h.d != nil {
			socket = h.d.HostSocket
		}
		e := transport.Endpoint{Host: h.host.Address4.String(), User: "root", KeyFiles: []string{h.lab.KeyFile()}, KnownHosts: h.lab.KnownHostsFile()}
		return containers.PoolDialer(pool, e), socket, nil
	}
	const exp = "exp-images"
	t.Cleanup(func() { services.Remove(context.Background(), []string{"far", "small"}, reach, exp) })

	// This machine's engine is ctl's, holding the test image by its name.
	t.Setenv("DOCKER_HOST", "unix://"+hosts["ctl"].d.Socket)
	local, _, err := containers.Local(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := local.LoadImage(ctx, f); err != nil {
		t.Fatal(err)
	}
	held, err := local.Image(ctx, ref)
	if err != nil || held == nil {
		t.Fatalf("the controller's image: %+v, %v", held, err)
	}

	idle := func(host, name, image string) *plan.Plan {
		return &plan.Plan{Hosts: []*plan.Host{{Machine: plan.Machine{Name: host}, Containers: []*plan.Container{
			{Name: name, Key: host + ".a.1", Image: image, Command: []string{"sleep", "600"}, NetworkMode: "none"}}}}}
	}
	start := func(p *plan.Plan) ([]services.Record, string, error) {
		var out strings.Builder
		recs, err := services.Start(ctx, p, reach, services.Options{Experiment: exp, Out: &out})
		return recs, out.String(), err
	}
	temps := func() []string {
		m, _ := filepath.Glob(filepath.Join(os.TempDir(), "e2c-image-*.tar"))
		return m
	}

	t.Run("an image by name a host lacks is sent from this machine's engine, once", func(t *testing.T) {
		before := temps()
		recs, out, err := start(idle("far", "idle", ref))
		if err != nil || len(recs) != 1 || recs[0].State != "running" || recs[0].ImageID != held.ID {
			t.Fatalf("%+v, %v\n%s", recs, err, out)
		}
		if !strings.Contains(out, fmt.Sprintf("services: image %s: ", ref)) || !strings.Contains(out, " bytes sent, 1 of 1 hosts done\n") {
			t.Errorf("no progress of the image sent in\n%s", out)
		}
		if strings.Contains(out, "pulling") {
			t.Errorf("pulled an image this machine holds:\n%s", out)
		}
		t.Logf("first start:\n%s", out)
		if got := temps(); len(got) != len(before) {
			t.Errorf("temporary files left: %v, before %v", got, before)
		}
		recs, out, err = start(idle("far", "idle", ref))
		if err != nil || len(recs) != 1 || !recs[0].Kept {
			t.Fatalf("second start: %+v, %v\n%s", recs, err, out)
		}
		if strings.Contains(out, "sent") {
			t.Errorf("sent again:\n%s", out)
		}
	})

	t.Run("an image absent from this machine's engine: its pull fails with the registry's message", func(t *testing.T) {
		recs, out, err := start(idle("far", "absent", "e2c-test/absent:1"))
		for _, want := range []string{"nothing started: ", "image e2c-test/absent:1, needed by far: docker on this machine: pulling e2c-test/absent:1: "} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v\nwant %q", err, want)
			}
		}
		if !strings.Contains(out, "services: image e2c-test/absent:1: pulling it on this machine\n") || len(recs) != 1 || recs[0].ID != "" {
			t.Errorf("%+v\n%s", recs, out)
		}
		t.Logf("the pull: %v", err)
	})

	t.Run("a host short of space and a host without Docker: both said, nothing sent", func(t *testing.T) {
		p := idle("small", "big", ref)
		p.Hosts = append(p.Hosts, idle("bare", "none", ref).Hosts...)
		recs, out, err := start(p)
		for _, want := range []string{
			"nothing started: ",
			"no Docker Engine answers on bare: install and start Docker Engine there, or set `docker: install` in their testbed's block",
			"host small has ",
			" MiB free in " + small + "/",
			fmt.Sprintf(" MiB to receive %s (loading unpacks an image beside its archive)", ref),
		} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v\nwant %q", err, want)
			}
		}
		t.Logf("preflight: %v", err)
		if strings.Contains(out, "sent") || len(recs) != 2 || recs[0].ID != "" {
			t.Errorf("%+v\n%s", recs, out)
		}
		dial, socket, _ := reach("small")
		h, _, err := containers.Connect(ctx, "small", dial, socket)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if img, err := h.Image(ctx, ref); err != nil || img != nil {
			t.Errorf("small holds %+v, %v", img, err)
		}
	})
}
