package static

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/arch"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/providers/netns"
)

// The emulated "existing machines" of these tests live in 10.235.7.0/24;
// nothing answers at .250.
const (
	labSubnet = "10.235.7.0/24"
	deadAddr  = "10.235.7.250"
)

// newLab starts three emulated hosts, a, b and c, removed when the test
// ends.
func newLab(t *testing.T) *netns.Lab {
	t.Helper()
	if err := netns.Preflight(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	name := fmt.Sprintf("static-test-%d", os.Getpid())
	t.Cleanup(func() {
		if err := netns.Cleanup(context.Background(), name); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lab, err := netns.Create(ctx, netns.Options{
		Name: name, Hosts: []string{"a", "b", "c"},
		Subnet: netip.MustParsePrefix(labSubnet), StateDir: filepath.Join(t.TempDir(), "lab"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return lab
}

// labHost is the static block entry of lab host i.
func labHost(lab *netns.Lab, i int, extra ...any) map[string]any {
	h := lab.Hosts()[i]
	m := map[string]any{"address": h.Address4.String(), "alias": "h-" + h.Name}
	for j := 0; j+1 < len(extra); j += 2 {
		m[extra[j].(string)] = extra[j+1]
	}
	return m
}

func request(t *testing.T, lab *netns.Lab, experiment string, settings map[string]any, instances ...plan.Instance) providers.Request {
	s := map[string]any{"user": "root", "keyfile": lab.KeyFile(), "host_keys": "accept-new"}
	for k, v := range settings {
		s[k] = v
	}
	return providers.Request{Experiment: experiment, StateDir: t.TempDir(), Settings: testbed(t, s), Instances: instances}
}

// run runs script on lab host i as root, independently of the provider.
func run(t *testing.T, pool *transport.Pool, lab *netns.Lab, i int, script string) string {
	t.Helper()
	ctx := context.Background()
	r, err := pool.Runner(ctx, transport.Endpoint{Host: lab.Hosts()[i].Address4.String(), User: "root",
		KeyFiles: []string{lab.KeyFile()}, KnownHosts: lab.KnownHostsFile()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(ctx, transport.Command{Script: script})
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	return res.Stdout
}

// TestSSH runs the provider against real sshds; one lab serves every
// subtest, which run in turn since they share the hosts' /etc/hosts.
func TestSSH(t *testing.T) {
	lab := newLab(t)
	p := New()
	check := transport.NewPool(transport.PoolOptions{})
	defer check.Close()
	ctx := context.Background()

	t.Run("reserve", func(t *testing.T) {
		req := request(t, lab, "exp-reserve", map[string]any{"hosts": []any{
			labHost(lab, 0, "cluster", "x"), labHost(lab, 1, "cluster", "x"), labHost(lab, 2, "cluster", "y"),
		}}, inst("master", 1, "y"), inst("workers", 2, "", "h-b", lab.Hosts()[0].Address4.String()))
		res, err := p.Reserve(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Release(ctx, res, io.Discard) })
		// h-c for the cluster, then the servers in their order; each
		// endpoint reaches the host of that name.
		want := [][]string{{"c"}, {"b", "a"}}
		pool := transport.NewPool(transport.PoolOptions{})
		defer pool.Close()
		for i, hs := range res.Hosts {
			if len(hs) != len(want[i]) {
				t.Fatalf("instance %d: %d hosts, want %v", i, len(hs), want[i])
			}
			for j, h := range hs {
				if h.Name != "h-"+want[i][j] || h.SSH == nil || h.SSH.Host != h.Address4 ||
					h.SSH.KnownHosts != filepath.Join(req.StateDir, "known_hosts") {
					t.Errorf("host %d.%d: %+v %+v", i, j, h.Machine, h.SSH)
					continue
				}
				r, err := pool.Runner(ctx, *h.SSH)
				if err != nil {
					t.Fatal(err)
				}
				out, err := r.Run(ctx, transport.Command{Script: "hostname"})
				if got := strings.TrimSpace(out.Stdout); err != nil || got != want[i][j] {
					t.Errorf("%s: hostname %q, %v; want %s", h.Name, got, err, want[i][j])
				}
			}
		}
		var st state
		if err := json.Unmarshal(res.State, &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Hosts) != 3 {
			t.Fatalf("state: %+v", st)
		}
		for _, h := range st.Hosts {
			if arch.Of(h.Arch) != runtime.GOARCH || h.MemKB <= 0 || h.RootKB <= 0 || h.TmpKB <= 0 || !h.Root || !h.Sudo || h.EtcHosts {
				t.Errorf("summary of %s: %+v", h.Name, h)
			}
		}
	})

	t.Run("preflight collects every problem", func(t *testing.T) {
		wrong := "arm"
		if runtime.GOARCH == "arm" {
			wrong = "amd64"
		}
		req := request(t, lab, "exp-preflight", map[string]any{"hosts": []any{
			labHost(lab, 0, "arch", wrong),
			map[string]any{"address": deadAddr, "alias": "dead"},
			labHost(lab, 1, "arch", runtime.GOARCH),
		}}, inst("all", 3, ""))
		res, err := p.Reserve(ctx, req)
		if err == nil {
			p.Release(ctx, res, io.Discard)
			t.Fatal("Reserve succeeded with a dead host and a wrong architecture")
		}
		msg := err.Error()
		t.Log(msg)
		a := strings.Index(msg, "h-a ("+lab.Hosts()[0].Address4.String()+"): architecture is ")
		d := strings.Index(msg, "dead ("+deadAddr+"): ")
		if a < 0 || d < a || !strings.Contains(msg, "the scenario says "+wrong) || strings.Contains(msg, "h-b") {
			t.Errorf("error should list h-a's architecture then dead's connection, not h-b:\n%s", msg)
		}
	})

	t.Run("etc_hosts journaled before it is written", func(t *testing.T) {
		hosts := []any{labHost(lab, 0), labHost(lab, 1), labHost(lab, 2)}
		req := request(t, lab, "exp-journal", map[string]any{"etc_hosts": true, "hosts": hosts}, inst("all", 3, ""))
		var journaled json.RawMessage
		req.Journal = func(state json.RawMessage) error {
			for i := range hosts {
				if strings.Contains(run(t, check, lab, i, "cat /etc/hosts"), "exp-journal") {
					t.Errorf("host %d has its block before the reservation is journaled", i)
				}
			}
			journaled = state
			return nil
		}
		if _, err := p.Reserve(ctx, req); err != nil {
			t.Fatal(err)
		}
		// e2c dies here: destroy has only the journal to release.
		if err := p.Release(ctx, &providers.Reservation{Provider: "static", State: journaled, Incomplete: true}, io.Discard); err != nil {
			t.Fatal(err)
		}
		for i := range hosts {
			if strings.Contains(run(t, check, lab, i, "cat /etc/hosts"), "exp-journal") {
				t.Errorf("host %d keeps its block after the journaled reservation is released", i)
			}
		}
	})

	t.Run("etc_hosts written and released", func(t *testing.T) {
		before := make([]string, 3)
		for i := range before {
			before[i] = run(t, check, lab, i, "cat /etc/hosts")
		}
		hosts := []any{labHost(lab, 0), labHost(lab, 1), labHost(lab, 2)}
		reserve := func(exp string) *providers.Reservation {
			req := request(t, lab, exp, map[string]any{"etc_hosts": true, "hosts": hosts}, inst("all", 3, ""))
			res, err := p.Reserve(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		reserve("exp-one")
		one := reserve("exp-one") // again: the block is replaced, not added
		two := reserve("exp-two")
		var block strings.Builder
		block.WriteString("# BEGIN e2c exp-one\n")
		for _, h := range lab.Hosts() {
			fmt.Fprintf(&block, "%s h-%s\n", h.Address4, h.Name)
		}
		block.WriteString("# END e2c exp-one\n")
		for i := range before {
			got := run(t, check, lab, i, "cat /etc/hosts")
			want := before[i] + block.String() + strings.ReplaceAll(block.String(), "exp-one", "exp-two")
			if got != want {
				t.Errorf("host %d /etc/hosts:\n%s\nwant\n%s", i, got, want)
			}
		}
		// The names resolve on the hosts.
		if out := run(t, check, lab, 0, "getent hosts h-c"); !strings.HasPrefix(out, lab.Hosts()[2].Address4.String()+" ") {
			t.Errorf("getent hosts h-c on a: %q", out)
		}

		// Release by another process: from the saved reservation.
		release := func(res *providers.Reservation) {
			saved, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			var back providers.Reservation
			if err := json.Unmarshal(saved, &back); err != nil {
				t.Fatal(err)
			}
			if err := p.Release(ctx, &back, io.Discard); err != nil {
				t.Fatal(err)
			}
		}
		release(one)
		for i := range before {
			want := before[i] + strings.ReplaceAll(block.String(), "exp-one", "exp-two")
			if got := run(t, check, lab, i, "cat /etc/hosts"); got != want {
				t.Errorf("host %d after releasing exp-one:\n%s\nwant\n%s", i, got, want)
			}
		}
		release(two)
		release(two) // nothing left: still fine
		for i := range before {
			if got := run(t, check, lab, i, "cat /etc/hosts"); got != before[i] {
				t.Errorf("host %d after release:\n%s\nwant\n%s", i, got, before[i])
			}
		}
	})
}
