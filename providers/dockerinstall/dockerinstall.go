// Package dockerinstall gives hosts reached over SSH a Docker Engine where
// their testbed block asks for it (docker: install): Debian's docker.io on
// Debian and Ubuntu, or a testbed's own setup command where the host has
// it. A host whose engine answers is never touched, and without
// docker: install nothing is ever installed.
package dockerinstall

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/e2c-dev/e2c/engine/containers"
	"github.com/e2c-dev/e2c/engine/fanout"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/schema"
	"github.com/e2c-dev/e2c/schema/suggest"
)

// The values of a testbed block's docker key.
const (
	Use     = "use"     // the default: use the engine already there, install nothing
	Install = "install" // install and start Docker Engine where none answers
)

var modes = []string{Install, Use}

// Check checks the docker key of the testbed block n, whose value is v
// ("" when absent); testbed names the block in the message.
func Check(n schema.Node, testbed, v string) error {
	if !n.Has("docker") || slices.Contains(modes, v) {
		return nil
	}
	return schema.Errorf(n.At("docker"), "%s.docker: found %q, expected install (install Docker Engine where it is missing) or use (the default: only use a daemon already there)%s",
		testbed, v, suggest.Hint(v, modes))
}

// Options say how Provide gives hosts an engine.
type Options struct {
	// Install allows installing and starting Docker where none answers;
	// false leaves such hosts as they are, for the services preflight to
	// report.
	Install bool
	// Platform, when set, is the path of the testbed's own command that
	// installs and starts Docker, run as the login user with Args where
	// the host has it (Grid'5000's g5k-setup-docker), before any package
	// manager is tried.
	Platform string
	Args     []string
	// Wait bounds the wait for an engine to answer once started (0: 2
	// minutes); Parallel, the hosts served at once (0: 16).
	Wait     time.Duration
	Parallel int
	// Out receives one line per host Docker was installed on.
	Out io.Writer
}

// Provide makes a Docker Engine answer on each of hosts, as o allows. It
// says nothing about hosts whose engine answers, and returns an error
// naming every host it could not serve, with the last lines of what
// failed there.
func Provide(ctx context.Context, hosts []providers.Host, o Options) error {
	if !o.Install {
		return nil // nothing to do: the services preflight reports an engine that does not answer
	}
	if o.Wait <= 0 {
		o.Wait = 2 * time.Minute
	}
	if o.Parallel <= 0 {
		o.Parallel = 16
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	pool := transport.NewPool(transport.PoolOptions{})
	defer pool.Close()
	var outMu sync.Mutex
	errs := fanout.Each(ctx, len(hosts), o.Parallel, func(ctx context.Context, i int) error {
		line, err := provide(ctx, pool, hosts[i], o)
		if err == nil && line != "" {
			outMu.Lock()
			fmt.Fprintf(o.Out, "docker: %s: %s\n", hosts[i].Name, line)
			outMu.Unlock()
		}
		return err
	})
	var lines []string
	for i, err := range errs {
		if err != nil {
			lines = append(lines, fmt.Sprintf("%s: %v", hosts[i].Name, err))
		}
	}
	if len(lines) > 0 {
		return fmt.Errorf("could not give %d of %d hosts a Docker Engine:\n  %s", len(lines), len(hosts), strings.Join(lines, "\n  "))
	}
	return nil
}

// Hosts returns the hosts of r of the given names, in that order.
func Hosts(r *providers.Reservation, names []string) ([]providers.Host, error) {
	byName := map[string]providers.Host{}
	for _, hs := range r.Hosts {
		for _, h := range hs {
			byName[h.Name] = h
		}
	}
	var out []providers.Host
	for _, n := range names {
		h, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("no host %s in the reservation", n)
		}
		out = append(out, h)
	}
	return out, nil
}

// provide serves one host and returns what it did, "" for nothing.
func provide(ctx context.Context, pool *transport.Pool, h providers.Host, o Options) (string, error) {
	if h.SSH == nil {
		return "", errors.New("containers need a host reached over SSH")
	}
	if _, err := answers(ctx, pool, h); err == nil {
		return "", nil
	}
	r, err := pool.Runner(ctx, *h.SSH)
	if err != nil {
		return "", err
	}
	f, err := probe(ctx, r, o.Platform)
	if err != nil {
		return "", err
	}
	steps, err := plan(f, o.Platform, o.Args)
	if err != nil {
		return "", err
	}
	var done []string
	for _, s := range steps {
		if err := runStep(ctx, r, s); err != nil {
			return "", err
		}
		done = append(done, s.what)
	}
	d, err := waitAnswers(ctx, pool, h, o.Wait)
	if err != nil {
		return "", fmt.Errorf("after %s: %w", strings.Join(done, ", "), err)
	}
	return fmt.Sprintf("Docker Engine %s answers (%s)", d.Version, strings.Join(done, ", ")), nil
}

// answers tells whether h's engine answers on its socket.
func answers(ctx context.Context, pool *transport.Pool, h providers.Host) (*containers.Daemon, error) {
	c, d, err := containers.Connect(ctx, h.Name, containers.PoolDialer(pool, *h.SSH), h.DockerSocket)
	if err != nil {
		return nil, err
	}
	c.Close()
	return d, nil
}

// waitAnswers waits up to wait for h's engine to answer.
func waitAnswers(ctx context.Context, pool *transport.Pool, h providers.Host, wait time.Duration) (*containers.Daemon, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		d, err := answers(ctx, pool, h)
		if err == nil {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no Docker Engine answers %v later: %w", wait, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// facts are what plan decides from.
type facts struct {
	osRelease map[string]string // /etc/os-release
	root      bool              // logs in as root
	sudo      bool              // root, or sudo -n works
	systemd   bool              // systemd runs the host
	dockerd   bool              // a dockerd is installed
	platform  bool              // the testbed's own command is there
}

// probeScript prints /etc/os-release and e2c-KEY=yes lines, which no
// os-release has (its keys are upper case).
const probeScript = `
cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null || true
echo
[ "$(id -u)" = 0 ] && echo e2c-root=yes
if [ "$(id -u)" = 0 ] || sudo -n true >/dev/null 2>&1; then echo e2c-sudo=yes; fi
[ -d /run/systemd/system ] && echo e2c-systemd=yes
command -v dockerd >/dev/null 2>&1 && echo e2c-dockerd=yes
[ -n "$E2C_PLATFORM" ] && [ -x "$E2C_PLATFORM" ] && echo e2c-platform=yes
true
`

func probe(ctx context.Context, r transport.Runner, platform string) (facts, error) {
	res, err := r.Run(ctx, transport.Command{Script: probeScript, Env: map[string]string{"E2C_PLATFORM": platform}})
	if err != nil {
		return facts{}, fmt.Errorf("probe: %w", err)
	}
	kv := parseOSRelease(res.Stdout)
	return facts{osRelease: kv, root: kv["e2c-root"] == "yes", sudo: kv["e2c-sudo"] == "yes", systemd: kv["e2c-systemd"] == "yes",
		dockerd: kv["e2c-dockerd"] == "yes", platform: kv["e2c-platform"] == "yes"}, nil
}

// parseOSRelease reads KEY=value lines, with the value quoted or not.
func parseOSRelease(text string) map[string]string {
	kv := map[string]string{}
	for line := range strings.Lines(text) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = strings.NewReplacer(`\"`, `"`, `\$`, `$`, "\\`", "`", `\\`, `\`).Replace(v[1 : len(v)-1])
		}
		kv[k] = v
	}
	return kv
}

// debianLike tells whether os-release names Debian or Ubuntu, or a system
// derived from one (ID_LIKE: Raspberry Pi OS, Mint), whose apt has
// docker.io.
func debianLike(osr map[string]string) bool {
	for _, id := range append([]string{osr["ID"]}, strings.Fields(osr["ID_LIKE"])...) {
		if id == "debian" || id == "ubuntu" {
			return true
		}
	}
	return false
}

// step is one command of an installation.
type step struct {
	what string // for messages: "apt-get install docker.io"
	cmd  transport.Command
}

// aptEnv makes apt and dpkg ask nothing; aptGet waits for a lock held by
// another apt (unattended-upgrades on a fresh board) rather than failing.
var (
	aptEnv = map[string]string{"DEBIAN_FRONTEND": "noninteractive"}
	aptGet = "apt-get -q -o DPkg::Lock::Timeout=300 "
)

// plan is how a host of facts f gets Docker: the platform's command where
// it has it; else, on Debian and Ubuntu, docker.io (unless a dockerd is
// installed already) and starting it, as root.
func plan(f facts, platform string, args []string) ([]step, error) {
	if f.platform {
		line := strings.Join(append([]string{quote(platform)}, args...), " ")
		return []step{{what: strings.Join(append([]string{platform}, args...), " "), cmd: transport.Command{Script: line}}}, nil
	}
	if !debianLike(f.osRelease) {
		id := cmp.Or(f.osRelease["ID"], "unknown: no /etc/os-release")
		return nil, fmt.Errorf("runs %s (ID %s): e2c installs Docker only on Debian and Ubuntu; install Docker Engine there by hand (https://docs.docker.com/engine/install/), or remove docker: install",
			cmp.Or(f.osRelease["PRETTY_NAME"], f.osRelease["NAME"], id), id)
	}
	if !f.sudo {
		return nil, errors.New("installing Docker needs root or passwordless sudo, and `sudo -n true` fails for this user (it needs a password); allow it in /etc/sudoers.d, or install Docker there by hand")
	}
	sudo := !f.root
	var steps []step
	if !f.dockerd {
		steps = append(steps,
			step{"apt-get update", transport.Command{Script: aptGet + "update", Env: aptEnv, Sudo: sudo}},
			step{"apt-get install docker.io", transport.Command{Script: aptGet + "install -y docker.io", Env: aptEnv, Sudo: sudo}})
	}
	start := step{"service docker start", transport.Command{Script: "service docker start", Sudo: sudo}}
	if f.systemd {
		start = step{"systemctl enable --now docker", transport.Command{Script: "systemctl enable --now docker", Sudo: sudo}}
	}
	return append(steps, start), nil
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// lastLines is how much of a failed command's output an error shows.
const lastLines = 8

// runStep runs s, failing with its last output lines.
func runStep(ctx context.Context, r transport.Runner, s step) error {
	var out lockedBuffer
	c := s.cmd
	c.Stdout, c.Stderr = &out, &out
	if _, err := r.Run(ctx, c); err != nil {
		return fmt.Errorf("%s: %w%s", s.what, err, out.last(lastLines))
	}
	return nil
}

// lockedBuffer keeps the last 64 KiB of the output of both streams.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	if n := l.b.Len(); n > 64<<10 {
		l.b.Next(n - 64<<10)
	}
	return len(p), nil
}

// last is the last n lines, indented under the error, or "".
func (l *lockedBuffer) last(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := strings.Split(strings.TrimRight(l.b.String(), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	lines = lines[max(0, len(lines)-n):]
	return "\n    | " + strings.Join(lines, "\n    | ")
}
