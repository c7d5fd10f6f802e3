// Package emulation applies a plan's network constraints to its hosts and
// proves that they hold: a preflight on every host before anything is
// touched, one tc batch per host and device over the host's existing
// connection, measurements between sample pairs before and after, and a
// reset that removes exactly what was installed.
package emulation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/e2c-dev/e2c/engine/fanout"
	"github.com/e2c-dev/e2c/engine/netem"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
)

// Options configure an emulation.
type Options struct {
	Connect transport.Connector
	Forks   int       // hosts worked on at once; default 64
	Out     io.Writer // progress and the validation table
	// Agent gives the local path of an e2c binary for linux/<goarch>, copied
	// to the measured hosts. Nil: no measurements.
	Agent func(goarch string) (string, error)
}

// Applied is what an apply installed, saved so that a later e2c process
// can remove it: for each host, the devices whose root qdisc e2c replaced.
type Applied map[string]HostState

// HostState is what was installed on one host.
type HostState struct {
	Devices []string `json:"devices"`
	Sudo    bool     `json:"sudo,omitempty"` // tc ran through sudo -n
}

// Network is the constraints of one plan on its hosts.
type Network struct {
	o     Options
	p     *plan.Plan
	pre   map[string]netem.Preflight
	Rules []*netem.Rules // once Apply has found the devices
}

// New prepares the emulation of p's constraints.
func New(p *plan.Plan, o Options) *Network {
	if o.Forks <= 0 {
		o.Forks = 64
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	return &Network{o: o, p: p, pre: map[string]netem.Preflight{}}
}

// Preflight checks every host that shapes traffic, or that measurements
// use, before anything is touched: tc, privileges, and the kernel's sch_htb
// and, where delay or loss is asked, sch_netem. Every host's problem is
// reported at once, hosts with the same problem together.
func (n *Network) Preflight(ctx context.Context) error {
	needNetem := map[string]bool{}
	hosts := map[string]bool{}
	for _, c := range n.p.Constraints {
		hosts[c.Src] = true
		needNetem[c.Src] = needNetem[c.Src] || c.Shape.NeedsNetem()
	}
	for _, pr := range n.pairs() {
		hosts[pr.src], hosts[pr.dst] = true, true
	}
	start := time.Now()
	var mu sync.Mutex
	err := each(ctx, n.o.Connect, n.o.Forks, slices.Sorted(maps.Keys(hosts)), func(ctx context.Context, h string, r transport.Runner) error {
		res, err := r.Run(ctx, transport.Command{Script: netem.PreflightScript})
		if err != nil {
			return err
		}
		mu.Lock()
		n.pre[h] = netem.ParsePreflight(res.Stdout)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("network preflight: %w", err)
	}
	fmt.Fprintf(n.o.Out, "network: preflight of %d hosts done in %s\n", len(hosts), time.Since(start).Round(time.Millisecond))
	byProblem := map[string][]string{}
	for h, pf := range n.pre {
		if _, shapes := needNetem[h]; !shapes {
			continue
		}
		if msg := pf.Problem(needNetem[h]); msg != "" {
			byProblem[msg] = append(byProblem[msg], h)
		}
	}
	if len(byProblem) == 0 {
		return nil
	}
	var lines []string
	for msg, hs := range byProblem {
		sort.Strings(hs)
		lines = append(lines, fmt.Sprintf("%s: %s", hostList(hs), msg))
	}
	sort.Strings(lines)
	return fmt.Errorf("network.yaml cannot be applied, nothing was changed:\n  %s", strings.Join(lines, "\n  "))
}

// Apply finds the device carrying each destination on each host, then
// replaces the root qdisc of those devices with the rules, one batch per
// device in one command per host. record is called with what is about to
// be installed before anything is, so that a crash still leaves it known.
func (n *Network) Apply(ctx context.Context, record func(Applied) error) error {
	dests := map[string][]netip.Addr{}
	addrs := n.p.Addresses()
	for _, c := range n.p.Constraints {
		for _, a := range addrs[c.Dst] {
			if netem.Usable(a) && !slices.Contains(dests[c.Src], a) {
				dests[c.Src] = append(dests[c.Src], a)
			}
		}
	}
	var mu sync.Mutex
	devices := map[string]map[netip.Addr]string{}
	err := each(ctx, n.o.Connect, n.o.Forks, slices.Sorted(maps.Keys(dests)), func(ctx context.Context, h string, r transport.Runner) error {
		// ip exits 1 when any address has no route; ParseRoutes says which.
		res, err := r.Run(ctx, transport.Command{Script: netem.RouteScript(dests[h])})
		var exit *transport.ExitError
		if err != nil && !errors.As(err, &exit) {
			return err
		}
		devs, err := netem.ParseRoutes(dests[h], res.Stdout, res.Stderr)
		if err != nil {
			return err
		}
		mu.Lock()
		devices[h] = devs
		mu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("finding the devices: %w", err)
	}
	n.Rules, err = netem.Build(n.p.Constraints, n.p.Addresses(), func(h string, a netip.Addr) string { return devices[h][a] })
	if err != nil {
		return err
	}
	byHost := n.byHost()
	applied := Applied{}
	for h, rs := range byHost {
		applied[h] = HostState{Devices: netem.Devices(rs), Sudo: n.pre[h].Sudo}
	}
	if err := record(applied); err != nil {
		return err
	}
	fmt.Fprintf(n.o.Out, "network: applying %d constraints on %d hosts\n", len(n.p.Constraints), len(byHost))
	start := time.Now()
	err = each(ctx, n.o.Connect, n.o.Forks, slices.Sorted(maps.Keys(byHost)), func(ctx context.Context, h string, r transport.Runner) error {
		res, err := r.Run(ctx, transport.Command{Script: netem.ApplyScript(byHost[h]), Sudo: n.pre[h].Sudo})
		if err != nil && res.Stderr != "" {
			return errors.New(netem.ApplyError(byHost[h], res.Stderr))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("applying network.yaml: %w", err)
	}
	fmt.Fprintf(n.o.Out, "network: applied in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

func (n *Network) byHost() map[string][]*netem.Rules {
	out := map[string][]*netem.Rules{}
	for _, r := range n.Rules {
		out[r.Host] = append(out[r.Host], r)
	}
	return out
}

// Reset removes what Apply installed, on every host at once; a host
// already clean is no error. It returns the hosts still shaped.
func Reset(ctx context.Context, a Applied, connect transport.Connector, forks int) (Applied, error) {
	var mu sync.Mutex
	left := Applied{}
	err := each(ctx, connect, forks, slices.Sorted(maps.Keys(a)), func(ctx context.Context, h string, r transport.Runner) error {
		_, err := r.Run(ctx, transport.Command{Script: netem.ResetScript(a[h].Devices), Sudo: a[h].Sudo})
		if err != nil {
			mu.Lock()
			left[h] = a[h]
			mu.Unlock()
		}
		return err
	})
	if err != nil {
		return left, fmt.Errorf("removing the network emulation: %w", err)
	}
	return left, nil
}

// each runs f on every host, at most forks at once, and returns every
// host's error, each named by its host.
func each(ctx context.Context, connect transport.Connector, forks int, hosts []string, f func(context.Context, string, transport.Runner) error) error {
	errs := fanout.Each(ctx, len(hosts), max(forks, 1), func(ctx context.Context, i int) error {
		r, err := connect(ctx, hosts[i])
		if err != nil {
			return err
		}
		return f(ctx, hosts[i], r)
	})
	for i, err := range errs {
		if err != nil {
			errs[i] = fmt.Errorf("%s: %w", hosts[i], err)
		}
	}
	return errors.Join(errs...)
}

// hostList names hosts, shortened past a handful.
func hostList(hs []string) string {
	if len(hs) <= 5 {
		return "host " + strings.Join(hs, ", ")
	}
	return fmt.Sprintf("%d hosts (%s, ...)", len(hs), strings.Join(hs[:5], ", "))
}
