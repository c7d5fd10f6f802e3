package experiment

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	"github.com/e2c-dev/e2c/engine/execute"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// The step commands run one step of the lifecycle each, in separate e2c
// processes, on what the saved state keeps: the hosts, the current run
// folder, the artifacts folder and what tasks registered.

// LayersServices reserves the hosts (or reuses kept ones) and opens a new
// run folder for the steps that follow. It returns the folder.
func LayersServices(ctx context.Context, o Options) (string, error) {
	if err := o.normalize(); err != nil {
		return "", err
	}
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
	dir, err := results.NewRunDir(o.ScenarioDir, time.Now())
	if err != nil {
		return "", err
	}
	rec := x.newRecord(dir, 0)
	rec.Steps = append(rec.Steps, &Step{Name: "reserve", Start: start, End: &end, Status: Succeeded, Note: note})
	p, err := plan.Build(x.sc, x.defs, x.machines, o.planOptions(0, dir, confs(o.AppConfs)[0]))
	if err != nil {
		rec.finish(Failed, err)
		return dir, err
	}
	x.learnFacts(ctx)
	x.recordHosts(rec, p)
	if err := writeFiles(dir, p); err != nil {
		return dir, err
	}
	if err := x.writeInputs(dir); err != nil {
		return dir, err
	}
	x.st.LastRun, x.st.Artifacts, x.st.Memory = dir, o.ArtifactsDir, nil
	s := rec.begin("services", "")
	if !hasPhase(p, schema.Deploy) {
		s.Note = "no service definition used declares deploy tasks"
		rec.end(s, Succeeded, nil)
	} else {
		w := &lineWriter{w: o.Out}
		ex := execute.New(p, x.connect, execute.Options{Output: w, Progress: progress(w)})
		reps, err := ex.Phase(ctx, string(schema.Deploy))
		status := Succeeded
		if err != nil {
			status = Failed
		}
		rec.end(s, status, err)
		appendWorkflow(dir, "", p, string(schema.Deploy), reps)
		recap(w, reps)
		x.st.Memory = ex.Memory()
		if err != nil {
			x.st.Save(o.ScenarioDir)
			return dir, fmt.Errorf("services: %w", err)
		}
	}
	if err := x.st.Save(o.ScenarioDir); err != nil {
		return dir, err
	}
	fmt.Fprintf(o.Out, "hosts ready; run folder %s\n", dir)
	return dir, nil
}

// Network applies network.yaml to the kept hosts and validates it into
// the current run folder. The emulation stays until e2c destroy --network
// (or e2c destroy).
func Network(ctx context.Context, scenario string, out io.Writer) error {
	x, rec, err := resume(ctx, scenario, "", out)
	if err != nil {
		return err
	}
	defer x.close()
	p, err := plan.Build(x.sc, x.defs, x.machines, x.o.planOptions(rec.Repeat, rec.dir, ""))
	if err != nil {
		return err
	}
	s := rec.begin("network", "")
	s.Note, err = x.applyNetwork(ctx, p, rec.dir, out)
	rec.end(s, stepStatus(ctx, err), err)
	if err == nil {
		fmt.Fprintf(out, "network: %s\n", s.Note)
	}
	return err
}

// Workflow runs one phase (prepare, launch or finalize) on the kept hosts
// into the current run folder.
func Workflow(ctx context.Context, scenario, phase, appConf string, out io.Writer) error {
	if !slices.Contains(schema.Phases, schema.Phase(phase)) {
		return fmt.Errorf("phase %q: expected prepare, launch or finalize", phase)
	}
	if phase == string(schema.Prepare) && appConf != "" {
		return fmt.Errorf("prepare runs once for every configuration: no --app-conf")
	}
	x, rec, err := resume(ctx, scenario, appConf, out)
	if err != nil {
		return err
	}
	defer x.close()
	p, err := plan.Build(x.sc, x.defs, x.machines, x.o.planOptions(rec.Repeat, rec.dir, appConf))
	if err != nil {
		return err
	}
	w := &lineWriter{w: out} // one lock for task output and progress lines
	ex := execute.New(p, x.connect, execute.Options{Output: w, Progress: progress(w), Memory: x.st.Memory})
	s := rec.begin(phase, appConf)
	reps, err := ex.Phase(ctx, phase)
	status := Succeeded
	if err != nil {
		status = Failed
	}
	rec.end(s, status, err)
	appendWorkflow(rec.dir, appConf, p, phase, reps)
	recap(w, reps)
	x.st.Memory = ex.Memory()
	if serr := x.st.Save(scenario); serr != nil && err == nil {
		err = serr
	}
	return err
}

// Finalize runs finalize, closes the run's record and, with destroy,
// releases the hosts.
func Finalize(ctx context.Context, scenario, appConf string, destroy bool, out io.Writer) error {
	err := Workflow(ctx, scenario, string(schema.Finalize), appConf, out)
	st, lerr := LoadState(scenario)
	if lerr == nil && st.LastRun != "" {
		if rec, rerr := loadRecord(st.LastRun); rerr == nil {
			status := Succeeded
			if err != nil {
				status = Failed
			}
			rec.finish(status, err)
		}
	}
	if destroy {
		if derr := Destroy(ctx, scenario, out); derr != nil && err == nil {
			err = derr
		}
	}
	return err
}

// resume opens the scenario for a step command: the kept hosts and the
// current run's record.
func resume(ctx context.Context, scenario, appConf string, out io.Writer) (*experiment, *Record, error) {
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
	o := Options{ScenarioDir: abs, ArtifactsDir: st.Artifacts, Out: out}
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
	rec, err := loadRecord(x.st.LastRun)
	if err != nil {
		x.close()
		return nil, nil, err
	}
	return x, rec, nil
}

// loadRecord reads a run folder's run.json, to add steps to it.
func loadRecord(dir string) (*Record, error) {
	rec, err := readRecord(dir)
	if err != nil {
		return nil, err
	}
	rec.Status, rec.End = Running, nil
	return rec, nil
}
