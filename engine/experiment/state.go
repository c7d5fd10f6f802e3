package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"

	"github.com/e2c-dev/e2c/engine/emulation"
	"github.com/e2c-dev/e2c/engine/execute"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/results"
)

// StateVersion is the version of .e2c/state.json.
const StateVersion = 1

// State is what an experiment keeps between e2c processes, in
// SCENARIO_DIR/.e2c/state.json: the reservations, so that a later command
// reuses or releases them.
type State struct {
	Version      int                               `json:"version"`
	Reservations map[string]*providers.Reservation `json:"reservations"` // by testbed
	// LastRun is the run folder of the latest run, where step commands
	// (e2c workflow ...) write.
	LastRun string `json:"last_run,omitempty"`
	// Artifacts is the artifacts folder of the latest run.
	Artifacts string `json:"artifacts,omitempty"`
	// Memory is what tasks registered and started in the latest run, for
	// the step commands that follow.
	Memory *execute.Memory `json:"memory,omitempty"`
	// Network is the emulation installed on the hosts, until removed.
	Network emulation.Applied `json:"network,omitempty"`
	// Testbed is the testbed of every service of the current run when
	// layers-services was given --testbed, for the step commands.
	Testbed string `json:"testbed,omitempty"`
	// Containers are the hosts the services step started containers on,
	// each with the label value they carry, until destroy removes them.
	Containers map[string]string `json:"containers,omitempty"`
	// Blobs are the files spread to hosts' transport.BlobDir, by host,
	// until destroy removes them: static hosts outlive their reservation,
	// and a Pi's card would fill with every image and dataset spread.
	Blobs map[string][]string `json:"blobs,omitempty"`
	// Scale are the quantities e2c scale set over what layers_services.yaml
	// says (by layer.service), until the next apply or deploy.
	Scale map[string]int `json:"scale,omitempty"`

	mu sync.Mutex // Save may run while hosts start background jobs
}

// stateDir is where an experiment keeps its state and provider files.
func stateDir(scenario string) string { return filepath.Join(scenario, ".e2c") }

// ErrLocked is Lock's error when another e2c process holds the lock.
var ErrLocked = errors.New("the scenario is locked")

// Lock takes the scenario's lock, so that two e2c processes never work on
// one scenario at once. It fails at once rather than waiting.
func Lock(scenario string) (unlock func(), err error) {
	dir := stateDir(scenario)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another e2c process is working on %s (lock %s): %w", scenario, f.Name(), ErrLocked)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// LoadState reads the saved state; a scenario never deployed has an empty one.
func LoadState(scenario string) (*State, error) {
	st := &State{Version: StateVersion, Reservations: map[string]*providers.Reservation{}}
	data, err := os.ReadFile(filepath.Join(stateDir(scenario), "state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(stateDir(scenario), "state.json"), err)
	}
	if st.Version != StateVersion {
		return nil, fmt.Errorf("state of %s has version %d; this e2c reads version %d", scenario, st.Version, StateVersion)
	}
	if st.Reservations == nil {
		st.Reservations = map[string]*providers.Reservation{}
	}
	return st, nil
}

// Save writes the state atomically: a crash leaves the old or the new one.
func (st *State) Save(scenario string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return results.WriteJSON(stateDir(scenario), "state.json", st)
}

// addJob records a background job about to start on host, and saves: a
// job is known before it runs, so that no crash can hide it.
func (st *State) addJob(scenario, host, job string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.Memory == nil {
		st.Memory = &execute.Memory{}
	}
	if st.Memory.Jobs == nil {
		st.Memory.Jobs = execute.Jobs{}
	}
	st.Memory.Jobs[host] = append(st.Memory.Jobs[host], job)
	return results.WriteJSON(stateDir(scenario), "state.json", st)
}

// addBlob records that blob may land on hosts, and saves: the state
// knows it before the spread, so that destroy removes it whatever happens.
func (st *State) addBlob(scenario, blob string, hosts []string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.Blobs == nil {
		st.Blobs = map[string][]string{}
	}
	for _, h := range hosts {
		if !slices.Contains(st.Blobs[h], blob) {
			st.Blobs[h] = append(st.Blobs[h], blob)
		}
	}
	return results.WriteJSON(stateDir(scenario), "state.json", st)
}

// remember keeps what an executor's tasks registered, for the step
// commands that follow. Its background jobs are recorded already (addJob).
func (st *State) remember(m *execute.Memory) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.Memory == nil {
		st.Memory = &execute.Memory{}
	}
	st.Memory.Registered = m.Registered
}

// jobs are the background jobs recorded, by host.
func (st *State) jobs() execute.Jobs {
	if st.Memory == nil {
		return nil
	}
	return st.Memory.Jobs
}

// jobsOn returns a copy of the background jobs recorded on the hosts keep
// selects.
func (st *State) jobsOn(keep func(host string) bool) execute.Jobs {
	jobs := st.jobs().Clone()
	maps.DeleteFunc(jobs, func(h string, _ []string) bool { return !keep(h) })
	return jobs
}

// stopJobs stops the recorded background jobs of which, forgets those it
// stopped or found ended, and saves. The others stay recorded, named by
// the error. It returns the jobs stopped.
func (st *State) stopJobs(ctx context.Context, scenario string, connect transport.Connector, which execute.Jobs) (execute.Jobs, error) {
	if len(which) == 0 {
		return nil, nil
	}
	stopped, err := execute.StopJobs(ctx, connect, which)
	st.mu.Lock()
	st.jobs().Drop(stopped)
	st.mu.Unlock()
	return stopped, errors.Join(err, st.Save(scenario))
}

// stopAllJobs stops every background job recorded (an earlier run's,
// maybe of an e2c that crashed), before the hosts are released. What it
// cannot stop is a warning: the release goes on.
func stopAllJobs(ctx context.Context, st *State, scenario string, connect transport.Connector, out io.Writer) {
	stopped, err := st.stopJobs(ctx, scenario, connect, st.jobs().Clone())
	sayStopped(out, stopped)
	if err != nil {
		fmt.Fprintf(out, "warning: %v\n", err)
	}
}

func sayStopped(out io.Writer, stopped execute.Jobs) {
	if len(stopped) > 0 {
		fmt.Fprintf(out, "background jobs an earlier run started on %d hosts: stopped where still running\n", len(stopped))
	}
}
