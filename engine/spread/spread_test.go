package spread

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/agent/agenttest"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers/netns"
)

func TestMain(m *testing.M) {
	// Copied to a host as the agent and started there, this binary is one.
	agenttest.BeTheAgent()
	os.Unsetenv("SSH_AUTH_SOCK")
	os.Exit(m.Run())
}

// testAgentPath is where these tests put the agent, away from other
// packages' tests' copies.
const testAgentPath = ".cache/e2c-spread-test/e2c-agent"

// dst is where the tests spread to, relative to the hosts' login
// directory.
const dst = "spread-test/sub/f.bin"

// lab is a netns lab of emulated hosts with real sshds.
type lab struct {
	*netns.Lab
	bridge string // the bridge device, e2c's link to the hosts
}

func newLab(tb testing.TB, n int) *lab {
	tb.Helper()
	if err := netns.Preflight(); err != nil {
		tb.Skip(err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("spread-%d", i+1)
	}
	root := tb.TempDir()
	l, err := netns.Create(context.Background(), netns.Options{Name: "spread-test-" + root, Hosts: names,
		Subnet: netip.MustParsePrefix("10.241.20.0/24"), StateDir: filepath.Join(root, "lab")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := l.Destroy(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	b4, _ := l.Bridge()
	out, err := exec.Command("ip", "-o", "addr", "show", "to", b4.String()).Output()
	f := strings.Fields(string(out))
	if err != nil || len(f) < 2 {
		tb.Fatalf("the bridge of %s: %q %v", b4, out, err)
	}
	return &lab{Lab: l, bridge: f[1]}
}

// targets connects to the first n hosts through a new pool with the agent.
// addr, if set, replaces every host's address for peers.
func (l *lab) targets(tb testing.TB, n int, addr string) ([]Target, *transport.Pool) {
	tb.Helper()
	p := transport.NewPool(transport.PoolOptions{Agent: agenttest.Binary, AgentPath: testAgentPath, SSHConfig: "none"})
	tb.Cleanup(func() { p.Close() })
	hosts := l.Hosts()[:n]
	ts := make([]Target, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			e := transport.Endpoint{Host: h.Address4.String(), Port: 22, User: "root",
				KeyFiles: []string{l.KeyFile()}, HostKeys: transport.Strict, KnownHosts: l.KnownHostsFile()}
			r, err := p.Runner(context.Background(), e)
			if err == nil {
				err = p.AgentFallback(e)
			}
			ts[i] = Target{Host: h.Name, Addr: h.Address4.String()}
			ts[i].Agent, _ = r.(transport.Streamer)
			if addr != "" {
				ts[i].Addr = addr
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		tb.Fatal(err)
	}
	return ts, p
}

// file is where host's login directory has path, seen from here.
func (l *lab) file(host, path string) string {
	return filepath.Join(l.StateDir(), "hosts", host, "root", path)
}

// clean removes what spreads left on the hosts.
func (l *lab) clean(tb testing.TB) {
	for _, h := range l.Hosts() {
		if err := os.RemoveAll(l.file(h.Name, "spread-test")); err != nil {
			tb.Fatal(err)
		}
	}
}

// sentBytes is what e2c's side of the bridge has sent to the hosts: the
// kernel's count, not spread's.
func (l *lab) sentBytes(tb testing.TB) int64 {
	b, err := os.ReadFile("/sys/class/net/" + l.bridge + "/statistics/tx_bytes")
	if err != nil {
		tb.Fatal(err)
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// shape limits what e2c sends to the hosts to rate (host to host traffic
// goes through the bridge's ports, not its own device, and is not
// shaped), until cleanup.
func (l *lab) shape(tb testing.TB, rate string) {
	tb.Helper()
	for _, args := range [][]string{
		{"qdisc", "add", "dev", l.bridge, "root", "handle", "1:", "htb", "default", "10"},
		{"class", "add", "dev", l.bridge, "parent", "1:", "classid", "1:10", "htb", "rate", rate, "ceil", rate},
	} {
		if out, err := exec.Command("tc", args...).CombinedOutput(); err != nil {
			exec.Command("tc", "qdisc", "del", "dev", l.bridge, "root").Run()
			tb.Fatalf("tc %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("tc", "qdisc", "del", "dev", l.bridge, "root").CombinedOutput(); err != nil {
			tb.Errorf("removing the qdisc: %v: %s", err, out)
		}
	})
}

// killAgent kills the e2c agent of host, found among the processes of
// its network namespace.
func (l *lab) killAgent(tb testing.TB, host netns.Host) {
	out, err := exec.Command("ip", "netns", "pids", host.Namespace).Output()
	if err != nil {
		tb.Error(err)
		return
	}
	killed := 0
	for _, f := range strings.Fields(string(out)) {
		pid, _ := strconv.Atoi(f)
		cmd, _ := os.ReadFile("/proc/" + f + "/cmdline")
		if pid > 0 && bytes.Contains(cmd, []byte(testAgentPath)) && syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	if killed == 0 {
		tb.Errorf("no agent found on %s", host.Name)
	}
}

func writePayload(tb testing.TB, size int) (string, [32]byte) {
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(uint64(size), 1))
	for i := 0; i+8 <= len(data); i += 8 {
		v := rng.Uint64()
		for k := range 8 {
			data[i+k] = byte(v >> (8 * k))
		}
	}
	p := filepath.Join(tb.TempDir(), "f.bin")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p, sha256.Sum256(data)
}

// checkHosts checks that every host of ts not in failed has the file, and
// nothing else is left beside it.
func (l *lab) checkHosts(t testing.TB, ts []Target, sum [32]byte, failed string) {
	t.Helper()
	for _, tg := range ts {
		if tg.Host == failed {
			continue
		}
		data, err := os.ReadFile(l.file(tg.Host, dst))
		if err != nil {
			t.Errorf("%s: %v", tg.Host, err)
			continue
		}
		if sha256.Sum256(data) != sum {
			t.Errorf("%s: the file has the wrong bytes", tg.Host)
		}
		var left []string
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			entries, _ := os.ReadDir(filepath.Dir(l.file(tg.Host, dst)))
			left = nil
			for _, e := range entries {
				if e.Name() != filepath.Base(dst) {
					left = append(left, e.Name())
				}
			}
			if len(left) == 0 {
				break
			}
		}
		if len(left) > 0 {
			t.Errorf("%s: left %v beside the file", tg.Host, left)
		}
	}
}

func TestSpread(t *testing.T) {
	const n = 8
	l := newLab(t, n)
	const size = 6<<20 + 333
	src, sum := writePayload(t, size)
	for _, tt := range []struct {
		name string
		addr string // for peers, instead of each host's own
		rate string // e2c's link shaped to it
		kill bool   // the agent of the first relay is killed mid-way
		sum  bool   // the caller gives the file's SHA-256
	}{
		{name: "tree"},
		{name: "sum given", sum: true},
		// Every host listens on its own loopback: no peer can reach
		// another, and e2c feeds each.
		{name: "peers unreachable", addr: "127.0.0.1"},
		{name: "relay killed", rate: "20mbit", kill: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l.clean(t)
			ts, _ := l.targets(t, n, tt.addr)
			if tt.rate != "" {
				l.shape(t, tt.rate)
			}
			// Host 2 is the first relay: it pulls from host 1, hosts 4
			// and 5 pull from it, and host 8 from host 4.
			relay := l.Hosts()[1]
			killed := make(chan struct{})
			if tt.kill {
				tmp := filepath.Dir(l.file(relay.Name, dst))
				go func() {
					defer close(killed)
					for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
						got, _ := filepath.Glob(filepath.Join(tmp, ".f.bin.spread-*"))
						if len(got) == 1 {
							if fi, err := os.Stat(got[0]); err == nil && fi.Size() > 1<<20 && fi.Size() < size/2 {
								l.killAgent(t, relay)
								return
							}
						}
					}
					t.Error("the relay never had between 1 MB and half the file")
				}()
			} else {
				close(killed)
			}
			var lines []string
			o := Options{Progress: func(p Progress) { lines = append(lines, p.String()) }}
			if tt.sum {
				o.Sum = hex.EncodeToString(sum[:])
			}
			before, began := l.sentBytes(t), time.Now()
			res, err := Spread(context.Background(), src, dst, append(ts, Target{Host: "no-agent"}), o)
			wire, took := l.sentBytes(t)-before, time.Since(began)
			<-killed
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%v: e2c sent %d bytes (the bridge: %d) for %d hosts of %d; %s", took, res.Sent, wire, n, size, lines[len(lines)-1])
			if tt.kill {
				t.Logf("the relay: %v", res.Errors[relay.Name])
			}
			if got := res.NoAgent(); len(got) != 1 || got[0] != "no-agent" {
				t.Errorf("NoAgent %v, want [no-agent]", got)
			}
			delete(res.Errors, "no-agent")
			for h, err := range res.Errors {
				if want := tt.kill && h == relay.Name; (err != nil) != want {
					t.Errorf("%s: error %v, want one: %v", h, err, want)
				}
			}
			failed := ""
			if tt.kill {
				failed = relay.Name
			}
			l.checkHosts(t, ts, sum, failed)
			switch {
			case tt.addr != "":
				if res.Sent < n*size {
					t.Errorf("e2c sent %d bytes: not the file to each host, which no peer can reach", res.Sent)
				}
			case tt.kill:
				// The relay's children pull from hosts ahead of them.
				if res.Sent > size+size/10 {
					t.Errorf("e2c sent %d bytes, %.1f times the file", res.Sent, float64(res.Sent)/size)
				}
			default:
				if res.Sent < size || res.Sent > size+size/20 || wire > size+size/5 {
					t.Errorf("e2c sent %d bytes (the bridge %d), want about the file's %d once", res.Sent, wire, size)
				}
			}
			if want := fmt.Sprintf("%d of %d hosts done", n-btoi(tt.kill), n+1); !strings.Contains(lines[len(lines)-1], want) {
				t.Errorf("last progress %q, want %q", lines[len(lines)-1], want)
			}
		})
	}
	// Hosts that have the file at dst already are sent nothing and serve
	// it to the others; a file of the same size with other bytes is
	// replaced.
	t.Run("some have it", func(t *testing.T) {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		other := bytes.Clone(data)
		other[size/3] ^= 1
		hosts := l.Hosts()
		for _, tt := range []struct {
			name  string
			have  []int // the hosts with the file
			other int   // a host with other bytes of its size, -1: none
		}{
			{name: "three", have: []int{2, 4, 5}, other: 0}, // host 1 is not the root fed by e2c
			{name: "all", have: []int{0, 1, 2, 3, 4, 5, 6, 7}, other: -1},
		} {
			t.Run(tt.name, func(t *testing.T) {
				l.clean(t)
				place := func(i int, b []byte) os.FileInfo {
					p := l.file(hosts[i].Name, dst)
					os.MkdirAll(filepath.Dir(p), 0o755)
					if err := os.WriteFile(p, b, 0o644); err != nil {
						t.Fatal(err)
					}
					fi, _ := os.Stat(p)
					return fi
				}
				placed := map[string]os.FileInfo{}
				var want []string
				for _, i := range tt.have {
					placed[hosts[i].Name] = place(i, data)
					want = append(want, hosts[i].Name)
				}
				if tt.other >= 0 {
					place(tt.other, other)
				}
				ts, _ := l.targets(t, n, "")
				var last string
				before := l.sentBytes(t)
				res, err := Spread(context.Background(), src, dst, ts, Options{Progress: func(p Progress) { last = p.String() }})
				wire := l.sentBytes(t) - before
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("e2c sent %d bytes (the bridge: %d); %s", res.Sent, wire, last)
				for h, err := range res.Errors {
					if err != nil {
						t.Errorf("%s: %v", h, err)
					}
				}
				if slices.Sort(res.Had); !slices.Equal(res.Had, want) {
					t.Errorf("Had %v, want %v", res.Had, want)
				}
				if res.Sent != 0 || wire > size/10 {
					t.Errorf("e2c sent %d bytes (the bridge %d), want none: the hosts that have it are the sources", res.Sent, wire)
				}
				if w := fmt.Sprintf("%d of %d hosts done (%d had it)", n, n, len(tt.have)); !strings.Contains(last, w) {
					t.Errorf("last progress %q, want %q", last, w)
				}
				l.checkHosts(t, ts, sum, "")
				for h, fi := range placed {
					if after, err := os.Stat(l.file(h, dst)); err != nil || !os.SameFile(fi, after) || !after.ModTime().Equal(fi.ModTime()) {
						t.Errorf("%s: its file was replaced or written (%v)", h, err)
					}
				}
			})
		}
	})
	// A sum given by the caller that is not the file's: every host
	// receives bytes that do not match it and keeps nothing.
	t.Run("wrong sum given", func(t *testing.T) {
		l.clean(t)
		ts, _ := l.targets(t, n, "")
		wrong := sha256.Sum256([]byte("not the file"))
		res, err := Spread(context.Background(), src, dst, ts, Options{Sum: hex.EncodeToString(wrong[:])})
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range ts {
			if err := res.Errors[tg.Host]; err == nil || !strings.Contains(err.Error(), "SHA-256") {
				t.Errorf("%s: error %v, want a SHA-256 mismatch", tg.Host, err)
			}
			if entries := l.entries(tg.Host); len(entries) > 0 {
				t.Errorf("%s: %v left after a spread of the wrong sum", tg.Host, entries)
			}
		}
	})
	// Cancelled mid-way, the spread stops on every host: no file at the
	// destination, no temporary file left beside it, no port open.
	t.Run("cancelled", func(t *testing.T) {
		l.clean(t)
		ts, _ := l.targets(t, n, "")
		l.shape(t, "10mbit") // 5 s for the file
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		res, err := Spread(ctx, src, dst, ts, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for h, err := range res.Errors {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s: error %v, want the context's", h, err)
			}
		}
		for _, tg := range ts {
			if entries := l.entries(tg.Host); len(entries) > 0 {
				t.Errorf("%s: %v left after the spread was cancelled", tg.Host, entries)
			}
		}
	})
}

// entries lists what is in the directory of dst on host, once the agent
// had 5 s to clean up.
func (l *lab) entries(host string) []string {
	var names []string
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		entries, _ := os.ReadDir(filepath.Dir(l.file(host, dst)))
		names = nil
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if len(names) == 0 || time.Now().After(end) {
			return names
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
