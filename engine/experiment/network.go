package experiment

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/e2c-dev/e2c/engine/emulation"
	"github.com/e2c-dev/e2c/engine/netem"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
)

// applyNetwork is the network step: preflight, a baseline, the rules, and
// their validation into the run folder. What it installs is recorded in the
// state before it is, so that a crash still lets destroy remove it. It
// returns the step's note.
func (x *experiment) applyNetwork(ctx context.Context, p *plan.Plan, dir string, out io.Writer) (string, error) {
	if len(p.Constraints) == 0 {
		return "network.yaml has no links", nil
	}
	var local []string
	for _, c := range p.Constraints {
		if h, ok := x.hosts[c.Src]; ok && h.SSH == nil && !slices.Contains(local, c.Src) {
			local = append(local, c.Src)
		}
	}
	if len(local) > 0 {
		note := fmt.Sprintf("network.yaml is not applied: hosts %s share this machine's loopback (the local provider), where links cannot be emulated; use the netns provider (root) or real hosts", strings.Join(local, ", "))
		fmt.Fprintf(out, "network: %s\n", note)
		return note, nil
	}
	n := emulation.New(p, emulation.Options{Connect: x.connect, Forks: x.o.Forks, Out: out, Agent: x.o.agent()})
	if err := n.Preflight(ctx); err != nil {
		return "", err
	}
	var base emulation.Baseline
	if !x.o.SkipNetworkCheck {
		base = n.MeasureBaseline(ctx)
	}
	err := n.Apply(ctx, func(a emulation.Applied) error {
		// Entries of hosts no longer reserved are stale: those hosts are gone.
		maps.DeleteFunc(x.st.Network, func(h string, _ emulation.HostState) bool { _, ok := x.hosts[h]; return !ok })
		if x.st.Network == nil {
			x.st.Network = emulation.Applied{}
		}
		maps.Copy(x.st.Network, a)
		return x.st.Save(x.o.ScenarioDir)
	})
	if err != nil {
		return "", err
	}
	note := fmt.Sprintf("%d constraints applied on %d hosts", len(p.Constraints), len(netem.Sources(p.Constraints)))
	if x.o.SkipNetworkCheck {
		return note + "; not validated (asked)", nil
	}
	checks, err := n.Validate(ctx, dir, base)
	if err != nil {
		return note, err
	}
	var bad []string
	for _, c := range checks {
		if !c.OK {
			bad = append(bad, c.Pos)
		}
	}
	if len(bad) > 0 {
		note += fmt.Sprintf("; validation: %d of %d entries out of tolerance or not measured (%s), see network-validate/", len(bad), len(checks), strings.Join(bad, ", "))
		fmt.Fprintf(out, "network: warning: %s\n", note)
	} else {
		note += fmt.Sprintf("; validation: all %d entries within tolerance", len(checks))
	}
	return note, nil
}

// resetNetwork removes the emulation recorded in the state, keeping in it
// the hosts where that failed.
func resetNetwork(ctx context.Context, st *State, scenario string, connect emulation.Connect, out io.Writer) error {
	if len(st.Network) == 0 {
		return nil
	}
	left, err := emulation.Reset(ctx, st.Network, connect, 64)
	if len(left) == 0 {
		fmt.Fprintf(out, "network: emulation removed from %d hosts\n", len(st.Network))
	}
	st.Network = left
	if serr := st.Save(scenario); err == nil {
		err = serr
	}
	return err
}

// DestroyNetwork removes the network emulation a deploy or `e2c network`
// left on the kept hosts, and keeps the hosts.
func DestroyNetwork(ctx context.Context, scenario string, out io.Writer) error {
	return withState(scenario, func(st *State) error {
		if len(st.Network) == 0 {
			fmt.Fprintln(out, "no network emulation to remove")
			return nil
		}
		pool := transport.NewPool(transport.PoolOptions{})
		defer pool.Close()
		return resetNetwork(context.WithoutCancel(ctx), st, scenario, stateConnect(st, pool), out)
	})
}

// stateConnect reaches the hosts of the saved reservations.
func stateConnect(st *State, pool *transport.Pool) emulation.Connect {
	return func(ctx context.Context, name string) (transport.Runner, error) {
		for _, r := range st.Reservations {
			for _, hs := range r.Hosts {
				for _, h := range hs {
					if h.Name != name {
						continue
					}
					if h.SSH == nil {
						return transport.NewLocal(h.WorkDir), nil
					}
					return pool.Runner(ctx, *h.SSH)
				}
			}
		}
		return nil, fmt.Errorf("no host %s in the saved reservations", name)
	}
}

// agent returns where to find the e2c binary copied to hosts to measure
// the network.
func (o Options) agent() func(goarch string) (string, error) {
	if o.Agent != nil {
		return o.Agent
	}
	return DefaultAgent
}

// DefaultAgent finds an e2c binary for linux/goarch: this one when it
// fits, else e2c-linux-<goarch> beside it (make agents builds them).
func DefaultAgent(goarch string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if runtime.GOOS == "linux" && runtime.GOARCH == goarch {
		return self, nil
	}
	other := filepath.Join(filepath.Dir(self), "e2c-linux-"+goarch)
	if _, err := os.Stat(other); err != nil {
		return "", fmt.Errorf("no e2c for linux/%s to measure with: build it beside this one with make agents (%s)", goarch, other)
	}
	return other, nil
}
