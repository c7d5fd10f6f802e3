package transport

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/agent/agenttest"
	"golang.org/x/crypto/ssh"
)

const sshdPath = "/usr/sbin/sshd"

func TestMain(m *testing.M) {
	// Copied to a host as the agent and started there, this binary is one.
	agenttest.BeTheAgent()
	// Tests authenticate with their own keys only.
	os.Unsetenv("SSH_AUTH_SOCK")
	os.Exit(m.Run())
}

// testAgentPath is where these tests put the agent: not AgentPath, which
// other packages' tests, run at the same time, use for their own binary.
const testAgentPath = ".cache/e2c-transport-test/e2c-agent"

// sshdConfig shapes a test sshd.
type sshdConfig struct {
	ports    int  // ports to listen on, default 1: each is a distinct endpoint
	noSFTP   bool // no sftp subsystem, to exercise the shell fallback
	debug    bool // LogLevel DEBUG1, which logs forwarded connections
	hostKeys []string
}

// testSSHD is a real sshd on 127.0.0.1, as root, stopped at cleanup.
type testSSHD struct {
	tb       testing.TB
	cfg      sshdConfig
	dir      string
	ports    []int
	hostKeys []ssh.Signer
	cmd      *exec.Cmd
	log      *syncBuffer
	exited   chan struct{}
}

func requireSSHD(tb testing.TB) {
	tb.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		tb.Skipf("%s missing: install openssh-server to run the SSH tests", sshdPath)
	}
	if os.Geteuid() != 0 {
		tb.Skip("SSH tests start sshd and log in as root: run them as root")
	}
}

// clientKey is the key every test sshd accepts.
var clientKey = sync.OnceValues(func() (ssh.Signer, []byte) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return mustSigner(priv), mustPEM(priv)
})

// clientKeyFile writes the client key for tb and returns its path.
func clientKeyFile(tb testing.TB) string {
	_, pemBytes := clientKey()
	p := filepath.Join(tb.TempDir(), "id_ed25519")
	if err := os.WriteFile(p, pemBytes, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

func mustPEM(priv any) []byte {
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(blk)
}

func mustSigner(priv any) ssh.Signer {
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		panic(err)
	}
	return s
}

func freePort(tb testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startSSHD(tb testing.TB, cfg sshdConfig) *testSSHD {
	tb.Helper()
	requireSSHD(tb)
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation directory
		tb.Fatal(err)
	}
	if cfg.ports == 0 {
		cfg.ports = 1
	}
	if len(cfg.hostKeys) == 0 {
		cfg.hostKeys = []string{"ed25519"}
	}
	s := &testSSHD{tb: tb, cfg: cfg, dir: tb.TempDir()}
	for range cfg.ports {
		s.ports = append(s.ports, freePort(tb))
	}
	signer, _ := clientKey()
	auth := ssh.MarshalAuthorizedKey(signer.PublicKey())
	if err := os.WriteFile(filepath.Join(s.dir, "authorized_keys"), auth, 0o600); err != nil {
		tb.Fatal(err)
	}
	s.newHostKeys()
	s.start()
	tb.Cleanup(s.stop)
	return s
}

// newHostKeys generates fresh host keys, as a reinstalled host would have.
func (s *testSSHD) newHostKeys() {
	s.hostKeys = nil
	for i, typ := range s.cfg.hostKeys {
		var priv any
		switch typ {
		case "ed25519":
			_, priv, _ = ed25519.GenerateKey(rand.Reader)
		case "ecdsa":
			priv, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		default:
			s.tb.Fatalf("host key type %s", typ)
		}
		if err := os.WriteFile(filepath.Join(s.dir, fmt.Sprintf("host_key_%d", i)), mustPEM(priv), 0o600); err != nil {
			s.tb.Fatal(err)
		}
		s.hostKeys = append(s.hostKeys, mustSigner(priv))
	}
}

func (s *testSSHD) start() {
	s.tb.Helper()
	var conf strings.Builder
	for _, p := range s.ports {
		fmt.Fprintf(&conf, "Port %d\n", p)
	}
	conf.WriteString("ListenAddress 127.0.0.1\n")
	for i := range s.hostKeys {
		fmt.Fprintf(&conf, "HostKey %s\n", filepath.Join(s.dir, fmt.Sprintf("host_key_%d", i)))
	}
	fmt.Fprintf(&conf, "AuthorizedKeysFile %s\n", filepath.Join(s.dir, "authorized_keys"))
	conf.WriteString("PermitRootLogin yes\nPubkeyAuthentication yes\nPasswordAuthentication no\n" +
		"KbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\nPidFile none\n" +
		"AllowTcpForwarding yes\nMaxStartups 100\n" +
		// bash sources ~/.bashrc for commands run by sshd unless it thinks it
		// is nested: keep root's dotfiles (pyenv and the like) out of timings.
		"SetEnv SHLVL=9\n")
	if !s.cfg.noSFTP {
		conf.WriteString("Subsystem sftp internal-sftp\n")
	}
	if s.cfg.debug {
		conf.WriteString("LogLevel DEBUG1\n")
	}
	confPath := filepath.Join(s.dir, "sshd_config")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o600); err != nil {
		s.tb.Fatal(err)
	}

	s.cmd = exec.Command(sshdPath, "-D", "-e", "-f", confPath)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so stop ends the connections too
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		s.tb.Fatal(err)
	}
	s.log = &syncBuffer{}
	listening := make(chan struct{})
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		n := 0
		for sc.Scan() {
			s.log.add(sc.Text())
			if strings.Contains(sc.Text(), "Server listening on") {
				if n++; n == len(s.ports) {
					close(listening)
				}
			}
		}
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	select {
	case <-listening:
	case <-s.exited:
		s.tb.Fatalf("sshd exited:\n%s", s.log)
	case <-time.After(10 * time.Second):
		s.tb.Fatalf("sshd did not start:\n%s", s.log)
	}
}

func (s *testSSHD) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	// Connection children call setsid, so they are ended by parent pid.
	_ = exec.Command("pkill", "-KILL", "-P", strconv.Itoa(s.cmd.Process.Pid)).Run()
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
	if s.tb.Failed() {
		s.tb.Logf("sshd log:\n%s", s.log)
	}
}

// restart stops sshd and starts it again on the same ports, with new host
// keys if asked.
func (s *testSSHD) restart(newKeys bool) {
	s.stop()
	if newKeys {
		s.newHostKeys()
	}
	s.start()
}

// accepted counts the logins sshd accepted.
func (s *testSSHD) accepted() int { return s.log.count("Accepted publickey") }

// endpoint returns an endpoint for port (the first one if 0), accepting and
// recording the host key in a per-test file.
func (s *testSSHD) endpoint(tb testing.TB, port int) Endpoint {
	if port == 0 {
		port = s.ports[0]
	}
	return Endpoint{
		Host:       "127.0.0.1",
		Port:       port,
		User:       "root",
		KeyFiles:   []string{clientKeyFile(tb)},
		HostKeys:   AcceptNew,
		KnownHosts: filepath.Join(tb.TempDir(), "known_hosts"),
	}
}

// newTestPool returns a pool that ignores ~/.ssh/config, closed at cleanup.
func newTestPool(tb testing.TB, o PoolOptions) *Pool {
	o.SSHConfig = "none"
	o.AgentPath = testAgentPath
	p := NewPool(o)
	tb.Cleanup(func() { p.Close() })
	return p
}

// runner connects to the sshd's first port through a fresh pool.
func (s *testSSHD) runner(tb testing.TB) Runner {
	r, err := newTestPool(tb, PoolOptions{}).Runner(context.Background(), s.endpoint(tb, 0))
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// agentRunner connects to the sshd's first port through a fresh pool
// that starts this test binary as the agent, failing if it does not run.
func (s *testSSHD) agentRunner(tb testing.TB) *agentRunner {
	p := newTestPool(tb, PoolOptions{Agent: agenttest.Binary})
	e := s.endpoint(tb, 0)
	r, err := p.Runner(context.Background(), e)
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.AgentFallback(e); err != nil {
		tb.Fatalf("the agent did not start: %v", err)
	}
	return r.(*agentRunner)
}

type syncBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *syncBuffer) add(line string) {
	b.mu.Lock()
	b.lines = append(b.lines, line)
	b.mu.Unlock()
}

func (b *syncBuffer) count(substr string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, l := range b.lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// tcpProxy forwards connections to target, counting them, and can cut them
// all as a server-side failure would.
type tcpProxy struct {
	ln       net.Listener
	accepted atomic.Int32
	frozen   atomic.Bool // drop all traffic, as a dead link would
	mu       sync.Mutex
	conns    []net.Conn
}

func newProxy(tb testing.TB, targetPort int) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &tcpProxy{ln: ln}
	tb.Cleanup(func() {
		ln.Close()
		p.drop()
	})
	target := "127.0.0.1:" + strconv.Itoa(targetPort)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go p.pipe(u, c)
			go p.pipe(c, u)
		}
	}()
	return p
}

// pipe copies src to dst, dropping what arrives while the proxy is frozen.
func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.frozen.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *tcpProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// drop closes every connection made so far.
func (p *tcpProxy) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
