package experiment

// Changing a running experiment: e2c apply, e2c scale and the changes of
// a timeline. The scenario as it should now be is planned on the hosts
// kept, compared with the plan the hosts run (engine/change), and only
// what differs is done, in this order:
//
//  1. the hosts removed run finalize (their results land in the run
//     folder), then their jobs are stopped, their containers removed,
//     their network rules reset, and their provider releases them; if
//     their finalize does not end, they stay and nothing else is done;
//  2. the providers add the hosts of new instances;
//  3. the new hosts get their services; the hosts whose network rules
//     changed get them again; the new hosts get prepare and launch (each
//     step the run has been through); the hosts whose rendered tasks
//     changed run their play's reconfigure tasks, or are named as needing
//     them.
//
// A step that fails on some hosts leaves the others going on; the change's
// record (timeline.json) says which.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/change"
	"github.com/e2c-dev/e2c/engine/emulation"
	"github.com/e2c-dev/e2c/engine/execute"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/services"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// appliedPlanFile is the plan the hosts run, in the state folder: what a
// change is compared with.
const appliedPlanFile = "plan.json"

// saveApplied writes the plan the hosts now run.
func (x *Session) saveApplied(p *plan.Plan) error {
	return results.WriteFile(stateDir(x.o.ScenarioDir), appliedPlanFile, p.WriteJSON)
}

// readApplied reads the plan the hosts run, as the last run or change
// left it.
func readApplied(scenario string) (*plan.Plan, error) {
	data, err := os.ReadFile(filepath.Join(stateDir(scenario), appliedPlanFile))
	if err != nil {
		return nil, fmt.Errorf("the plan the kept hosts run: %w (deploy again with this e2c)", err)
	}
	p := &plan.Plan{}
	if err := json.Unmarshal(data, p); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(stateDir(scenario), appliedPlanFile), err)
	}
	return p, nil
}

// edited returns a copy of sc with the quantities of scale (by
// layer.service, lower-case) and the links of network.yaml changed as
// links say: each sets the fields it gives of the link with its src and
// dst, or is added. sc is left as it is.
func edited(sc *schema.Scenario, scale map[string]int, links []schema.Link) *schema.Scenario {
	c := *sc
	ls := *sc.LayersServices
	ls.Layers = slices.Clone(ls.Layers)
	for i := range ls.Layers {
		l := &ls.Layers[i]
		l.Services = slices.Clone(l.Services)
		for j := range l.Services {
			if q, ok := scale[strings.ToLower(l.Name+"."+l.Services[j].Name)]; ok {
				l.Services[j].Quantity = q
			}
		}
	}
	c.LayersServices = &ls
	n := *sc.Network
	n.Links = slices.Clone(n.Links)
	for _, ch := range links {
		i := slices.IndexFunc(n.Links, func(l schema.Link) bool {
			return strings.EqualFold(l.Src, ch.Src) && strings.EqualFold(l.Dst, ch.Dst)
		})
		if i < 0 {
			n.Links = append(n.Links, ch)
			continue
		}
		l := &n.Links[i]
		if ch.Has("delay") {
			l.Delay = ch.Delay
		}
		if ch.Has("rate") {
			l.Rate = ch.Rate
		}
		if ch.Has("loss") {
			l.Loss = ch.Loss
		}
		if ch.Has("symmetric") {
			l.Symmetric = ch.Symmetric
		}
	}
	c.Network = &n
	return &c
}

// placement keeps, for each instance, the hosts that p (the plan the hosts
// run) placed it on, in order, up to its quantity. It returns them, and
// the hosts of p that no instance keeps: those a change removes.
func placement(p *plan.Plan, instances []plan.Instance) (keep [][]string, removed []string) {
	byInstance := map[string][]string{}
	for _, h := range p.Hosts {
		byInstance[h.Instance] = append(byInstance[h.Instance], h.Name)
	}
	kept := map[string]bool{}
	keep = make([][]string, len(instances))
	for i, in := range instances {
		hs := byInstance[in.ID()]
		keep[i] = hs[:min(len(hs), in.Service.Quantity)]
		for _, h := range keep[i] {
			kept[h] = true
		}
	}
	for _, h := range p.Hosts {
		if !kept[h.Name] {
			removed = append(removed, h.Name)
		}
	}
	return keep, removed
}

// standIns are the machines of a plan of instances that keeps the hosts
// keep names (found in p) and gives the others stand-ins, named "new-"
// and their key, which no host has: what a dry run of a change shows.
func standIns(p *plan.Plan, instances []plan.Instance, keep [][]string) [][]plan.Machine {
	byName := map[string]plan.Machine{}
	for _, h := range p.Hosts {
		byName[h.Name] = h.Machine
	}
	synthetic := plan.Synthetic(instances)
	out := make([][]plan.Machine, len(instances))
	for i := range instances {
		for m := range instances[i].Service.Quantity {
			if m < len(keep[i]) {
				out[i] = append(out[i], byName[keep[i][m]])
				continue
			}
			s := synthetic[i][m]
			s.Name, s.Address = "new-"+s.Name, "new-"+s.Address
			out[i] = append(out[i], s)
		}
	}
	return out
}

// preview plans target on the hosts before runs, stand-ins for the new
// ones, and compares it with before.
func (x *Session) preview(before *plan.Plan, target *schema.Scenario, opt plan.Options) (*change.Diff, error) {
	instances := plan.Expand(target.LayersServices)
	if err := x.o.Providers.Check(target.LayersServices.Environment, instances); err != nil {
		return nil, err
	}
	keep, _ := placement(before, instances)
	after, err := plan.Build(target, x.defs, standIns(before, instances, keep), opt)
	if err != nil {
		return nil, err
	}
	return change.Plans(before, after), nil
}

// changer is one change being made to the experiment a run works on.
type changer struct {
	c   *results.Change
	tl  *results.TimelineWriter
	ran map[string]bool // the steps the run has been through, whose work new hosts need
}

// step performs one step of the change, recorded in it.
func (ch *changer) step(ctx context.Context, name string, f func() error) error {
	s := &results.Step{Name: name, Start: time.Now(), Status: results.Running}
	ch.tl.Update(ch.c, func(c *results.Change) { c.Steps = append(c.Steps, s) })
	err := f()
	ch.tl.Update(ch.c, func(*results.Change) {
		end := time.Now()
		s.End, s.Status = &end, statusOf(ctx, err)
		if err != nil {
			s.Error = err.Error()
		}
	})
	return err
}

// did records what the change did on hosts (err: what failed there).
func (ch *changer) did(what string, hosts []string, errs map[string]error) {
	ch.tl.Update(ch.c, func(c *results.Change) {
		for _, h := range hosts {
			e := ""
			if err := errs[h]; err != nil {
				e = err.Error()
			}
			c.Hosts = append(c.Hosts, results.ChangeHost{Host: h, Did: what, Error: e})
		}
	})
}

// change makes the experiment of r become target (see the top of this
// file), under the configuration conf whose launch ran last.
func (r *run) change(ctx context.Context, target *schema.Scenario, conf string, ch *changer) error {
	x := r.x
	before := r.planOf(conf)
	instances := plan.Expand(target.LayersServices)
	keep, removed := placement(before, instances)
	// Hosts a failed change released may still be in the plan.
	removed = slices.DeleteFunc(removed, func(h string) bool { _, held := x.hosts[h]; return !held })
	for i := range keep {
		keep[i] = slices.DeleteFunc(keep[i], func(h string) bool { _, held := x.hosts[h]; return !held })
	}
	resized, err := x.checkResize(instances, keep, removed)
	if err != nil {
		return err
	}
	if len(removed) > 0 {
		// Released only once their results are fetched: else they stay,
		// and the run's finalize fetches them.
		if err := ch.step(ctx, "remove", func() error { return r.removeHosts(ctx, before, conf, removed, ch) }); err != nil {
			return fmt.Errorf("the hosts to remove are kept, nothing else was changed: %w", err)
		}
	}
	var errs []error
	if len(resized) > 0 {
		x.changed = true
		// A resize half done is worse than a slow one: it is not cancelled.
		if err := ch.step(ctx, "resize", func() error { return x.resize(context.WithoutCancel(ctx), target, instances, keep, resized) }); err != nil {
			r.heldOnly()
			return err
		}
	} else {
		x.machines = x.machinesOf(keep)
	}
	// The plans of every configuration, on the hosts as they now are.
	sc, plans, first, exec := r.sc, r.plans, r.first, r.exec
	r.sc = target
	if err := r.plan(r.rec.rec.Repeat, r.exec.Memory()); err != nil {
		r.sc, r.plans, r.first, r.exec = sc, plans, first, exec
		r.heldOnly()
		return err
	}
	if err := x.saveApplied(r.first); err != nil {
		errs = append(errs, err)
	}
	now := r.planOf(conf)
	d := change.Plans(before, now)
	ch.tl.Update(ch.c, func(c *results.Change) { c.Diff = d.Lines() })
	failed := map[string]error{}
	added := func() []string {
		return slices.DeleteFunc(slices.Clone(d.Added), func(h string) bool { return failed[h] != nil })
	}
	if len(d.Added) > 0 {
		x.learnFacts(ctx, d.Added)
		x.recordHosts(r.rec, now, d.Added)
		if ch.ran["services"] {
			errs = append(errs, r.startServices(ctx, d.Added, failed, ch))
		}
	}
	// The network before prepare and launch, as in a run.
	if len(d.Shaped) > 0 || len(d.Unshaped) > 0 {
		if ch.ran["network"] {
			errs = append(errs, ch.step(ctx, "network", func() error { return r.reshape(ctx, now, d, failed, ch) }))
		} else {
			fmt.Fprintf(r.out, "network: rules are not on the hosts (the run removed them, or has not applied them yet): the links changed are not applied; e2c network applies network.yaml\n")
			ch.did("network not applied (no rules on the hosts)", d.Shaped, nil)
		}
	}
	for h, err := range r.sampleAdded(ctx, now, added()) {
		fmt.Fprintf(r.out, "monitoring: warning: not started on %s: %v\n", h, err)
	}
	for _, ph := range []schema.Phase{schema.Prepare, schema.Launch} {
		if !ch.ran[string(ph)] || len(added()) == 0 {
			continue
		}
		c, q := conf, now
		if ph == schema.Prepare { // once, for every configuration
			c, q = "", r.first
		}
		errs = append(errs, ch.step(ctx, string(ph), func() error {
			return r.failedOn(failed)(r.runOn(ctx, ph, c, q.Only(added())))
		}))
	}
	if len(d.Added) > 0 {
		ch.did("added", d.Added, failed)
	}
	if len(d.Reconfigure) > 0 {
		errs = append(errs, ch.step(ctx, string(schema.Reconfigure), func() error { return r.reconfigure(ctx, now, d.Reconfigure, ch) }))
	}
	errs = append(errs, x.st.Save(x.o.ScenarioDir))
	return errors.Join(errs...)
}

// planOf is the run's plan under configuration conf ("": the first).
func (r *run) planOf(conf string) *plan.Plan {
	if p, ok := r.plans[conf]; ok {
		return p
	}
	return r.first
}

// heldOnly makes the run work on the hosts its reservations hold, after a
// change that failed half-way: its plans run on those alone, and the plan
// saved for the next change names no other host as running.
func (r *run) heldOnly() {
	x := r.x
	x.attachAll()
	held := slices.Collect(maps.Keys(x.hosts))
	for c, p := range r.plans {
		r.plans[c] = p.Only(held)
	}
	r.first = r.first.Only(held)
	if err := x.saveApplied(r.first); err != nil {
		fmt.Fprintf(r.out, "warning: %v\n", err)
	}
}

// checkResize says, before anything is touched, which testbeds a change
// resizes, and refuses one whose provider cannot.
func (x *Session) checkResize(instances []plan.Instance, keep [][]string, removed []string) ([]string, error) {
	var resized []string
	add := func(tb string) {
		if !slices.Contains(resized, tb) {
			resized = append(resized, tb)
		}
	}
	for i, in := range instances {
		if len(keep[i]) < in.Service.Quantity {
			add(in.Testbed)
		}
	}
	for _, h := range removed {
		add(x.testbeds[h])
	}
	var errs []error
	for _, tb := range resized {
		p, err := x.o.Providers.Get(tb)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if x.st.Reservations[tb] == nil {
			errs = append(errs, fmt.Errorf("the kept experiment has no %s hosts: a change adds and removes hosts of the testbeds it runs on; deploy again to add a testbed", tb))
			continue
		}
		if _, ok := p.(providers.Resizer); !ok {
			errs = append(errs, fmt.Errorf("the %s provider cannot add or remove hosts of a running experiment (see the README's %s section); nothing was changed", tb, tb))
		}
	}
	return resized, errors.Join(errs...)
}

// removeHosts runs finalize on the hosts removed (their results go to the
// run folder), then stops what still runs there: background jobs,
// containers and network rules. Their provider releases them next. When
// finalize fails on any of them, or the change is interrupted, nothing of
// that is done: the hosts stay, with what they produced.
func (r *run) removeHosts(ctx context.Context, p *plan.Plan, conf string, hosts []string, ch *changer) error {
	failed := map[string]error{}
	err := r.failedOn(failed)(r.runOn(ctx, schema.Finalize, conf, p.Only(hosts)))
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		ch.did("kept: finalize did not end", hosts, failed)
		return err
	}
	// What a run fetches of every host at its end is fetched of these now:
	// their samplers' files and their containers' logs.
	if err := r.x.stopMonitoring(ctx, r.mon.take(hosts), r.dir); err != nil {
		fmt.Fprintf(r.out, "warning: %v\n", err)
	}
	r.x.fetchContainerLogs(ctx, r.rec, hosts, r.out)
	ch.did("removed", hosts, r.x.quiesce(ctx, hosts, r.out))
	return r.x.st.Save(r.x.o.ScenarioDir)
}

// quiesce stops what still runs on hosts about to be released: their
// background jobs, containers and network rules. It returns, by host, what
// it could not remove.
func (x *Session) quiesce(ctx context.Context, hosts []string, out io.Writer) map[string]error {
	connect := stateConnect(x.st, x.pool)
	failed := map[string]error{}
	if stopped, err := x.st.stopJobs(ctx, x.o.ScenarioDir, connect, x.st.jobsOn(func(h string) bool { return slices.Contains(hosts, h) })); err != nil {
		fmt.Fprintf(out, "warning: %v\n", err)
	} else {
		sayStopped(out, stopped)
	}
	for _, h := range hosts {
		if label, ok := x.st.Containers[h]; ok {
			if _, err := services.Remove(ctx, []string{h}, reachIn(x.pool, slices.Collect(maps.Values(x.st.Reservations))...), label); err != nil {
				failed[h] = err
				continue
			}
			delete(x.st.Containers, h)
		}
	}
	for h, err := range x.unshape(ctx, hosts, connect) {
		if failed[h] == nil {
			failed[h] = err
		}
	}
	return failed
}

// unshape removes the network rules e2c installed on hosts, and forgets
// them in the state where that worked. It returns, by host, where it did
// not.
func (x *Session) unshape(ctx context.Context, hosts []string, connect transport.Connector) map[string]error {
	shaped := emulation.Applied{}
	for _, h := range hosts {
		if s, ok := x.st.Network[h]; ok {
			shaped[h] = s
		}
	}
	failed := map[string]error{}
	if len(shaped) == 0 {
		return failed
	}
	left, err := emulation.Reset(ctx, shaped, connect, 64)
	for h := range shaped {
		if _, stays := left[h]; stays {
			failed[h] = fmt.Errorf("network rules: %w", err)
		} else {
			delete(x.st.Network, h)
		}
	}
	return failed
}

// resize has the providers of testbeds give each instance its hosts: those
// keep names, then new ones.
func (x *Session) resize(ctx context.Context, target *schema.Scenario, instances []plan.Instance, keep [][]string, testbeds []string) error {
	var errs []error
	for _, tb := range testbeds {
		p, _ := x.o.Providers.Get(tb)
		r := x.st.Reservations[tb]
		var want []plan.Instance
		var kept [][]providers.Host
		for i, in := range instances {
			if in.Testbed != tb {
				continue
			}
			want = append(want, in)
			var hs []providers.Host
			for _, name := range keep[i] {
				hs = append(hs, x.hosts[name])
			}
			kept = append(kept, hs)
		}
		err := p.(providers.Resizer).Resize(ctx, r, x.request(target, tb, want, x.journalInto(r)), kept)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", tb, err))
		}
	}
	errs = append(errs, x.st.Save(x.o.ScenarioDir))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	x.attach(instances)
	return nil
}

// machinesOf are the machines of the hosts keep names.
func (x *Session) machinesOf(keep [][]string) [][]plan.Machine {
	out := make([][]plan.Machine, len(keep))
	for i, hs := range keep {
		for _, h := range hs {
			out[i] = append(out[i], x.hosts[h].Machine)
		}
	}
	return out
}

// attach takes the hosts of the reservations for instances, in order.
func (x *Session) attach(instances []plan.Instance) {
	x.machines = make([][]plan.Machine, len(instances))
	x.hosts, x.testbeds = map[string]providers.Host{}, map[string]string{}
	next := map[string]int{} // per testbed, the next of its reservation's instances
	for i, in := range instances {
		r := x.st.Reservations[in.Testbed]
		if r == nil || next[in.Testbed] >= len(r.Hosts) {
			continue
		}
		for _, h := range r.Hosts[next[in.Testbed]] {
			x.machines[i] = append(x.machines[i], h.Machine)
			x.hosts[h.Name] = h
			x.testbeds[h.Name] = in.Testbed
		}
		next[in.Testbed]++
	}
}

// startServices starts the services of new hosts: their containers and
// deploy tasks. A host that fails goes no further (failed says why).
func (r *run) startServices(ctx context.Context, hosts []string, failed map[string]error, ch *changer) error {
	q := r.first.Only(hosts)
	if q.ContainerCount() == 0 && !hasPhase(q, schema.Deploy) {
		return nil
	}
	return ch.step(ctx, "services", func() error {
		if _, err := r.x.startContainers(ctx, q, r.rec, r.out); err != nil {
			for _, h := range hosts {
				failed[h] = err // the error names the host; none goes further
			}
			return err
		}
		if !hasPhase(q, schema.Deploy) {
			return nil
		}
		return r.failedOn(failed)(r.runOn(ctx, schema.Deploy, "", q))
	})
}

// failedOn returns a function that notes in failed the hosts of a phase's
// reports that failed, and passes its error on.
func (r *run) failedOn(failed map[string]error) func([]execute.PlayReport, error) error {
	return func(reps []execute.PlayReport, err error) error {
		for _, rep := range reps {
			for _, h := range rep.Hosts {
				if h.Err != nil && failed[h.Host] == nil {
					failed[h.Host] = h.Err
				}
			}
		}
		return err
	}
}

// reshape installs the network rules again on the hosts whose rules
// changed (not on those that failed to start), and removes them from the
// hosts that have none left. The rules are not measured again: the
// network step's validation stands for the links it measured.
func (r *run) reshape(ctx context.Context, p *plan.Plan, d *change.Diff, failed map[string]error, ch *changer) error {
	x := r.x
	var errs []error
	if len(d.Unshaped) > 0 {
		failed := x.unshape(ctx, d.Unshaped, x.connect)
		for _, err := range failed {
			errs = append(errs, err)
			break // one says it: they are the same
		}
		ch.did("network removed", d.Unshaped, failed)
	}
	shaped := slices.DeleteFunc(slices.Clone(d.Shaped), func(h string) bool { return failed[h] != nil })
	if len(shaped) > 0 {
		_, err := x.emulate(ctx, p.Only(shaped), r.dir, r.out, false)
		errs = append(errs, err)
		var he map[string]error
		if err != nil {
			he = map[string]error{}
			for _, h := range shaped {
				he[h] = err
			}
		}
		ch.did("network", shaped, he)
	}
	return errors.Join(append(errs, x.st.Save(x.o.ScenarioDir))...)
}

// reconfigure runs, on the hosts of each play whose rendered tasks
// changed, the play's reconfigure tasks; hosts of a play without any are
// named as needing them.
func (r *run) reconfigure(ctx context.Context, p *plan.Plan, hosts map[int][]string, ch *changer) error {
	q := *p
	q.Plays = nil
	var needs []string
	for _, pl := range p.Plays {
		hs := hosts[pl.Index]
		if len(hs) == 0 {
			continue
		}
		if len(pl.Phases[schema.Reconfigure]) == 0 {
			for _, h := range hs {
				if !slices.Contains(needs, h) {
					needs = append(needs, h)
				}
			}
			fmt.Fprintf(r.out, "reconfigure: play %d (%s) has no reconfigure tasks; %s need it: their rendered tasks changed\n", pl.Index+1, pl.Pattern, strings.Join(hs, ", "))
			continue
		}
		one := p.Only(hs).Plays[pl.Index]
		q.Plays = append(q.Plays, one)
	}
	slices.Sort(needs)
	ch.did("needs reconfigure", needs, nil)
	if len(q.Plays) == 0 {
		return nil
	}
	failed := map[string]error{}
	err := r.failedOn(failed)(r.runOn(ctx, schema.Reconfigure, "", &q))
	var ran []string
	for _, pl := range q.Plays {
		for _, h := range pl.Hosts {
			if !slices.Contains(ran, h) {
				ran = append(ran, h)
			}
		}
	}
	slices.Sort(ran)
	ch.did("reconfigured", ran, failed)
	return err
}
