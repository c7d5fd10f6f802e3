package netns

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/fanout"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshdPath is where Debian's openssh-server puts sshd; sshd insists on
// being started by absolute path.
const sshdPath = "/usr/sbin/sshd"

// How many hosts are set up at once. Setting a host up is a handful of
// short processes, so on a machine with two CPUs this gains little (64
// hosts: 4.8 s one at a time, 4.2 s sixteen at a time); bigger machines
// gain more.
const workers = 16

// sshdTimeout bounds the wait for every sshd to accept connections.
const sshdTimeout = 15 * time.Second

// Create builds the lab o describes and returns once every host's sshd
// accepts connections. On failure it destroys whatever it created.
func Create(ctx context.Context, o Options) (*Lab, error) {
	if err := Preflight(); err != nil {
		return nil, err
	}
	if _, err := newRecord(o); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	// The lock makes the checks for leftovers and overlapping subnets hold
	// until the bridge owns its addresses, even with concurrent Creates.
	unlock, err := lock()
	if err != nil {
		return nil, err
	}
	r, err := freeRecord(ctx, o)
	if err != nil {
		unlock()
		return nil, err
	}
	l := &Lab{rec: *r}
	if _, err := os.Stat(r.StateDir); errors.Is(err, fs.ErrNotExist) {
		l.rec.OwnsStateDir = true
	}
	if o.Journal != nil {
		if err := o.Journal(l); err != nil {
			unlock()
			return nil, fmt.Errorf("netns: recording the lab before creating it: %w", err)
		}
	}
	err = l.writeFiles()
	if err == nil {
		err = l.createBridge(ctx)
	}
	unlock()
	if err == nil {
		err = l.createHosts(ctx, l.rec.Hosts)
	}
	if err != nil {
		if derr := l.Destroy(context.WithoutCancel(ctx)); derr != nil {
			err = fmt.Errorf("%w (and cleaning up failed: %v)", err, derr)
		}
		return nil, err
	}
	return l, nil
}

// freeRecord is the record of lab o if its name is free and its subnets
// overlap no route of the machine. A lab given no subnet takes the first of
// 10.231.0.0/16 to 10.254.0.0/16 that is free, so that several labs (the
// emulated twins of two scenarios) live side by side.
func freeRecord(ctx context.Context, o Options) (*record, error) {
	r, err := newRecord(o)
	if err != nil {
		return nil, err
	}
	nss, err := namespaces(r.prefix())
	if err != nil {
		return nil, err
	}
	links, err := links(ctx, r.prefix())
	if err != nil {
		return nil, err
	}
	if len(nss) > 0 || len(links) > 0 {
		return nil, fmt.Errorf("netns: lab %q already exists or left namespaces or links behind (%s); destroy it or run netns.Cleanup(%q)",
			r.Name, strings.Join(append(nss, links...), ", "), r.Name)
	}
	rt4, err := routes(ctx, false)
	if err != nil {
		return nil, err
	}
	rt6, err := routes(ctx, true)
	if err != nil {
		return nil, err
	}
	return chooseSubnet(o, rt4, rt6)
}

// chooseSubnet is the record of lab o whose subnets overlap none of the
// routes, picking the subnet if o has none.
func chooseSubnet(o Options, rt4, rt6 []route) (*record, error) {
	overlap := func(r *record) error {
		if err := checkOverlap(r.Subnet, rt4); err != nil {
			return err
		}
		return checkOverlap(r.Subnet6, rt6)
	}
	r, err := newRecord(o)
	if err != nil {
		return nil, err
	}
	first := overlap(r)
	if first == nil || o.Subnet.IsValid() {
		return r, first
	}
	for b := DefaultSubnet.Addr().As4()[1] + 1; b <= 254; b++ {
		o.Subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, b, 0, 0}), 16)
		if r, err := newRecord(o); err == nil && overlap(r) == nil {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w, and so do 10.232.0.0/16 to 10.254.0.0/16: set a subnet", first)
}

// writeFiles writes the keys, sshd configs and host directories, and the
// record, before anything exists on the system, so that a crash at any
// later point leaves a record Cleanup can use.
func (l *Lab) writeFiles() error {
	r := &l.rec
	if err := os.MkdirAll(r.StateDir, 0o700); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	if err := l.writeRecord(); err != nil {
		return err
	}
	pub, priv, err := newKey(r.Name + "-controller")
	if err != nil {
		return err
	}
	// Private keys are the only secrets.
	if err := writeFile(l.KeyFile(), priv, 0o600); err != nil {
		return err
	}
	for _, f := range []string{l.KeyFile() + ".pub", r.stateFile("authorized_keys")} {
		if err := writeFile(f, ssh.MarshalAuthorizedKey(pub), 0o644); err != nil {
			return err
		}
	}
	for _, h := range r.Hosts {
		if err := l.writeHost(h); err != nil {
			return err
		}
	}
	if err := l.writeShared(); err != nil {
		return err
	}
	// The directory sshds see the state through; see viewDir.
	if err := os.MkdirAll(r.viewDir(), 0o700); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	return nil
}

// writeRecord writes the lab's record, in its state and where Cleanup
// finds it from the name alone.
func (l *Lab) writeRecord() error {
	rec, err := json.MarshalIndent(&l.rec, "", "  ")
	if err != nil {
		return err
	}
	for _, f := range []string{l.rec.stateFile("lab.json"), l.rec.runRecord()} {
		if err := writeFile(f, rec, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeHost writes the files of host h: its directories, host key, sshd
// configuration, network and mounts.
func (l *Lab) writeHost(h Host) error {
	dir := l.rec.hostDir(h.Name)
	for _, d := range []string{"tmp", "opt", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("netns: %w", err)
		}
	}
	// A /tmp anyone can write to, as on a real host.
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o777|os.ModeSticky); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	_, key, err := newKey(h.Name)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "ssh_host_ed25519_key"), key, 0o600); err != nil {
		return err
	}
	for name, data := range map[string]string{"sshd_config": l.sshdConfig(h), "net": l.netConfig(h), "fstab": l.fstab(h)} {
		if err := writeFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeShared writes the files that name every host: each host's
// /etc/hosts, rewritten in place so that the hosts' bind mounts see the
// change, and the machine's known_hosts, from each host's key.
func (l *Lab) writeShared() error {
	r := &l.rec
	var known, etcHosts bytes.Buffer
	etcHosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, h := range r.Hosts {
		fmt.Fprintf(&etcHosts, "%s\t%s\n%s\t%s\n", h.Address4, h.Name, h.Address6, h.Name)
	}
	for _, h := range r.Hosts {
		dir := r.hostDir(h.Name)
		key, err := os.ReadFile(filepath.Join(dir, "ssh_host_ed25519_key"))
		if err != nil {
			return fmt.Errorf("netns: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(key)
		if err != nil {
			return fmt.Errorf("netns: host key of %s: %w", h.Name, err)
		}
		known.WriteString(knownhosts.Line([]string{h.Address4.String(), h.Address6.String(), h.Name}, signer.PublicKey()) + "\n")
		// Readable by every user of the host.
		if err := writeFile(filepath.Join(dir, "etc_hosts"), etcHosts.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return writeFile(l.KnownHostsFile(), known.Bytes(), 0o644)
}

func writeFile(path string, data []byte, perm os.FileMode) error {
	if err := os.WriteFile(path, data, perm); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	return nil
}

// newKey makes an ed25519 key pair, the private key in OpenSSH's format.
func newKey(comment string) (ssh.PublicKey, []byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, nil, err
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return spub, pem.EncodeToMemory(block), nil
}

// sshdConfig is the configuration of h's sshd. Its paths are seen through
// viewDir, since the sshd's /tmp and /opt may hide the state directory.
// Limits are raised because e2c opens many sessions at once. DOCKER_HOST
// points every session's docker CLI at the host's own dockerd, as
// /var/run/docker.sock does on a real machine (a workflow's `docker exec
// leader ...`).
func (l *Lab) sshdConfig(h Host) string {
	r := &l.rec
	return fmt.Sprintf(`# Written by e2c for host %s of the netns lab %q.
ListenAddress %s:22
ListenAddress [%s]:22
HostKey %s
PidFile %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
MaxStartups 100
MaxSessions 64
Subsystem sftp internal-sftp
SetEnv DOCKER_HOST=unix://%s
`, h.Name, r.Name, h.Address4, h.Address6,
		r.viewFile("hosts", h.Name, "ssh_host_ed25519_key"),
		r.viewFile("hosts", h.Name, "sshd.pid"),
		r.viewFile("authorized_keys"), DockerHostSocket)
}

// createBridge makes the bridge, gives it the first address of each
// subnet, and adds every namespace and veth pair. It is one batch, since
// ip netns add is not safe to run concurrently.
func (l *Lab) createBridge(ctx context.Context) error {
	r := &l.rec
	br := r.bridge()
	b4, b6 := l.Bridge()
	var b strings.Builder
	fmt.Fprintf(&b, "link add %s type bridge stp_state 0 forward_delay 0\n", br)
	fmt.Fprintf(&b, "addr add %s/%d dev %s\n", b4, r.Subnet.Bits(), br)
	fmt.Fprintf(&b, "addr add %s/%d dev %s nodad\n", b6, r.Subnet6.Bits(), br)
	fmt.Fprintf(&b, "link set %s up\n", br)
	b.WriteString(r.addHosts(r.Hosts))
	if _, err := run(ctx, b.String(), "ip", "-batch", "-"); err != nil {
		return err
	}
	// Hosts have a default route to the bridge, for programs that want
	// one; the machine must never forward their packets elsewhere, even
	// if it forwards for others.
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+br+"/forwarding", []byte("0\n"), 0o644); err != nil {
		return fmt.Errorf("netns: turning forwarding off on %s: %w", br, err)
	}
	return nil
}

// addHosts is the ip batch that adds the namespaces of hosts, each joined
// to the bridge by a veth pair.
func (r *record) addHosts(hosts []Host) string {
	var b strings.Builder
	for _, h := range hosts {
		fmt.Fprintf(&b, "netns add %s\n", h.Namespace)
		fmt.Fprintf(&b, "link add %s type veth peer name eth0 netns %s\n", r.veth(h), h.Namespace)
		fmt.Fprintf(&b, "link set %s master %s up\n", r.veth(h), r.bridge())
	}
	return b.String()
}

// createHosts configures the namespaces of hosts and starts their sshds,
// several hosts at a time, then waits until every sshd accepts
// connections.
func (l *Lab) createHosts(ctx context.Context, hosts []Host) error {
	if err := os.MkdirAll("/opt", 0o755); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	// sshd refuses to start without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	return errors.Join(fanout.Each(ctx, len(hosts), workers, func(ctx context.Context, i int) error {
		h := hosts[i]
		if err := l.startHost(ctx, h); err != nil {
			return err
		}
		return l.waitSSHD(ctx, h)
	})...)
}

// startHost starts h's sshd in h's network namespace and in a mount
// namespace of its own, where the files written for h configure its
// network and replace /tmp, /opt, /root and /etc/hosts, and in a UTS namespace
// where its hostname is its name. sshd daemonises, so no e2c process
// needs to outlive Create. It is one chain of exec'd processes per host
// because, on small machines, starting processes is most of the cost.
func (l *Lab) startHost(ctx context.Context, h Host) error {
	r := &l.rec
	// The state directory is bound to viewDir first, while its path is
	// still reachable: it may itself be under /tmp.
	const script = `set -e
mount --bind "$1" "$2"
ip -batch "$2/hosts/$3/net"
mount --all --fstab "$2/hosts/$3/fstab"
echo "$3" >/proc/sys/kernel/hostname
exec "$4" -f "$2/hosts/$3/sshd_config" -E "$2/hosts/$3/sshd.log"
`
	_, err := run(ctx, "", "ip", "netns", "exec", h.Namespace,
		"unshare", "--mount", "--uts", "--propagation", "private",
		"sh", "-c", script, "sh", r.StateDir, r.viewDir(), h.Name, sshdPath)
	if err != nil {
		return fmt.Errorf("host %s: starting sshd: %w%s", h.Name, err, l.sshdLog(h))
	}
	return nil
}

// netConfig is the ip batch that sets up h's namespace. The default route
// is for programs that expect one; the machine does not forward.
func (l *Lab) netConfig(h Host) string {
	r := &l.rec
	b4, _ := l.Bridge()
	return fmt.Sprintf(`link set lo up
addr add %s/%d dev eth0
addr add %s/%d dev eth0 nodad
link set eth0 up
route add default via %s
`, h.Address4, r.Subnet.Bits(), h.Address6, r.Subnet6.Bits(), b4)
}

// fstab lists h's bind mounts, from viewDir, whose path has no spaces.
func (l *Lab) fstab(h Host) string {
	// Root's home too: scenarios use paths relative to it, and two hosts
	// sharing one would overwrite each other's files.
	mounts := [][2]string{{"opt", "/opt"}, {"tmp", "/tmp"}, {"root", "/root"}}
	// A bind mount needs its target: a machine without /etc/hosts keeps
	// none in its hosts either.
	if _, err := os.Stat("/etc/hosts"); err == nil {
		mounts = append(mounts, [2]string{"etc_hosts", "/etc/hosts"})
	}
	var b strings.Builder
	for _, m := range mounts {
		fmt.Fprintf(&b, "%s %s none bind 0 0\n", l.rec.viewFile("hosts", h.Name, m[0]), m[1])
	}
	return b.String()
}

// waitSSHD waits until h's sshd accepts TCP connections from the machine.
func (l *Lab) waitSSHD(parent context.Context, h Host) error {
	ctx, cancel := context.WithTimeout(parent, sshdTimeout)
	defer cancel()
	addr := net.JoinHostPort(h.Address4.String(), "22")
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return fmt.Errorf("host %s: waiting for sshd: %w", h.Name, parent.Err())
			}
			return fmt.Errorf("host %s: sshd does not accept connections at %s: %v%s", h.Name, addr, err, l.sshdLog(h))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sshdLog returns the end of h's sshd log, to explain a failure.
func (l *Lab) sshdLog(h Host) string {
	data, err := os.ReadFile(filepath.Join(l.rec.hostDir(h.Name), "sshd.log"))
	if err != nil || len(bytes.TrimSpace(data)) == 0 {
		return ""
	}
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return "\nsshd log:\n" + strings.TrimSpace(string(data))
}

// run runs a command, feeding it stdin, and returns its output; its error
// includes what the command printed.
func run(ctx context.Context, stdin, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// A daemon keeping the output pipes open must not hang us.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		msg := strings.TrimSpace(errb.String() + "\n" + out.String())
		if msg != "" {
			msg = ": " + msg
		}
		return nil, fmt.Errorf("netns: %s %s: %w%s", name, strings.Join(args, " "), err, msg)
	}
	return out.Bytes(), nil
}
