package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/e2c-dev/e2c/engine/emulation"
	"github.com/e2c-dev/e2c/engine/execute"
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
}

// stateDir is where an experiment keeps its state and provider files.
func stateDir(scenario string) string { return filepath.Join(scenario, ".e2c") }

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
		return nil, fmt.Errorf("another e2c process is working on %s (lock %s)", scenario, f.Name())
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
	return results.WriteJSON(stateDir(scenario), "state.json", st)
}
