package plan

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/e2c-dev/e2c/engine/pattern"
	"github.com/e2c-dev/e2c/engine/servicedef"
	"github.com/e2c-dev/e2c/schema"
)

// Host is a machine of the experiment and what it runs.
type Host struct {
	Machine
	Instance string   `json:"instance"` // cloud.flink.1
	Testbed  string   `json:"testbed"`
	Groups   []string `json:"groups"` // layer, service, ids, roles, testbed: sorted
	Keys     []string `json:"keys"`   // the service keys registered on it, in key order
	// Containers are what the services step starts on it, in key order
	// (a service's sub-services in their definition's order).
	Containers []*Container `json:"containers,omitempty"`
}

// Service is one registered service key and the information templates read
// about it through _self and depends_on.
type Service struct {
	Key  string         `json:"key"` // cloud.flink.1.job_manager.1
	Host string         `json:"host"`
	Info map[string]any `json:"info"`

	host      int      // index into the plan's hosts
	names     []string // every name a host pattern may use for it
	instance  int      // index into the plan's instances
	sub       string   // its sub-service, if any
	stage     int      // its sub-service's position in the definition
	container *schema.Container
}

// inventory is the registered services of a plan and the pattern indexes
// over them: service_selector picks services, while hosts, src and dst pick
// hosts, each answering to every name of its services (so that, as in
// Ansible, "a:&b" keeps the hosts in both groups even when different
// services of the host put it there).
type inventory struct {
	hosts     []*Host
	services  []*Service
	index     *pattern.Index // over services
	hostIndex *pattern.Index // over hosts
}

// register places every instance on its machines through its service
// definition, giving keys in key order: <layer>.<service>.<index>[.<sub>].<i>.
func register(instances []Instance, machines [][]Machine, defs servicedef.Registry, errs *schema.Errors) *inventory {
	inv := &inventory{}
	seen := map[string]bool{}
	for i, in := range instances {
		if len(machines[i]) != in.Service.Quantity {
			errs.At(in.Service.Pos, "service %s: %d machines for a quantity of %d", in.ID(), len(machines[i]), in.Service.Quantity)
			continue
		}
		first := len(inv.hosts)
		groups := []string{in.Layer, in.Name, fmt.Sprintf("%d_%d", in.LayerIndex, in.Index), strings.ToLower(in.Testbed)}
		for _, r := range in.Service.Roles {
			groups = append(groups, strings.ToLower(r))
		}
		for _, m := range machines[i] {
			inv.hosts = append(inv.hosts, &Host{Machine: m, Instance: in.ID(), Testbed: in.Testbed, Groups: slices.Clone(groups)})
		}
		def := defs[in.Name]
		var subs []schema.Subservice
		if def != nil {
			subs = def.Subservices
		}
		if len(subs) == 0 {
			subs = []schema.Subservice{{Hosts: schema.Slice{Text: ":"}}}
		}
		for stage, sub := range subs {
			picked := sub.Hosts.Pick(len(machines[i]))
			if len(picked) == 0 && sub.Fallback.Text != "" {
				picked = sub.Fallback.Pick(len(machines[i]))
			}
			info := sub.Info
			if def != nil {
				info = mergeInfo(def.Info, sub.Info)
			}
			for n, m := range picked {
				key := in.ID()
				if sub.Name != "" {
					key += "." + sub.Name
				}
				key += "." + strconv.Itoa(n+1)
				if seen[key] {
					errs.At(in.Service.Pos, "service key %s is registered twice", key)
					continue
				}
				seen[key] = true
				h := inv.hosts[first+m]
				id := fmt.Sprintf("%d_%d_%d", in.LayerIndex, in.Index, n+1)
				h.Keys = append(h.Keys, key)
				if !slices.Contains(h.Groups, id) {
					h.Groups = append(h.Groups, id)
				}
				inv.services = append(inv.services, &Service{
					Key: key, Host: h.Name, host: first + m, instance: i, sub: sub.Name, stage: stage, container: info.Container,
					Info: hostInfo(in, n+1, h.Machine, info),
				})
			}
		}
	}
	for _, h := range inv.hosts {
		slices.Sort(h.Groups)
		h.Groups = slices.Compact(h.Groups)
	}
	entries := make([][]string, len(inv.services))
	hostNames := make([][]string, len(inv.hosts))
	for i, h := range inv.hosts {
		hostNames[i] = append([]string{strings.ToLower(h.Name)}, h.Groups...)
	}
	for i, s := range inv.services {
		h := inv.hosts[s.host]
		s.names = append(dotPrefixes(s.Key), strings.ToLower(h.Name))
		s.names = append(s.names, h.Groups...)
		entries[i] = s.names
		hostNames[s.host] = append(hostNames[s.host], dotPrefixes(s.Key)...)
	}
	inv.index = pattern.NewIndex(entries)
	inv.hostIndex = pattern.NewIndex(hostNames)
	return inv
}

// dotPrefixes lists a key and every dot-prefix of it, so that patterns
// written without the trailing machine index (cloud.kafka.*.leader, as in
// the published CCTV example) select the same hosts as those with it.
func dotPrefixes(key string) []string {
	var out []string
	for i := range len(key) {
		if key[i] == '.' {
			out = append(out, key[:i])
		}
	}
	return append(out, key)
}

func mergeInfo(base, over schema.Info) schema.Info {
	out := base
	if over.Port != 0 {
		out.Port = over.Port
	}
	if over.Container != nil {
		out.Container = over.Container
	}
	if len(over.Vars) > 0 {
		out.Vars = map[string]any{}
		for k, v := range base.Vars {
			out.Vars[k] = v
		}
		for k, v := range over.Vars {
			out.Vars[k] = v
		}
	}
	return out
}

// hostInfo builds the dictionary E2Clab calls a host's extra info.
func hostInfo(in Instance, machine int, m Machine, def schema.Info) map[string]any {
	info := map[string]any{}
	for k, v := range def.Vars {
		info[k] = v
	}
	withPort := func(addr string) string {
		if def.Port == 0 {
			return addr
		}
		return net.JoinHostPort(addr, strconv.Itoa(def.Port))
	}
	// The ids are strings, as E2Clab writes them: "{{ _self.machine_id == '1' }}".
	info["_id"] = fmt.Sprintf("%d_%d_%d", in.LayerIndex, in.Index, machine)
	info["layer_id"] = strconv.Itoa(in.LayerIndex)
	info["service_id"] = strconv.Itoa(in.Index)
	info["machine_id"] = strconv.Itoa(machine)
	info["__address__"] = m.Address
	info["url"] = withPort(m.Address)
	if m.Address4 != "" {
		info["__address4__"] = m.Address4
		info["url4"] = withPort(m.Address4)
	}
	if m.Address6 != "" {
		info["__address6__"] = m.Address6
		info["url6"] = withPort(m.Address6)
		if def.Port == 0 {
			info["url6"] = "[" + m.Address6 + "]" // a URL's IPv6 host is bracketed, port or not, as in E2Clab
		}
	}
	if m.IPv6Name != "" {
		info["g5k_ipv6_hostname"] = m.IPv6Name
	}
	if def.Port != 0 {
		info["port"] = def.Port
	}
	if def.Container != nil {
		info["container"] = def.Container.Name
	}
	return info
}
