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
	// Retired names the hosts Resize removed, whose names are not given
	// again: their results keep them in the run folder.
	Retired []string `json:"retired,omitempty"`
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

// Resize keeps the hosts keep lists as they are, stops what runs in the
// others' working areas and removes them, then adds hosts, each with a new
// working area and the first loopback address of the scenario's blocks
// that no host holds (a further block is claimed when they are full).
func (p provider) Resize(_ context.Context, r *providers.Reservation, req providers.Request, keep [][]providers.Host) error {
	if err := p.CheckSettings(req.Settings, req.Instances); err != nil {
		return err
	}
	st, err := decode(r)
	if err != nil {
		return err
	}
	if st.StateDir == "" {
		return errors.New("local: reserved by an older e2c, without addresses of its own; e2c destroy, then deploy again")
	}
	rp, err := providers.PlanResize(r, req.Instances, keep)
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	taken := map[string]bool{}
	for _, n := range st.Retired {
		taken[n] = true
	}
	for _, d := range st.Dirs {
		taken[filepath.Base(d)] = true
	}
	held := map[int]bool{}
	var keptDirs []string
	for _, hs := range rp.Keep {
		for _, h := range hs {
			slot, ok := slotOf(st.Block, h.Address)
			if !ok {
				return fmt.Errorf("local: host %s: address %s is not of the scenario's blocks", h.Name, h.Address)
			}
			held[slot] = true
			keptDirs = append(keptDirs, h.WorkDir)
		}
	}
	names := providers.NewHostNames(req.Instances, rp.Add, func(n string) bool { return taken[n] })
	type added struct {
		name string
		slot int
	}
	var adds [][]added
	last := -1
	for slot := range held {
		last = max(last, slot)
	}
	slot := 0
	for _, ns := range names {
		var a []added
		for _, n := range ns {
			for held[slot] {
				slot++
			}
			held[slot] = true
			last = max(last, slot)
			a = append(a, added{n, slot})
		}
		adds = append(adds, a)
	}
	// More addresses first, so that a scenario that cannot have them
	// loses nothing.
	if err := growClaim(st.StateDir, st.Block, last/hostsPerBlock+1); err != nil {
		return err
	}
	// From here on, r holds the kept hosts whatever happens.
	var gone []string
	for _, h := range rp.Release {
		gone = append(gone, h.WorkDir)
		st.Retired = append(st.Retired, h.Name)
	}
	r.Hosts = rp.Keep
	if err := clean(gone, req.Out); err != nil {
		// Their folders stay in the record, for Release.
		return errors.Join(fmt.Errorf("local: removing hosts: %w", err), p.setState(r, st, req))
	}
	st.Dirs = keptDirs
	var newDirs []string
	for _, a := range adds {
		for _, h := range a {
			newDirs = append(newDirs, filepath.Join(st.StateDir, "hosts", h.name))
		}
	}
	grown := st
	grown.Dirs = append(slices.Clone(keptDirs), newDirs...)
	// Recorded before anything exists, as in Reserve.
	if err := req.Save(grown); err != nil {
		return errors.Join(fmt.Errorf("local: %w", err), p.setState(r, st, req))
	}
	err = clean(newDirs, req.Out) // stale files must not stand in for artifacts
	for _, d := range newDirs {
		if err == nil {
			err = os.MkdirAll(d, 0o755)
		}
	}
	if err != nil {
		return errors.Join(err, clean(newDirs, io.Discard), p.setState(r, st, req))
	}
	for i, a := range adds {
		for _, h := range a {
			addr := address(st.Block, h.slot)
			r.Hosts[i] = append(r.Hosts[i], providers.Host{
				Machine: plan.Machine{Name: h.name, Address: addr, Address4: addr},
				WorkDir: filepath.Join(st.StateDir, "hosts", h.name),
			})
		}
	}
	r.State, err = json.Marshal(grown)
	return err
}

// setState makes st the state of r, and journals it.
func (provider) setState(r *providers.Reservation, st state, req providers.Request) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	r.State = data
	return req.Save(st)
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
