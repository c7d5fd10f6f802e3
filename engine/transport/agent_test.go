package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/agent"
	"github.com/e2c-dev/e2c/engine/agent/agenttest"
)

// TestAgentLeavesNothing: when e2c's side goes (the pool closed, or the
// connection cut as when e2c is killed), the agent kills the commands it
// still runs and exits, leaving no process on the host.
func TestAgentLeavesNothing(t *testing.T) {
	if _, err := exec.LookPath("pgrep"); err != nil {
		t.Skip("needs pgrep")
	}
	for _, tt := range []struct {
		name  string
		end   func(p *Pool, px *tcpProxy)
		again bool // the pool is still there: its next command starts a new agent
	}{
		{"pool closed", func(p *Pool, _ *tcpProxy) { p.Close() }, false},
		{"connection cut", func(_ *Pool, px *tcpProxy) { px.drop() }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startSSHD(t, sshdConfig{})
			px := newProxy(t, s.ports[0])
			p := newTestPool(t, PoolOptions{Agent: agenttest.Binary})
			e := s.endpoint(t, px.port())
			r, err := p.Runner(context.Background(), e)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.AgentFallback(e); err != nil {
				t.Fatalf("the agent did not start: %v", err)
			}
			ar := r.(*agentRunner)
			var out bytes.Buffer
			if _, err := ar.s.exec(context.Background(), agent.Request{Cmd: "echo $PPID"}, nil, &out, nil); err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(out.String()))
			if err != nil || !alive(pid) {
				t.Fatalf("agent pid %q: not a live process", out.String())
			}
			sleep := fmt.Sprintf("sleep %d", 900000+rand.IntN(99999))
			count := func() int {
				out, _ := exec.Command("pgrep", "-f", "-x", sleep).Output()
				return len(strings.Fields(string(out)))
			}
			go func() { _, _ = r.Run(context.Background(), Command{Script: sleep + " &\n" + sleep + "\n"}) }()
			for end := time.Now().Add(10 * time.Second); count() < 2; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(end) {
					t.Fatalf("%q did not start", sleep)
				}
			}
			tt.end(p, px)
			for end := time.Now().Add(10 * time.Second); alive(pid) || count() > 0; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(end) {
					exec.Command("pkill", "-f", "-x", sleep).Run()
					t.Fatalf("10 s after e2c's side went: agent alive %v, %d %q left", alive(pid), count(), sleep)
				}
			}
			if tt.again {
				runOK(t, r, "true")
				if err := p.AgentFallback(e); err != nil || ar.s.mux.IsClosed() {
					t.Errorf("after the cut: fallback %v, agent session closed %v; want a new agent", err, ar.s.mux.IsClosed())
				}
			}
		})
	}
}

// alive tells whether pid is a process that has not ended (a zombie has).
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestAgentFallback: where the agent cannot start, the host gets plain SSH
// sessions and the pool says why.
func TestAgentFallback(t *testing.T) {
	notBinary := filepath.Join(t.TempDir(), "e2c")
	if err := os.WriteFile(notBinary, []byte("#!/nonexistent/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// This test binary, told e2c speaks another protocol than its own.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	otherProtocol := filepath.Join(t.TempDir(), "e2c-agent")
	if err := os.WriteFile(otherProtocol, []byte("#!/bin/sh\nE2C_AGENT_PROTOCOL=999 exec "+Quote(self)+` "$@"`+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := startSSHD(t, sshdConfig{})
	for _, tt := range []struct {
		name string
		find func(string) (string, error)
		why  string
	}{
		{"no build for the architecture", func(goarch string) (string, error) {
			return "", fmt.Errorf("no e2c for linux/%s", goarch)
		}, "no agent for"},
		{"binary does not run", func(string) (string, error) { return notBinary, nil }, "start the agent"},
		{"agent of another protocol", func(string) (string, error) { return otherProtocol, nil }, fmt.Sprintf("speaks protocol %d, e2c 999", agent.Protocol)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPool(t, PoolOptions{Agent: tt.find})
			e := s.endpoint(t, 0)
			r, err := p.Runner(context.Background(), e)
			if err != nil {
				t.Fatal(err)
			}
			err = p.AgentFallback(e)
			if err == nil || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("AgentFallback: %v, want an error saying %q", err, tt.why)
			}
			t.Logf("fallback: %v", err)
			runOK(t, r, "true")
		})
	}
	// The agent's copy is that of the test binary again for later tests.
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(filepath.Join(os.Getenv("HOME"), testAgentPath))) })
}

// TestAgentConcurrentRuns: commands at once on one agent each get their
// own output and exit status, beyond the SSH sessions a connection allows.
func TestAgentConcurrentRuns(t *testing.T) {
	r := startSSHD(t, sshdConfig{}).agentRunner(t)
	const n = 40
	errs := make(chan error, n)
	for i := range n {
		go func() {
			res, err := r.Run(context.Background(), Command{Script: fmt.Sprintf("sleep 0.2; echo out%d; echo err%d >&2; exit %d", i, i, i%3)})
			var ee *ExitError
			switch {
			case i%3 == 0 && err != nil, i%3 != 0 && (!errors.As(err, &ee) || ee.Code != i%3):
				errs <- fmt.Errorf("command %d: %v", i, err)
			case res.Stdout != fmt.Sprintf("out%d\n", i) || res.Stderr != fmt.Sprintf("err%d\n", i):
				errs <- fmt.Errorf("command %d: stdout %q stderr %q", i, res.Stdout, res.Stderr)
			default:
				errs <- nil
			}
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestAgentPutFromBlob: a large file the host has in its BlobDir (spread
// there) is copied from it, not sent, with the permissions Put gives; so
// are the small files of a bundle the host has, the same content under
// two names included. What the host lacks, or a small file in no bundle,
// is sent.
func TestAgentPutFromBlob(t *testing.T) {
	r := startSSHD(t, sshdConfig{}).agentRunner(t)
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rand.IntN(256))
		}
		return b
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big := write("big.bin", random(BlobMin+1))
	small := map[string][]byte{"a": random(1000), "b": random(50 << 10), "c": nil}
	small["c"] = small["a"]
	var bundledFiles []string
	for _, name := range []string{"a", "b", "c"} {
		bundledFiles = append(bundledFiles, write(filepath.Join("small", name), small[name]))
	}
	loose := write("loose/x", random(1000)) // in no bundle
	bundle, err := Bundle(t.TempDir(), bundledFiles)
	if err != nil {
		t.Fatal(err)
	}
	// a is in a second bundle, which no host has.
	if _, err := Bundle(t.TempDir(), bundledFiles[:1]); err != nil {
		t.Fatal(err)
	}
	home := os.Getenv("HOME")
	inCache := func(t *testing.T, local string) {
		blob, err := Blob(local)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(local)
		p := filepath.Join(home, blob)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(p) })
	}
	for _, tt := range []struct {
		name      string
		src       string
		cached    string // the local file the host's cache has, "" none
		copied    int
		fromCache int
		bytes     int64
	}{
		{"the host lacks the blob", big, "", 1, 0, BlobMin + 1},
		{"the host has it", big, big, 1, 1, 0},
		{"the host lacks the bundle", filepath.Join(dir, "small"), "", 3, 0, 2*1000 + 50<<10},
		{"the host has the bundle", filepath.Join(dir, "small"), bundle, 3, 3, 0},
		{"a small file in no bundle", loose, bundle, 1, 0, 1000},
		{"a file of two bundles, the host has the first", bundledFiles[0], bundle, 1, 1, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "out")
			if tt.cached != "" {
				inCache(t, tt.cached)
			}
			st, err := r.Put(context.Background(), tt.src, dst, 0o640)
			if err != nil {
				t.Fatal(err)
			}
			if st.Copied != tt.copied || st.FromCache != tt.fromCache || st.Bytes != tt.bytes {
				t.Errorf("stats %+v, want %d copied, %d from the cache, %d bytes sent", st, tt.copied, tt.fromCache, tt.bytes)
			}
			err = filepath.WalkDir(tt.src, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(tt.src, p)
				want, _ := os.ReadFile(p)
				got, err := os.ReadFile(filepath.Join(dst, rel))
				if rel == "." {
					got, err = os.ReadFile(dst)
				}
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: the copy differs from the source (%v)", rel, err)
				}
				if fi, err := os.Stat(filepath.Join(dst, rel)); err == nil && fi.Mode().Perm() != 0o640 {
					t.Errorf("%s: mode %v, want 0640", rel, fi.Mode().Perm())
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestAgentReplaced: an agent of another build (e2c's version changed)
// replaces the copy on the host, which then runs it; the build the host
// has is not copied again.
func TestAgentReplaced(t *testing.T) {
	s := startSSHD(t, sshdConfig{})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	// Bytes after an ELF's sections change its hash, not what it runs.
	other := filepath.Join(t.TempDir(), "e2c-other")
	if err := os.WriteFile(other, append(data, "another version"...), 0o755); err != nil {
		t.Fatal(err)
	}
	home := os.Getenv("HOME")
	inodes := map[string]uint64{} // a copy is a new file, renamed into place
	for _, build := range []string{self, other, other, self} {
		p := newTestPool(t, PoolOptions{Agent: func(string) (string, error) { return build, nil }})
		e := s.endpoint(t, 0)
		r, err := p.Runner(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		runOK(t, r, "true")
		if err := p.AgentFallback(e); err != nil {
			t.Fatalf("%s: the agent did not start: %v", build, err)
		}
		name, err := AgentFile(testAgentPath, build)
		if err != nil {
			t.Fatal(err)
		}
		builds, _ := filepath.Glob(filepath.Join(home, testAgentPath+"*"))
		want, _ := os.ReadFile(build)
		got, err := os.ReadFile(filepath.Join(home, name))
		if err != nil || !bytes.Equal(got, want) || len(builds) != 1 {
			t.Fatalf("the host has builds %v, want only %s, a copy of %s (%v)", builds, name, build, err)
		}
		fi, _ := os.Stat(filepath.Join(home, name))
		ino := fi.Sys().(*syscall.Stat_t).Ino
		if build == other && inodes[build] != 0 && inodes[build] != ino {
			t.Errorf("the build the host had was copied again")
		}
		inodes[build] = ino
		p.Close()
	}
}
