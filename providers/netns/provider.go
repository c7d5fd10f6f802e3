package netns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	"github.com/e2c-dev/e2c/engine/fanout"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/schema"
)

// New returns the netns provider: each host an emulated machine of a lab of network namespaces.
func New() providers.Provider { return provider{} }

var _ providers.DockerProvider = provider{}

// provider reserves one lab per experiment, with a host per machine of
// every instance.
type provider struct{}

func (provider) Reserve(ctx context.Context, req providers.Request) (*providers.Reservation, error) {
	if err := Preflight(); err != nil {
		return nil, err
	}
	o, err := options(req)
	if err != nil {
		return nil, err
	}
	names := plan.Synthetic(req.Instances)
	for _, ms := range names {
		for _, m := range ms {
			o.Hosts = append(o.Hosts, m.Name)
		}
	}
	// Journaled before anything exists: a reserve killed while the lab is
	// being built leaves a record that Release (e2c destroy) tears down.
	o.Journal = func(l *Lab) error { return req.Save(l) }
	lab, err := Create(ctx, o)
	if err != nil {
		return nil, err
	}
	state, err := json.Marshal(lab)
	if err != nil {
		return nil, errors.Join(err, lab.Destroy(context.WithoutCancel(ctx)))
	}
	res := &providers.Reservation{Provider: "netns", Hosts: make([][]providers.Host, len(names)), State: state}
	hosts := lab.Hosts()
	for i, ms := range names {
		for range ms {
			res.Hosts[i] = append(res.Hosts[i], lab.host(hosts[0]))
			hosts = hosts[1:]
		}
	}
	return res, nil
}

// host is how the plan and SSH see host h.
func (l *Lab) host(h Host) providers.Host {
	v4 := h.Address4.String()
	return providers.Host{
		Machine: plan.Machine{Name: h.Name, Address: v4, Address4: v4, Address6: h.Address6.String()},
		SSH: &transport.Endpoint{
			Host: v4, Port: 22, User: "root",
			KeyFiles: []string{l.KeyFile()},
			HostKeys: transport.Strict, KnownHosts: l.KnownHostsFile(),
		},
	}
}

// Resize keeps the hosts keep lists as they run, removes the others (see
// Lab.RemoveHosts), then adds the new ones to the lab (Lab.AddHosts),
// after checking that the lab can hold them all.
func (provider) Resize(ctx context.Context, r *providers.Reservation, req providers.Request, keep [][]providers.Host) error {
	if err := Preflight(); err != nil {
		return err
	}
	lab, err := labOf(r)
	if err != nil {
		return err
	}
	rp, err := providers.PlanResize(r, req.Instances, keep)
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	names := providers.NewHostNames(req.Instances, rp.Add, func(n string) bool {
		return slices.Contains(lab.rec.Retired, n) || slices.ContainsFunc(lab.rec.Hosts, func(h Host) bool { return h.Name == n })
	})
	var gone []string
	for _, h := range rp.Release {
		gone = append(gone, h.Name)
	}
	if err := lab.checkAdd(len(lab.rec.Hosts)-len(gone), slices.Concat(names...)); err != nil {
		return err
	}
	// From here on, r holds the kept hosts and what the lab holds.
	r.Hosts = rp.Keep
	err = lab.RemoveHosts(ctx, gone, req.Out)
	var added []Host
	if err == nil {
		added, err = lab.AddHosts(ctx, slices.Concat(names...), func(l *Lab) error { return req.Save(l) })
	}
	state, merr := json.Marshal(lab)
	if merr != nil {
		return errors.Join(err, merr)
	}
	r.State = state
	if err != nil {
		return errors.Join(err, req.Save(lab))
	}
	for i, ns := range names {
		for range ns {
			r.Hosts[i] = append(r.Hosts[i], lab.host(added[0]))
			added = added[1:]
		}
	}
	return nil
}

// settings is the netns block of layers_services.yaml.
type settings struct {
	schema.Node
	JobName string `yaml:"job_name"` // the shared key, already in Request.Experiment
	Subnet  cidr   `yaml:"subnet"`
	Subnet6 cidr   `yaml:"subnet6"`
}

// cidr is an address range written as CIDR.
type cidr struct{ netip.Prefix }

func (c *cidr) UnmarshalText(b []byte) error {
	p, err := netip.ParsePrefix(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a CIDR range such as %s or %s", b, DefaultSubnet, DefaultSubnet6)
	}
	c.Prefix = p
	return nil
}

// settingsOf decodes the netns block; no block is the defaults.
func settingsOf(tb *schema.Testbed) (s settings, err error) {
	if tb != nil {
		err = tb.Decode(&s)
	}
	return s, err
}

// CheckSettings reads the block and checks that the lab it gives can hold
// the instances' hosts, without touching the system.
func (provider) CheckSettings(tb *schema.Testbed, instances []plan.Instance) error {
	s, err := settingsOf(tb)
	if err != nil {
		return err
	}
	o := Options{Name: "check", Subnet: s.Subnet.Prefix, Subnet6: s.Subnet6.Prefix}
	for _, ms := range plan.Synthetic(instances) {
		for _, m := range ms {
			o.Hosts = append(o.Hosts, m.Name)
		}
	}
	if len(o.Hosts) == 0 {
		return nil
	}
	if _, err := newRecord(o); err != nil {
		at := schema.Pos{}
		if tb != nil {
			at = tb.Pos
			if s.Has("subnet") {
				at = s.At("subnet")
			}
		}
		return schema.Errorf(at, "%v", err)
	}
	return nil
}

// options reads the request into lab options.
func options(req providers.Request) (Options, error) {
	if req.Experiment == "" {
		return Options{}, errors.New("netns: the request names no experiment")
	}
	s, err := settingsOf(req.Settings)
	if err != nil {
		return Options{}, err
	}
	// The state folder is the scenario's own: two scenarios with the same
	// job name get two labs.
	return Options{Name: req.Experiment + "@" + req.StateDir, StateDir: req.StateDir, Subnet: s.Subnet.Prefix, Subnet6: s.Subnet6.Prefix}, nil
}

func (provider) Release(ctx context.Context, r *providers.Reservation, out io.Writer) error {
	lab, err := labOf(r)
	if err != nil {
		return err
	}
	err = teardown(ctx, &lab.rec, out)
	// Cleanup catches what the record does not name, such as a lab
	// created again under the same name by a crashed run.
	return errors.Join(err, Cleanup(ctx, lab.Name()))
}

// labOf is the lab a reservation holds.
func labOf(r *providers.Reservation) (*Lab, error) {
	if len(r.State) == 0 {
		return nil, errors.New("netns: the reservation has no state; cannot tell which lab it holds")
	}
	var lab Lab
	if err := json.Unmarshal(r.State, &lab); err != nil {
		return nil, err
	}
	return &lab, nil
}

// ProvideDocker starts a dockerd (see Lab.Docker) in each named host whose
// daemon does not answer, several at once, and points the hosts of r at
// its socket. The netns block has no setting for it.
func (provider) ProvideDocker(ctx context.Context, r *providers.Reservation, hosts []string, _ *schema.Testbed, out io.Writer) error {
	lab, err := labOf(r)
	if err != nil {
		return err
	}
	var in []Host
	for _, name := range hosts {
		i := slices.IndexFunc(lab.rec.Hosts, func(h Host) bool { return h.Name == name })
		if i < 0 {
			return fmt.Errorf("netns: lab %q has no host %q", lab.Name(), name)
		}
		in = append(in, lab.rec.Hosts[i])
	}
	if len(in) == 0 {
		return nil
	}
	if err := CheckDocker(); err != nil {
		return fmt.Errorf("netns: hosts %s need a Docker Engine, but %w", strings.Join(hosts, ", "), err)
	}
	type result struct {
		d       *Docker
		started bool
		err     error
	}
	results := make([]result, len(in))
	// Every host gets its result: an interrupt fails the calls, not skips them.
	fanout.Each(context.WithoutCancel(ctx), len(in), workers, func(_ context.Context, i int) error {
		d, started, err := lab.Docker(ctx, in[i])
		results[i] = result{d, started, err}
		return nil
	})
	var errs []error
	for i, res := range results {
		if res.err != nil {
			errs = append(errs, res.err)
			continue
		}
		if res.started {
			fmt.Fprintf(out, "netns: started dockerd in host %s (log %s)\n", in[i].Name, res.d.Log)
		}
		for j := range r.Hosts {
			for k := range r.Hosts[j] {
				if r.Hosts[j][k].Name == in[i].Name {
					r.Hosts[j][k].DockerSocket = res.d.HostSocket
				}
			}
		}
	}
	return errors.Join(errs...)
}
