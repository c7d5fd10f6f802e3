package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/execute"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// The step commands run one step of the lifecycle each, in separate e2c
// processes, on what the saved state keeps: the hosts, the current run
// folder, the artifacts folder and what tasks registered. Between two of
// them the run is running with no owner (Record.Owner): not crashed.

// StepOptions are what the step commands after layers-services take.
type StepOptions struct {
	Out io.Writer
	// Network is how much of network.yaml the network step applies
	// (NetworkFull, NetworkRatesOnly, NetworkOff).
	Network string
}

// LayersServices reserves the hosts (or reuses kept ones) and opens a new
// run folder for the steps that follow. It returns the folder.
func LayersServices(ctx context.Context, o Options) (dir string, err error) {
	if err := o.normalize(); err != nil {
		return "", err
	}
	o.warnEmptyArtifacts()
	x, err := open(o)
	if err != nil {
		return "", err
	}
	defer x.close()
	start := time.Now()
	note, err := x.reserve(ctx, false)
	if err != nil {
		return "", fmt.Errorf("reserve: %w", err)
	}
	end := time.Now()
	dir, err = results.NewRunDir(o.ScenarioDir, time.Now())
	if err != nil {
		return "", err
	}
	rec := x.newRecord(dir, 0, o.Out)
	rec.Steps = append(rec.Steps, &Step{Name: "reserve", Start: start, End: &end, Status: Succeeded, Note: note})
	defer func() {
		if err != nil {
			err = endRun(ctx, rec, err)
		} else {
			err = rec.pause()
		}
	}()
	p, err := plan.Build(x.sc, x.defs, x.machines, o.planOptions(0, dir, confs(o.AppConfs)[0]))
	if err != nil {
		return dir, err
	}
	x.learnFacts(ctx)
	x.recordHosts(rec, p)
	if err := writeFiles(dir, p); err != nil {
		return dir, err
	}
	if err := x.writeInputs(dir, p); err != nil {
		return dir, err
	}
	x.st.LastRun, x.st.Artifacts, x.st.Testbed = dir, o.ArtifactsDir, o.Testbed
	// A new run on these hosts: what an earlier one left running stops.
	stopped, err := x.stopJobs(ctx, nil)
	sayStopped(o.Out, stopped)
	if err != nil {
		return dir, err
	}
	x.st.remember(&execute.Memory{})
	err = rec.step(ctx, "services", "", func(s *Step) error {
		n, err := x.startContainers(ctx, p, rec, o.Out)
		if err != nil || !hasPhase(p, schema.Deploy) {
			if err == nil && n == 0 {
				s.Note = "no service definition used declares containers or deploy tasks"
			}
			return err
		}
		w := &lineWriter{w: o.Out}
		ex := execute.New(p, x.connect, execute.Options{Output: w, Progress: progress(w), JobStarting: x.jobStarting})
		reps, err := ex.Phase(ctx, string(schema.Deploy))
		appendWorkflow(dir, "", p, string(schema.Deploy), reps)
		recap(w, reps)
		x.st.remember(ex.Memory())
		return err
	})
	if serr := x.st.Save(o.ScenarioDir); err == nil {
		err = serr
	}
	if err != nil {
		return dir, fmt.Errorf("services: %w", err)
	}
	fmt.Fprintf(o.Out, "hosts ready; run folder %s\n", dir)
	return dir, nil
}

// Network applies network.yaml to the kept hosts and validates it into
// the current run folder. The emulation stays until e2c destroy --network
// (or e2c destroy).
func Network(ctx context.Context, scenario string, so StepOptions) error {
	return step(ctx, scenario, "", so, false, func(x *experiment, rec *Record) error {
		p, err := plan.Build(x.sc, x.defs, x.machines, x.o.planOptions(rec.Repeat, rec.dir, ""))
		if err != nil {
			return err
		}
		rec.Network = x.network // what this step leaves out, nothing for a full one
		return rec.step(ctx, "network", "", func(s *Step) (err error) {
			s.Note, err = x.applyNetwork(ctx, p, rec.dir, so.Out)
			if err == nil {
				fmt.Fprintf(so.Out, "network: %s\n", s.Note)
			}
			return err
		})
	})
}

// Workflow runs one phase (prepare, launch or finalize, in any case) on
// the kept hosts into the current run folder.
func Workflow(ctx context.Context, scenario, phase, appConf string, out io.Writer) error {
	return workflow(ctx, scenario, phase, appConf, StepOptions{Out: out}, false)
}

// Finalize runs finalize, closes the run's record and, with destroy,
// releases the hosts.
func Finalize(ctx context.Context, scenario, appConf string, destroy bool, out io.Writer) error {
	err := workflow(ctx, scenario, string(schema.Finalize), appConf, StepOptions{Out: out}, true)
	if destroy {
		err = errors.Join(err, Destroy(ctx, scenario, out))
	}
	return err
}

// workflow runs a phase as a step command; with last, it closes the run.
func workflow(ctx context.Context, scenario, phase, appConf string, so StepOptions, last bool) error {
	phase = strings.ToLower(phase) // as E2Clab takes them: Prepare, LAUNCH
	if !slices.Contains(schema.Phases, schema.Phase(phase)) {
		return fmt.Errorf("phase %q: expected prepare, launch or finalize", phase)
	}
	if phase == string(schema.Prepare) && appConf != "" {
		return fmt.Errorf("prepare runs once for every configuration: no --app-conf")
	}
	return step(ctx, scenario, appConf, so, last, func(x *experiment, rec *Record) error {
		p, err := plan.Build(x.sc, x.defs, x.machines, x.o.planOptions(rec.Repeat, rec.dir, appConf))
		if err != nil {
			return err
		}
		w := &lineWriter{w: so.Out} // one lock for task output and progress lines
		ex := execute.New(p, x.connect, execute.Options{Output: w, Progress: progress(w), Memory: x.st.Memory, JobStarting: x.jobStarting})
		err = rec.step(ctx, phase, appConf, func(*Step) error {
			reps, err := ex.Phase(ctx, phase)
			appendWorkflow(rec.dir, appConf, p, phase, reps)
			recap(w, reps)
			return err
		})
		x.st.remember(ex.Memory())
		return errors.Join(err, x.st.Save(x.o.ScenarioDir))
	})
}

// step runs f as a step command on the current run: under the scenario's
// lock, with the kept hosts, the run owned by this process while f runs.
// Afterwards the run waits for the next command, or with last is closed
// (outcome).
func step(ctx context.Context, scenario, appConf string, so StepOptions, last bool, f func(*experiment, *Record) error) error {
	x, rec, err := resume(ctx, scenario, appConf, so)
	if err != nil {
		return err
	}
	defer x.close()
	err = f(x, rec)
	if last {
		x.fetchContainerLogs(context.WithoutCancel(ctx), rec, so.Out)
		return rec.finish(outcome(ctx, rec.Steps, err), err)
	}
	return errors.Join(err, rec.pause())
}

// outcome is the status of a run closed by a step command that ended with
// err: the first of crashed, interrupted and failed that one of its steps
// has, else that of err.
func outcome(ctx context.Context, steps []*Step, err error) string {
	for _, status := range []string{Crashed, Interrupted, Failed} {
		if slices.ContainsFunc(steps, func(s *Step) bool { return s.Status == status }) {
			return status
		}
	}
	return stepStatus(ctx, err)
}

// resume opens the scenario for a step command: the kept hosts and the
// current run's record, owned by this process.
func resume(ctx context.Context, scenario, appConf string, so StepOptions) (*experiment, *Record, error) {
	abs, err := filepath.Abs(scenario)
	if err != nil {
		return nil, nil, err
	}
	st, err := LoadState(abs)
	if err != nil {
		return nil, nil, err
	}
	if st.LastRun == "" || st.Artifacts == "" {
		return nil, nil, fmt.Errorf("%s has no current run: run e2c layers-services (or e2c deploy) first", scenario)
	}
	o := Options{ScenarioDir: abs, ArtifactsDir: st.Artifacts, Out: so.Out, Testbed: st.Testbed, Network: so.Network}
	if appConf != "" {
		o.AppConfs = []string{appConf}
	}
	if err := o.normalize(); err != nil {
		return nil, nil, err
	}
	x, err := open(o)
	if err != nil {
		return nil, nil, err
	}
	if _, err := x.reserve(ctx, true); err != nil {
		x.close()
		return nil, nil, err
	}
	rec, err := readRecord(x.st.LastRun)
	if err != nil {
		x.close()
		return nil, nil, err
	}
	rec.Status, rec.End, rec.Owner, rec.out = Running, nil, self(), so.Out
	return x, rec, nil
}
