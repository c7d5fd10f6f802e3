package plan

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/e2c-dev/e2c/schema"
)

// Instance is one service instance after repeat copies are made: it needs
// Service.Quantity machines.
type Instance struct {
	Layer      string // lower-case layer name
	LayerIndex int    // 1-based
	Name       string // lower-case service name
	Index      int    // 1-based position in its layer, copies included
	Testbed    string // where it runs
	Service    *schema.Service
}

// ID names the instance as host keys start: cloud.flink.1.
func (in Instance) ID() string { return fmt.Sprintf("%s.%s.%d", in.Layer, in.Name, in.Index) }

// Expand lists the service instances of a scenario in key order. As in
// E2Clab, repeat: R appends R copies of a service at the end of its layer,
// after the services written below it, and indices are 1-based in that
// final order.
func Expand(ls *schema.LayersServices) []Instance {
	var out []Instance
	for li, l := range ls.Layers {
		services := make([]*schema.Service, 0, len(l.Services))
		for i := range l.Services {
			services = append(services, &l.Services[i])
		}
		for i := range l.Services {
			for range l.Services[i].Repeat {
				services = append(services, &l.Services[i])
			}
		}
		for si, s := range services {
			testbed := s.Environment
			if testbed == "" {
				testbed = ls.Environment.Master()
			}
			out = append(out, Instance{
				Layer: strings.ToLower(l.Name), LayerIndex: li + 1,
				Name: strings.ToLower(s.Name), Index: si + 1,
				Testbed: testbed, Service: s,
			})
		}
	}
	return out
}

// Machine is a host a provider reserved for a service instance.
type Machine struct {
	Name     string `json:"name"`                // inventory name
	Address  string `json:"address"`             // how templates and SSH reach it (__address__)
	Address4 string `json:"address4,omitempty"`  // first IPv4 address
	Address6 string `json:"address6,omitempty"`  // IPv6 address
	IPv6Name string `json:"ipv6_name,omitempty"` // DNS name of the IPv6 address (Grid'5000)
}

// Synthetic makes stand-in machines for a plan that touches no testbed:
// one per machine each instance needs, named after its key, with addresses
// from ranges reserved for documentation and benchmarks (RFC 2544, RFC 3849)
// so they can never reach a real host.
func Synthetic(instances []Instance) [][]Machine {
	out := make([][]Machine, len(instances))
	seen := map[string]bool{}
	n := 0
	for i, in := range instances {
		for m := 1; m <= in.Service.Quantity; m++ {
			name := strings.ReplaceAll(fmt.Sprintf("%s-%s-%d-%d", in.Layer, in.Name, in.Index, m), "_", "-")
			for base, k := name, 2; seen[name]; k++ {
				name = fmt.Sprintf("%s-x%d", base, k)
			}
			seen[name] = true
			n++
			v4 := netip.AddrFrom4([4]byte{198, 18 + byte(n>>16&1), byte(n >> 8), byte(n)})
			v6 := netip.MustParseAddr("2001:db8::").As16()
			v6[12], v6[13], v6[14], v6[15] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
			out[i] = append(out[i], Machine{
				Name: name, Address: name, Address4: v4.String(),
				Address6: netip.AddrFrom16(v6).String(), IPv6Name: name + "-ipv6",
			})
		}
	}
	return out
}
