package providers

import (
	"fmt"
	"strings"

	"github.com/e2c-dev/e2c/engine/plan"
)

// A ResizePlan is what a Resize of a reservation changes, worked out
// before anything is changed.
type ResizePlan struct {
	Keep    [][]Host // Keep[i]: the hosts instance i keeps, as the reservation holds them
	Release []Host   // the hosts of the reservation that no instance keeps, in its order
	Add     []int    // Add[i]: how many new hosts instance i gets
}

// PlanResize checks what a Resizer is asked, that each keep[i] lists hosts
// r holds, each host once, and no more than instance i's quantity, and
// works out the change. It changes nothing.
func PlanResize(r *Reservation, instances []plan.Instance, keep [][]Host) (ResizePlan, error) {
	if len(keep) > len(instances) {
		return ResizePlan{}, fmt.Errorf("keeps hosts for %d instances, but %d are asked for", len(keep), len(instances))
	}
	held := map[string]Host{}
	for _, hs := range r.Hosts {
		for _, h := range hs {
			held[h.Name] = h
		}
	}
	p := ResizePlan{Keep: make([][]Host, len(instances)), Add: make([]int, len(instances))}
	kept := map[string]bool{}
	for i, in := range instances {
		if in.Service.Quantity < 0 {
			return ResizePlan{}, fmt.Errorf("%s: quantity %d, expected 0 or more", in.ID(), in.Service.Quantity)
		}
		if i < len(keep) {
			for _, k := range keep[i] {
				h, ok := held[k.Name]
				switch {
				case !ok:
					return ResizePlan{}, fmt.Errorf("%s: host %q to keep is not one of the reservation", in.ID(), k.Name)
				case kept[k.Name]:
					return ResizePlan{}, fmt.Errorf("%s: host %q is kept twice", in.ID(), k.Name)
				}
				kept[k.Name] = true
				p.Keep[i] = append(p.Keep[i], h)
			}
		}
		if n := len(p.Keep[i]); n > in.Service.Quantity {
			return ResizePlan{}, fmt.Errorf("%s: keeps %d hosts, more than its quantity %d", in.ID(), n, in.Service.Quantity)
		}
		p.Add[i] = in.Service.Quantity - len(p.Keep[i])
	}
	for _, hs := range r.Hosts {
		for _, h := range hs {
			if !kept[h.Name] {
				p.Release = append(p.Release, h)
			}
		}
	}
	return p, nil
}

// NewHostNames names the hosts a Resize adds, add[i] for instance i, as
// plan.Synthetic names an instance's hosts (layer-service-index-n), with n
// past every name taken: the reservation's hosts and those it released,
// since a removed host's results keep its name in the run folder.
func NewHostNames(instances []plan.Instance, add []int, taken func(name string) bool) [][]string {
	out := make([][]string, len(instances))
	given := map[string]bool{}
	for i, in := range instances {
		base := strings.ReplaceAll(fmt.Sprintf("%s-%s-%d", in.Layer, in.Name, in.Index), "_", "-")
		n := 1
		for range add[i] {
			name := fmt.Sprintf("%s-%d", base, n)
			for ; taken(name) || given[name]; name = fmt.Sprintf("%s-%d", base, n) {
				n++
			}
			given[name] = true
			out[i] = append(out[i], name)
		}
	}
	return out
}
