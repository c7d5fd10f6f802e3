package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/e2c-dev/e2c/engine/services"
	"github.com/e2c-dev/e2c/results"
)

// Run statuses.
const (
	Running     = "running"
	Succeeded   = "succeeded"
	Failed      = "failed"
	Interrupted = "interrupted"
	// Crashed is a run (or step) whose e2c process died while working on
	// it: a SIGKILL, a second Ctrl-C, a power cut.
	Crashed = "crashed"
)

// Record is run.json: what a run did, written again after every step so
// that a crash still leaves an accurate, marked record.
type Record struct {
	E2C       string `json:"e2c_version"`
	Status    string `json:"status"`
	Scenario  string `json:"scenario"`
	Artifacts string `json:"artifacts"`
	// Reproduces is the run folder this run ran again (e2c reproduce).
	Reproduces string `json:"reproduces,omitempty"`
	// Testbeds are the testbed blocks of layers_services.yaml as used.
	Testbeds map[string]map[string]any `json:"testbeds,omitempty"`
	// TestbedOverride is the testbed every service ran on instead of the
	// scenario's (deploy --testbed), with its default settings.
	TestbedOverride string `json:"testbed_override,omitempty"`
	// Network says what of network.yaml was left out (deploy --network).
	Network     *NetworkRecord `json:"network,omitempty"`
	Repeat      int            `json:"current_repeat"`
	RepeatCount int            `json:"repeat_count"`
	AppConfs    []string       `json:"app_conf,omitempty"`
	Duration    float64        `json:"duration_seconds"`
	Start       time.Time      `json:"start"`
	End         *time.Time     `json:"end,omitempty"`
	Steps       []*Step        `json:"steps"`
	Hosts       []HostRecord   `json:"hosts"`
	// Containers are what the services step started, or tried to.
	Containers []services.Record `json:"containers,omitempty"`
	Error      string            `json:"error,omitempty"`
	// Owner is the e2c process working on the run, while it does. A run
	// still running whose owner is gone crashed; between two step
	// commands a run has no owner, and is not crashed.
	Owner *Owner `json:"owner,omitempty"`

	mu      sync.Mutex
	dir     string
	out     io.Writer // where a record that cannot be written is reported
	saveErr error     // the first write of run.json that failed
}

// Owner is an e2c process.
type Owner struct {
	PID  int    `json:"pid"`
	Host string `json:"host"`
}

// self is this process as an owner.
func self() *Owner {
	host, _ := os.Hostname()
	return &Owner{PID: os.Getpid(), Host: host}
}

// gone tells whether the owner process certainly no longer exists: it ran
// on this machine and no process has its pid.
func (o *Owner) gone() bool {
	host, _ := os.Hostname()
	return o.Host == host && errors.Is(syscall.Kill(o.PID, 0), syscall.ESRCH)
}

// Step is one step of a run: reserve, services, network, prepare, launch,
// wait, finalize.
type Step struct {
	Name    string     `json:"name"`
	AppConf string     `json:"app_conf,omitempty"`
	Start   time.Time  `json:"start"`
	End     *time.Time `json:"end,omitempty"`
	Status  string     `json:"status"`
	Note    string     `json:"note,omitempty"`
	Error   string     `json:"error,omitempty"`
}

// HostRecord is a host of the run.
type HostRecord struct {
	Name     string   `json:"name"`
	Address  string   `json:"address"`
	Testbed  string   `json:"testbed"`
	Instance string   `json:"instance"`
	Keys     []string `json:"keys"`
	Facts    Facts    `json:"facts"`
}

// save writes run.json. A failure is reported once on the terminal and
// kept: the run's outcome carries it (see finish), since a record that
// says "running" forever misleads whoever reads it.
func (r *Record) save() {
	err := results.WriteJSON(r.dir, results.RecordFile, r)
	if err != nil && r.saveErr == nil {
		r.saveErr = err
		if r.out != nil {
			fmt.Fprintf(r.out, "error: the run's record cannot be written: %v\n", err)
		}
	}
}

// begin starts a step and saves the record.
func (r *Record) begin(name, appConf string) *Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &Step{Name: name, AppConf: appConf, Start: time.Now(), Status: Running}
	r.Steps = append(r.Steps, s)
	r.save()
	return s
}

// end closes a step with its outcome and saves the record.
func (r *Record) end(s *Step, status string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	s.End, s.Status = &now, status
	if err != nil {
		s.Error = err.Error()
	}
	r.save()
}

// step records f as a step of the run: begun, then ended with f's
// outcome (interrupted when ctx was cancelled).
func (r *Record) step(ctx context.Context, name, appConf string, f func(*Step) error) error {
	s := r.begin(name, appConf)
	err := f(s)
	r.end(s, stepStatus(ctx, err), err)
	return err
}

// finish closes the run: its status, its error and that of every write of
// run.json that failed, which the returned error also carries.
func (r *Record) finish(status string, err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.saveErr != nil {
		err = errors.Join(err, fmt.Errorf("run.json: %w", r.saveErr))
		if status == Succeeded {
			status = Failed
		}
	}
	now := time.Now()
	r.End, r.Status, r.Owner = &now, status, nil
	if err != nil {
		r.Error = err.Error()
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
func (r *Record) pause() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Owner = nil
	r.save()
	if r.saveErr != nil {
		return fmt.Errorf("run.json: %w", r.saveErr)
	}
	return nil
}

// crash marks a run whose owner died while working on it, and the step it
// died in. Its end is the last time the record was written.
func (r *Record) crash(lastWrite time.Time) {
	died := "between two steps"
	for _, s := range r.Steps {
		if s.Status == Running {
			s.Status, s.End = Crashed, &lastWrite
			s.Error = "e2c died during this step"
			died = "during step " + s.Name
		}
	}
	who := "e2c"
	if r.Owner != nil {
		who = fmt.Sprintf("e2c (pid %d on %s)", r.Owner.PID, r.Owner.Host)
	}
	r.Status, r.End, r.Owner = Crashed, &lastWrite, nil
	r.Error = fmt.Sprintf("%s died %s, last heard of at %s", who, died, lastWrite.Format(time.RFC3339))
}

// markCrashed marks crashed the runs of scenario that are still running
// with an owner. The caller holds the scenario's lock, which every e2c
// process working on a run holds: the owners are gone.
func markCrashed(scenario string, out io.Writer) error {
	recs, err := runs(scenario)
	if err != nil {
		return err
	}
	var errs []error
	for _, rec := range recs {
		if rec.Status != Running || rec.Owner == nil {
			continue
		}
		fi, err := os.Stat(filepath.Join(rec.dir, results.RecordFile))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rec.crash(fi.ModTime())
		fmt.Fprintf(out, "run %s: marked crashed: %s\n", filepath.Base(rec.dir), rec.Error)
		if err := results.WriteJSON(rec.dir, results.RecordFile, rec); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
