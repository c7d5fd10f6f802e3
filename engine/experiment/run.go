package experiment

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
	"sync"
	"time"

	"github.com/e2c-dev/e2c/engine/execute"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// run performs run number repeat into a new run folder. Whichever way it
// returns, the record is closed with the run's outcome (endRun).
func (x *experiment) run(ctx context.Context, repeat int, init func(*Record)) (dir string, err error) {
	o := x.o
	dir, err = results.NewRunDir(o.ScenarioDir, time.Now())
	if err != nil {
		return "", err
	}
	logFile, err := os.Create(filepath.Join(dir, "e2c.log"))
	if err != nil {
		return dir, err
	}
	defer logFile.Close()
	log := &lineWriter{w: logFile, json: o.JSON}
	term := &lineWriter{w: o.Out, json: o.JSON}
	out := io.MultiWriter(log, term)

	rec := x.newRecord(dir, repeat, out)
	init(rec)
	label := fmt.Sprintf("run %d of %d", repeat+1, o.Repeat+1)
	fmt.Fprintf(out, "%s: %s\n", label, dir)
	defer func() {
		err = endRun(ctx, rec, err)
		fmt.Fprintf(out, "%s %s: %s\n", label, rec.Status, dir)
	}()
	x.st.LastRun = dir
	if err := x.st.Save(o.ScenarioDir); err != nil {
		return dir, err
	}
	// The hosts may be those of an earlier run, or of an e2c that crashed:
	// their background jobs must not mix their output into this run's.
	stopped, err := x.stopJobs(ctx, nil)
	sayStopped(out, stopped)
	if err != nil {
		return dir, err
	}

	// One plan per application configuration: env_<key> and working_dir
	// in finalize differ.
	plans := map[string]*plan.Plan{}
	for _, conf := range confs(o.AppConfs) {
		p, err := plan.Build(x.sc, x.defs, x.machines, o.planOptions(repeat, dir, conf))
		if err != nil {
			return dir, err
		}
		plans[conf] = p
	}
	first := plans[confs(o.AppConfs)[0]]
	x.recordHosts(rec, first)
	if err := writeFiles(dir, first); err != nil {
		return dir, err
	}
	if err := x.writeInputs(dir, slices.Collect(maps.Values(plans))...); err != nil {
		return dir, err
	}

	var (
		errs    []error
		reports []execute.PlayReport
	)
	exec := execute.New(first, x.connect, execute.Options{Forks: o.Forks, Output: out, Progress: progress(term), JobStarting: x.jobStarting})
	phase := func(ctx context.Context, ex *execute.Executor, p *plan.Plan, name, conf string) error {
		return rec.step(ctx, stepName(name), conf, func(*Step) error {
			fmt.Fprintf(out, "%s%s\n", strings.ToUpper(name), confLabel(conf))
			reps, err := ex.Phase(ctx, name)
			reports = append(reports, reps...)
			appendWorkflow(dir, conf, p, name, reps)
			return err
		})
	}

	// The services step comes first: the definitions' containers, then
	// their own deploy tasks.
	err = rec.step(ctx, "services", "", func(s *Step) error {
		n, err := x.startContainers(ctx, first, rec, out)
		if err != nil || !hasPhase(first, schema.Deploy) {
			if err == nil && n == 0 {
				s.Note = "no service definition used declares containers or deploy tasks"
			}
			return err
		}
		fmt.Fprintln(out, "DEPLOY")
		reps, err := exec.Phase(ctx, string(schema.Deploy))
		reports = append(reports, reps...)
		appendWorkflow(dir, "", first, string(schema.Deploy), reps)
		return err
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("services: %w", err))
	}
	if len(errs) == 0 {
		err := rec.step(ctx, "network", "", func(s *Step) (err error) {
			fmt.Fprintln(out, "NETWORK")
			s.Note, err = x.applyNetwork(ctx, first, dir, out)
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("network: %w", err))
		}
	}
	if len(errs) == 0 {
		if err := phase(ctx, exec, first, "prepare", ""); err != nil {
			errs = append(errs, fmt.Errorf("prepare: %w", err))
		}
	}
	var mon *monitoring
	if len(errs) == 0 && ctx.Err() == nil && x.sc.LayersServices.Monitoring != nil {
		rec.step(ctx, "monitoring", "", func(s *Step) error {
			mon, s.Note = x.startMonitoring(ctx, first, dir, out)
			return nil
		})
	}
	for _, conf := range confs(o.AppConfs) {
		if len(errs) > 0 || ctx.Err() != nil {
			break
		}
		p := plans[conf]
		ex := exec.WithPlan(p)
		if conf != "" {
			os.MkdirAll(filepath.Join(dir, conf), 0o755)
		}
		launchErr := phase(ctx, ex, p, "launch", conf)
		if launchErr != nil {
			errs = append(errs, fmt.Errorf("launch%s: %w", confLabel(conf), launchErr))
		} else {
			x.wait(ctx, rec, conf, out)
		}
		fctx := ctx
		if ctx.Err() != nil {
			// Interrupted: stop what was launched, then fetch what was
			// produced, under a fresh time limit.
			var cancel context.CancelFunc
			fctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), o.FinalizeTimeout)
			defer cancel()
			fmt.Fprintf(out, "interrupted: stopping background jobs, then finalize (at most %s)\n", o.FinalizeTimeout)
			if _, err := x.stopJobs(fctx, mon.jobs()); err != nil { // sampling goes on through finalize
				errs = append(errs, err)
			}
		}
		if err := phase(fctx, ex, p, "finalize", conf); err != nil {
			errs = append(errs, fmt.Errorf("finalize%s: %w", confLabel(conf), err))
		}
	}
	// The containers' logs, even of a run that failed or was interrupted.
	x.fetchContainerLogs(context.WithoutCancel(ctx), rec, out)
	// Sampling went on through every app_conf; it ends after the last
	// finalize, interrupted or not.
	if err := x.stopMonitoring(context.WithoutCancel(ctx), mon, dir); err != nil {
		errs = append(errs, err)
	}
	if len(x.st.Network) > 0 && !o.KeepNetwork {
		// Removed even when interrupted: a shaped host misleads the next run.
		if err := resetNetwork(context.WithoutCancel(ctx), x.st, o.ScenarioDir, x.connect, out); err != nil {
			errs = append(errs, err)
		}
	}
	recap(out, reports)
	x.st.Artifacts = o.ArtifactsDir
	x.st.remember(exec.Memory())
	errs = append(errs, x.st.Save(o.ScenarioDir))
	return dir, errors.Join(errs...)
}

// endRun closes the record of a run that ended with err: interrupted when
// ctx was cancelled, failed on an error, else succeeded. The returned
// error also carries a record that could not be written.
func endRun(ctx context.Context, rec *Record, err error) error {
	status := Succeeded
	switch {
	case ctx.Err() != nil:
		status = Interrupted
		err = errors.Join(err, fmt.Errorf("interrupted: %w", context.Cause(ctx)))
	case err != nil:
		status = Failed
	}
	return rec.finish(status, err)
}

// jobStarting records a background job in the state before it starts.
func (x *experiment) jobStarting(host, job string) error {
	return x.st.addJob(x.o.ScenarioDir, host, job)
}

// stopJobs stops the background jobs the state records on the reserved
// hosts (but those skip selects), so that they do not mix their output
// into a new run's. Jobs of hosts no reservation holds went with it.
func (x *experiment) stopJobs(ctx context.Context, skip execute.Jobs) (execute.Jobs, error) {
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
func (x *experiment) warnBackgroundWithoutWait() {
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
		for _, run := range pl.Phases[string(schema.Launch)] {
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

// stepStatus is the status of a step that ended with err.
func stepStatus(ctx context.Context, err error) string {
	switch {
	case err != nil && ctx.Err() != nil:
		return Interrupted
	case err != nil:
		return Failed
	}
	return Succeeded
}

// stepName is the run.json step a phase is recorded as.
func stepName(phase string) string {
	if phase == string(schema.Deploy) {
		return "services"
	}
	return phase
}

// hasPhase reports whether any play of p has tasks in phase.
func hasPhase(p *plan.Plan, phase schema.Phase) bool {
	for _, pl := range p.Plays {
		if len(pl.Phases[string(phase)]) > 0 {
			return true
		}
	}
	return false
}

// newRecord opens the record of a run in dir, owned by this process;
// out is told if it cannot be written.
func (x *experiment) newRecord(dir string, repeat int, out io.Writer) *Record {
	o := x.o
	return &Record{E2C: o.Version, Status: Running, Scenario: o.ScenarioDir, Artifacts: o.ArtifactsDir, Testbeds: x.testbedSettings(),
		TestbedOverride: o.Testbed, Network: x.network,
		Repeat: repeat, RepeatCount: o.Repeat + 1, AppConfs: o.AppConfs, Duration: o.Duration.Seconds(),
		Start: time.Now(), Owner: self(), dir: dir, out: out}
}

func confLabel(conf string) string {
	if conf == "" {
		return ""
	}
	return " [" + conf + "]"
}

// wait sleeps the run's duration with a visible countdown; an interrupt
// ends the wait early and the run goes on to finalize.
func (x *experiment) wait(ctx context.Context, rec *Record, conf string, out io.Writer) {
	s := rec.begin("wait", conf)
	d := x.o.Duration
	end := time.Now().Add(d)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	if d > 0 {
		fmt.Fprintf(out, "WAIT %s (Ctrl-C ends the wait and finalizes)\n", d)
	}
	for left := d; left > 0; left = time.Until(end) {
		select {
		case <-ctx.Done():
			s.Note = fmt.Sprintf("cut short with %s left", left.Round(time.Second))
			rec.end(s, Interrupted, nil)
			return
		case <-t.C:
			if secs := int(time.Until(end).Round(time.Second).Seconds()); secs > 0 && (secs%10 == 0 || secs <= 5) {
				fmt.Fprintf(out, "wait: %ds left\n", secs)
			}
		}
	}
	rec.end(s, Succeeded, nil)
}

func (x *experiment) recordHosts(rec *Record, p *plan.Plan) {
	for _, h := range p.Hosts {
		rec.Hosts = append(rec.Hosts, HostRecord{Name: h.Name, Address: h.Address, Testbed: x.testbeds[h.Name], Instance: h.Instance, Keys: h.Keys,
			Facts: x.facts[h.Name]})
	}
	rec.save()
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
func appendWorkflow(dir, conf string, p *plan.Plan, phase string, reps []execute.PlayReport) {
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
	p.WriteWorkflow(f, schema.Phase(phase), func(play int) string { return outcome[play] })
}

// lineWriter writes whole lines, as JSON objects when asked.
type lineWriter struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
	buf  []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.json {
		return l.w.Write(p)
	}
	l.buf = append(l.buf, p...)
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(l.buf[:i])
		l.buf = l.buf[i+1:]
		entry := map[string]string{"time": time.Now().Format(time.RFC3339Nano), "msg": line}
		if host, msg, ok := strings.Cut(line, " | "); ok && !strings.Contains(host, " ") {
			entry["host"], entry["msg"] = host, msg
		}
		data, _ := json.Marshal(entry)
		l.w.Write(append(data, '\n'))
	}
}
