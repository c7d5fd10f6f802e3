// Package change compares the plan a running experiment was deployed with
// and the plan of its edited scenario: which services, hosts, network links
// and plays were added, removed or changed, which hosts need their network
// rules re-applied, and which kept hosts need reconfiguring because what
// their tasks read changed. `e2c apply` prints it and touches only that.
//
// One of the plans usually comes from a run folder's plan.json and the other
// from plan.Build, so everything is compared through its JSON encoding
// (encoding/json sorts map keys), never as Go values, and positions in the
// scenario files (which move when a file is edited) are left out.
package change

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/schema"
)

// Op is what happened to an item.
type Op byte

const (
	Added   Op = '+'
	Removed Op = '-'
	Changed Op = '~'
)

// Item is one service, host, link or play that differs.
type Item struct {
	Op   Op
	Name string // service key, host name, "src -> dst", "2 (edge.producer.*)"
	// What changed, for Changed; for Added and Removed a short description
	// (a service's host, a host's instance, a link's shape, a play's number
	// of hosts), possibly empty.
	What string
}

// Diff is the difference between two plans of one experiment. Items are in
// plan order, a removed item where it stood in the plan before.
type Diff struct {
	Services []Item // by service key
	Hosts    []Item // by host name; Changed: its machine, keys, groups or containers
	Links    []Item // network.yaml links by "src -> dst"
	Plays    []Item // by play, index (after's, before's for removed) and hosts pattern
	// Shaped are the hosts of after whose network constraints (those with
	// Src == host) differ from before's and are not none, new hosts with
	// constraints included: where rules must be (re)applied. Unshaped are the
	// kept hosts that had constraints and have none.
	Shaped, Unshaped []string
	// Reconfigure holds, by play index in after, the hosts in both plans and
	// both plays whose rendered tasks (any phase) or host variables
	// (depends_on, _self) changed: those run the play's reconfigure tasks or
	// are named as needing it.
	Reconfigure    map[int][]string
	Added, Removed []string // hosts, by name

	plays map[int]string // after's plays by index, named for Lines
}

// Plans compares two plans of one experiment. Plan-level values of a run
// (its folder, current_repeat, extra_vars) are not compared: what they
// change shows in the rendered tasks.
func Plans(before, after *plan.Plan) *Diff {
	d := &Diff{}
	d.services(before, after)
	d.hosts(before, after)
	d.links(before, after)
	d.playsOf(before, after)
	d.shaping(before, after)
	return d
}

// Empty reports whether the plans do the same on every host.
func (d *Diff) Empty() bool {
	return len(d.Services)+len(d.Hosts)+len(d.Links)+len(d.Plays)+len(d.Shaped)+len(d.Unshaped)+
		len(d.Reconfigure)+len(d.Added)+len(d.Removed) == 0
}

// Lines is the difference one line each: services, hosts, links, plays,
// then the hosts that need reconfiguring.
func (d *Diff) Lines() []string {
	var out []string
	for _, s := range []struct {
		kind  string
		items []Item
	}{{"service", d.Services}, {"host", d.Hosts}, {"link", d.Links}, {"play", d.Plays}} {
		for _, it := range s.items {
			out = append(out, it.line(s.kind))
		}
	}
	// One line per host, naming every play it needs reconfiguring in.
	var hosts []string
	in := map[string][]string{}
	for _, i := range slices.Sorted(maps.Keys(d.Reconfigure)) {
		name := d.plays[i]
		if name == "" {
			name = fmt.Sprint(i)
		}
		for _, h := range d.Reconfigure[i] {
			if in[h] == nil {
				hosts = append(hosts, h)
			}
			in[h] = append(in[h], name)
		}
	}
	for _, h := range hosts {
		word := "play"
		if len(in[h]) > 1 {
			word = "plays"
		}
		out = append(out, fmt.Sprintf("~ host %s needs reconfigure: %s %s", h, word, strings.Join(in[h], ", ")))
	}
	return out
}

// Write writes the lines, or "no change" when there are none.
func (d *Diff) Write(w io.Writer) {
	lines := d.Lines()
	if len(lines) == 0 {
		lines = []string{"no change"}
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

func (it Item) line(kind string) string {
	s := fmt.Sprintf("%c %s %s", it.Op, kind, it.Name)
	switch {
	case it.What == "":
	case it.Op == Changed:
		s += ": " + it.What
	default:
		s += " (" + it.What + ")"
	}
	return s
}

func (d *Diff) services(before, after *plan.Plan) {
	key := func(s *plan.Service) string { return s.Key }
	nb, b := named(before.Services, key)
	na, a := named(after.Services, key)
	cb, ca := containers(before), containers(after)
	for _, k := range order(nb, na) {
		sb, sa := b[k], a[k]
		switch {
		case sb == nil:
			d.Services = append(d.Services, Item{Added, k, "on " + sa.Host})
		case sa == nil:
			d.Services = append(d.Services, Item{Removed, k, "on " + sb.Host})
		default:
			var what []string
			if sb.Host != sa.Host {
				what = append(what, "host "+sb.Host+" -> "+sa.Host)
			}
			if f := fields("", generic(sb.Info), generic(sa.Info)); len(f) > 0 {
				what = append(what, "info "+strings.Join(f, ", "))
			}
			switch x, y := cb[k], ca[k]; {
			case x == nil && y != nil:
				what = append(what, "container added")
			case x != nil && y == nil:
				what = append(what, "container removed")
			case x != nil:
				if f := fields("", containerJSON(x), containerJSON(y)); len(f) > 0 {
					what = append(what, "container "+strings.Join(f, ", "))
				}
			}
			if len(what) > 0 {
				d.Services = append(d.Services, Item{Changed, k, strings.Join(what, "; ")})
			}
		}
	}
}

// host is every entry of a plan under one host name: a machine given to two
// instances is two hosts of the plan.
type host struct {
	entries    []*plan.Host
	keys       []string
	groups     []string
	ckeys      []string          // the keys of its containers, in order
	containers map[string]string // by service key, encoded
}

func hostsOf(p *plan.Plan) (names []string, out map[string]*host) {
	out = map[string]*host{}
	for _, h := range p.Hosts {
		x := out[h.Name]
		if x == nil {
			x = &host{containers: map[string]string{}}
			out[h.Name] = x
			names = append(names, h.Name)
		}
		x.entries = append(x.entries, h)
		x.keys = append(x.keys, h.Keys...)
		x.groups = append(x.groups, h.Groups...)
		for _, c := range h.Containers {
			x.ckeys = append(x.ckeys, c.Key)
			x.containers[c.Key] = encode(containerJSON(c))
		}
	}
	for _, x := range out {
		slices.Sort(x.groups)
		x.groups = slices.Compact(x.groups)
	}
	return names, out
}

// machine is what a host is besides what it runs: its machine, instance
// and testbed.
func (h *host) machine() any {
	var out []any
	for _, e := range h.entries {
		m, _ := generic(e).(map[string]any)
		delete(m, "keys")
		delete(m, "groups")
		delete(m, "containers")
		out = append(out, m)
	}
	if len(out) == 1 {
		return out[0]
	}
	return map[string]any{"entries": out}
}

func (d *Diff) hosts(before, after *plan.Plan) {
	nb, b := hostsOf(before)
	na, a := hostsOf(after)
	for _, name := range order(nb, na) {
		hb, ha := b[name], a[name]
		switch {
		case hb == nil:
			d.Added = append(d.Added, name)
			d.Hosts = append(d.Hosts, Item{Added, name, ha.entries[0].Instance})
		case ha == nil:
			d.Removed = append(d.Removed, name)
			d.Hosts = append(d.Hosts, Item{Removed, name, hb.entries[0].Instance})
		default:
			what := fields("", hb.machine(), ha.machine())
			what = appendDelta(what, "keys", hb.keys, ha.keys)
			what = appendDelta(what, "groups", hb.groups, ha.groups)
			var add, rem, changed []string
			for _, k := range order(hb.ckeys, ha.ckeys) {
				cb, inB := hb.containers[k]
				ca, inA := ha.containers[k]
				switch {
				case !inB:
					add = append(add, k)
				case !inA:
					rem = append(rem, k)
				case cb != ca:
					changed = append(changed, k)
				}
			}
			if s := delta(add, rem, changed...); s != "" {
				what = append(what, "containers "+s)
			}
			if len(what) > 0 {
				d.Hosts = append(d.Hosts, Item{Changed, name, strings.Join(what, "; ")})
			}
		}
	}
}

func (d *Diff) links(before, after *plan.Plan) {
	nb, b := linksOf(before)
	na, a := linksOf(after)
	for _, name := range order(nb, na) {
		lb, la := b[name], a[name]
		switch {
		case lb == nil:
			d.Links = append(d.Links, Item{Added, name, shape(la)})
		case la == nil:
			d.Links = append(d.Links, Item{Removed, name, shape(lb)})
		default:
			var what []string
			for _, f := range []struct{ name, b, a string }{
				{"delay", lb.Delay, la.Delay},
				{"rate", lb.Rate, la.Rate},
				{"loss", loss(lb.Loss), loss(la.Loss)},
				{"symmetric", fmt.Sprint(lb.Symmetric), fmt.Sprint(la.Symmetric)},
			} {
				if f.b != f.a {
					what = append(what, fmt.Sprintf("%s %s -> %s", f.name, none(f.b), none(f.a)))
				}
			}
			what = appendDelta(what, "src hosts", lb.SrcHosts, la.SrcHosts)
			what = appendDelta(what, "dst hosts", lb.DstHosts, la.DstHosts)
			if len(what) > 0 {
				d.Links = append(d.Links, Item{Changed, name, strings.Join(what, "; ")})
			}
		}
	}
}

// linksOf names each link "src -> dst", with "#2" and on for a pair
// written again.
func linksOf(p *plan.Plan) ([]string, map[string]*plan.Link) {
	return named(p.Network, func(l *plan.Link) string { return l.Src + " -> " + l.Dst })
}

func shape(l *plan.Link) string {
	var parts []string
	if l.Delay != "" {
		parts = append(parts, "delay "+l.Delay)
	}
	if l.Rate != "" {
		parts = append(parts, "rate "+l.Rate)
	}
	if l.Loss != 0 {
		parts = append(parts, "loss "+loss(l.Loss))
	}
	if l.Symmetric {
		parts = append(parts, "symmetric")
	}
	return strings.Join(parts, ", ")
}

func loss(l float64) string {
	if l == 0 {
		return ""
	}
	return fmt.Sprintf("%g%%", l)
}

func none(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// playsOf matches plays by hosts pattern, the nth play of a pattern in
// before with the nth in after, so that a play added or removed does not
// shift the others (the services' deploy plays come after the workflow's).
func (d *Diff) playsOf(before, after *plan.Plan) {
	key := func(p *plan.Play) string { return p.Pattern }
	nb, b := named(before.Plays, key)
	na, a := named(after.Plays, key)
	d.plays = map[int]string{}
	for _, p := range after.Plays {
		d.plays[p.Index] = playName(p)
	}
	for _, k := range order(nb, na) {
		pb, pa := b[k], a[k]
		switch {
		case pb == nil:
			d.Plays = append(d.Plays, Item{Added, playName(pa), plural(len(pa.Hosts), "host")})
		case pa == nil:
			d.Plays = append(d.Plays, Item{Removed, playName(pb), plural(len(pb.Hosts), "host")})
		default:
			if what := d.play(pb, pa); len(what) > 0 {
				d.Plays = append(d.Plays, Item{Changed, playName(pa), strings.Join(what, "; ")})
			}
		}
	}
}

func playName(p *plan.Play) string { return fmt.Sprintf("%d (%s)", p.Index+1, p.Pattern) } // 1-based, as the recap tables

// play compares one play in both plans, and records the hosts of both that
// need reconfiguring.
func (d *Diff) play(pb, pa *plan.Play) []string {
	var what []string
	if pb.Name != pa.Name {
		what = append(what, fmt.Sprintf("name %q -> %q", pb.Name, pa.Name))
	}
	what = appendDelta(what, "hosts", pb.Hosts, pa.Hosts)
	if encode(pb.Vars) != encode(pa.Vars) {
		what = append(what, "vars changed")
	}
	what = append(what, dependsOn(pb.DependsOn, pa.DependsOn)...)
	inBefore := map[string]bool{}
	for _, h := range pb.Hosts {
		inBefore[h] = true
	}
	kept := slices.DeleteFunc(slices.Clone(pa.Hosts), func(h string) bool { return !inBefore[h] })
	reconfigure := map[string]bool{}
	var vars int
	for _, h := range kept {
		if encode(pb.HostVars[h]) != encode(pa.HostVars[h]) {
			reconfigure[h] = true
			vars++
		}
	}
	if vars > 0 {
		what = append(what, "host vars changed on "+plural(vars, "host"))
	}
	phases := slices.Collect(maps.Keys(pb.Phases))
	for ph := range pa.Phases {
		if _, ok := pb.Phases[ph]; !ok {
			phases = append(phases, ph)
		}
	}
	slices.SortFunc(phases, func(x, y schema.Phase) int {
		return cmp.Or(phaseOrder(x)-phaseOrder(y), strings.Compare(string(x), string(y)))
	})
	for _, ph := range phases {
		rb, ra := runs(pb.Phases[ph]), runs(pa.Phases[ph])
		n := 0
		for _, h := range kept {
			if rb[h] != ra[h] {
				reconfigure[h] = true
				n++
			}
		}
		if n > 0 {
			what = append(what, fmt.Sprintf("%s changed on %s", ph, plural(n, "host")))
		}
	}
	for _, h := range kept {
		if reconfigure[h] {
			if d.Reconfigure == nil {
				d.Reconfigure = map[int][]string{}
			}
			d.Reconfigure[pa.Index] = append(d.Reconfigure[pa.Index], h)
		}
	}
	return what
}

// dependsOn compares a play's depends_on entries by prefix.
func dependsOn(before, after []*plan.Dependency) []string {
	if encode(before) == encode(after) {
		return nil
	}
	nb, b := named(before, func(x *plan.Dependency) string { return x.Prefix })
	na, a := named(after, func(x *plan.Dependency) string { return x.Prefix })
	withoutServices := func(x plan.Dependency) plan.Dependency { x.Services = nil; return x }
	var what []string
	for _, k := range order(nb, na) {
		xb, xa := b[k], a[k]
		switch {
		case xb == nil:
			what = append(what, "depends_on "+k+" added")
		case xa == nil:
			what = append(what, "depends_on "+k+" removed")
		default:
			if encode(withoutServices(*xb)) != encode(withoutServices(*xa)) {
				what = append(what, "depends_on "+k+" changed")
			} else if s := delta(notIn(xa.Services, xb.Services), notIn(xb.Services, xa.Services)); s != "" {
				what = append(what, "depends_on "+k+" services "+s)
			}
		}
	}
	return what
}

// runs encodes each host's tasks of one phase.
func runs(rs []*plan.Run) map[string]string {
	out := map[string]string{}
	for _, r := range rs {
		out[r.Host] = encode(tasksJSON(r.Tasks))
	}
	return out
}

// shaping finds the hosts whose network constraints differ. A constraint is
// compared by its destination, the destination's addresses (what the
// filters match) and its shape, not by the entries that asked for it.
func (d *Diff) shaping(before, after *plan.Plan) {
	b, a := constraints(before), constraints(after)
	seen := map[string]bool{}
	for _, h := range after.Hosts {
		switch name := h.Name; {
		case seen[name]:
		case a[name] != "" && a[name] != b[name]:
			d.Shaped = append(d.Shaped, name)
		case a[name] == "" && b[name] != "":
			d.Unshaped = append(d.Unshaped, name)
		}
		seen[h.Name] = true
	}
}

// constraints encodes each host's constraints, by host name.
func constraints(p *plan.Plan) map[string]string {
	type to struct {
		Dst   string `json:"dst"`
		Addrs any    `json:"addrs"`
		Shape any    `json:"shape"`
	}
	addrs := p.Addresses()
	bySrc := map[string][]to{}
	for _, c := range p.Constraints {
		bySrc[c.Src] = append(bySrc[c.Src], to{c.Dst, addrs[c.Dst], c.Shape})
	}
	out := map[string]string{}
	for src, list := range bySrc {
		slices.SortFunc(list, func(x, y to) int { return strings.Compare(x.Dst, y.Dst) })
		out[src] = encode(list)
	}
	return out
}

// containers are a plan's containers by the service key they serve.
func containers(p *plan.Plan) map[string]*plan.Container {
	out := map[string]*plan.Container{}
	for _, h := range p.Hosts {
		for _, c := range h.Containers {
			out[c.Key] = c
		}
	}
	return out
}

// phaseOrder sorts phases in running order: the services step's deploy,
// then the workflow's.
func phaseOrder(ph schema.Phase) int {
	if ph == schema.Deploy {
		return -1
	}
	if i := slices.Index(schema.Phases, ph); i >= 0 {
		return i
	}
	return len(schema.Phases)
}
