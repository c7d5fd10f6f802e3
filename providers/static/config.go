// Package static is the provider of machines that already exist: a list of
// hosts reached over SSH, such as a Raspberry Pi cluster or lab servers,
// given in the scenario's static block. Nothing is reserved: Reserve picks
// hosts for the instances and checks they are usable, and Release only
// removes what e2c wrote (the /etc/hosts block).
package static

import (
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
)

// Valid keys, listed in errors so that a typo is caught rather than
// silently ignored.
var (
	blockKeys = []string{"job_name", "cluster", "hosts", "user", "port", "keyfile", "host_keys", "etc_hosts"}
	hostKeys  = []string{"address", "alias", "cluster", "arch", "user", "port", "keyfile"}
)

// hostSpec is one machine of the hosts list, with the block's defaults
// applied.
type hostSpec struct {
	Address, Alias, Cluster, Arch string
	User, KeyFile                 string
	Port                          int
}

// name is the machine's inventory name.
func (h hostSpec) name() string {
	if h.Alias != "" {
		return h.Alias
	}
	return h.Address
}

// config is the static block, read.
type config struct {
	hosts    []hostSpec
	cluster  string // default cluster of instances that name none
	policy   transport.HostKeyPolicy
	etcHosts bool
}

// parseConfig reads the block, reporting every problem at once.
func parseConfig(settings map[string]any) (config, error) {
	c := config{policy: transport.Strict}
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	var def hostSpec // block-level defaults
	var list []any
	for k, v := range settings {
		var err error
		switch k {
		case "job_name":
		case "cluster":
			c.cluster, err = str(v)
		case "hosts":
			var ok bool
			if list, ok = v.([]any); !ok {
				err = fmt.Errorf("found %v, expected a list of hosts such as {address: 10.0.0.2, alias: pi-0}", v)
			}
		case "user":
			def.User, err = str(v)
		case "port":
			def.Port, err = port(v)
		case "keyfile":
			def.KeyFile, err = str(v)
		case "host_keys":
			c.policy, err = policy(v)
		case "etc_hosts":
			var ok bool
			if c.etcHosts, ok = v.(bool); !ok {
				err = fmt.Errorf("found %v, expected true or false", v)
			}
		default:
			err = fmt.Errorf("unknown setting; valid settings: %s", strings.Join(blockKeys, ", "))
		}
		if err != nil {
			bad("static.%s: %v", k, err)
		}
	}
	slices.Sort(errs) // settings come from a map; keep messages stable
	if _, isList := settings["hosts"].([]any); len(list) == 0 && (isList || settings["hosts"] == nil) {
		bad("static.hosts: no hosts given; list the machines, e.g. - {address: 10.0.0.2, alias: pi-0, cluster: worker}")
	}
	names := map[string]int{} // alias or address -> host number + 1
	for i, item := range list {
		h, err := parseHost(item, def)
		if err != nil {
			bad("static.hosts[%d]: %v", i, err)
			continue
		}
		for _, n := range []string{h.Alias, h.Address} {
			if n == "" {
				continue
			}
			// Names pick hosts in servers, so each must mean one host.
			if j, dup := names[n]; dup && j != i+1 {
				bad("static.hosts[%d]: %q also names static.hosts[%d]; aliases and addresses must name one host each", i, n, j-1)
			}
			names[n] = i + 1
		}
		if _, err := netip.ParseAddr(h.Address); c.etcHosts && err != nil {
			bad("static.hosts[%d]: address %q: etc_hosts needs IP addresses, not names", i, h.Address)
		}
		c.hosts = append(c.hosts, h)
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("static: %s", strings.Join(errs, "\n  "))
	}
	return c, nil
}

func parseHost(item any, def hostSpec) (hostSpec, error) {
	m, ok := item.(map[string]any)
	if !ok {
		return def, fmt.Errorf("found %v, expected a mapping such as {address: 10.0.0.2, alias: pi-0}", item)
	}
	h := def
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := m[k]
		var err error
		switch k {
		case "address":
			h.Address, err = str(v)
		case "alias":
			h.Alias, err = str(v)
		case "cluster":
			h.Cluster, err = str(v)
		case "arch":
			h.Arch, err = str(v)
			if err == nil && !slices.Contains([]string{"arm", "arm64", "amd64"}, h.Arch) {
				err = fmt.Errorf("%q: expected arm, arm64 or amd64", h.Arch)
			}
		case "user":
			h.User, err = str(v)
		case "port":
			h.Port, err = port(v)
		case "keyfile":
			h.KeyFile, err = str(v)
		default:
			err = fmt.Errorf("unknown key; valid keys: %s", strings.Join(hostKeys, ", "))
		}
		if err != nil {
			return h, fmt.Errorf("%s: %v", k, err)
		}
	}
	if h.Address == "" {
		return h, fmt.Errorf("no address")
	}
	// The names go into /etc/hosts and shell commands.
	for _, s := range []string{h.Address, h.Alias} {
		if strings.ContainsAny(s, " \t\r\n#'\"\\") {
			return h, fmt.Errorf("%q: spaces, quotes, '#' and '\\' are not allowed in names and addresses", s)
		}
	}
	return h, nil
}

func str(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("found %v, expected a string", v)
	}
	return s, nil
}

func port(v any) (int, error) {
	var n float64
	switch p := v.(type) {
	case int:
		n = float64(p)
	case int64:
		n = float64(p)
	case uint64:
		n = float64(p)
	case float64:
		n = p
	default:
		return 0, fmt.Errorf("found %v, expected a port number", v)
	}
	if n != math.Trunc(n) || n < 1 || n > 65535 {
		return 0, fmt.Errorf("found %v, expected a port number (1-65535)", v)
	}
	return int(n), nil
}

func policy(v any) (transport.HostKeyPolicy, error) {
	if b, ok := v.(bool); ok && !b { // YAML 1.1 reads a bare off as false
		return transport.Off, nil
	}
	s, _ := v.(string)
	switch p := transport.HostKeyPolicy(s); p {
	case transport.Strict, transport.AcceptNew, transport.Off:
		return p, nil
	}
	return "", fmt.Errorf("found %v, expected strict, accept-new or off", v)
}

// assign picks hosts for every instance, in request order, returning
// host numbers. It is deterministic, uses each host once, and fails rather
// than giving an instance fewer hosts than it asks for.
func assign(c config, instances []plan.Instance) ([][]int, error) {
	used := make([]bool, len(c.hosts))
	byName := map[string]int{}
	clusters := map[string]bool{}
	for i, h := range c.hosts {
		byName[h.Address], byName[h.Alias] = i, i
		clusters[h.Cluster] = true
	}
	delete(byName, "")
	out := make([][]int, len(instances))
	for n, in := range instances {
		want := in.Service.Quantity
		var candidates []int
		var what string
		switch {
		case len(in.Service.Servers) > 0:
			what = "servers " + strings.Join(in.Service.Servers, ", ")
			for _, s := range in.Service.Servers {
				i, ok := byName[s]
				if !ok {
					return nil, fmt.Errorf("static: %s: server %q is not in static.hosts (known: %s)", in.ID(), s, strings.Join(names(c.hosts, nil), ", "))
				}
				candidates = append(candidates, i)
			}
		default:
			cluster := in.Service.Cluster
			if cluster == "" {
				cluster = c.cluster
			}
			what = "any host"
			if cluster != "" {
				what = fmt.Sprintf("cluster %q", cluster)
				if !clusters[cluster] {
					var known []string
					for k := range clusters {
						if k != "" {
							known = append(known, k)
						}
					}
					slices.Sort(known)
					return nil, fmt.Errorf("static: %s: no host has cluster %q (clusters: %s)", in.ID(), cluster, strings.Join(known, ", "))
				}
			}
			for i, h := range c.hosts {
				if cluster == "" || h.Cluster == cluster {
					candidates = append(candidates, i)
				}
			}
		}
		var free []int
		for _, i := range candidates {
			if !used[i] && !slices.Contains(free, i) {
				free = append(free, i)
			}
		}
		if len(free) < want {
			left := "none left"
			if len(free) > 0 {
				left = fmt.Sprintf("%d left: %s", len(free), strings.Join(names(c.hosts, free), ", "))
			}
			return nil, fmt.Errorf("static: %s (service %s) asks for %d host(s) from %s; %s (each host serves one instance)",
				in.ID(), in.Name, want, what, left)
		}
		for _, i := range free[:max(want, 0)] {
			used[i] = true
			out[n] = append(out[n], i)
		}
	}
	return out, nil
}

// names returns the names of the hosts numbered in idx, in that order, or
// of all hosts when idx is nil.
func names(hosts []hostSpec, idx []int) []string {
	var out []string
	if idx == nil {
		for _, h := range hosts {
			out = append(out, h.name())
		}
	}
	for _, i := range idx {
		out = append(out, hosts[i].name())
	}
	return out
}

// machine and endpoint describe host h for the plan and for SSH.
func (c config) machine(h hostSpec) plan.Machine {
	m := plan.Machine{Name: h.name(), Address: h.Address}
	if a, err := netip.ParseAddr(h.Address); err == nil {
		if a.Is4() {
			m.Address4 = a.String()
		} else {
			m.Address6 = a.String()
		}
	}
	return m
}

func (c config) endpoint(h hostSpec, stateDir string) *transport.Endpoint {
	e := &transport.Endpoint{Host: h.Address, Port: h.Port, User: h.User, HostKeys: c.policy}
	if h.KeyFile != "" {
		e.KeyFiles = []string{h.KeyFile}
	}
	if c.policy == transport.AcceptNew {
		e.KnownHosts = filepath.Join(stateDir, "known_hosts")
	}
	return e
}
