package schema

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ServiceDef defines a service that is more than a set of hosts: it splits
// its machines into sub-services (Flink: job_manager, task_manager) and
// declares what templates may read about each (a port for url, a container
// name, other values).
type ServiceDef struct {
	Node
	Name        string
	Description string
	Subservices []Subservice // empty: one registration over all machines
	Info        Info         // defaults for every sub-service
	// Deploy tasks run on every host of the service when services are
	// deployed, before the workflow's prepare.
	Deploy []Task
}

// Subservice is a named share of a service's machines.
type Subservice struct {
	Node
	Name string
	// Hosts picks machines by 0-based position, Python-slice style: "0",
	// "1:", ":", "-1", "0:2". Fallback is used when Hosts picks none (Flink's
	// task manager shares the job manager's only machine).
	Hosts, Fallback Slice
	Info            Info
}

// Info is what a definition declares about each registered host.
type Info struct {
	Port      int            // makes url address:port
	Container *Container     // its name is exposed as self_container; nil: none
	Vars      map[string]any // added to the host's information
}

// Slice selects a range of positions [Start, End) Python-style; negative
// values count from the end. Single selects the one position Start.
type Slice struct {
	Text       string
	Start, End int
	HasStart   bool
	HasEnd     bool
	Single     bool
}

// ParseSlice reads "i", "i:", ":j", "i:j" or ":".
func ParseSlice(s string) (Slice, error) {
	sl := Slice{Text: s}
	atoi := func(t string) (int, bool, error) {
		if t = strings.TrimSpace(t); t == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(t)
		return n, true, err
	}
	var err1, err2 error
	if a, b, ok := strings.Cut(s, ":"); ok {
		sl.Start, sl.HasStart, err1 = atoi(a)
		sl.End, sl.HasEnd, err2 = atoi(b)
	} else {
		sl.Single = true
		sl.Start, sl.HasStart, err1 = atoi(a)
		if !sl.HasStart {
			err1 = fmt.Errorf("empty")
		}
	}
	if err1 != nil || err2 != nil {
		return Slice{}, fmt.Errorf("found %q, expected machine positions such as \"0\", \"1:\", \":\" or \"-1\"", s)
	}
	return sl, nil
}

// Pick returns the positions the slice selects among n machines.
func (s Slice) Pick(n int) []int {
	norm := func(i int) int {
		if i < 0 {
			i += n
		}
		return min(max(i, 0), n)
	}
	if s.Single {
		i := s.Start
		if i < 0 {
			i += n
		}
		if i < 0 || i >= n {
			return nil
		}
		return []int{i}
	}
	start, end := 0, n
	if s.HasStart {
		start = norm(s.Start)
	}
	if s.HasEnd {
		end = norm(s.End)
	}
	var out []int
	for i := start; i < end; i++ {
		out = append(out, i)
	}
	return out
}

var (
	serviceDefKeys = []string{"name", "description", "subservices", "port", "container", "vars", "deploy"}
	subserviceKeys = []string{"name", "hosts", "fallback", "port", "container", "vars"}
)

// DecodeServiceDef reads a service definition.
func DecodeServiceDef(file string, data []byte) (*ServiceDef, error) {
	var errs Errors
	d := &decoder{file: file, errs: &errs}
	def := &ServiceDef{}
	root := d.document(data, "a service definition with a name")
	if root == nil {
		return def, errs.Err()
	}
	fs, node := d.fields(root, "service definition", serviceDefKeys)
	def.Node = node
	for _, f := range fs {
		switch f.key {
		case "name":
			def.Name = strings.ToLower(d.name(f.v, "service definition name"))
		case "description":
			def.Description = d.str(f.v, "description")
		case "subservices":
			def.Subservices = d.subservices(f.v)
		case "deploy":
			def.Deploy = d.tasks(f.v, "deploy", 0)
		default:
			d.info(f, &def.Info)
		}
	}
	d.require(node, "service definition", "name")
	// A sub-service's container is its service's with its own fields over
	// it; each is complete from here on.
	for i := range def.Subservices {
		sub := &def.Subservices[i]
		if sub.Info.Container = merged(def.Info.Container, sub.Info.Container); sub.Info.Container != nil {
			d.withDefaults(sub.Info.Container, sub.Name)
		}
	}
	if def.Info.Container != nil && len(def.Subservices) == 0 {
		d.withDefaults(def.Info.Container, def.Name)
	}
	return def, errs.Err()
}

// info reads port, container and vars into in.
func (d *decoder) info(f field, in *Info) {
	switch f.key {
	case "port":
		in.Port = d.integer(f.v, "port", 1, 65535)
	case "container":
		in.Container = d.container(f.v)
	case "vars":
		in.Vars = d.vars(f.v, "vars", Node{})
	}
}

func (d *decoder) subservices(n *yaml.Node) []Subservice {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "subservices: found %s, expected a list", describe(n))
		return nil
	}
	var out []Subservice
	seen := map[string]int{}
	for _, c := range n.Content {
		fs, node := d.fields(c, "subservice", subserviceKeys)
		sub := Subservice{Node: node, Hosts: Slice{Text: ":"}}
		for _, f := range fs {
			switch f.key {
			case "name":
				sub.Name = strings.ToLower(d.name(f.v, "subservice name"))
			case "hosts", "fallback":
				sl, err := ParseSlice(d.str(f.v, f.key))
				if err != nil {
					d.errorf(f.v, "%s: %v", f.key, err)
				}
				if f.key == "hosts" {
					sub.Hosts = sl
				} else {
					sub.Fallback = sl
				}
			default:
				d.info(f, &sub.Info)
			}
		}
		d.require(node, "subservice", "name")
		if line, dup := seen[sub.Name]; dup {
			d.errs.At(node.At("name"), "subservice %q is already defined at line %d", sub.Name, line)
		}
		seen[sub.Name] = node.At("name").Line
		out = append(out, sub)
	}
	return out
}
