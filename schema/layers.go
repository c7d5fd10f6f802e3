package schema

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/schema/suggest"
	"gopkg.in/yaml.v3"
)

// LayersServices is layers_services.yaml: where the experiment runs and
// which services make it up.
type LayersServices struct {
	Node
	Environment Environment
	Monitoring  *Monitoring
	Layers      []Layer
}

// Environment holds the reservation settings shared by every testbed and one
// block per testbed. The first testbed written is the master one: services
// without an environment of their own go there.
type Environment struct {
	Node
	JobName  string
	Walltime time.Duration
	Cluster  string
	Testbeds []Testbed
}

// Master returns the name of the testbed services go to by default.
func (e Environment) Master() string {
	if len(e.Testbeds) == 0 {
		return ""
	}
	return e.Testbeds[0].Name
}

// Testbed returns the block of the named testbed, or nil.
func (e Environment) Testbed(name string) *Testbed {
	for i := range e.Testbeds {
		if e.Testbeds[i].Name == name {
			return &e.Testbeds[i]
		}
	}
	return nil
}

// Monitoring is the optional monitoring block.
type Monitoring struct {
	Node
	Type      string
	Provider  string
	Cluster   string
	Servers   []string
	Network   string
	AgentConf string
	Options   string
	IPv       int
	Interval  int // seconds between samples, default 1
}

// Layer is a named, ordered list of services; its name is a host group.
type Layer struct {
	Node
	Name     string
	Services []Service
}

// Service is one service definition as written, before repeat copies are
// made. Keys the schema does not know are kept in Extra for the service's
// definition to use.
type Service struct {
	Node
	Name        string
	Quantity    int
	Repeat      int
	Roles       []string
	Env         map[string]any
	Environment string
	Cluster     string
	Servers     []string
	// Image replaces the image of the containers its definition runs:
	// under "" every one, else the named sub-service's.
	Image map[string]string
	// Archive does the same with docker save files in ARTIFACTS_DIR,
	// whose images replace the definition's.
	Archive map[string]string
	Extra   map[string]any
}

var (
	// EnvironmentKeys are the environment's shared keys; every other key is a testbed.
	EnvironmentKeys = []string{"job_name", "walltime", "cluster"}
	serviceKeys     = []string{"name", "quantity", "repeat", "roles", "env", "environment", "cluster", "servers", "image", "archive"}
	monitoringKeys  = []string{"type", "provider", "cluster", "servers", "network", "agent_conf", "options", "ipv", "interval"}
	nameRE          = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// Bounds that keep a typo from planning millions of hosts.
const (
	maxCount    = 10_000  // quantity and repeat of one service
	MaxMachines = 100_000 // machines of a whole scenario
	maxWallHour = 87_600  // ten years
)

// DecodeLayersServices reads layers_services.yaml.
func DecodeLayersServices(file string, data []byte) (*LayersServices, error) {
	var errs Errors
	d := &decoder{file: file, errs: &errs}
	ls := d.layersServices(d.document(data, "a mapping with environment and layers"))
	return ls, errs.Err()
}

func (d *decoder) layersServices(root *yaml.Node) *LayersServices {
	ls := &LayersServices{}
	if root == nil {
		return ls
	}
	fs, node := d.fields(root, "layers_services", []string{"environment", "layers", "monitoring",
		"monitoring_iotlab", "provenance", "kwollect"})
	ls.Node = node
	for _, f := range fs {
		switch f.key {
		case "environment":
			ls.Environment = d.environment(f.v)
		case "layers":
			ls.Layers = d.layers(f.v)
		case "monitoring":
			ls.Monitoring = d.monitoring(f.v)
		default:
			d.errorf(f.k, "%s: not supported by e2c yet; remove the block (monitoring with type dstat is)", f.key)
		}
	}
	d.require(node, "layers_services", "environment", "layers")
	ls.checkServices(d)
	return ls
}

func (d *decoder) environment(n *yaml.Node) Environment {
	fs, node := d.fields(n, "environment", nil)
	env := Environment{Node: node, Walltime: time.Hour}
	for _, f := range fs {
		switch f.key {
		case "job_name":
			env.JobName = d.str(f.v, "environment.job_name")
		case "walltime":
			env.Walltime = d.walltime(f.v, "environment.walltime")
		case "cluster":
			env.Cluster = d.str(f.v, "environment.cluster")
		default:
			// Every other key is a testbed block, checked by the
			// provider of that name (providers.Check).
			env.Testbeds = append(env.Testbeds, d.testbed(f.key, d.pos(f.k), f.v))
		}
	}
	if len(env.Testbeds) == 0 && node.keys != nil {
		d.errs.At(node.Pos, "environment: no testbed block, expected one such as local: {}")
	}
	return env
}

// ParseWalltime reads a walltime written HH:MM:SS, with any number of hours
// (E2Clab refuses anything beyond 23:59:59; long reservations are real).
func ParseWalltime(s string) (time.Duration, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 || parts[0] == "" || len(parts[1]) != 2 || len(parts[2]) != 2 {
		return 0, fmt.Errorf("found %q, expected HH:MM:SS such as \"01:30:00\" (hours may exceed 23)", s)
	}
	var v [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || (i > 0 && n > 59) || n > maxWallHour {
			return 0, fmt.Errorf("found %q, expected HH:MM:SS with minutes and seconds 00 to 59 and at most %d hours", s, maxWallHour)
		}
		v[i] = n
	}
	d := time.Duration(v[0])*time.Hour + time.Duration(v[1])*time.Minute + time.Duration(v[2])*time.Second
	if d == 0 {
		return 0, fmt.Errorf("found %q, expected a walltime longer than zero", s)
	}
	return d, nil
}

func (d *decoder) walltime(n *yaml.Node, what string) time.Duration {
	s := d.str(n, what)
	if s == "" {
		return time.Hour
	}
	w, err := ParseWalltime(s)
	if err != nil {
		d.errorf(n, "%s: %v", what, err)
		return time.Hour
	}
	return w
}

func (d *decoder) monitoring(n *yaml.Node) *Monitoring {
	fs, node := d.fields(n, "monitoring", monitoringKeys)
	m := &Monitoring{Node: node, Network: "shared", Options: "-m -c -n", IPv: 4, Interval: 1}
	for _, f := range fs {
		key := "monitoring." + f.key
		switch f.key {
		case "type":
			m.Type = d.str(f.v, key)
		case "provider":
			m.Provider = d.str(f.v, key)
		case "cluster":
			m.Cluster = d.str(f.v, key)
		case "servers":
			m.Servers = d.strings(f.v, key)
		case "network":
			m.Network = d.str(f.v, key)
		case "agent_conf":
			m.AgentConf = d.str(f.v, key)
		case "options":
			m.Options = d.str(f.v, key)
		case "ipv":
			m.IPv = d.integer(f.v, key, 4, 6)
		case "interval":
			m.Interval = d.integer(f.v, key, 1, 3600)
		}
	}
	d.require(node, "monitoring", "type")
	switch m.Type {
	case "", "dstat":
	case "tig", "tpg":
		d.errs.At(node.At("type"), "monitoring.type: %q is not supported by e2c yet; use dstat", m.Type)
	default:
		d.errs.At(node.At("type"), "monitoring.type: unknown type %q, expected dstat", m.Type)
	}
	return m
}

func (d *decoder) layers(n *yaml.Node) []Layer {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		d.errorf(n, "layers: found %s, expected a list of layers, each with a name and services", describe(n))
		return nil
	}
	var out []Layer
	for _, c := range n.Content {
		fs, node := d.fields(c, "layer", []string{"name", "services"})
		l := Layer{Node: node}
		for _, f := range fs {
			switch f.key {
			case "name":
				l.Name = d.name(f.v, "layer name")
			case "services":
				l.Services = d.services(f.v, l.Name)
			}
		}
		d.require(node, "layer", "name", "services")
		out = append(out, l)
	}
	return out
}

// name reads a layer or service name: it becomes part of host keys, which
// are split on dots, so only letters, digits, '_' and '-' are allowed.
func (d *decoder) name(n *yaml.Node, what string) string {
	s := d.str(n, what)
	if s != "" && !nameRE.MatchString(s) {
		d.errorf(n, "%s: %q may only contain letters, digits, '_' and '-' (it becomes part of host keys such as cloud.flink.1.1)", what, s)
	}
	return s
}

func (d *decoder) services(n *yaml.Node, layer string) []Service {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		d.errorf(n, "layer %s: services: found %s, expected a list of services", layer, describe(n))
		return nil
	}
	var out []Service
	for _, c := range n.Content {
		out = append(out, d.service(c))
	}
	return out
}

func (d *decoder) service(n *yaml.Node) Service {
	fs, node := d.fields(n, "service", nil)
	s := Service{Node: node, Quantity: 1, Env: map[string]any{}, Extra: map[string]any{}}
	for _, f := range fs {
		key := "service." + f.key
		switch f.key {
		case "name":
			s.Name = d.name(f.v, "service name")
		case "quantity":
			s.Quantity = d.integer(f.v, key, 1, maxCount)
		case "repeat":
			s.Repeat = d.integer(f.v, key, 0, maxCount)
		case "roles":
			s.Roles = d.strings(f.v, key)
		case "env":
			if !isNull(f.v) {
				s.Env = d.mapping(f.v, key)
				if s.Env == nil {
					d.errorf(f.v, "%s: found %s, expected a mapping", key, describe(f.v))
				}
			}
		case "environment":
			s.Environment = d.str(f.v, key)
		case "cluster":
			s.Cluster = d.str(f.v, key)
		case "servers":
			s.Servers = d.strings(f.v, key)
		case "image":
			s.Image = d.serviceImage(f.v, key, "an image (name:tag)", d.image)
		case "archive":
			s.Archive = d.serviceImage(f.v, key, "an archive (a docker save file in ARTIFACTS_DIR)", d.str)
		default:
			// Free keys are service metadata; one that is a near miss
			// of a known key is far more likely a typo.
			if hint := suggest.Hint(f.key, serviceKeys); hint != "" {
				d.errorf(f.k, "service: unknown key %q%s", f.key, hint)
				continue
			}
			s.Extra[f.key] = d.value(f.v, key)
		}
	}
	d.require(node, "service", "name")
	if overlap(s.Image, s.Archive) {
		d.errs.At(node.At("archive"), "service %s: image and archive both replace the image of the same containers: keep one", s.Name)
	}
	if node.Has("cluster") && node.Has("servers") {
		// E2Clab silently ignores servers then; neither reading is safe.
		d.errs.At(node.At("cluster"), "service %s: both cluster and servers are given; E2Clab would take the cluster and ignore servers: keep one", s.Name)
	}
	return s
}

// serviceImage reads a service's image or archive: one for every container
// of its definition, or a mapping of sub-service names to them, each read
// by one; expect says what one reads.
func (d *decoder) serviceImage(n *yaml.Node, what, expect string, one func(*yaml.Node, string) string) map[string]string {
	if n = resolve(n); n.Kind == yaml.ScalarNode {
		return map[string]string{"": one(n, what)}
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: found %s, expected %s or a mapping of sub-services to them", what, describe(n), expect)
		return nil
	}
	fs, _ := d.fields(n, what, nil)
	out := map[string]string{}
	for _, f := range fs {
		out[strings.ToLower(f.key)] = one(f.v, what+"."+f.key)
	}
	return out
}

// overlap reports whether a service's image and archive name the same
// containers ("" naming every one).
func overlap(image, archive map[string]string) bool {
	if len(image) == 0 || len(archive) == 0 {
		return false
	}
	_, all := image[""]
	_, all2 := archive[""]
	for sub := range archive {
		if _, ok := image[sub]; ok {
			return true
		}
	}
	return all || all2
}

// checkServices checks what needs the whole file: layer names unique, and
// every service's environment configured.
func (ls *LayersServices) checkServices(d *decoder) {
	total := 0
	for _, l := range ls.Layers {
		for _, s := range l.Services {
			total += s.Quantity * (s.Repeat + 1)
		}
	}
	if total > MaxMachines {
		d.errs.At(ls.At("layers"), "layers: the services need %d machines; e2c plans at most %d", total, MaxMachines)
	}
	seen := map[string]Pos{}
	for _, l := range ls.Layers {
		low := strings.ToLower(l.Name)
		if p, dup := seen[low]; dup && low != "" {
			d.errs.At(l.At("name"), "layer %q is already defined at line %d", l.Name, p.Line)
		}
		seen[low] = l.At("name")
		for _, s := range l.Services {
			if s.Environment != "" && ls.Environment.Testbed(s.Environment) == nil {
				known := make([]string, 0, len(ls.Environment.Testbeds))
				for _, t := range ls.Environment.Testbeds {
					known = append(known, t.Name)
				}
				d.errs.At(s.At("environment"), "service %s: environment %q has no block under environment:%s", s.Name,
					s.Environment, suggest.Hint(s.Environment, known))
			}
		}
	}
}
