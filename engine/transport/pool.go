package transport

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Endpoint says how to reach a host over SSH. It is saved as JSON in
// experiment state.
type Endpoint struct {
	Host       string        `json:"host"`                  // name or address (also the alias looked up in ~/.ssh/config)
	Port       int           `json:"port,omitempty"`        // default from ~/.ssh/config, else 22
	User       string        `json:"user,omitempty"`        // default from ~/.ssh/config, else the current user
	KeyFiles   []string      `json:"key_files,omitempty"`   // private keys; ~/.ssh/config IdentityFile and the ssh-agent ($SSH_AUTH_SOCK) are also tried
	Jump       *Endpoint     `json:"jump,omitempty"`        // bastion (ProxyJump); ~/.ssh/config ProxyJump also honoured
	HostKeys   HostKeyPolicy `json:"host_keys,omitempty"`   // default Strict
	KnownHosts string        `json:"known_hosts,omitempty"` // file for Strict/AcceptNew; default ~/.ssh/known_hosts
}

// PoolOptions tune a Pool; zero values mean the defaults.
type PoolOptions struct {
	HandshakeTimeout time.Duration // default 15s: a deadline covering the TCP connect and the whole SSH handshake, not only the dial
	Keepalive        time.Duration // default 4s; 3 periods with a reply pending and nothing read (12 to 16 s of silence) close the connection and mark it broken; < 0 disables
	MaxSessions      int           // concurrent sessions per connection, default 8 (OpenSSH's MaxSessions is 10); one more is used to kill cancelled commands
	MaxHandshakes    int           // concurrent handshakes through one bastion, default 16 (below sshd's MaxStartups)
	SSHConfig        string        // path of the ssh config to honour; default ~/.ssh/config; "none" to ignore it
	// Agent, when set, makes commands and files go through an e2c agent
	// started on each host at connect over one SSH session (see
	// engine/agent), instead of an SSH session each: it gives the local
	// path of an e2c binary for linux/<goarch>, copied to AgentPath. A
	// host where the agent cannot start uses plain SSH sessions, and
	// AgentFallback says why. nil: plain SSH sessions everywhere.
	Agent func(goarch string) (string, error)
	// AgentPath is where the agent is copied on a host: relative to the
	// login directory, or absolute (a home mounted noexec). Default
	// AgentPath.
	AgentPath string
}

// Pool keeps one SSH connection per endpoint for a whole run, shared by every
// task, and one connection per bastion shared by all hosts behind it.
type Pool struct {
	o      PoolOptions
	ctx    context.Context // cancelled by Close, ending dials in progress
	cancel context.CancelFunc

	cfgOnce sync.Once
	cfg     *sshConfig
	cfgErr  error

	mu     sync.Mutex
	hosts  map[string]*hostConn
	keys   map[string]loadedKey
	closed bool
}

var errPoolClosed = errors.New("transport: pool closed")

// NewPool returns an empty Pool; connections are made on first use.
func NewPool(o PoolOptions) *Pool {
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 15 * time.Second
	}
	if o.Keepalive == 0 {
		// A host lost in the middle of a transfer is said lost within
		// 20 s, not after minutes of TCP retransmissions.
		o.Keepalive = 4 * time.Second
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 8
	}
	if o.MaxHandshakes <= 0 {
		o.MaxHandshakes = 16
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{o: o, ctx: ctx, cancel: cancel, hosts: map[string]*hostConn{}, keys: map[string]loadedKey{}}
}

// Runner returns the Runner of e, connecting on first use; concurrent callers
// share one dial. A broken connection is re-dialled once on the next use; a
// command cut by the break is not retried. Close of the Runner does nothing:
// the Pool owns the connection.
func (p *Pool) Runner(ctx context.Context, e Endpoint) (Runner, error) {
	h, _, err := p.connect(ctx, e)
	if err != nil {
		return nil, err
	}
	if h.agent != nil {
		if _, err := h.agent.session(ctx); err != nil {
			return nil, err
		}
		return h.agent, nil
	}
	return h.runner, nil
}

// AgentFallback says why the host of e runs commands over plain SSH
// sessions although PoolOptions.Agent asked for the agent; nil when it
// uses the agent, or the agent was not asked for or not tried yet.
func (p *Pool) AgentFallback(e Endpoint) error {
	t, err := p.resolve(e, 0)
	if err != nil {
		return nil
	}
	p.mu.Lock()
	h := p.hosts[t.key()]
	p.mu.Unlock()
	if h == nil || h.agent == nil {
		return nil
	}
	return h.agent.fallback()
}

// SSHClient returns the live SSH connection of e, dialling it as Runner
// does, for protocols carried over it (such as the Docker Engine API through
// a forwarded unix socket). The Pool owns it: callers must not close it,
// and should ask again for each new stream, since a connection seen broken
// is replaced by a new one (a stream opened as it breaks fails; it is not
// retried).
func (p *Pool) SSHClient(ctx context.Context, e Endpoint) (*ssh.Client, error) {
	_, c, err := p.connect(ctx, e)
	if err != nil {
		return nil, err
	}
	return c.Client, nil
}

// connect returns e's pooled host and its live connection.
func (p *Pool) connect(ctx context.Context, e Endpoint) (*hostConn, *conn, error) {
	t, err := p.resolve(e, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("ssh %s: %w", e.Host, err)
	}
	h, err := p.host(t)
	if err != nil {
		return nil, nil, err
	}
	c, err := h.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	return h, c, nil
}

// Close closes every connection of the pool.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	hosts := p.hosts
	p.mu.Unlock()
	p.cancel()
	for _, h := range hosts {
		if h.agent != nil {
			h.agent.close() // its stdin ends first: it kills what it still runs
		}
		h.lock <- struct{}{}
		if h.c != nil {
			h.c.Close()
		}
		<-h.lock
	}
	return nil
}

func (p *Pool) host(t *target) (*hostConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errPoolClosed
	}
	k := t.key()
	h := p.hosts[k]
	if h == nil {
		h = &hostConn{p: p, t: t, lock: make(chan struct{}, 1)}
		h.runner = &sshRunner{h: h}
		if p.o.Agent != nil {
			h.agent = newAgentRunner(h.runner, p.o.Agent, cmp.Or(p.o.AgentPath, AgentPath))
		}
		p.hosts[k] = h
	}
	return h, nil
}

// hostConn is the connection of one endpoint, re-dialled when broken.
type hostConn struct {
	p      *Pool
	t      *target
	runner *sshRunner
	agent  *agentRunner  // nil unless PoolOptions.Agent
	lock   chan struct{} // held while dialling, so concurrent callers share one dial
	c      *conn         // guarded by lock
}

func (h *hostConn) errorf(format string, a ...any) error { return hostErr(h.t, format, a...) }

// hostError is an error naming its host (as user@host:port, and its
// bastion); it is not prefixed again on its way up.
type hostError struct {
	t   *target
	err error
}

func hostErr(t *target, format string, a ...any) error {
	return &hostError{t: t, err: fmt.Errorf(format, a...)}
}

func (e *hostError) Error() string { return "ssh " + e.t.String() + ": " + e.err.Error() }
func (e *hostError) Unwrap() error { return e.err }

// get returns the live connection, dialling it if there is none.
func (h *hostConn) get(ctx context.Context) (*conn, error) {
	select {
	case h.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-h.lock }()
	if h.c != nil && !h.c.broken() {
		return h.c, nil
	}
	h.p.mu.Lock()
	closed := h.p.closed
	h.p.mu.Unlock()
	if closed {
		return nil, errPoolClosed
	}
	c, err := h.p.dial(ctx, h.t)
	if err != nil {
		return nil, err
	}
	h.c = c
	return c, nil
}

// conn is one SSH connection with its limits.
type conn struct {
	*ssh.Client
	sessions   chan struct{} // a slot per open session
	kills      chan struct{} // the lane for killing cancelled commands
	handshakes chan struct{} // a slot per handshake carried through this connection
	dead       chan struct{} // closed when the connection has ended
	noSFTP     atomic.Bool   // the server refused the sftp subsystem
	raw        *readClock    // the connection under SSH
}

// readClock is a connection that notes when it last read something.
type readClock struct {
	net.Conn
	last atomic.Int64 // unix nanoseconds
}

func (r *readClock) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	if n > 0 {
		r.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// quietFor is how long nothing has been read.
func (r *readClock) quietFor() time.Duration {
	return time.Since(time.Unix(0, r.last.Load()))
}

func (c *conn) broken() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// keepalive closes the connection after 3 periods of silence: no reply
// and nothing else read. Only one request is outstanding: on a dead link
// SendRequest blocks. A reply of false is normal (OpenSSH refuses unknown
// requests) and proves liveness; so does any data, since on a slow link a
// reply waits behind the data queued before it (300 KB take 19 s at
// 128 kbit/s).
func (c *conn) keepalive(d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	replies := make(chan error, 1)
	pending, missed := false, 0
	for {
		select {
		case <-c.dead:
			return
		case err := <-replies:
			if err != nil {
				c.Close()
				return
			}
			pending, missed = false, 0
		case <-t.C:
			if pending {
				if c.raw.quietFor() < d {
					missed = 0
					continue
				}
				if missed++; missed >= 3 {
					c.Close()
					return
				}
				continue
			}
			pending = true
			go func() {
				_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
				replies <- err
			}()
		}
	}
}

// dial connects and authenticates to t, through its bastion if it has one.
// One deadline covers the connect and the handshake: ClientConfig.Timeout
// bounds only the dial, and a stalled server would hang the handshake.
func (p *Pool) dial(ctx context.Context, t *target) (*conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(p.ctx, cancel)()
	d := p.o.HandshakeTimeout
	deadline := time.Now().Add(d)
	addr := t.addr()

	var raw net.Conn
	if t.jump != nil {
		bh, err := p.host(t.jump)
		if err != nil {
			return nil, err
		}
		b, err := bh.get(ctx)
		if err != nil {
			var he *hostError
			if errors.As(err, &he) {
				err = he.err // the bastion is named already
			}
			return nil, hostErr(t, "bastion: %w", err)
		}
		select {
		case b.handshakes <- struct{}{}:
			defer func() { <-b.handshakes }()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		deadline = time.Now().Add(d) // the wait for a slot is not the host's fault
		dctx, dcancel := context.WithDeadline(ctx, deadline)
		raw, err = b.DialContext(dctx, "tcp", addr)
		dcancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, hostErr(t, "bastion cannot connect: %w", err)
		}
	} else {
		var err error
		raw, err = (&net.Dialer{Deadline: deadline}).DialContext(ctx, "tcp", addr)
		var ne net.Error
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, syscall.ECONNREFUSED):
			return nil, hostErr(t, "connection refused")
		case errors.As(err, &ne) && ne.Timeout():
			return nil, hostErr(t, "connect timed out after %v", d)
		default:
			return nil, hostErr(t, "%w", err)
		}
	}

	rc := &readClock{Conn: raw}
	client, err := p.handshake(ctx, rc, t, deadline)
	if err != nil {
		return nil, err
	}
	c := &conn{
		Client:     client,
		sessions:   make(chan struct{}, p.o.MaxSessions),
		kills:      make(chan struct{}, 1),
		handshakes: make(chan struct{}, p.o.MaxHandshakes),
		dead:       make(chan struct{}),
		raw:        rc,
	}
	go func() {
		_ = client.Wait()
		close(c.dead)
	}()
	if p.o.Keepalive > 0 {
		go c.keepalive(p.o.Keepalive)
	}
	return c, nil
}

// handshake runs the SSH handshake on raw, closing raw at the deadline (a
// connection carried by a bastion has no SetDeadline) or when ctx ends.
func (p *Pool) handshake(ctx context.Context, raw net.Conn, t *target, deadline time.Time) (*ssh.Client, error) {
	hk := &hostKeys{policy: t.policy, file: t.knownHosts, name: t.addr()}
	algos, err := hk.algorithms()
	if err != nil {
		raw.Close()
		return nil, hostErr(t, "%w", err)
	}
	auth, tried, done := p.auth(t)
	defer done()
	cfg := &ssh.ClientConfig{
		User:              t.user,
		Auth:              []ssh.AuthMethod{auth},
		HostKeyCallback:   hk.callback,
		HostKeyAlgorithms: algos,
	}

	var timedOut atomic.Bool
	timer := time.AfterFunc(time.Until(deadline), func() {
		timedOut.Store(true)
		raw.Close()
	})
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(raw, t.addr(), cfg)
	stopped, unhooked := timer.Stop(), stop()
	if (!stopped || !unhooked) && err == nil {
		sc.Close() // raw was closed under it
		err = errors.New("handshake interrupted")
	}
	if err == nil {
		return ssh.NewClient(sc, chans, reqs), nil
	}
	raw.Close()
	switch {
	case timedOut.Load():
		return nil, hostErr(t, "handshake timed out after %v", p.o.HandshakeTimeout)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case hk.err != nil:
		return nil, hostErr(t, "%w", hk.err)
	case strings.Contains(err.Error(), "unable to authenticate"):
		if len(tried) == 0 {
			return nil, hostErr(t, "no key to try (set key_files, IdentityFile in ~/.ssh/config, or load a key into ssh-agent)")
		}
		return nil, hostErr(t, "no key accepted (tried: %s)", strings.Join(tried, ", "))
	default:
		return nil, hostErr(t, "%w", err)
	}
}

type loadedKey struct {
	signer  ssh.Signer
	problem string // why it cannot be used, for the error message
}

// auth returns the public key method trying t's key files, then the agent,
// the list of what it will try, and a function to release the agent.
func (p *Pool) auth(t *target) (ssh.AuthMethod, []string, func()) {
	var signers []ssh.Signer
	var tried []string
	for _, k := range t.keys {
		lk := p.loadKey(k.path)
		switch {
		case lk.signer != nil:
			signers = append(signers, lk.signer)
			tried = append(tried, k.shown)
		case k.optional && lk.problem == "missing":
		default:
			tried = append(tried, k.shown+" ("+lk.problem+")")
		}
	}
	done := func() {}
	var ag agent.ExtendedAgent
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if c, err := net.Dial("unix", sock); err == nil {
			ag, done = agent.NewClient(c), func() { c.Close() }
			tried = append(tried, "agent")
		} else {
			tried = append(tried, "agent (unreachable: "+sock+")")
		}
	}
	return ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
		if ag == nil {
			return signers, nil
		}
		as, err := ag.Signers()
		if err != nil {
			return signers, nil
		}
		return append(signers[:len(signers):len(signers)], as...), nil
	}), tried, done
}

// loadKey parses a private key file once per pool.
func (p *Pool) loadKey(path string) loadedKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k, ok := p.keys[path]; ok {
		return k
	}
	var k loadedKey
	b, err := os.ReadFile(path)
	if err == nil {
		k.signer, err = ssh.ParsePrivateKey(b)
	}
	var pm *ssh.PassphraseMissingError
	switch {
	case errors.Is(err, os.ErrNotExist):
		k.problem = "missing"
	case errors.As(err, &pm):
		k.problem = "passphrase-protected: load it into ssh-agent"
	case err != nil:
		k.problem = err.Error()
	}
	p.keys[path] = k
	return k
}

// config parses the ssh config once; a missing file is an empty one.
func (p *Pool) config() (*sshConfig, error) {
	p.cfgOnce.Do(func() {
		path := p.o.SSHConfig
		if path == "none" {
			return
		}
		if path == "" {
			path = "~/.ssh/config"
		}
		f, err := os.Open(expandHome(path))
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if err != nil {
			p.cfgErr = err
			return
		}
		defer f.Close()
		p.cfg, p.cfgErr = parseSSHConfig(f)
		if p.cfgErr != nil {
			p.cfgErr = fmt.Errorf("%s: %w", path, p.cfgErr)
		}
	})
	return p.cfg, p.cfgErr
}

func (p *Pool) resolve(e Endpoint, depth int) (*target, error) {
	cfg, err := p.config()
	if err != nil {
		return nil, err
	}
	return resolve(cfg, e, depth)
}
