package netns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
)

func init() { providers.Register("netns", provider{}) }

// provider reserves one lab per experiment, with a host per machine of
// every instance.
type provider struct{}

// settingKeys are the keys of the netns block of layers_services.yaml;
// job_name is the schema's shared key, already in Request.Experiment.
var settingKeys = "job_name, subnet, subnet6"

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
			h := hosts[0]
			hosts = hosts[1:]
			v4 := h.Address4.String()
			res.Hosts[i] = append(res.Hosts[i], providers.Host{
				Machine: plan.Machine{Name: h.Name, Address: v4, Address4: v4, Address6: h.Address6.String()},
				SSH: &transport.Endpoint{
					Host: v4, Port: 22, User: "root",
					KeyFiles: []string{lab.KeyFile()},
					HostKeys: transport.Strict, KnownHosts: lab.KnownHostsFile(),
				},
			})
		}
	}
	return res, nil
}

// options reads the request into lab options.
func options(req providers.Request) (Options, error) {
	if req.Experiment == "" {
		return Options{}, errors.New("netns: the request names no experiment")
	}
	// The state folder is the scenario's own: two scenarios with the same
	// job name get two labs.
	o := Options{Name: req.Experiment + "@" + req.StateDir, StateDir: req.StateDir}
	for k, v := range req.Settings {
		var p *netip.Prefix
		example := DefaultSubnet.String()
		switch k {
		case "job_name":
			continue
		case "subnet":
			p = &o.Subnet
		case "subnet6":
			p, example = &o.Subnet6, DefaultSubnet6.String()
		default:
			return o, fmt.Errorf("netns: unknown setting %q; valid settings: %s", k, settingKeys)
		}
		s, ok := v.(string)
		if !ok {
			return o, fmt.Errorf("netns: setting %s: found %v, expected a CIDR range such as %s", k, v, example)
		}
		var err error
		if *p, err = netip.ParsePrefix(s); err != nil {
			return o, fmt.Errorf("netns: setting %s: %q is not a CIDR range such as %s", k, s, example)
		}
	}
	return o, nil
}

func (provider) Release(ctx context.Context, r *providers.Reservation) error {
	if len(r.State) == 0 {
		return errors.New("netns: the reservation has no state; cannot tell which lab to release")
	}
	var lab Lab
	if err := json.Unmarshal(r.State, &lab); err != nil {
		return err
	}
	err := lab.Destroy(ctx)
	// Cleanup catches what the record does not name, such as a lab
	// created again under the same name by a crashed run.
	return errors.Join(err, Cleanup(ctx, lab.Name()))
}
