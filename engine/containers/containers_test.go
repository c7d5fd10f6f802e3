package containers_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/containers"
	"github.com/e2c-dev/e2c/engine/containers/dockerdtest"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers/netns"
)

// The labs of these tests live in 10.237.0.0/16.
const labSubnet = "10.237.1.0/24"

// newLab starts the emulated hosts fog and edge, removed when the test ends.
func newLab(t testing.TB) *netns.Lab {
	t.Helper()
	if err := netns.Preflight(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	name := fmt.Sprintf("containers-%s-%d", t.Name(), os.Getpid())
	t.Cleanup(func() {
		if err := netns.Cleanup(context.Background(), name); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lab, err := netns.Create(ctx, netns.Options{
		Name: name, Hosts: []string{"fog", "edge"},
		Subnet: netip.MustParsePrefix(labSubnet), StateDir: filepath.Join(t.TempDir(), "lab"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return lab
}

func endpoint(lab *netns.Lab, h netns.Host) transport.Endpoint {
	return transport.Endpoint{Host: h.Address4.String(), User: "root",
		KeyFiles: []string{lab.KeyFile()}, KnownHosts: lab.KnownHostsFile()}
}

// readArchive is the one image of a docker save archive.
func readArchive(t testing.TB, archive string) containers.ArchiveImage {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	imgs, err := containers.ReadArchive(f)
	if err != nil || len(imgs) != 1 {
		t.Fatalf("%s: %v, %v", archive, imgs, err)
	}
	return imgs[0]
}

// mqttConnect opens an MQTT 3.1.1 session over c and returns the broker's
// CONNACK (0x20 0x02 flags code).
func mqttConnect(c net.Conn) ([]byte, error) {
	const id = "e2c-test"
	pkt := []byte{0x10, byte(10 + 2 + len(id)), 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 30, 0, byte(len(id))}
	pkt = append(pkt, id...)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(pkt); err != nil {
		return nil, err
	}
	ack := make([]byte, 4)
	_, err := io.ReadFull(c, ack)
	return ack, err
}

// docker runs Debian's docker CLI against the daemon, to do what e2c must
// not: make a container without e2c's label.
func docker(t testing.TB, d *dockerdtest.Daemon, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("docker", append([]string{"--host", "unix://" + d.Socket}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return strings.TrimSpace(string(out))
}

// TestLifecycle runs e2c's client over the real sshd of an emulated host
// against the dockerd of that host: the image is loaded, mosquitto started
// in network mode host, reached from the other host, its log read, and
// everything removed. One lab and daemon serve the subtests, in turn.
func TestLifecycle(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("skipping: no docker CLI (docker.io) to make a container e2c did not")
	}
	archive, ref := dockerdtest.Image(t, "mosquitto")
	lab := newLab(t)
	fog, edge := lab.Hosts()[0], lab.Hosts()[1]
	d := dockerdtest.Start(t, lab, fog)
	pool := transport.NewPool(transport.PoolOptions{})
	t.Cleanup(func() { pool.Close() })
	ctx := context.Background()

	h, daemon, err := containers.Connect(ctx, "fog", containers.PoolDialer(pool, endpoint(lab, fog)), d.HostSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if daemon.Arch != runtime.GOARCH || daemon.OS != "linux" || daemon.Version == "" || daemon.APIVersion == "" {
		t.Fatalf("daemon %+v, want linux/%s with versions", daemon, runtime.GOARCH)
	}

	t.Run("no daemon", func(t *testing.T) {
		// edge runs sshd but no dockerd, and does not see fog's socket:
		// the error names the host and the socket, and suggests causes.
		_, _, err := containers.Connect(ctx, "edge", containers.PoolDialer(pool, endpoint(lab, edge)), d.HostSocket)
		if !errors.Is(err, containers.ErrNoDaemon) || !strings.Contains(err.Error(), "docker on edge: ") ||
			!strings.Contains(err.Error(), "forwarding "+d.HostSocket+" over ssh") || !strings.Contains(err.Error(), "is Docker running") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("load", func(t *testing.T) {
		if img, err := h.Image(ctx, ref); err != nil || img != nil {
			t.Fatalf("before loading: %+v, %v; want not there", img, err)
		}
		f, err := os.Open(archive)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		start := time.Now()
		loaded, err := h.LoadImage(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(archive); err == nil {
			took := time.Since(start)
			t.Logf("loaded %d MB over ssh in %v (%.0f MB/s)", fi.Size()>>20, took.Round(time.Millisecond), float64(fi.Size())/(1<<20)/took.Seconds())
		}
		if len(loaded) != 1 || loaded[0] != ref {
			t.Errorf("loaded %q, want [%s]", loaded, ref)
		}
		img, err := h.Image(ctx, ref)
		if err != nil || img == nil {
			t.Fatalf("after loading: %v, %v", img, err)
		}
		// The ID read from the archive without a daemon is the daemon's.
		if want := readArchive(t, archive); img.ID != want.ID || img.Arch != runtime.GOARCH {
			t.Errorf("image %+v, want ID %s, arch %s", img, want.ID, runtime.GOARCH)
		}
		if _, err := h.LoadImage(ctx, strings.NewReader("not a tar")); err == nil {
			t.Error("loading garbage: no error")
		}
	})

	t.Run("ensure", func(t *testing.T) {
		img := readArchive(t, archive)
		fi, err := os.Stat(archive)
		if err != nil {
			t.Fatal(err)
		}
		opened := 0
		open := func() (io.ReadCloser, error) { opened++; return os.Open(archive) }
		ensure := func(img containers.ArchiveImage) (sent, shown int64, err error) {
			sent, err = h.EnsureImage(ctx, img, open, func(n int64) { shown = n })
			return sent, shown, err
		}
		// Present: nothing sent, the archive not even opened.
		if sent, _, err := ensure(img); err != nil || sent != 0 || opened != 0 {
			t.Fatalf("present: sent %d, opened %d, %v", sent, opened, err)
		}
		docker(t, d, "rmi", ref)
		sent, shown, err := ensure(img)
		if err != nil || sent != fi.Size() || shown != sent || opened != 1 {
			t.Fatalf("missing: sent %d (progress said %d) of %d, opened %d, %v", sent, shown, fi.Size(), opened, err)
		}
		if sent, _, err := ensure(img); err != nil || sent != 0 {
			t.Fatalf("sent again: %d, %v", sent, err)
		}
		// An archive without the image asked for is an error once sent.
		other := containers.ArchiveImage{ID: "sha256:" + strings.Repeat("0", 64), Tags: []string{"e2c-test/none:1"}}
		if _, _, err := ensure(other); err == nil || !strings.Contains(err.Error(), "the archive sent does not hold it") {
			t.Fatalf("wrong archive: %v", err)
		}
	})

	foreign := docker(t, d, "create", "--name", "by-hand", ref)

	t.Run("mosquitto", func(t *testing.T) {
		bind := t.TempDir() // on this machine: dockerd shares its mounts
		if err := os.WriteFile(filepath.Join(bind, "marker"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		id, err := h.Start(ctx, containers.Spec{
			Name: "broker", Image: ref, Experiment: "exp-a",
			Env:   map[string]string{"E2C_TEST": "it is set"},
			Binds: []string{bind + ":/e2c-bind:ro"},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Remove(context.Background(), id, time.Second) })
		// The command sees the environment, the bind mount, and fog's
		// interfaces only.
		if err := h.WaitReady(ctx, id, containers.Ready{Timeout: 20 * time.Second,
			Exec: []string{"sh", "-c", `test "$E2C_TEST" = "it is set" && test -f /e2c-bind/marker && test "$(echo $(ls /sys/class/net))" = "eth0 lo"`}}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := h.WaitReady(ctx, id, containers.Ready{Port: 1883, Timeout: 20 * time.Second}); err != nil {
			t.Fatal(err)
		}
		t.Logf("port 1883 ready %v after the exec check", time.Since(start).Round(time.Millisecond))

		// Network mode host: the broker listens on fog's own address,
		// which edge reaches over the lab's bridge.
		ec, err := pool.SSHClient(ctx, endpoint(lab, edge))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := ec.DialContext(ctx, "tcp", net.JoinHostPort(fog.Address4.String(), "1883"))
		if err != nil {
			t.Fatalf("edge cannot reach fog:1883: %v", err)
		}
		ack, err := mqttConnect(conn)
		conn.Close()
		if err != nil || !bytes.Equal(ack, []byte{0x20, 2, 0, 0}) {
			t.Fatalf("CONNACK % x, %v; want 20 02 00 00", ack, err)
		}

		list, err := h.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].ID != id || list[0].Name != "broker" || list[0].State != "running" || list[0].Experiment != "exp-a" {
			t.Errorf("listed %+v, want only broker, running, of exp-a (not by-hand)", list)
		}
		if l, _ := h.List(ctx, "exp-b"); len(l) != 0 {
			t.Errorf("exp-b lists %+v", l)
		}

		// The broker's log shows edge's connection, by edge's address.
		var logs bytes.Buffer
		if err := h.Logs(ctx, id, &logs); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"mosquitto version", "New client connected from " + edge.Address4.String()} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, logs.String())
			}
		}

		if err := h.Remove(ctx, id, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := h.Remove(ctx, id, 5*time.Second); err != nil {
			t.Errorf("removing again: %v", err)
		}
		if l, err := h.List(ctx, ""); err != nil || len(l) != 0 {
			t.Errorf("after remove: %+v, %v", l, err)
		}
	})

	t.Run("not ready", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			cmd   []string
			ready containers.Ready
			want  []string
		}{
			{"timeout", []string{"sleep", "60"}, containers.Ready{Port: 1, Timeout: time.Second},
				[]string{"not-ready-timeout not ready after 1s"}},
			{"early exit", []string{"sh", "-c", "echo it went wrong >&2; exit 3"}, containers.Ready{Port: 1883, Timeout: 20 * time.Second},
				[]string{"not-ready-early-exit not ready: it exited (code 3)", "last log lines:\nit went wrong"}},
			{"command fails", []string{"sleep", "60"}, containers.Ready{Exec: []string{"false"}, Timeout: time.Second},
				[]string{"not ready after 1s"}},
			// No check: running is ready, but one that exits at once is not.
			{"exits at once", []string{"sh", "-c", "echo bad config >&2; exit 1"}, containers.Ready{Timeout: 20 * time.Second},
				[]string{"not-ready-exits-at-once not ready: it exited (code 1)", "bad config"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				name := "not-ready-" + strings.ReplaceAll(tc.name, " ", "-")
				id, err := h.Start(ctx, containers.Spec{Name: name, Image: ref, Cmd: tc.cmd, Experiment: "exp-a"})
				if err != nil {
					t.Fatal(err)
				}
				defer h.Remove(ctx, id, 0)
				err = h.WaitReady(ctx, id, tc.ready)
				if !errors.Is(err, containers.ErrNotReady) {
					t.Fatalf("got %v, want ErrNotReady", err)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
			})
		}
	})

	t.Run("running is ready without a check", func(t *testing.T) {
		id, err := h.Start(ctx, containers.Spec{Name: "runs", Image: ref, Cmd: []string{"sleep", "60"}, Experiment: "exp-a"})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Remove(ctx, id, 0)
		if err := h.WaitReady(ctx, id, containers.Ready{Timeout: 10 * time.Second}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("network none", func(t *testing.T) {
		id, err := h.Start(ctx, containers.Spec{Name: "alone", Image: ref, Cmd: []string{"sleep", "60"}, Network: "none", Experiment: "exp-a"})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Remove(ctx, id, 0)
		if err := h.WaitReady(ctx, id, containers.Ready{Timeout: 10 * time.Second,
			Exec: []string{"sh", "-c", `test "$(ls /sys/class/net)" = lo`}}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("start fails", func(t *testing.T) {
		_, err := h.Start(ctx, containers.Spec{Name: "no-such-command", Image: ref, Cmd: []string{"/nonexistent"}, Experiment: "exp-a"})
		if err == nil || !strings.Contains(err.Error(), "docker on fog: starting container no-such-command") {
			t.Fatalf("got %v", err)
		}
		_, err = h.Start(ctx, containers.Spec{Name: "by-hand", Image: ref, Experiment: "exp-a"})
		if err == nil || !strings.Contains(err.Error(), "creating container by-hand") {
			t.Fatalf("name taken: got %v", err)
		}
		if l, err := h.List(ctx, ""); err != nil || len(l) != 0 {
			t.Errorf("a failed start left %+v, %v", l, err)
		}
	})

	// The container made by hand is still there: e2c never touched it.
	if got := docker(t, d, "inspect", "--format", "{{.Id}}", "by-hand"); got != foreign {
		t.Errorf("by-hand is %q, want %q", got, foreign)
	}
}

// BenchmarkEnsureImage sends the test image over a host's SSH connection to
// its dockerd: cold (the host lacks it) and warm (it holds it: nothing is
// sent).
func BenchmarkEnsureImage(b *testing.B) {
	if _, err := exec.LookPath("docker"); err != nil {
		b.Skip("skipping: no docker CLI (docker.io) to remove the image between rounds")
	}
	archive, ref := dockerdtest.Image(b, "mosquitto")
	lab := newLab(b)
	fog := lab.Hosts()[0]
	d := dockerdtest.Start(b, lab, fog)
	pool := transport.NewPool(transport.PoolOptions{})
	b.Cleanup(func() { pool.Close() })
	ctx := context.Background()
	h, _, err := containers.Connect(ctx, "fog", containers.PoolDialer(pool, endpoint(lab, fog)), d.HostSocket)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	img := readArchive(b, archive)
	open := func() (io.ReadCloser, error) { return os.Open(archive) }
	fi, err := os.Stat(archive)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("cold", func(b *testing.B) {
		b.SetBytes(fi.Size())
		for b.Loop() {
			b.StopTimer()
			if im, _ := h.Image(ctx, ref); im != nil {
				docker(b, d, "rmi", ref)
			}
			b.StartTimer()
			if sent, err := h.EnsureImage(ctx, img, open, nil); err != nil || sent != fi.Size() {
				b.Fatalf("sent %d of %d: %v", sent, fi.Size(), err)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		for b.Loop() {
			if sent, err := h.EnsureImage(ctx, img, open, nil); err != nil || sent != 0 {
				b.Fatalf("sent %d: %v", sent, err)
			}
		}
	})
}

// TestZookeeper starts Debian's ZooKeeper in fog's dockerd and asks it srvr
// from edge, as the Kafka definition's zookeeper container must answer.
func TestZookeeper(t *testing.T) {
	archive, ref := dockerdtest.Image(t, "zookeeper")
	lab := newLab(t)
	fog, edge := lab.Hosts()[0], lab.Hosts()[1]
	d := dockerdtest.Start(t, lab, fog)
	pool := transport.NewPool(transport.PoolOptions{})
	t.Cleanup(func() { pool.Close() })
	ctx := context.Background()
	h, _, err := containers.Connect(ctx, "fog", containers.PoolDialer(pool, endpoint(lab, fog)), d.HostSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.EnsureImage(ctx, readArchive(t, archive), func() (io.ReadCloser, error) { return os.Open(archive) }, nil); err != nil {
		t.Fatal(err)
	}
	id, err := h.Start(ctx, containers.Spec{Name: "zookeeper", Image: ref, Experiment: "exp-zk"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Remove(ctx, id, 5*time.Second)
	start := time.Now()
	// As the built-in kafka definition checks it: its port opens before it
	// serves requests.
	if err := h.WaitReady(ctx, id, containers.Ready{Timeout: 90 * time.Second,
		Exec: []string{"bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/2181 && echo srvr >&3 && grep -q Mode: <&3"}}); err != nil {
		t.Fatal(err)
	}
	t.Logf("zookeeper ready in %v", time.Since(start).Round(time.Millisecond))

	ec, err := pool.SSHClient(ctx, endpoint(lab, edge))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ec.DialContext(ctx, "tcp", net.JoinHostPort(fog.Address4.String(), "2181"))
	if err != nil {
		t.Fatalf("edge cannot reach fog:2181: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("srvr")); err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Zookeeper version: 3.", "Mode: standalone"} {
		if !strings.Contains(string(answer), want) {
			t.Errorf("srvr answer lacks %q:\n%s", want, answer)
		}
	}
	var logs bytes.Buffer
	if err := h.Logs(ctx, id, &logs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "2181") {
		t.Errorf("log does not mention port 2181:\n%s", logs.String())
	}
}
