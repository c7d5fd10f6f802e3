package experiment

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// The step commands run one step of the lifecycle each, in separate e2c
// processes, on what the saved state keeps: the hosts, the current run
// folder, the artifacts folder and what tasks registered. Between two of
// them the run is running with no owner (results.Record.Owner): not
// crashed.

// LayersServices reserves the hosts (or reuses kept ones), opens a new run
// folder for the steps that follow and runs its services step. It returns
// the folder.
func (x *Session) LayersServices(ctx context.Context) (string, error) {
	if err := x.needArtifacts(); err != nil {
		return "", err
	}
	x.st.Scale = nil // a new run starts from the scenario as written
	if err := x.load(); err != nil {
		return "", err
	}
	reserve, err := x.reserveStep(ctx)
	if err != nil {
		return "", err
	}
	r, err := x.newRun(ctx, 0, func(rec *results.Record) { rec.Steps = append(rec.Steps, reserve) })
	if r == nil {
		return "", err
	}
	defer r.logFile.Close()
	if err == nil {
		err = r.drive(ctx, []step{{name: "services", do: r.services}})
		recap(r.out, r.reports)
	}
	if err != nil {
		return r.dir, r.close(ctx, err)
	}
	fmt.Fprintf(r.out, "hosts ready; run folder %s\n", r.dir)
	return r.dir, r.pause(nil)
}

// Network applies network.yaml to the kept hosts and validates it into
// the current run folder. The emulation stays until DestroyNetwork (or
// Destroy).
func (x *Session) Network(ctx context.Context) error {
	r, err := x.resume(ctx, "")
	if err != nil {
		return err
	}
	defer r.logFile.Close()
	r.rec.update(func(rec *results.Record) { rec.Network = x.network }) // what this step leaves out, nothing for a full one
	err = r.drive(ctx, []step{{name: "network", do: r.network}})
	if last := r.rec.rec.Steps[len(r.rec.rec.Steps)-1]; err == nil {
		fmt.Fprintf(r.out, "network: %s\n", last.Note)
	}
	return r.pause(err)
}

// Phase runs one phase of the workflow (prepare, launch or finalize, in
// any case, as E2Clab takes them) on the kept hosts into the current run
// folder, under application configuration conf.
func (x *Session) Phase(ctx context.Context, phase, conf string) error {
	r, err := x.resumePhase(ctx, phase, conf)
	if err != nil {
		return err
	}
	defer r.logFile.Close()
	return r.pause(r.drivePhase(ctx, schema.Phase(strings.ToLower(phase)), conf))
}

// Finalize runs finalize and closes the current run's record.
func (x *Session) Finalize(ctx context.Context, conf string) error {
	r, err := x.resumePhase(ctx, string(schema.Finalize), conf)
	if err != nil {
		return err
	}
	defer r.logFile.Close()
	err = r.drivePhase(ctx, schema.Finalize, conf)
	x.fetchContainerLogs(context.WithoutCancel(ctx), r.rec, nil, r.out)
	return r.rec.finish(outcome(ctx, r.rec.rec.Steps, err), err)
}

// resumePhase checks a phase given to a step command and resumes the run.
func (x *Session) resumePhase(ctx context.Context, phase, conf string) (*run, error) {
	ph := schema.Phase(strings.ToLower(phase))
	if !slices.Contains(schema.Phases, ph) {
		return nil, fmt.Errorf("phase %q: expected prepare, launch or finalize", phase)
	}
	if ph == schema.Prepare && conf != "" {
		return nil, fmt.Errorf("prepare runs once for every configuration: no --app-conf")
	}
	return x.resume(ctx, conf)
}

// drivePhase runs a phase alone: as a step command, a finalize closes
// whatever launched before it.
func (r *run) drivePhase(ctx context.Context, ph schema.Phase, conf string) error {
	st := r.phase(ph, conf)
	st.closes = ""
	err := r.drive(ctx, []step{st})
	recap(r.out, r.reports)
	return err
}

// pause ends a step command's work on the run, which waits for the next
// command.
func (r *run) pause(err error) error {
	return errors.Join(err, r.rec.pause())
}

// outcome is the status of a run closed by a step command that ended with
// err: the first of crashed, interrupted and failed that one of its steps
// has, else that of err.
func outcome(ctx context.Context, steps []*results.Step, err error) results.Status {
	for _, status := range []results.Status{results.Crashed, results.Interrupted, results.Failed} {
		if slices.ContainsFunc(steps, func(s *results.Step) bool { return s.Status == status }) {
			return status
		}
	}
	return statusOf(ctx, err)
}

// resume opens the current run for a step command: the kept hosts and its
// record, owned by this process.
func (x *Session) resume(ctx context.Context, conf string) (*run, error) {
	st := x.st
	if st.LastRun == "" || st.Artifacts == "" {
		return nil, fmt.Errorf("%s has no current run: run e2c layers-services (or e2c deploy) first", x.o.ScenarioDir)
	}
	// The run goes on with what layers-services chose.
	x.o.ArtifactsDir, x.o.Testbed, x.o.AppConfs = st.Artifacts, st.Testbed, nil
	if conf != "" {
		x.o.AppConfs = []string{conf}
	}
	if err := x.load(); err != nil {
		return nil, err
	}
	if _, err := x.reserve(ctx, true); err != nil {
		return nil, err
	}
	rec, err := results.ReadRecord(st.LastRun)
	if err != nil {
		return nil, err
	}
	r, err := x.openRun(st.LastRun)
	if err != nil {
		return nil, err
	}
	rec.Status, rec.End, rec.Owner = results.Running, nil, results.Self()
	r.rec.rec = rec
	if err := r.plan(rec.Repeat, st.Memory); err != nil {
		r.logFile.Close()
		return nil, err
	}
	return r, nil
}

// CurrentRun is the record of the run the step commands work on.
func (x *Session) CurrentRun() (*results.Record, error) {
	if x.st.LastRun == "" {
		return nil, fmt.Errorf("%s has no current run: run e2c layers-services (or e2c deploy) first", x.o.ScenarioDir)
	}
	return results.ReadRecord(x.st.LastRun)
}
