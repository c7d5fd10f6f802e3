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
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// How much of network.yaml a run applies (deploy --network): all of it; the
// rates only, for kernels without sch_netem, which delay and loss need; or
// nothing. What is left out is said in the run's output and run.json.
const (
	NetworkFull      = "full"
	NetworkRatesOnly = "rates-only"
	NetworkOff       = "off"
)

var networkModes = []string{"", NetworkFull, NetworkRatesOnly, NetworkOff}

// limitNetwork removes from n what mode leaves out, and says what.
func limitNetwork(n *schema.Network, mode string) *results.NetworkLimit {
	if mode == "" || mode == NetworkFull {
		return nil
	}
	rec := &results.NetworkLimit{Mode: mode}
	var kept []schema.Link
	for _, l := range n.Links {
		at := fmt.Sprintf("%s:%d:%d (%s -> %s)", schema.NetworkFile, l.Pos.Line, l.Pos.Col, l.Src, l.Dst)
		var out []string
		if mode == NetworkOff {
			out = append(out, "all")
		} else {
			if l.Delay > 0 {
				out = append(out, "delay "+l.Delay.String())
			}
			if l.Loss > 0 {
				out = append(out, fmt.Sprintf("loss %g%%", l.Loss))
			}
			l.Delay, l.Loss = 0, 0
			if l.Rate == 0 && len(out) > 0 {
				out = append(out, "so all: it has no rate")
			}
		}
		if len(out) > 0 {
			rec.LeftOut = append(rec.LeftOut, at+": "+strings.Join(out, ", "))
		}
		if mode == NetworkRatesOnly && l.Rate > 0 {
			kept = append(kept, l)
		}
	}
	n.Links = kept
	return rec
}

// leftOutNote says what rec left out, for the run's output.
func leftOutNote(rec *results.NetworkLimit) string {
	if len(rec.LeftOut) == 0 {
		return fmt.Sprintf("--network %s: nothing of network.yaml left out", rec.Mode)
	}
	return fmt.Sprintf("--network %s: left out %s", rec.Mode, strings.Join(rec.LeftOut, "; "))
}

// applyNetwork is the network step: preflight, a baseline, the rules, and
// their validation into the run folder. What it installs is recorded in the
// state before it is, so that a crash still lets destroy remove it. It
// returns the step's note.
func (x *Session) applyNetwork(ctx context.Context, p *plan.Plan, dir string, out io.Writer) (string, error) {
	if x.network == nil {
		return x.emulate(ctx, p, dir, out, !x.o.SkipNetworkCheck)
	}
	left := leftOutNote(x.network)
	fmt.Fprintf(out, "network: %s\n", left)
	if len(p.Constraints) == 0 {
		return left, nil
	}
	note, err := x.emulate(ctx, p, dir, out, !x.o.SkipNetworkCheck)
	return left + "; " + note, err
}

// emulate applies p's constraints, and validates them into dir.
func (x *Session) emulate(ctx context.Context, p *plan.Plan, dir string, out io.Writer, validate bool) (string, error) {
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
	if validate {
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
	switch {
	case x.o.SkipNetworkCheck:
		return note + "; not validated (asked)", nil
	case !validate:
		return note + "; not measured again", nil
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
func resetNetwork(ctx context.Context, st *State, scenario string, connect transport.Connector, out io.Writer) error {
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

// DestroyNetwork removes the network emulation a deploy or the network
// step left on the kept hosts, and keeps the hosts.
func (x *Session) DestroyNetwork(ctx context.Context) error {
	if len(x.st.Network) == 0 {
		fmt.Fprintln(x.o.Out, "no network emulation to remove")
		return nil
	}
	return resetNetwork(context.WithoutCancel(ctx), x.st, x.o.ScenarioDir, stateConnect(x.st, x.pool), x.o.Out)
}

// stateConnect reaches the hosts of the saved reservations.
func stateConnect(st *State, pool *transport.Pool) transport.Connector {
	return connectTo(pool, slices.Collect(maps.Values(st.Reservations))...)
}

// connectTo reaches the hosts of reservations rs.
func connectTo(pool *transport.Pool, rs ...*providers.Reservation) transport.Connector {
	return func(ctx context.Context, name string) (transport.Runner, error) {
		for _, r := range rs {
			if h, ok := hostOf(r, name); ok {
				if h.SSH == nil {
					return transport.NewLocal(h.WorkDir), nil
				}
				return pool.Runner(ctx, *h.SSH)
			}
		}
		return nil, fmt.Errorf("no host %s in the saved reservations", name)
	}
}

// hostOf finds the host called name in r.
func hostOf(r *providers.Reservation, name string) (providers.Host, bool) {
	for _, hs := range r.Hosts {
		for _, h := range hs {
			if h.Name == name {
				return h, true
			}
		}
	}
	return providers.Host{}, false
}

// agent returns where to find the e2c binary copied to hosts to measure
// the network.
func (o Options) agent() func(goarch string) (string, error) {
	if o.Agent != nil {
		return o.Agent
	}
	return DefaultAgent
}

// DefaultAgent finds the agent for linux/goarch beside this binary:
// e2c-agent-linux-<goarch>, or e2c-agent for this machine's architecture
// (cmd/e2c-agent; make build and make agents put them there). Else e2c
// itself, which is an agent too but seven times as large, copied to each
// host at its first connection: this binary, or e2c-linux-<goarch>.
func DefaultAgent(goarch string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	return agentBeside(self, goarch, runtime.GOOS == "linux" && runtime.GOARCH == goarch)
}

// agentBeside is DefaultAgent for the e2c binary self; native: self runs
// on linux/goarch.
func agentBeside(self, goarch string, native bool) (string, error) {
	dir := filepath.Dir(self)
	names := []string{"e2c-agent-linux-" + goarch}
	if native {
		names = append(names, "e2c-agent")
	} else {
		names = append(names, "e2c-linux-"+goarch)
	}
	for _, name := range names {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode().IsRegular() {
			return filepath.Join(dir, name), nil
		}
	}
	if native {
		return self, nil
	}
	return "", fmt.Errorf("no agent for linux/%s: build it beside this e2c with make agents (%s)", goarch, filepath.Join(dir, names[0]))
}
