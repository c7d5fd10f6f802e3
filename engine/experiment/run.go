package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/execute"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// A run is a list of steps that one runner (drive) performs in order and
// records in run.json, each with its start, end and status.
type step struct {
	name, conf string
	// closes names the step whose work this one ends (finalize closes
	// launch): it runs whenever that one ran, even after a failure or an
	// interrupt, then under a fresh time limit. Any other step runs only
	// while every step before it succeeded.
	closes string
	do     func(ctx context.Context, s *results.Step) error
}

// run is a run folder being worked on: by a deploy, or by one step command.
type run struct {
	x       *Session
	sc      *schema.Scenario // what its plans are of: the session's, or as a change left it
	conf    string           // the configuration of the step running
	dir     string
	rec     *recorder
	plans   map[string]*plan.Plan // by application configuration
	first   *plan.Plan            // the first configuration's: services, network, prepare
	exec    *execute.Executor     // of first
	log     *slog.Logger          // to the run's e2c.log and the terminal
	out     io.Writer             // lines to log
	term    io.Writer             // lines to the terminal alone (progress)
	logFile *os.File
	mon     *monitoring
	reports []execute.PlayReport
	// interrupted is set while a closing step runs after an interrupt.
	interrupted bool
}

// runOnce performs run number repeat into a new run folder. Whichever way
// it returns, the record is closed with the run's outcome.
func (x *Session) runOnce(ctx context.Context, repeat int, init func(*results.Record)) (dir string, err error) {
	r, err := x.newRun(ctx, repeat, init)
	if r == nil {
		return "", err
	}
	defer r.logFile.Close()
	label := fmt.Sprintf("run %d of %d", repeat+1, x.o.Repeat+1)
	fmt.Fprintf(r.out, "%s: %s\n", label, r.dir)
	if err == nil {
		err = r.drive(ctx, r.steps())
		err = errors.Join(err, r.wrapUp(ctx))
	}
	err = r.close(ctx, err)
	fmt.Fprintf(r.out, "%s %s: %s\n", label, r.rec.rec.Status, r.dir)
	return r.dir, err
}

// steps are those of a whole run: services, network, prepare, monitoring,
// then launch, wait and finalize for each application configuration.
func (r *run) steps() []step {
	steps := []step{
		{name: "services", do: r.services},
		{name: "network", do: r.network},
		r.phase(schema.Prepare, ""),
	}
	if r.x.sc.LayersServices.Monitoring != nil {
		steps = append(steps, step{name: "monitoring", do: func(ctx context.Context, s *results.Step) error {
			r.mon, s.Note = r.x.startMonitoring(ctx, r.first, r.dir, r.out)
			return nil // a host that cannot be sampled is named in the note
		}})
	}
	for _, conf := range confs(r.x.o.AppConfs) {
		steps = append(steps, r.phase(schema.Launch, conf),
			step{name: "wait", conf: conf, do: r.wait},
			r.phase(schema.Finalize, conf))
	}
	return steps
}

// drive performs steps in order (see step) and returns their errors.
func (r *run) drive(ctx context.Context, steps []step) error {
	var errs []error
	ran := map[[2]string]bool{}
	for _, st := range steps {
		sctx := ctx
		if st.closes == "" && (len(errs) > 0 || ctx.Err() != nil) {
			continue
		}
		if st.closes != "" {
			if !ran[[2]string{st.closes, st.conf}] {
				continue
			}
			if r.interrupted = ctx.Err() != nil; r.interrupted {
				var cancel context.CancelFunc
				sctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), r.x.o.FinalizeTimeout)
				defer cancel()
			}
		}
		ran[[2]string{st.name, st.conf}] = true
		r.conf = st.conf
		s := r.rec.begin(st.name, st.conf)
		err := st.do(sctx, s)
		status := statusOf(sctx, err)
		if s.Status != results.Running { // the step said (a wait cut short)
			status = s.Status
		}
		r.rec.end(s, status, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s%s: %w", st.name, confLabel(st.conf), err))
		}
	}
	return errors.Join(errs...)
}

// services is the services step: the definitions' containers, then their
// own deploy tasks.
func (r *run) services(ctx context.Context, s *results.Step) error {
	n, err := r.x.startContainers(ctx, r.first, r.rec, r.out)
	if err != nil || !hasPhase(r.first, schema.Deploy) {
		if err == nil && n == 0 {
			s.Note = "no service definition used declares containers or deploy tasks"
		}
		return err
	}
	return r.runPhase(ctx, schema.Deploy, "")
}

// network is the network step.
func (r *run) network(ctx context.Context, s *results.Step) (err error) {
	fmt.Fprintln(r.out, "NETWORK")
	s.Note, err = r.x.applyNetwork(ctx, r.first, r.dir, r.out)
	return err
}

// phase is the step of a workflow phase under configuration conf.
func (r *run) phase(ph schema.Phase, conf string) step {
	st := step{name: string(ph), conf: conf, do: func(ctx context.Context, _ *results.Step) error {
		var stopErr error
		if ph == schema.Finalize && r.interrupted {
			// Stop what was launched (but the samplers, which go on
			// through finalize), then fetch what was produced.
			fmt.Fprintf(r.out, "interrupted: stopping background jobs, then finalize (at most %s)\n", r.x.o.FinalizeTimeout)
			_, stopErr = r.x.stopJobs(ctx, r.mon.jobs())
		}
		return errors.Join(stopErr, r.runPhase(ctx, ph, conf))
	}}
	if ph == schema.Finalize {
		st.closes = string(schema.Launch)
	}
	return st
}

// runPhase runs a phase's plays and writes what they did to the run folder
// (conf "": the phases that run once, on the first configuration's plan).
func (r *run) runPhase(ctx context.Context, ph schema.Phase, conf string) error {
	p, ok := r.plans[conf]
	if !ok {
		p = r.first
	}
	_, err := r.runOn(ctx, ph, conf, p)
	return err
}

// runOn runs a phase of p (one of the run's plans, or a part of one) and
// writes what it did to the run folder.
func (r *run) runOn(ctx context.Context, ph schema.Phase, conf string, p *plan.Plan) ([]execute.PlayReport, error) {
	fmt.Fprintf(r.out, "%s%s\n", strings.ToUpper(string(ph)), confLabel(conf))
	if conf != "" {
		os.MkdirAll(filepath.Join(r.dir, conf), 0o755)
	}
	r.x.spreadFiles(ctx, r.out, p, ph)
	reps, err := r.exec.WithPlan(p).Phase(ctx, ph)
	r.reports = append(r.reports, reps...)
	appendWorkflow(r.dir, conf, p, ph, reps)
	r.x.st.remember(r.exec.Memory())
	return reps, errors.Join(err, r.x.st.Save(r.x.o.ScenarioDir))
}

// wait sleeps the run's duration with a visible countdown; an interrupt
// ends the wait early and the run goes on to finalize.
func (r *run) wait(ctx context.Context, s *results.Step) error {
	d := r.x.o.Duration
	end := time.Now().Add(d)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	if d > 0 {
		fmt.Fprintf(r.out, "WAIT %s (Ctrl-C ends the wait and finalizes)\n", d)
	}
	tl, err := r.timeline()
	if err != nil {
		return err
	}
	var changes chan error // the timeline's changes, made meanwhile
	if len(tl.changes) > 0 {
		changes = make(chan error, 1)
		start := time.Now()
		go func() { changes <- tl.play(ctx, start, end) }()
	}
	timeline := func() error {
		if changes == nil {
			return nil
		}
		if err := <-changes; err != nil {
			return fmt.Errorf("timeline: %w", err)
		}
		return nil
	}
	for left := d; left > 0; left = time.Until(end) {
		select {
		case <-ctx.Done():
			err := timeline() // its changes write the record too
			s.Note = fmt.Sprintf("cut short with %s left", left.Round(time.Second))
			s.Status = results.Interrupted
			return err
		case <-t.C:
			tl.answerRequests(ctx)
			if secs := int(time.Until(end).Round(time.Second).Seconds()); secs > 0 && (secs%10 == 0 || secs <= 5) {
				fmt.Fprintf(r.out, "wait: %ds left\n", secs)
			}
		}
	}
	return timeline()
}

// wrapUp is what every run does last, interrupted or not: the containers'
// logs, the samplers' files, the network emulation removed (unless kept),
// what the tasks did, and the state saved.
func (r *run) wrapUp(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	x := r.x
	x.fetchContainerLogs(ctx, r.rec, nil, r.out)
	errs := []error{x.stopMonitoring(ctx, r.mon, r.dir)}
	if len(x.st.Network) > 0 && !x.o.KeepNetwork {
		// Removed even when interrupted: a shaped host misleads the next run.
		errs = append(errs, resetNetwork(ctx, x.st, x.o.ScenarioDir, x.connect, r.out))
	}
	recap(r.out, r.reports)
	return errors.Join(append(errs, x.st.Save(x.o.ScenarioDir))...)
}

// close closes the run's record with its outcome: interrupted when ctx was
// cancelled, failed on an error, else succeeded. The returned error also
// carries a record that could not be written.
func (r *run) close(ctx context.Context, err error) error {
	status := results.Succeeded
	switch {
	case ctx.Err() != nil:
		status = results.Interrupted
		err = errors.Join(err, fmt.Errorf("interrupted: %w", context.Cause(ctx)))
	case err != nil:
		status = results.Failed
	}
	return r.rec.finish(status, err)
}

// newRun opens a new run folder, its record, log and plans, and stops what
// an earlier run left running on the hosts. When it returns a run, the
// caller closes it and its log, even with an error.
func (x *Session) newRun(ctx context.Context, repeat int, init func(*results.Record)) (*run, error) {
	o := x.o
	dir, err := results.NewRunDir(o.ScenarioDir, time.Now())
	if err != nil {
		return nil, err
	}
	r, err := x.openRun(dir)
	if err != nil {
		return nil, err
	}
	rec := r.rec.rec
	rec.E2C, rec.Status, rec.Scenario, rec.Artifacts = o.Version, results.Running, o.ScenarioDir, o.ArtifactsDir
	rec.Testbeds, rec.TestbedOverride, rec.Network = x.testbedSettings(), o.Testbed, x.network
	rec.Repeat, rec.RepeatCount, rec.AppConfs, rec.Duration = repeat, o.Repeat+1, o.AppConfs, o.Duration.Seconds()
	rec.Start = time.Now()
	init(rec)
	x.st.LastRun, x.st.Artifacts, x.st.Testbed = dir, o.ArtifactsDir, o.Testbed
	x.st.remember(&execute.Memory{}) // a new run registers anew
	if err := x.st.Save(o.ScenarioDir); err != nil {
		return r, err
	}
	if err := r.plan(repeat, nil); err != nil {
		return r, err
	}
	x.recordHosts(r.rec, r.first, nil)
	if err := x.saveApplied(r.first); err != nil {
		return r, err
	}
	if err := writeFiles(dir, r.first); err != nil {
		return r, err
	}
	if err := x.writeInputs(dir, slices.Collect(maps.Values(r.plans))...); err != nil {
		return r, err
	}
	// The hosts may be those of an earlier run, or of an e2c that crashed:
	// their background jobs must not mix their output into this run's.
	stopped, err := x.stopJobs(ctx, nil)
	sayStopped(r.out, stopped)
	return r, err
}

// openRun opens the run folder dir: its log (appended to; the caller
// closes it) and its record, owned by this process.
func (x *Session) openRun(dir string) (*run, error) {
	logFile, err := os.OpenFile(filepath.Join(dir, "e2c.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	terminal := &syncWriter{w: x.o.Out}
	r := &run{x: x, sc: x.sc, dir: dir, logFile: logFile,
		log:  newLogger(io.MultiWriter(logFile, terminal), x.o.JSON),
		term: &logLines{log: newLogger(terminal, x.o.JSON)}}
	r.out = &logLines{log: r.log}
	r.rec = &recorder{rec: results.NewRecord(dir), out: r.out}
	r.rec.rec.Owner = results.Self()
	return r, nil
}

// plan builds the run's plans, one per application configuration (env_<key>
// and working_dir in finalize differ), and its executor, which starts from
// memory (nil: nothing registered yet).
func (r *run) plan(repeat int, memory *execute.Memory) error {
	x := r.x
	r.plans = map[string]*plan.Plan{}
	for _, conf := range confs(x.o.AppConfs) {
		p, err := plan.Build(r.sc, x.defs, x.machines, x.o.planOptions(repeat, r.dir, conf))
		if err != nil {
			return err
		}
		r.plans[conf] = p
	}
	r.first = r.plans[confs(x.o.AppConfs)[0]]
	r.exec = execute.New(r.first, x.connect, execute.Options{Forks: x.o.Forks, Log: r.log,
		Progress: progress(r.term), Memory: memory, JobStarting: x.jobStarting})
	return nil
}

// jobStarting records a background job in the state before it starts.
func (x *Session) jobStarting(host, job string) error {
	return x.st.addJob(x.o.ScenarioDir, host, job)
}

// stopJobs stops the background jobs the state records on the reserved
// hosts (but those skip selects), so that they do not mix their output
// into a new run's. Jobs of hosts no reservation holds went with it.
func (x *Session) stopJobs(ctx context.Context, skip execute.Jobs) (execute.Jobs, error) {
	held := map[string]bool{}
	for _, r := range x.st.Reservations {
		for _, hs := range r.Hosts {
			for _, h := range hs {
				held[h.Name] = true
			}
		}
	}
	x.st.jobs().Drop(x.st.jobsOn(func(h string) bool { return !held[h] }))
	jobs := x.st.jobsOn(func(h string) bool { _, ok := x.hosts[h]; return ok })
	jobs.Drop(skip)
	return x.st.stopJobs(ctx, x.o.ScenarioDir, x.connect, jobs)
}

// warnBackgroundWithoutWait says when launch starts background jobs and
// --duration is 0: finalize then runs right after launch.
func (x *Session) warnBackgroundWithoutWait() {
	if x.o.Duration > 0 {
		return
	}
	hosts := plan.Synthetic(plan.Expand(x.sc.LayersServices))
	p, err := plan.Build(x.sc, x.defs, hosts, x.o.planOptions(0, "RUN_DIR", confs(x.o.AppConfs)[0]))
	if err != nil {
		return // the run reports it
	}
	var at []string
	for _, pl := range p.Plays {
		for _, run := range pl.Phases[schema.Launch] {
			for _, t := range run.Tasks {
				if t.Async > 0 && t.Poll == 0 && !slices.Contains(at, t.Pos) {
					at = append(at, t.Pos)
				}
			}
		}
	}
	if len(at) > 0 {
		fmt.Fprintf(x.o.Out, "warning: --duration is 0 but launch starts background jobs (%s): finalize runs right after launch; give --duration the time they need\n", strings.Join(at, ", "))
	}
}

// hasPhase reports whether any play of p has tasks in phase.
func hasPhase(p *plan.Plan, phase schema.Phase) bool {
	for _, pl := range p.Plays {
		if len(pl.Phases[phase]) > 0 {
			return true
		}
	}
	return false
}

func confLabel(conf string) string {
	if conf == "" {
		return ""
	}
	return " [" + conf + "]"
}

// recordHosts adds the hosts of p (those only names, nil: all) to the
// run's record.
func (x *Session) recordHosts(rec *recorder, p *plan.Plan, only []string) {
	rec.update(func(r *results.Record) {
		for _, h := range p.Hosts {
			if only != nil && !slices.Contains(only, h.Name) {
				continue
			}
			commands, noAgent := x.commands(h.Name)
			r.Hosts = append(r.Hosts, results.Host{Name: h.Name, Address: h.Address, Testbed: x.testbeds[h.Name], Instance: h.Instance, Keys: h.Keys,
				Facts: x.facts[h.Name], Commands: commands, NoAgent: noAgent})
		}
	})
}

// writeFiles writes the run's validate files and plan.
func writeFiles(dir string, p *plan.Plan) error {
	if err := results.WriteFile(dir, results.LayersServicesFile, p.WriteLayersServices); err != nil {
		return err
	}
	return results.WriteFile(dir, results.PlanFile, p.WriteJSON)
}

// appendWorkflow adds a phase's rendered plays and their outcome to
// workflow-validate.out (in the app_conf's folder for its phases).
func appendWorkflow(dir, conf string, p *plan.Plan, phase schema.Phase, reps []execute.PlayReport) {
	name := filepath.Join(dir, conf, results.WorkflowFile)
	f, err := os.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	outcome := map[int]string{}
	for _, r := range reps {
		var failed []string
		for _, h := range r.Hosts {
			if h.Err != nil {
				failed = append(failed, h.Host)
			}
		}
		outcome[r.Play] = fmt.Sprintf("%d ok, %d failed %v, %s", len(r.Hosts)-len(failed), len(failed), failed, r.Took.Round(time.Millisecond))
	}
	p.WriteWorkflow(f, phase, func(play int) string { return outcome[play] })
}
