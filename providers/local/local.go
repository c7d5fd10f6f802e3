// Package local is the provider that needs nothing: every host of the
// scenario is this machine, reached without SSH and without root. Each host
// gets its own working area, where its commands run and relative paths
// land, and its own loopback address, from blocks of 127.0.0.0/8 that no
// other scenario of this machine holds at the same time: services on
// different hosts, and on the hosts of two scenarios, can listen on the
// same port. Release stops what still runs in the working areas, removes
// them and frees the addresses.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/schema"
)

// New returns the local provider: services run on this machine, each host in a folder of its own.
func New() providers.Provider { return provider{} }

type provider struct{}

// state records what Release frees: the working areas, and the blocks of
// addresses claimed for StateDir (empty in the state of older versions,
// which claimed none).
type state struct {
	StateDir string   `json:"state_dir,omitempty"`
	Block    int      `json:"block,omitempty"`
	Dirs     []string `json:"dirs"`
}

// settings is the local block: it takes nothing beyond the shared job_name.
type settings struct {
	JobName string `yaml:"job_name"`
}

func (provider) CheckSettings(tb *schema.Testbed, instances []plan.Instance) error {
	if n := hostCount(instances); n > maxHosts {
		return fmt.Errorf("local: %d hosts, more than the %d that loopback addresses number", n, maxHosts)
	}
	if tb == nil {
		return nil
	}
	return tb.Decode(&settings{})
}

func hostCount(instances []plan.Instance) int {
	n := 0
	for _, in := range instances {
		n += in.Service.Quantity
	}
	return n
}

func (p provider) Reserve(ctx context.Context, req providers.Request) (*providers.Reservation, error) {
	if err := p.CheckSettings(req.Settings, req.Instances); err != nil {
		return nil, err
	}
	owner, err := filepath.Abs(req.StateDir)
	if err != nil {
		return nil, err
	}
	names := plan.Synthetic(req.Instances) // the same names a dry run shows
	st := state{StateDir: owner}
	for _, machines := range names {
		for _, m := range machines {
			st.Dirs = append(st.Dirs, filepath.Join(owner, "hosts", m.Name))
		}
	}
	// Recorded before anything exists, so that a crash leaves it known.
	if err := req.Save(st); err != nil {
		return nil, err
	}
	// Working areas left by a reservation whose record was lost start
	// empty again: stale files must not stand in for missing artifacts.
	if err := clean(st.Dirs, req.Out); err != nil {
		return nil, err
	}
	count := (len(st.Dirs) + hostsPerBlock - 1) / hostsPerBlock
	if st.Block, err = claimBlocks(owner, max(count, 1)); err != nil {
		return nil, err
	}
	r := &providers.Reservation{Provider: "local"}
	i := 0
	for _, machines := range names {
		var hosts []providers.Host
		for _, m := range machines {
			addr := address(st.Block, i)
			dir := st.Dirs[i]
			i++
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, errors.Join(err, release(st, io.Discard))
			}
			hosts = append(hosts, providers.Host{
				Machine: plan.Machine{Name: m.Name, Address: addr, Address4: addr},
				WorkDir: dir,
			})
		}
		r.Hosts = append(r.Hosts, hosts)
	}
	if r.State, err = json.Marshal(st); err != nil {
		return nil, errors.Join(err, release(st, io.Discard))
	}
	return r, nil
}

// Verify tells whether kept hosts can serve again: their working areas are
// there and their addresses are still recorded as theirs.
func (provider) Verify(_ context.Context, r *providers.Reservation, _ time.Duration) error {
	st, err := decode(r)
	if err != nil {
		return err
	}
	if st.StateDir == "" {
		return providers.CannotServe(errors.New("reserved by an older e2c, without addresses of its own"))
	}
	ok, err := claimed(st.StateDir, st.Block)
	if err != nil {
		return err
	}
	if !ok {
		return providers.CannotServe(errors.New("its loopback addresses are no longer recorded as its own"))
	}
	for _, d := range st.Dirs {
		if _, err := os.Stat(d); err != nil {
			return providers.CannotServe(fmt.Errorf("working area: %w", err))
		}
	}
	return nil
}

// Release stops what still runs in the working areas, removes them and
// frees the addresses. Only folders under a "hosts" folder are removed,
// whatever the saved state says.
func (provider) Release(_ context.Context, r *providers.Reservation, out io.Writer) error {
	st, err := decode(r)
	if err != nil {
		return err
	}
	return release(st, out)
}

func decode(r *providers.Reservation) (state, error) {
	var st state
	if len(r.State) > 0 {
		if err := json.Unmarshal(r.State, &st); err != nil {
			return st, fmt.Errorf("saved state: %w", err)
		}
	}
	return st, nil
}

func release(st state, out io.Writer) error {
	if err := clean(st.Dirs, out); err != nil {
		return err
	}
	if st.StateDir == "" {
		return nil
	}
	_ = os.Remove(filepath.Join(st.StateDir, "hosts")) // the claim is no longer live
	return unclaim(st.StateDir)
}

// clean stops the processes working in dirs and removes them.
func clean(dirs []string, out io.Writer) error {
	dirs = slices.Compact(slices.Clone(dirs))
	for _, dir := range dirs {
		if !filepath.IsAbs(dir) || filepath.Base(filepath.Dir(dir)) != "hosts" || strings.Contains(dir, "..") {
			return fmt.Errorf("refusing to remove %s: not a host working area", dir)
		}
	}
	if out == nil {
		out = io.Discard
	}
	if err := stopProcesses(dirs, out); err != nil {
		return err
	}
	for _, dir := range dirs {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	return nil
}
