package transport

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/sync/errgroup"
)

func runOK(t *testing.T, r Runner, script string) string {
	t.Helper()
	res, err := r.Run(context.Background(), Command{Script: script})
	if err != nil {
		t.Fatalf("Run %q: %v", script, err)
	}
	return res.Stdout
}

func TestHostKeys(t *testing.T) {
	s := startSSHD(t, sshdConfig{})
	ctx := context.Background()
	ep := s.endpoint(t, 0)
	kh := ep.KnownHosts
	connect := func(policy HostKeyPolicy) (Runner, error) {
		e := ep
		e.HostKeys = policy
		return newTestPool(t, PoolOptions{}).Runner(ctx, e)
	}
	oldFP := ssh.FingerprintSHA256(s.hostKeys[0].PublicKey())
	prefix := fmt.Sprintf("ssh root@127.0.0.1:%d: ", s.ports[0])

	_, err := connect(Strict)
	if err == nil || !strings.HasPrefix(err.Error(), prefix+"unknown host key "+oldFP) || !strings.Contains(err.Error(), kh) {
		t.Errorf("strict, unknown host: %v", err)
	}
	if _, err := os.Stat(kh); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("strict wrote %s", kh)
	}

	r, err := connect(AcceptNew)
	if err != nil {
		t.Fatalf("accept-new: %v", err)
	}
	runOK(t, r, "true")
	line := knownhosts.Line([]string{knownhosts.Normalize(fmt.Sprintf("127.0.0.1:%d", s.ports[0]))}, s.hostKeys[0].PublicKey())
	if b, _ := os.ReadFile(kh); string(b) != line+"\n" {
		t.Errorf("known hosts after accept-new:\n%s\nwant:\n%s", b, line)
	}
	if _, err := connect(Strict); err != nil {
		t.Errorf("strict, known host: %v", err)
	}

	// The host is reinstalled: same address, new key.
	s.restart(true)
	newFP := ssh.FingerprintSHA256(s.hostKeys[0].PublicKey())
	for _, policy := range []HostKeyPolicy{Strict, AcceptNew} {
		_, err := connect(policy)
		want := prefix + "host key mismatch: known " + oldFP + ", offered " + newFP
		t.Log(err)
		if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), kh) {
			t.Errorf("%s, changed key: %v\nwant %s (... %s)", policy, err, want, kh)
		}
	}
	if b, _ := os.ReadFile(kh); string(b) != line+"\n" {
		t.Errorf("known hosts changed after a mismatch:\n%s", b)
	}
	if r, err := connect(Off); err != nil {
		t.Errorf("off: %v", err)
	} else {
		runOK(t, r, "true")
	}
}

// TestHostKeyAlgorithms: the client prefers ECDSA host keys; a host known
// only by its ed25519 key must still pass, by asking for that type.
func TestHostKeyAlgorithms(t *testing.T) {
	s := startSSHD(t, sshdConfig{hostKeys: []string{"ecdsa", "ed25519"}})
	for _, k := range s.hostKeys {
		t.Run(k.PublicKey().Type(), func(t *testing.T) {
			ep := s.endpoint(t, 0)
			ep.HostKeys = Strict
			line := knownhosts.Line([]string{knownhosts.Normalize(fmt.Sprintf("127.0.0.1:%d", s.ports[0]))}, k.PublicKey())
			if err := os.WriteFile(ep.KnownHosts, []byte(line+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := newTestPool(t, PoolOptions{}).Runner(context.Background(), ep); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestDialErrors(t *testing.T) {
	requireSSHD(t)
	s := startSSHD(t, sshdConfig{})
	ctx := context.Background()

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() { // accepts, never speaks
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()

	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	other := filepath.Join(t.TempDir(), "other key")
	if err := os.WriteFile(other, mustPEM(otherKey), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		ep   func(e Endpoint) Endpoint
		want string
		max  time.Duration
	}{
		{"silent server", func(e Endpoint) Endpoint {
			e.Port = silent.Addr().(*net.TCPAddr).Port
			return e
		}, "handshake timed out after 500ms", 2 * time.Second},
		{"refused", func(e Endpoint) Endpoint {
			e.Port = freePort(t)
			return e
		}, "connection refused", time.Second},
		{"no key accepted", func(e Endpoint) Endpoint {
			e.KeyFiles = []string{other, filepath.Join(t.TempDir(), "missing")}
			return e
		}, "no key accepted (tried: " + other + ", ", 2 * time.Second},
		{"bad policy", func(e Endpoint) Endpoint {
			e.HostKeys = "trust-me"
			return e
		}, `unknown host_keys policy "trust-me"`, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := tt.ep(s.endpoint(t, 0))
			start := time.Now()
			_, err := newTestPool(t, PoolOptions{HandshakeTimeout: 500 * time.Millisecond}).Runner(ctx, ep)
			took := time.Since(start)
			t.Log(err)
			prefix := fmt.Sprintf("ssh root@127.0.0.1:%d: ", ep.Port)
			if tt.name == "bad policy" {
				prefix = "ssh 127.0.0.1: "
			}
			if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q...%q", err, prefix, tt.want)
			}
			if took > tt.max {
				t.Errorf("took %v, want under %v", took, tt.max)
			}
		})
	}
}

func TestPoolSharesConnection(t *testing.T) {
	s := startSSHD(t, sshdConfig{})
	px := newProxy(t, s.ports[0])
	ep := s.endpoint(t, px.port())
	p := newTestPool(t, PoolOptions{})
	ctx := context.Background()

	// Concurrent first uses share one dial.
	runners := make([]Runner, 10)
	var g errgroup.Group
	for i := range runners {
		g.Go(func() (err error) {
			runners[i], err = p.Runner(ctx, ep)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, r := range runners {
		if r != runners[0] {
			t.Fatal("Runner returned different runners for one endpoint")
		}
	}

	// 30 concurrent commands on one connection, beyond sshd's MaxSessions
	// of 10: the pool's session cap queues them.
	var mu sync.Mutex
	outs := map[string]bool{}
	for i := range 30 {
		g.Go(func() error {
			res, err := runners[i%10].Run(ctx, Command{Script: `sleep 0.2; echo "$I"`, Env: map[string]string{"I": strconv.Itoa(i)}})
			mu.Lock()
			outs[res.Stdout] = true
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(outs) != 30 {
		t.Errorf("%d distinct outputs, want 30", len(outs))
	}
	if n := px.accepted.Load(); n != 1 {
		t.Errorf("%d TCP connections, want 1", n)
	}
	if n := s.accepted(); n != 1 {
		t.Errorf("sshd accepted %d logins, want 1", n)
	}
}

func TestPoolReconnects(t *testing.T) {
	s := startSSHD(t, sshdConfig{})
	px := newProxy(t, s.ports[0])
	p := newTestPool(t, PoolOptions{})
	ctx := context.Background()
	r, err := p.Runner(ctx, s.endpoint(t, px.port()))
	if err != nil {
		t.Fatal(err)
	}
	runOK(t, r, "true")

	// Cut while idle: the next Run re-dials once and succeeds.
	px.drop()
	if out := runOK(t, r, "echo again"); out != "again\n" {
		t.Errorf("after reconnect: %q", out)
	}
	if n := px.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}

	// Cut while a command runs: that Run fails (it is not retried), the
	// next one reconnects.
	errc := make(chan error, 1)
	started := make(chan struct{})
	out := &lineRecorder{onLine: func(string) { close(started) }}
	go func() {
		_, err := r.Run(ctx, Command{Script: "echo started; sleep 3", Stdout: out})
		errc <- err
	}()
	select {
	case <-started:
	case err := <-errc:
		t.Fatalf("Run: %v", err)
	}
	px.drop()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "connection lost") {
			t.Errorf("Run cut by the break: %v, want connection lost", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run cut by the break did not return")
	}
	runOK(t, r, "true")
	if n := px.accepted.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
}

// TestKeepaliveClosesDeadLink: a link that stops carrying data is closed
// after three missed keepalives, and the next use re-dials.
func TestKeepaliveClosesDeadLink(t *testing.T) {
	s := startSSHD(t, sshdConfig{})
	px := newProxy(t, s.ports[0])
	p := newTestPool(t, PoolOptions{Keepalive: 150 * time.Millisecond})
	r, err := p.Runner(context.Background(), s.endpoint(t, px.port()))
	if err != nil {
		t.Fatal(err)
	}
	runOK(t, r, "true")
	c := r.(*sshRunner).h.c
	time.Sleep(600 * time.Millisecond)
	if c.broken() {
		t.Fatal("a live connection was closed")
	}
	px.frozen.Store(true)
	start := time.Now()
	select {
	case <-c.dead:
		t.Logf("closed %v after the link went silent", time.Since(start).Round(time.Millisecond))
	case <-time.After(3 * time.Second):
		t.Fatal("the connection was not closed after missed keepalives")
	}
	px.frozen.Store(false)
	runOK(t, r, "true")
	if n := px.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestBastion(t *testing.T) {
	b := startSSHD(t, sshdConfig{debug: true})
	bpx := newProxy(t, b.ports[0])
	targets := startSSHD(t, sshdConfig{ports: 3})
	bastion := b.endpoint(t, bpx.port())
	kh := filepath.Join(t.TempDir(), "known_hosts") // shared by the targets
	p := newTestPool(t, PoolOptions{})
	ctx := context.Background()

	var g errgroup.Group
	for _, port := range targets.ports {
		g.Go(func() error {
			ep := targets.endpoint(t, port)
			ep.Jump, ep.KnownHosts = &bastion, kh
			r, err := p.Runner(ctx, ep)
			if err != nil {
				return err
			}
			res, err := r.Run(ctx, Command{Script: "echo ok"})
			if err == nil && res.Stdout != "ok\n" {
				err = fmt.Errorf("stdout %q", res.Stdout)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := bpx.accepted.Load(); n != 1 {
		t.Errorf("%d connections to the bastion, want 1", n)
	}
	known, _ := os.ReadFile(kh)
	for _, port := range targets.ports {
		// The bastion carried the connection, and the key is recorded under
		// the target's name.
		if n := b.log.count(fmt.Sprintf("target 127.0.0.1 port %d", port)); n != 1 {
			t.Errorf("bastion forwarded %d connections to port %d, want 1", n, port)
		}
		if !strings.Contains(string(known), fmt.Sprintf("[127.0.0.1]:%d ", port)) {
			t.Errorf("port %d missing from known hosts:\n%s", port, known)
		}
	}
}

// TestSSHClient: the pooled connection carries a stream to a unix socket on
// the host (as the Docker Engine API is reached), shares the Runner's
// login, and is replaced after a break.
func TestSSHClient(t *testing.T) {
	s := startSSHD(t, sshdConfig{})
	px := newProxy(t, s.ports[0])
	ep := s.endpoint(t, px.port())
	p := newTestPool(t, PoolOptions{})
	ctx := context.Background()

	sock := filepath.Join(t.TempDir(), "echo.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	echo := func() *ssh.Client {
		t.Helper()
		c, err := p.SSHClient(ctx, ep)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := c.DialContext(ctx, "unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write([]byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 5)
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != "ping\n" {
			t.Fatalf("echo: %q, %v", got, err)
		}
		return c
	}

	r, err := p.Runner(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	runOK(t, r, "true")
	old := echo()
	if n := s.accepted(); n != 1 {
		t.Errorf("sshd accepted %d logins, want 1 shared by Runner and SSHClient", n)
	}
	// Once the pool has seen the connection end (a moment after the
	// client has), it hands out a new one.
	px.drop()
	_ = old.Wait()
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := p.SSHClient(ctx, ep); err == nil && c != old {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the broken connection is still handed out 2s after it ended")
		}
	}
	echo()
	if n := px.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (one re-dial after the break)", n)
	}
}
