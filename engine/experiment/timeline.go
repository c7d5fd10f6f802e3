package experiment

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/e2c-dev/e2c/engine/change"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// The timeline (timeline.yaml) changes the experiment during each run's
// wait, at offsets from the end of launch: scale a service, change a link,
// run tasks on a host pattern. Its changes are made one after another in
// time order; one whose time came while another was being made starts
// late, with its planned and actual time recorded, and one that cannot
// start before the wait ends is recorded as skipped. Each run starts from
// the scenario as written: what a timeline changed is undone by the next
// run's reserve (see reserve).

// timed is the changes made to a run during its wait: its timeline's,
// and those handed to it by e2c apply and e2c scale (HandToRun).
type timed struct {
	r       *run
	changes []schema.TimedChange // the timeline's, in time order
	mu      sync.Mutex           // held while a change is made
	base    *schema.Scenario     // the deploy's scenario, or the files as a manual change read them
	made    edits                // by the timeline so far
	tl      *results.TimelineWriter
}

// edits are what a timeline's changes made of the scenario so far.
type edits struct {
	scale map[string]int // quantities, by layer.service
	links []schema.Link  // links changed, in turn
}

// add takes in what c changes (a task list changes nothing).
func (e *edits) add(c schema.TimedChange) {
	if e.scale == nil {
		e.scale = map[string]int{}
	}
	for _, s := range c.Scale {
		e.scale[s.Layer+"."+s.Name] = s.Quantity
	}
	if c.Network != nil {
		e.links = append(e.links, *c.Network)
	}
}

// withTasks is sc with a workflow of one play: a timed task list, as
// launch tasks.
func withTasks(sc *schema.Scenario, tr *schema.TimedRun) *schema.Scenario {
	c := *sc
	c.Workflow = &schema.Workflow{Plays: []schema.Play{{Node: tr.Node, Hosts: tr.Hosts,
		Tasks: map[schema.Phase][]schema.Task{schema.Launch: tr.Tasks}}}}
	return &c
}

// timeline returns what makes the changes of the run's wait.
func (r *run) timeline() (*timed, error) {
	r.x.dropRequests()
	t := &timed{r: r, base: r.sc, changes: inTimeOrder(r.x.sc.Timeline)}
	var err error
	t.tl, err = results.OpenTimeline(r.dir)
	return t, err
}

// inTimeOrder are the changes of t (nil: none) in time order, those at one
// time in file order.
func inTimeOrder(t *schema.Timeline) []schema.TimedChange {
	if t == nil {
		return nil
	}
	changes := slices.Clone(t.Changes)
	slices.SortStableFunc(changes, func(a, b schema.TimedChange) int { return cmp.Compare(a.At, b.At) })
	return changes
}

// ran are the steps a run in its wait has been through.
func (t *timed) ran() map[string]bool {
	ran := map[string]bool{"services": true, "prepare": true, "launch": true}
	for _, s := range t.r.rec.steps() {
		ran["network"] = ran["network"] || s.Name == "network" && s.Status == results.Succeeded
	}
	return ran
}

// checkTimeline refuses, before anything is reserved, timed changes that
// would come after the wait ends.
func checkTimeline(t *schema.Timeline, d time.Duration) error {
	if t == nil {
		return nil
	}
	var errs schema.Errors
	for _, c := range t.Changes {
		if c.At >= d {
			errs.At(c.Node.At("at"), "timeline: at %s is not within the run's wait (--duration %s): a timed change happens during the wait", c.At, d)
		}
	}
	return errs.Err()
}

// play makes the changes due at start+at, until end; ctx ends it early.
// It returns when every change is made or skipped, with the errors of
// those that failed.
func (t *timed) play(ctx context.Context, start, end time.Time) error {
	var errs []error
	for i, c := range t.changes {
		rc := timedRecord(c, start)
		if !waitUntil(ctx, *rc.PlannedAt) {
			return errors.Join(append(errs, t.skip(t.changes[i:], start, "interrupted before its time"))...)
		}
		if time.Now().After(end) {
			return errors.Join(append(errs, t.skip(t.changes[i:], start, "the run's wait ended before it could start"))...)
		}
		if err := t.make(ctx, c, rc); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", rc.Source, err))
		}
		if late := rc.Late(); late > time.Second {
			fmt.Fprintf(t.r.out, "timeline: %s started %s after its planned time\n", rc.Source, late.Round(100*time.Millisecond))
		}
	}
	return errors.Join(errs...)
}

// timedRecord is the timeline's record of a timed change of a wait that
// began at start.
func timedRecord(c schema.TimedChange, start time.Time) *results.Change {
	planned, due := c.At.Seconds(), start.Add(c.At)
	return &results.Change{Source: fmt.Sprintf("%s:%d:%d", schema.TimelineFile, c.Pos.Line, c.Pos.Col),
		Kind: kindOf(c), Asked: describeChange(c), Planned: &planned, PlannedAt: &due}
}

// skip records changes that were not made, and why.
func (t *timed) skip(changes []schema.TimedChange, start time.Time, why string) error {
	var errs []error
	for _, c := range changes {
		rc := timedRecord(c, start)
		errs = append(errs, t.tl.Begin(rc), t.tl.End(rc, results.Skipped, fmt.Errorf("not made: %s", why)))
		fmt.Fprintf(t.r.out, "timeline: %s not made: %s\n", rc.Source, why)
	}
	return errors.Join(errs...)
}

// make makes one timed change.
func (t *timed) make(ctx context.Context, c schema.TimedChange, rc *results.Change) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.r
	if c.Run != nil {
		return t.run(ctx, c.Run, rc)
	}
	t.made.add(c)
	fmt.Fprintf(r.out, "TIMELINE +%s: %s\n", c.At, rc.Asked)
	if err := t.tl.Begin(rc); err != nil {
		return err
	}
	err := r.change(ctx, t.target(), r.conf, &changer{c: rc, tl: t.tl, ran: t.ran()})
	return errors.Join(err, t.tl.End(rc, statusOf(ctx, err), err))
}

// target is the scenario as the changes so far make it.
func (t *timed) target() *schema.Scenario {
	target := edited(t.base, t.made.scale, t.made.links)
	if t.r.x.network != nil {
		limitNetwork(target.Network, t.r.x.o.Network)
	}
	return target
}

// manual makes a change handed to the run by e2c apply or e2c scale: the
// scenario's files as they are now, with e's quantities, and the
// timeline's changes made so far over them. It returns the difference.
func (t *timed) manual(ctx context.Context, e Edit) ([]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, x := t.r, t.r.x
	c, err := Check(x.o, r.dir)
	if err != nil {
		return nil, err
	}
	if err := checkScale(c.Scenario.LayersServices, e.Scale); err != nil {
		return nil, err
	}
	base, scale, defs := t.base, maps.Clone(t.made.scale), x.defs
	t.base, x.defs = edited(c.Scenario, e.Scale, nil), c.Defs
	for k := range e.Scale { // what was asked now goes over the timeline's
		delete(t.made.scale, k)
	}
	d, err := x.preview(r.planOf(r.conf), t.target(), x.o.planOptions(r.rec.rec.Repeat, r.dir, r.conf))
	if err != nil || e.DryRun || d.Empty() {
		t.base, t.made.scale, x.defs = base, scale, defs
		if err == nil && d.Empty() {
			return []string{"no change: nothing was run on any host"}, nil
		}
		return linesOf(d), err
	}
	target := t.target()
	rc := e.record("during the wait")
	fmt.Fprintf(r.out, "CHANGE %s: %s\n", rc.Source, rc.Asked)
	if err := t.tl.Begin(rc); err != nil {
		return nil, err
	}
	err = r.change(ctx, target, r.conf, &changer{c: rc, tl: t.tl, ran: t.ran()})
	return d.Lines(), errors.Join(err, t.tl.End(rc, statusOf(ctx, err), err))
}

// linesOf is d's lines, none for no d.
func linesOf(d *change.Diff) []string {
	if d == nil {
		return nil
	}
	return d.Lines()
}

// run runs a timed task list on the hosts its pattern selects, as a play
// of launch under the run's current configuration.
func (t *timed) run(ctx context.Context, tr *schema.TimedRun, rc *results.Change) error {
	r := t.r // t.mu is held by make
	fmt.Fprintf(r.out, "TIMELINE: %s\n", rc.Asked)
	if err := t.tl.Begin(rc); err != nil {
		return err
	}
	p, err := plan.Build(withTasks(r.sc, tr), r.x.defs, r.x.machines, r.x.o.planOptions(r.rec.rec.Repeat, r.dir, r.conf))
	if err == nil {
		failed := map[string]error{}
		err = r.failedOn(failed)(r.runOn(ctx, schema.Launch, r.conf, p))
		if len(p.Plays) > 0 {
			(&changer{c: rc, tl: t.tl}).did("ran", p.Plays[0].Hosts, failed)
		}
	}
	return errors.Join(err, t.tl.End(rc, statusOf(ctx, err), err))
}

// waitUntil sleeps until t, and reports false when ctx ended first.
func waitUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

func kindOf(c schema.TimedChange) string {
	switch {
	case len(c.Scale) > 0:
		return "scale"
	case c.Network != nil:
		return "network"
	}
	return "run"
}

// describeChange says in one line what a timed change asks.
func describeChange(c schema.TimedChange) string {
	var parts []string
	switch {
	case len(c.Scale) > 0:
		for _, s := range c.Scale {
			parts = append(parts, fmt.Sprintf("%s.%s=%d", s.Layer, s.Name, s.Quantity))
		}
	case c.Network != nil:
		l := c.Network
		parts = append(parts, fmt.Sprintf("%s -> %s", l.Src, l.Dst))
		given := map[string]string{"delay": l.Delay.String(), "rate": l.Rate.String(), "loss": fmt.Sprintf("%g%%", l.Loss), "symmetric": fmt.Sprint(l.Symmetric)}
		for _, k := range slices.Sorted(maps.Keys(given)) {
			if l.Has(k) {
				parts = append(parts, k+" "+given[k])
			}
		}
	case c.Run != nil:
		parts = append(parts, fmt.Sprintf("run %d tasks on %s", len(c.Run.Tasks), c.Run.Hosts))
	}
	s := strings.Join(parts, " ")
	if c.Name != "" {
		s = c.Name + ": " + s
	}
	return s
}
