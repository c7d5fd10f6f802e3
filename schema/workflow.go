package schema

import (
	"regexp"
	"strings"

	"github.com/e2c-dev/e2c/schema/suggest"
	"gopkg.in/yaml.v3"
)

// Workflow is workflow.yaml: plays run in file order in each phase.
type Workflow struct {
	Plays []Play
}

// Phase is a step of the experiment's workflow.
type Phase string

// The phases, in the order an experiment runs them. Deploy is the services
// step: the tasks of service definitions, before the workflow's phases.
const (
	Deploy   Phase = "deploy"
	Prepare  Phase = "prepare"
	Launch   Phase = "launch"
	Finalize Phase = "finalize"
	// Reconfigure is a play's task list that e2c apply runs on the hosts
	// whose rendered tasks changed (a producer whose gateway moved); it is
	// not one of the running order's Phases.
	Reconfigure Phase = "reconfigure"
)

// Phases lists every phase in running order.
var Phases = []Phase{Prepare, Launch, Finalize}

// Play runs task lists on the hosts its pattern selects.
type Play struct {
	Node
	Name        string
	Hosts       string
	DependsOn   []DependsOn
	Tasks       map[Phase][]Task
	Vars        map[string]any
	Environment map[string]any
	Become      bool
	BecomeUser  string
}

// DependsOn hands each host of a play information about the services a
// selector matches, under the variable Prefix.
type DependsOn struct {
	Node
	ServiceSelector string
	Grouping        string
	Prefix          string
	ArrayInfo       string
}

// Groupings and array_info values, as E2Clab defines them.
var (
	Groupings  = []string{"round_robin", "asarray", "aggregate", "address_match"}
	ArrayInfos = []string{"id", "hostname", "g5k_ipv6_hostname"}
)

var (
	playKeys    = []string{"name", "hosts", "depends_on", "prepare", "launch", "finalize", "reconfigure", "vars", "environment", "become", "become_user"}
	dependsKeys = []string{"service_selector", "grouping", "prefix", "array_info"}
	identRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// DecodeWorkflow reads workflow.yaml.
func DecodeWorkflow(file string, data []byte) (*Workflow, error) {
	var errs Errors
	d := &decoder{file: file, errs: &errs}
	w := &Workflow{}
	root := d.document(data, `a list of plays such as "- hosts: cloud.*"`)
	if root == nil {
		return w, errs.Err()
	}
	if root.Kind != yaml.SequenceNode {
		d.errorf(root, "workflow: found %s, expected a list of plays such as \"- hosts: cloud.*\"", describe(root))
		return w, errs.Err()
	}
	for _, c := range root.Content {
		w.Plays = append(w.Plays, d.play(c))
	}
	return w, errs.Err()
}

func (d *decoder) play(n *yaml.Node) Play {
	fs, node := d.fields(n, "play", playKeys)
	p := Play{Node: node, Tasks: map[Phase][]Task{}}
	for _, f := range fs {
		key := "play." + f.key
		switch f.key {
		case "name":
			p.Name = d.str(f.v, key)
		case "hosts":
			p.Hosts = d.str(f.v, key)
		case "depends_on":
			p.DependsOn = d.dependsOn(f.v)
		case "vars":
			p.Vars = d.vars(f.v, key, node)
		case "environment":
			p.Environment = d.envVars(f.v, key)
		case "become":
			p.Become = d.boolean(f.v, key)
		case "become_user":
			p.BecomeUser = d.userName(f.v, key)
		default:
			p.Tasks[Phase(f.key)] = d.tasks(f.v, f.key, 0)
		}
	}
	d.require(node, "play", "hosts")
	seen := map[string]Pos{}
	for _, dep := range p.DependsOn {
		if q, dup := seen[dep.Prefix]; dup && dep.Prefix != "" {
			d.errs.At(dep.At("prefix"), "depends_on: prefix %q is already used in this play at line %d; each entry needs its own prefix", dep.Prefix, q.Line)
		}
		seen[dep.Prefix] = dep.At("prefix")
	}
	return p
}

// vars reads a mapping of variable names to values; names must be usable
// in templates. Each value's position is recorded in owner, if it has
// keys, as "vars.<name>".
func (d *decoder) vars(n *yaml.Node, what string, owner Node) map[string]any {
	fs, _ := d.fields(n, what, nil)
	out := make(map[string]any, len(fs))
	for _, f := range fs {
		if !identRE.MatchString(f.key) {
			d.errorf(f.k, "%s: %q is not a valid variable name (letters, digits and '_', not starting with a digit)", what, f.key)
		}
		out[f.key] = d.value(f.v, what+"."+f.key)
		if owner.keys != nil {
			owner.keys["vars."+f.key] = d.pos(f.v)
		}
	}
	return out
}

// envVars reads environment variables: names a shell takes, and
// single values, read as YAML 1.1 (X: yes is True for Ansible).
func (d *decoder) envVars(n *yaml.Node, what string) map[string]any {
	fs, _ := d.fields(n, what, nil)
	out := make(map[string]any, len(fs))
	for _, f := range fs {
		if !identRE.MatchString(f.key) {
			d.errorf(f.k, "%s: %q is not a valid environment variable name (letters, digits and '_', not starting with a digit)", what, f.key)
		}
		v := resolve(f.v)
		if v.Kind != yaml.ScalarNode {
			d.errorf(v, "%s.%s: found %s, expected a single value", what, f.key, describe(v))
			continue
		}
		out[f.key] = d.scalar(v, what+"."+f.key)
	}
	return out
}

// dependsOn accepts a list of entries or, as the published CCTV example
// writes it, a single mapping.
func (d *decoder) dependsOn(n *yaml.Node) []DependsOn {
	n = resolve(n)
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	var out []DependsOn
	for _, c := range items {
		fs, node := d.fields(c, "depends_on", dependsKeys)
		dep := DependsOn{Node: node, Grouping: "round_robin"}
		for _, f := range fs {
			key := "depends_on." + f.key
			switch f.key {
			case "service_selector":
				dep.ServiceSelector = d.str(f.v, key)
			case "grouping":
				dep.Grouping = d.oneOf(f.v, key, Groupings)
			case "prefix":
				dep.Prefix = d.str(f.v, key)
				if dep.Prefix != "" && !identRE.MatchString(dep.Prefix) {
					d.errorf(f.v, "%s: %q is not a valid variable name (letters, digits and '_', not starting with a digit)", key, dep.Prefix)
				}
			case "array_info":
				dep.ArrayInfo = d.oneOf(f.v, key, ArrayInfos)
			}
		}
		d.require(node, "depends_on", "service_selector", "prefix")
		if dep.ArrayInfo != "" && dep.Grouping != "asarray" {
			d.errs.At(node.At("array_info"), "depends_on: array_info only applies to grouping asarray, not %s", dep.Grouping)
		}
		if dep.Grouping == "asarray" && dep.ArrayInfo == "" {
			dep.ArrayInfo = "id"
		}
		out = append(out, dep)
	}
	return out
}

// oneOf reads a string that must be one of choices.
func (d *decoder) oneOf(n *yaml.Node, what string, choices []string) string {
	s := d.str(n, what)
	if s != "" && !contains(choices, s) {
		d.errorf(n, "%s: unknown value %q%s; expected one of: %s", what, s, suggest.Hint(s, choices), strings.Join(choices, ", "))
		return ""
	}
	return s
}
