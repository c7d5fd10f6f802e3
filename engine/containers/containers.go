// Package containers runs containers on a host's Docker Engine, reached
// through the Engine API over the host's SSH connection: the daemon's unix
// socket is forwarded by sshd (direct-streamlocal), so a host needs no open
// Docker port, no TLS setup and no Docker CLI, and e2c reads typed answers
// instead of parsing command output.
//
// Every container it creates carries the label [Label], so that e2c can list
// and remove exactly the containers it started and never one started by
// hand.
package containers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"golang.org/x/crypto/ssh"

	"github.com/e2c-dev/e2c/engine/transport"
)

// Label is set on every container e2c creates; its value is the
// experiment's name given in Spec.Experiment.
const Label = "dev.e2c.experiment"

// DefaultSocket is where Docker Engine listens on a host by default.
const DefaultSocket = "/var/run/docker.sock"

// ErrNoDaemon is wrapped by Connect's error when the host's SSH
// connection works but nothing answers on the daemon's socket.
var ErrNoDaemon = errors.New("no Docker Engine answers")

// Dialer returns the SSH connection to a host. It is asked again for each
// new stream to the daemon, so that a connection replaced after a break is
// used; it must not hand out a connection the caller should close.
type Dialer func(ctx context.Context) (*ssh.Client, error)

// PoolDialer is the Dialer of e's connection in pool.
func PoolDialer(pool *transport.Pool, e transport.Endpoint) Dialer {
	return func(ctx context.Context) (*ssh.Client, error) { return pool.SSHClient(ctx, e) }
}

// Host is the Docker Engine of one host. Safe for concurrent use.
type Host struct {
	name   string // for messages
	socket string
	dial   Dialer
	cli    *client.Client
}

// Daemon says what a host's Docker Engine is.
type Daemon struct {
	Version    string // e.g. 20.10.24+dfsg1
	APIVersion string // the API version both sides speak, e.g. 1.41
	OS         string // linux
	Arch       string // as Go and OCI images name it: amd64, arm64, arm
}

// Connect reaches the Docker Engine listening on socket ("" for
// DefaultSocket) on host through dial, and checks that it answers: the
// API version is negotiated here, so a daemon too old for the client
// (below API 1.40, Docker 19.03) is an error now rather than later. name
// is the host's name in messages.
func Connect(ctx context.Context, name string, dial Dialer, socket string) (*Host, *Daemon, error) {
	if socket == "" {
		socket = DefaultSocket
	}
	h := &Host{name: name, socket: socket, dial: dial}
	d, err := h.open(ctx,
		// The host part of the URL is never dialled: every connection
		// is a stream forwarded to socket.
		client.WithHost("http://docker"),
		client.WithDialContext(h.dialSocket),
	)
	if err != nil {
		return nil, nil, err
	}
	return h, d, nil
}

// open makes h's client with opts and asks the daemon who it is.
func (h *Host) open(ctx context.Context, opts ...client.Opt) (*Daemon, error) {
	cli, err := client.New(opts...)
	if err != nil {
		return nil, h.errorf("%w", err)
	}
	h.cli = cli
	d, err := h.ping(ctx)
	if err != nil {
		cli.Close()
		return nil, err
	}
	return d, nil
}

// dialSocket opens a stream to the daemon's socket through sshd.
func (h *Host) dialSocket(ctx context.Context, _, _ string) (net.Conn, error) {
	c, err := h.dial(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := c.DialContext(ctx, "unix", h.socket)
	if err != nil {
		// sshd says only "open failed": name what it could not open.
		return nil, fmt.Errorf("%w: forwarding %s over ssh: %w (is Docker running, and does sshd allow stream forwarding?)", ErrNoDaemon, h.socket, err)
	}
	return conn, nil
}

func (h *Host) errorf(format string, a ...any) error {
	return fmt.Errorf("docker on %s: "+format, append([]any{h.name}, a...)...)
}

// Close closes the client's idle streams; the SSH connection stays, since
// the Dialer's owner holds it.
func (h *Host) Close() error { return h.cli.Close() }

func (h *Host) ping(ctx context.Context) (*Daemon, error) {
	p, err := h.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		return nil, h.errorf("%w", err)
	}
	v, err := h.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return nil, h.errorf("%w", err)
	}
	return &Daemon{Version: v.Version, APIVersion: p.APIVersion, OS: v.Os, Arch: v.Arch}, nil
}

// LoadImage streams a `docker save` archive to the daemon, which keeps
// every image in it, and returns the names the daemon says it loaded. An
// archive the daemon refuses is an error with the daemon's message. If
// archive is an io.Closer it is closed (the HTTP client closes what it sent).
func (h *Host) LoadImage(ctx context.Context, archive io.Reader) ([]string, error) {
	res, err := h.cli.ImageLoad(ctx, archive)
	if err != nil {
		return nil, h.errorf("loading an image: %w", err)
	}
	defer res.Close()
	var loaded []string
	dec := json.NewDecoder(res)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, h.errorf("loading an image: reading the daemon's answer: %w", err)
		}
		if m.Error != nil {
			return nil, h.errorf("loading an image: %s", m.Error.Message)
		}
		for _, prefix := range []string{"Loaded image: ", "Loaded image ID: "} {
			if s, ok := strings.CutPrefix(strings.TrimSpace(m.Stream), prefix); ok {
				loaded = append(loaded, s)
			}
		}
	}
	if len(loaded) == 0 {
		return nil, h.errorf("loading an image: the daemon loaded nothing (is it a docker save archive?)")
	}
	return loaded, nil
}

// Image is what a host holds of an image.
type Image struct {
	ID      string // the digest of its config (sha256:...), equal on every host that holds the same image
	Arch    string
	Variant string
	Size    int64 // bytes its layers take unpacked
}

// Image tells whether the host holds ref (name:tag or ID); nil, nil means
// it does not.
func (h *Host) Image(ctx context.Context, ref string) (*Image, error) {
	res, err := h.cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, h.errorf("image %s: %w", ref, err)
	}
	return &Image{ID: res.ID, Arch: res.Architecture, Variant: res.Variant, Size: res.Size}, nil
}

// Pull makes the daemon pull ref from its registry. A failure is the
// daemon's or the registry's own message.
func (h *Host) Pull(ctx context.Context, ref string) error {
	res, err := h.cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return h.errorf("pulling %s: %w", ref, err)
	}
	defer res.Close()
	for m, err := range res.JSONMessages(ctx) {
		if err != nil {
			return h.errorf("pulling %s: %w", ref, err)
		}
		if m.Error != nil {
			return h.errorf("pulling %s: %s", ref, m.Error.Message)
		}
	}
	return nil
}

// Save writes the `docker save` archive of ref to w as the daemon streams
// it, and returns its size.
func (h *Host) Save(ctx context.Context, ref string, w io.Writer) (int64, error) {
	res, err := h.cli.ImageSave(ctx, []string{ref})
	if err != nil {
		return 0, h.errorf("saving %s: %w", ref, err)
	}
	defer res.Close()
	n, err := io.Copy(w, res)
	if err != nil {
		return n, h.errorf("saving %s: %w", ref, err)
	}
	return n, nil
}

// EnsureImage makes the host hold img under all its tags, sending the
// archive open gives (which holds img, see ReadArchive) only if the host
// lacks it: a host holding img's ID under every tag is sent nothing. It
// returns the bytes sent; progress, if not nil, is given the bytes sent so
// far as they go, from the goroutine of the HTTP client that sends them.
func (h *Host) EnsureImage(ctx context.Context, img ArchiveImage, open func() (io.ReadCloser, error), progress func(sent int64)) (int64, error) {
	if ok, err := h.Holds(ctx, img); err != nil || ok {
		return 0, err
	}
	rc, err := open()
	if err != nil {
		return 0, h.errorf("image %s: %w", img.ID, err)
	}
	cr := &countingReader{r: rc, progress: progress}
	_, err = h.LoadImage(ctx, cr)
	rc.Close()
	sent := cr.n.Load()
	if err != nil {
		return sent, err
	}
	if ok, err := h.Holds(ctx, img); err != nil || !ok {
		if err == nil {
			err = h.errorf("image %s %v: the archive sent does not hold it", img.ID, img.Tags)
		}
		return sent, err
	}
	return sent, nil
}

// Holds tells whether the host has img's ID under each of its tags: one
// that does is sent nothing by EnsureImage.
func (h *Host) Holds(ctx context.Context, img ArchiveImage) (bool, error) {
	for _, ref := range append([]string{img.ID}, img.Tags...) {
		got, err := h.Image(ctx, ref)
		if err != nil || got == nil || got.ID != img.ID {
			return false, err
		}
	}
	return true, nil
}

// countingReader counts what is read through it (by the HTTP client's
// goroutine, hence atomic).
type countingReader struct {
	r        io.Reader
	n        atomic.Int64
	progress func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	total := c.n.Add(int64(n))
	if n > 0 && c.progress != nil {
		c.progress(total)
	}
	return n, err
}

// Spec is a container to start.
type Spec struct {
	Name       string            // the container's name, which workflows address (docker exec NAME)
	Image      string            // name:tag or ID, already on the host
	Entrypoint []string          // nil: the image's own entrypoint
	Cmd        []string          // nil: the image's own command
	Env        map[string]string // given in name order
	Binds      []string          // host-path:container-path[:ro], as docker run -v
	Network    string            // network mode: "" is host, as in E2Clab, where the container's ports are the host's; "none" has only loopback
	Ports      []Port            // published in network mode bridge (in host mode the container's ports are the host's)
	Experiment string            // the value of Label
	Labels     map[string]string // more labels, such as what the container was made from
}

// Port is a container's port published on its host's, in network mode
// bridge.
type Port struct {
	Host, Container int
	Protocol        string // tcp or udp
}

// published gives the exposed ports and bindings of ports, on every
// address of the host.
func published(ports []Port) (network.PortSet, network.PortMap, error) {
	if len(ports) == 0 {
		return nil, nil, nil
	}
	set, bindings := network.PortSet{}, network.PortMap{}
	for _, p := range ports {
		port, err := network.ParsePort(fmt.Sprintf("%d/%s", p.Container, p.Protocol))
		if err != nil {
			return nil, nil, err
		}
		set[port] = struct{}{}
		bindings[port] = append(bindings[port], network.PortBinding{HostPort: strconv.Itoa(p.Host)})
	}
	return set, bindings, nil
}

// Start creates and starts the container s, labelled with the experiment.
// A container of the same name already on the host is an error (the caller
// decides whether to remove it). If it cannot be started, the created
// container is removed again, so that a failed Start leaves nothing; if ctx
// ends while the daemon creates it, it may exist, and List finds it by its
// label.
func (h *Host) Start(ctx context.Context, s Spec) (string, error) {
	if s.Experiment == "" {
		return "", h.errorf("container %s: no experiment to label it with", s.Name)
	}
	mode := s.Network
	if mode == "" {
		mode = "host"
	}
	cfg := &container.Config{
		Image:      s.Image,
		Entrypoint: s.Entrypoint,
		Cmd:        s.Cmd,
		Labels:     map[string]string{},
	}
	for k, v := range s.Labels {
		cfg.Labels[k] = v
	}
	cfg.Labels[Label] = s.Experiment
	for _, k := range sortedKeys(s.Env) {
		cfg.Env = append(cfg.Env, k+"="+s.Env[k])
	}
	hc := &container.HostConfig{NetworkMode: container.NetworkMode(mode), Binds: s.Binds}
	if mode == "bridge" {
		var err error
		if cfg.ExposedPorts, hc.PortBindings, err = published(s.Ports); err != nil {
			return "", h.errorf("container %s: %w", s.Name, err)
		}
	}
	c, err := h.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: s.Name, Config: cfg, HostConfig: hc})
	if err != nil {
		return "", h.errorf("creating container %s: %w", s.Name, err)
	}
	if _, err := h.cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		// Removed even when ctx is cancelled: a half-made container
		// must not stay behind.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = h.cli.ContainerRemove(rctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		return "", h.errorf("starting container %s: %w", s.Name, err)
	}
	return c.ID, nil
}

// Ready says when a started container is ready: a TCP port accepting
// connections on the host, or a command in the container exiting 0.
type Ready struct {
	Port    int           // dialled at 127.0.0.1 from the host itself (through its sshd)
	Exec    []string      // run in the container
	Timeout time.Duration // default 60s
}

// ErrNotReady is wrapped by WaitReady's error when the container did not
// become ready in time or exited first.
var ErrNotReady = errors.New("not ready")

// runningFor is how long a container without a readiness check must have
// run to be ready: one that exits at once (a bad configuration) fails.
const runningFor = 500 * time.Millisecond

// WaitReady waits until container id is ready, checking every 250 ms:
// r's port or command answers, or, with neither, it has run for
// runningFor. It fails early, with the container's exit code, if the
// container stops first; a timeout or an early exit gives an error
// wrapping ErrNotReady that ends with the container's last log lines.
func (h *Host) WaitReady(ctx context.Context, id string, r Ready) error {
	if r.Timeout <= 0 {
		r.Timeout = 60 * time.Second
	}
	if r.Port != 0 && len(r.Exec) > 0 {
		return h.errorf("container %s: readiness needs a port or a command, not both", id)
	}
	wctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	shown := id
	for {
		st, err := h.cli.ContainerInspect(wctx, id, client.ContainerInspectOptions{})
		switch {
		case err != nil:
			if wctx.Err() == nil {
				return h.errorf("container %s: %w", id, err)
			}
		case !st.Container.State.Running:
			return h.errorf("container %s %w: it exited (code %d) before it was ready%s",
				name(st.Container.Name, id), ErrNotReady, st.Container.State.ExitCode, h.lastLines(ctx, id))
		case r.Port == 0 && len(r.Exec) == 0:
			shown = name(st.Container.Name, id)
			if started, err := time.Parse(time.RFC3339Nano, st.Container.State.StartedAt); err == nil && time.Since(started) >= runningFor {
				return nil
			}
		default:
			shown = name(st.Container.Name, id)
			if h.isReady(wctx, id, r) {
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return h.errorf("container %s %w after %v%s", shown, ErrNotReady, r.Timeout, h.lastLines(ctx, id))
		}
	}
}

// isReady runs one readiness check.
func (h *Host) isReady(ctx context.Context, id string, r Ready) bool {
	if r.Port != 0 {
		c, err := h.dial(ctx)
		if err != nil {
			return false
		}
		conn, err := c.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)))
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}
	ex, err := h.cli.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: r.Exec})
	if err != nil {
		return false
	}
	if _, err := h.cli.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true}); err != nil {
		return false
	}
	for {
		st, err := h.cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			return false
		}
		if !st.Running {
			return st.ExitCode == 0
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return false
		}
	}
}

// lastLines is the end of a container's log for an error message, or ""
// if there is none.
func (h *Host) lastLines(ctx context.Context, id string) string {
	var b bytes.Buffer
	if err := h.logs(ctx, id, &b, "10"); err != nil || b.Len() == 0 {
		return ""
	}
	return "; its last log lines:\n" + strings.TrimRight(b.String(), "\n")
}

// Logs writes the container's whole log so far, stdout and stderr in the
// order the daemon recorded them per stream, to w.
func (h *Host) Logs(ctx context.Context, id string, w io.Writer) error {
	return h.logs(ctx, id, w, "all")
}

func (h *Host) logs(ctx context.Context, id string, w io.Writer, tail string) error {
	st, err := h.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return h.errorf("logs of %s: %w", id, err)
	}
	rc, err := h.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: tail})
	if err != nil {
		return h.errorf("logs of %s: %w", id, err)
	}
	defer rc.Close()
	if st.Container.Config != nil && st.Container.Config.Tty {
		_, err = io.Copy(w, rc) // one stream, not multiplexed
	} else {
		bw := bufio.NewWriter(w)
		_, err = stdcopy.StdCopy(bw, bw, rc)
		if ferr := bw.Flush(); err == nil {
			err = ferr
		}
	}
	if err != nil {
		return h.errorf("logs of %s: %w", id, err)
	}
	return nil
}

// Remove stops container id (TERM, then KILL after grace) and removes it
// with its anonymous volumes. A container already gone is not an error, so
// Remove can be repeated after a failure.
func (h *Host) Remove(ctx context.Context, id string, grace time.Duration) error {
	secs := int(grace.Round(time.Second) / time.Second)
	_, err := h.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs})
	if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsNotModified(err) {
		return h.errorf("stopping %s: %w", id, err)
	}
	_, err = h.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return h.errorf("removing %s: %w", id, err)
	}
	return nil
}

// Container is one container e2c created.
type Container struct {
	ID         string
	Name       string
	Image      string
	ImageID    string
	State      string // created, running, exited, ...
	Experiment string // its Label
	Labels     map[string]string
}

// List returns the containers carrying Label, running or not, of the
// experiment given, or of every experiment if experiment is "". Containers
// without the label are never listed.
func (h *Host) List(ctx context.Context, experiment string) ([]Container, error) {
	f := client.Filters{}
	if experiment == "" {
		f.Add("label", Label)
	} else {
		f.Add("label", Label+"="+experiment)
	}
	res, err := h.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, h.errorf("listing containers: %w", err)
	}
	var out []Container
	for _, c := range res.Items {
		n := ""
		if len(c.Names) > 0 {
			n = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, Container{ID: c.ID, Name: n, Image: c.Image, ImageID: c.ImageID,
			State: string(c.State), Experiment: c.Labels[Label], Labels: c.Labels})
	}
	slices.SortFunc(out, func(a, b Container) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// name is a container's name for messages, its ID if it has none.
func name(n, id string) string {
	if n = strings.TrimPrefix(n, "/"); n != "" {
		return n
	}
	return id
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
