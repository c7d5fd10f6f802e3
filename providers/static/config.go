// Package static is the provider of machines that already exist: a list of
// hosts reached over SSH, such as a Raspberry Pi cluster or lab servers,
// given in the scenario's static block. Nothing is reserved: Reserve picks
// hosts for the instances and checks they are usable, and Release only
// removes what e2c wrote (the /etc/hosts block).
package static

import (
	"cmp"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers/dockerinstall"
	"github.com/e2c-dev/e2c/schema"
	"github.com/e2c-dev/e2c/schema/suggest"
)

// block is the static block of layers_services.yaml.
type block struct {
	schema.Node
	JobName  string      `yaml:"job_name"` // the shared key, already in Request.Experiment
	Cluster  string      `yaml:"cluster"`
	Hosts    []hostBlock `yaml:"hosts"`
	User     string      `yaml:"user"`
	Port     int         `yaml:"port"`
	KeyFile  string      `yaml:"keyfile"`
	HostKeys hostKeys    `yaml:"host_keys"`
	EtcHosts bool        `yaml:"etc_hosts"`
	Docker   string      `yaml:"docker"` // install, or use (the default)
}

// hostBlock is one entry of the hosts list, as written.
type hostBlock struct {
	schema.Node
	Address string `yaml:"address"`
	Alias   string `yaml:"alias"`
	Cluster string `yaml:"cluster"`
	Arch    string `yaml:"arch"`
	User    string `yaml:"user"`
	Port    int    `yaml:"port"`
	KeyFile string `yaml:"keyfile"`
	// DockerSocket is where the host's Docker Engine listens, if not at
	// /var/run/docker.sock.
	DockerSocket string `yaml:"docker_socket"`
}

// hostKeys is the host_keys policy; YAML 1.1's bare off means off.
type hostKeys struct{ transport.HostKeyPolicy }

func (h *hostKeys) UnmarshalText(b []byte) error {
	switch p := transport.HostKeyPolicy(b); p {
	case transport.Strict, transport.AcceptNew, transport.Off:
		h.HostKeyPolicy = p
	case "false", "no":
		h.HostKeyPolicy = transport.Off
	default:
		return fmt.Errorf("found %q, expected strict, accept-new or off", b)
	}
	return nil
}

// hostSpec is one machine of the hosts list, with the block's defaults
// applied.
type hostSpec struct {
	Address, Alias, Cluster, Arch string
	User, KeyFile, DockerSocket   string
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
	docker   string // the docker key, "" when absent
}

var arches = []string{"arm", "arm64", "amd64"}

// parseConfig reads the block, reporting every problem at once, each at
// its position.
func parseConfig(tb *schema.Testbed) (config, error) {
	c := config{policy: transport.Strict}
	var errs schema.Errors
	var b block
	if tb != nil {
		errs.Add(tb.Decode(&b))
		errs.Add(parsePort(b.Node, b.Port))
		errs.Add(dockerinstall.Check(b.Node, "static", b.Docker))
	}
	if b.HostKeys.HostKeyPolicy != "" {
		c.policy = b.HostKeys.HostKeyPolicy
	}
	c.cluster, c.etcHosts, c.docker = b.Cluster, b.EtcHosts, b.Docker
	if len(b.Hosts) == 0 {
		at := schema.Pos{}
		if tb != nil {
			at = b.At("hosts")
		}
		errs.At(at, "static.hosts: no hosts given; list the machines, e.g. - {address: 10.0.0.2, alias: pi-0, cluster: worker}")
	}
	names := map[string]int{} // alias or address -> host number + 1
	for i, hb := range b.Hosts {
		h := hostSpec{Address: hb.Address, Alias: hb.Alias, Cluster: hb.Cluster, Arch: hb.Arch,
			User: cmp.Or(hb.User, b.User), KeyFile: cmp.Or(hb.KeyFile, b.KeyFile), Port: cmp.Or(hb.Port, b.Port),
			DockerSocket: hb.DockerSocket}
		errs.Add(parsePort(hb.Node, hb.Port))
		if h.Address == "" {
			errs.At(hb.Pos, "static.hosts: this host has no address")
		}
		if h.DockerSocket != "" && !filepath.IsAbs(h.DockerSocket) {
			errs.At(hb.At("docker_socket"), "static.hosts.docker_socket: %q: expected an absolute path on the host", h.DockerSocket)
		}
		if h.Arch != "" && !slices.Contains(arches, h.Arch) {
			errs.At(hb.At("arch"), "static.hosts.arch: %q: expected arm, arm64 or amd64", h.Arch)
		}
		// The names go into /etc/hosts and shell commands.
		for _, f := range []struct{ key, v string }{{"address", h.Address}, {"alias", h.Alias}} {
			if strings.ContainsAny(f.v, " \t\r\n#'\"\\") {
				errs.At(hb.At(f.key), "static.hosts.%s: %q: spaces, quotes, '#' and '\\' are not allowed in names and addresses", f.key, f.v)
			}
		}
		for _, n := range []string{h.Alias, h.Address} {
			if n == "" {
				continue
			}
			// Names pick hosts in servers, so each must mean one host.
			if j, dup := names[n]; dup && j != i+1 {
				errs.At(hb.Pos, "static.hosts: %q also names the host at line %d; aliases and addresses must name one host each", n, b.Hosts[j-1].Pos.Line)
			}
			names[n] = i + 1
		}
		if _, err := netip.ParseAddr(h.Address); c.etcHosts && err != nil && h.Address != "" {
			errs.At(hb.At("address"), "static.hosts.address: %q: etc_hosts needs IP addresses, not names", h.Address)
		}
		c.hosts = append(c.hosts, h)
	}
	return c, errs.Err()
}

// parsePort checks the port of a block or host, when written.
func parsePort(n schema.Node, port int) error {
	if n.Has("port") && (port < 1 || port > 65535) {
		return schema.Errorf(n.At("port"), "static.port: found %d, expected a port number (1-65535)", port)
	}
	return nil
}

// assign picks hosts for every instance, in request order, returning
// host numbers. It is deterministic, uses each host once, and fails rather
// than giving an instance fewer hosts than it asks for.
func assign(c config, instances []plan.Instance) ([][]int, error) {
	return pick(c, instances, nil, make([]bool, len(c.hosts)), nil)
}

// pick picks hosts for every instance as assign does, for a reservation
// that holds some already: kept[n] hosts of instance n are kept (nil: none
// is), used[i] tells host i is held, and hosts that later[i] marks are
// taken only after the others.
func pick(c config, instances []plan.Instance, kept []int, used, later []bool) ([][]int, error) {
	used = slices.Clone(used)
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
		if kept != nil {
			want -= kept[n]
		}
		var candidates []int
		var what string
		switch {
		case len(in.Service.Servers) > 0:
			what = "servers " + strings.Join(in.Service.Servers, ", ")
			for _, s := range in.Service.Servers {
				i, ok := byName[s]
				if !ok {
					return nil, schema.Errorf(in.Service.At("servers"), "static: %s: server %q is not in static.hosts (known: %s)%s", in.ID(), s,
						strings.Join(names(c.hosts, nil), ", "), suggest.Hint(s, names(c.hosts, nil)))
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
					return nil, schema.Errorf(in.Service.At("cluster"), "static: %s: no host has cluster %q (clusters: %s)%s", in.ID(), cluster,
						strings.Join(known, ", "), suggest.Hint(cluster, known))
				}
			}
			for i, h := range c.hosts {
				if cluster == "" || h.Cluster == cluster {
					candidates = append(candidates, i)
				}
			}
		}
		var free []int
		for _, last := range []bool{false, true} {
			for _, i := range candidates {
				if !used[i] && !slices.Contains(free, i) && (later != nil && later[i]) == last {
					free = append(free, i)
				}
			}
		}
		if len(free) < want {
			if kept != nil {
				unused := "none is unused"
				switch {
				case len(free) == 1:
					unused = "1 is unused: " + c.hosts[free[0]].name()
				case len(free) > 1:
					unused = fmt.Sprintf("%d are unused: %s", len(free), strings.Join(names(c.hosts, free), ", "))
				}
				return nil, schema.Errorf(in.Service.At("quantity"), "static: %s needs %d more host(s) from %s; %s", in.ID(), want, what, unused)
			}
			left := "none left"
			if len(free) > 0 {
				left = fmt.Sprintf("%d left: %s", len(free), strings.Join(names(c.hosts, free), ", "))
			}
			return nil, schema.Errorf(in.Service.At("quantity"), "static: %s (service %s) asks for %d host(s) from %s; %s (each host serves one instance)",
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
