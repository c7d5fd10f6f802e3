package experiment

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/e2c-dev/e2c/engine/change"
	"github.com/e2c-dev/e2c/engine/execute"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
	"github.com/e2c-dev/e2c/schema/suggest"
)

// Edit is what Apply changes of the kept experiment.
type Edit struct {
	// DryRun prints the difference and changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Scale sets quantities, by layer.service, over what the scenario's
	// files say (e2c scale); nil for e2c apply, which makes the
	// experiment what the files say.
	Scale map[string]int `json:"scale,omitempty"`
}

// ParseScale reads e2c scale's arguments, layer.service=N.
func ParseScale(args []string) (map[string]int, error) {
	out := map[string]int{}
	for _, a := range args {
		key, val, ok := strings.Cut(a, "=")
		n, err := strconv.Atoi(val)
		switch {
		case !ok || strings.Count(key, ".") != 1:
			return nil, fmt.Errorf("%q: expected layer.service=N, such as edge.producer=6", a)
		case err != nil:
			return nil, fmt.Errorf("%q: the quantity %q is not a whole number", a, val)
		case n < 0:
			return nil, fmt.Errorf("%q: a quantity cannot be below zero", a)
		}
		out[strings.ToLower(key)] = n
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("nothing to scale: give layer.service=N, such as edge.producer=6")
	}
	return out, nil
}

// Apply changes the kept experiment (after deploy --keep, or the current
// run of the step commands) to what the scenario's files now say, with
// e.Scale's quantities over them. It prints the difference with the plan
// the hosts run, one line each, and with e.DryRun stops there; an
// unchanged scenario runs nothing on any host. The change is recorded in
// the run folder's timeline.json. It returns the difference previewed.
func (x *Session) Apply(ctx context.Context, e Edit) (*change.Diff, error) {
	st, out := x.st, x.o.Out
	if st.LastRun == "" || len(st.Reservations) == 0 {
		return nil, fmt.Errorf("%s has no kept experiment to change: deploy it with --keep, or run e2c layers-services, first", x.o.ScenarioDir)
	}
	rec, err := results.ReadRecord(st.LastRun)
	if err != nil {
		return nil, err
	}
	before, err := readApplied(x.o.ScenarioDir)
	if err != nil {
		return nil, err
	}
	// The experiment goes on with what its run chose; e2c apply drops the
	// quantities of an earlier e2c scale, e2c scale adds to them.
	x.o.ArtifactsDir, x.o.Testbed, x.o.AppConfs = st.Artifacts, st.Testbed, rec.AppConfs
	scale := map[string]int{}
	if e.Scale != nil {
		maps.Copy(scale, st.Scale)
		maps.Copy(scale, e.Scale)
	}
	st.Scale = nil
	if err := x.load(); err != nil {
		return nil, err
	}
	if err := checkScale(x.sc.LayersServices, e.Scale); err != nil {
		return nil, err
	}
	target := edited(x.sc, scale, nil)
	conf := lastLaunched(rec)
	d, err := x.preview(before, target, x.o.planOptions(rec.Repeat, st.LastRun, conf))
	if err != nil {
		return nil, err
	}
	d.Write(out)
	if e.DryRun {
		return d, nil
	}
	if d.Empty() {
		fmt.Fprintln(out, "nothing to change: no command was run on any host")
		return d, nil
	}
	x.attachAll()
	r, err := x.openRun(st.LastRun)
	if err != nil {
		return d, err
	}
	defer r.logFile.Close()
	owner := rec.Owner
	rec.Owner = results.Self()
	r.rec.rec, r.sc, r.conf = rec, x.sc, conf
	r.plans, r.first = map[string]*plan.Plan{conf: before}, before
	r.exec = execute.New(before, x.connect, execute.Options{Forks: x.o.Forks, Log: r.log,
		Progress: progress(r.term), Memory: st.Memory, JobStarting: x.jobStarting})
	if len(scale) > 0 { // saved with the change's first save: a crash still leaves them
		st.Scale = scale
	}
	err = r.changeRecorded(ctx, target, e.record(""), ranSteps(rec, st))
	r.rec.update(func(rec *results.Record) { rec.Owner = owner })
	if serr := st.Save(x.o.ScenarioDir); err == nil {
		err = serr
	}
	return d, err
}

// lastLaunched is the configuration of the run's last launch (the first
// configuration when it has none): new hosts launch under it.
func lastLaunched(rec *results.Record) string {
	conf := confs(rec.AppConfs)[0]
	for _, s := range rec.Steps {
		if s.Name == string(schema.Launch) {
			conf = s.AppConf
		}
	}
	return conf
}

// changeRecorded makes a change (see run.change) and records it in the
// run's timeline.json.
func (r *run) changeRecorded(ctx context.Context, target *schema.Scenario, c *results.Change, ran map[string]bool) error {
	tl, err := results.OpenTimeline(r.dir)
	if err != nil {
		return err
	}
	if err := tl.Begin(c); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "CHANGE %s: %s\n", c.Source, c.Asked)
	err = r.change(ctx, target, r.conf, &changer{c: c, tl: tl, ran: ran})
	if eerr := tl.End(c, statusOf(ctx, err), err); err == nil {
		err = eerr
	}
	return err
}

// record is the timeline's record of e, made by e2c apply or e2c scale
// (when: where it was made, such as "during the wait").
func (e Edit) record(when string) *results.Change {
	c := &results.Change{Source: "e2c apply", Kind: "apply", Asked: "the scenario's files as they are now"}
	if e.Scale != nil {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(e.Scale)) {
			parts = append(parts, fmt.Sprintf("%s=%d", k, e.Scale[k]))
		}
		c.Source, c.Kind, c.Asked = "e2c scale", "scale", strings.Join(parts, " ")
	}
	if when != "" {
		c.Source += " (" + when + ")"
	}
	return c
}

// ranSteps are the steps a run has been through, which the hosts a change
// adds go through too: services always, prepare and launch once they
// succeeded, and the network when its rules are still on the hosts.
func ranSteps(rec *results.Record, st *State) map[string]bool {
	ran := map[string]bool{"services": true}
	for _, s := range rec.Steps {
		if s.Status == results.Succeeded {
			ran[s.Name] = true
		}
	}
	ran["network"] = len(st.Network) > 0
	return ran
}

// checkScale refuses quantities of services that layers_services.yaml does
// not have.
func checkScale(ls *schema.LayersServices, scale map[string]int) error {
	var names []string
	for _, l := range ls.Layers {
		for _, s := range l.Services {
			names = append(names, strings.ToLower(l.Name+"."+s.Name))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(scale)) {
		if !slices.Contains(names, k) {
			return fmt.Errorf("scale %s: layers_services.yaml has no such service%s; its services: %s", k, suggest.Hint(k, names), strings.Join(names, ", "))
		}
	}
	return nil
}

// attachAll takes every host of the kept reservations, to change them.
func (x *Session) attachAll() {
	x.hosts, x.testbeds = map[string]providers.Host{}, map[string]string{}
	for tb, r := range x.st.Reservations {
		for _, hs := range r.Hosts {
			for _, h := range hs {
				x.hosts[h.Name], x.testbeds[h.Name] = h, tb
			}
		}
	}
}
