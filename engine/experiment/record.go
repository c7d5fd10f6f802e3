package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/e2c-dev/e2c/results"
)

// recorder writes a run's record (run.json) as the run goes: again after
// every step, so that a crash still leaves an accurate, marked record.
type recorder struct {
	mu      sync.Mutex
	rec     *results.Record
	out     io.Writer // where a record that cannot be written is reported
	saveErr error     // the first write of run.json that failed
}

// save writes run.json. A failure is reported once on the terminal and
// kept: the run's outcome carries it (see finish), since a record that
// says "running" forever misleads whoever reads it.
func (r *recorder) save() {
	if err := r.rec.Save(); err != nil && r.saveErr == nil {
		r.saveErr = err
		fmt.Fprintf(r.out, "error: the run's record cannot be written: %v\n", err)
	}
}

// update changes the record under its lock and saves it.
func (r *recorder) update(f func(*results.Record)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r.rec)
	r.save()
}

// steps copies the run's steps as they are now.
func (r *recorder) steps() []results.Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]results.Step, len(r.rec.Steps))
	for i, s := range r.rec.Steps {
		out[i] = *s
	}
	return out
}

// begin starts a step and saves the record.
func (r *recorder) begin(name, appConf string) *results.Step {
	s := &results.Step{Name: name, AppConf: appConf, Start: time.Now(), Status: results.Running}
	r.update(func(rec *results.Record) { rec.Steps = append(rec.Steps, s) })
	return s
}

// end closes a step with its outcome and saves the record.
func (r *recorder) end(s *results.Step, status results.Status, err error) {
	r.update(func(*results.Record) {
		now := time.Now()
		s.End, s.Status = &now, status
		if err != nil {
			s.Error = err.Error()
		}
	})
}

// finish closes the run: its status, its error and that of every write of
// run.json that failed, which the returned error also carries.
func (r *recorder) finish(status results.Status, err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.saveErr != nil {
		err = errors.Join(err, fmt.Errorf("run.json: %w", r.saveErr))
		if status == results.Succeeded {
			status = results.Failed
		}
	}
	now := time.Now()
	r.rec.End, r.rec.Status, r.rec.Owner = &now, status, nil
	if err != nil {
		r.rec.Error = err.Error()
	}
	prev := r.saveErr
	r.save()
	if r.saveErr != prev {
		err = errors.Join(err, fmt.Errorf("run.json: %w", r.saveErr))
	}
	return err
}

// pause leaves the run running without an owner, for the next step
// command, and returns the error of any write of run.json that failed.
func (r *recorder) pause() error {
	r.update(func(rec *results.Record) { rec.Owner = nil })
	if r.saveErr != nil {
		return fmt.Errorf("run.json: %w", r.saveErr)
	}
	return nil
}

// statusOf is the status of a run or step that ended with err: interrupted
// when ctx was cancelled, failed on an error, else succeeded.
func statusOf(ctx context.Context, err error) results.Status {
	switch {
	case err != nil && ctx.Err() != nil:
		return results.Interrupted
	case err != nil:
		return results.Failed
	}
	return results.Succeeded
}

// markCrashed marks crashed the runs of scenario whose e2c process died
// while working on them. The caller holds the scenario's lock.
func markCrashed(scenario string, out io.Writer) error {
	marked, err := results.MarkCrashed(scenario)
	for _, rec := range marked {
		fmt.Fprintf(out, "run %s: marked crashed: %s\n", filepath.Base(rec.Dir()), rec.Error)
	}
	return err
}
