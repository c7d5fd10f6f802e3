package schema

import (
	"slices"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/schema/suggest"
	"gopkg.in/yaml.v3"
)

// TimelineFile holds the changes made during each run's wait.
const TimelineFile = "timeline.yaml"

// Timeline is timeline.yaml: changes made while a run waits, each at an
// offset from the end of launch. Changes are kept in file order; they need
// not be in time order (the engine sorts them, stably).
type Timeline struct {
	Node
	Changes []TimedChange
}

// TimedChange is one timeline entry. Exactly one of Scale, Network and Run
// is set.
type TimedChange struct {
	Node
	At   time.Duration // from the end of launch, 0 or more
	Name string        // a label, "" when not given
	// Scale sets the quantity of one or more services.
	Scale []Scale
	// Network changes one link, named by Src and Dst, in the fields
	// written (Network.Has("rate")...); the others stay as they are.
	Network *Link
	// Run runs a task list on the hosts of a pattern.
	Run *TimedRun
}

// Scale is one "layer.service: quantity" of a scale change. Its position
// is the key's; At("quantity") is the quantity's.
type Scale struct {
	Node
	Service     string // as written, such as Edge.Producer
	Layer, Name string // lower-case, as in host keys: edge, producer
	Quantity    int    // 0 (none left) to layers_services.yaml's limit
}

// TimedRun is a task list run on the hosts Hosts selects, as a play's.
type TimedRun struct {
	Node
	Hosts string
	Tasks []Task
}

var (
	changeKeys  = []string{"at", "name", "scale", "network", "run"}
	changeKinds = []string{"scale", "network", "run"}
	linkChanges = []string{"delay", "rate", "loss", "symmetric"}
	runKeys     = []string{"hosts", "tasks"}
)

// DecodeTimeline reads timeline.yaml. Whether its scale changes name
// services of layers_services.yaml is checked by Load, which has both.
func DecodeTimeline(file string, data []byte) (*Timeline, error) {
	var errs Errors
	d := &decoder{file: file, errs: &errs}
	tl := &Timeline{}
	root := d.document(data, `a list of changes such as "- at: 10s"`)
	if root == nil {
		return tl, errs.Err()
	}
	tl.Node = Node{Pos: d.pos(root)}
	if root.Kind != yaml.SequenceNode {
		d.errorf(root, "timeline: found %s, expected a list of changes such as \"- at: 10s\"", describe(root))
		return tl, errs.Err()
	}
	for _, c := range root.Content {
		tl.Changes = append(tl.Changes, d.change(c))
	}
	tl.checkOverlaps(d)
	return tl, errs.Err()
}

func (d *decoder) change(n *yaml.Node) TimedChange {
	fs, node := d.fields(n, "timeline entry", changeKeys)
	c := TimedChange{Node: node}
	var kinds []field
	for _, f := range fs {
		switch f.key {
		case "at":
			c.At = d.offset(f.v, "at")
		case "name":
			c.Name = d.str(f.v, "name")
		case "scale":
			c.Scale = d.scales(f.v)
		case "network":
			c.Network = d.timedLink(f.v)
		case "run":
			c.Run = d.timedRun(f.v)
		}
		if contains(changeKinds, f.key) {
			kinds = append(kinds, f)
		}
	}
	if resolve(n).Kind != yaml.MappingNode {
		return c
	}
	d.require(node, "timeline entry", "at")
	switch {
	case len(kinds) == 0 && !unknownKey(node, changeKeys):
		d.errs.At(node.Pos, "timeline entry: no change; expected one of: %s", strings.Join(changeKinds, ", "))
	case len(kinds) > 1:
		d.errorf(kinds[1].k, "timeline entry: %s and %s are both given; an entry makes one change (write another entry with the same at)",
			kinds[0].key, kinds[1].key)
	}
	return c
}

// unknownKey reports whether n has a key outside allowed (reported by
// fields), so that a misspelt key is not reported twice.
func unknownKey(n Node, allowed []string) bool {
	for k := range n.keys {
		if !contains(allowed, k) {
			return true
		}
	}
	return false
}

// offset reads a time from the end of launch: a Go duration, 0 or more.
func (d *decoder) offset(n *yaml.Node, what string) time.Duration {
	t, err := time.ParseDuration(strings.TrimSpace(n.Value))
	switch {
	case n.Kind != yaml.ScalarNode || isNull(n) || err != nil:
		d.errorf(n, "%s: found %s, expected a duration with a unit: ms, s, m or h (such as \"10s\" or \"1m30s\")", what, describe(n))
		return 0
	case t < 0:
		d.errorf(n, "%s: found %s, a time before the end of launch; expected 0 or more", what, describe(n))
		return 0
	}
	return t
}

func (d *decoder) scales(n *yaml.Node) []Scale {
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		d.errorf(n, "scale: found %s, expected one or more \"layer.service: quantity\" such as \"edge.producer: 6\"", describe(n))
		return nil
	}
	fs, _ := d.fields(n, "scale", nil)
	out := make([]Scale, 0, len(fs))
	for _, f := range fs {
		s := Scale{Node: Node{Pos: d.pos(f.k), keys: map[string]Pos{"quantity": d.pos(f.v)}}, Service: f.key}
		if layer, name, ok := strings.Cut(f.key, "."); ok && nameRE.MatchString(layer) && nameRE.MatchString(name) {
			s.Layer, s.Name = strings.ToLower(layer), strings.ToLower(name)
		} else {
			d.errorf(f.k, "scale: %q is not of the form layer.service (such as \"edge.producer\")", f.key)
		}
		s.Quantity = d.scaleQuantity(f.v, "scale."+f.key)
		out = append(out, s)
	}
	return out
}

// scaleQuantity reads what a service is scaled to: from none to the most
// layers_services.yaml's quantity allows.
func (d *decoder) scaleQuantity(n *yaml.Node, what string) int {
	if n.Kind == yaml.ScalarNode && digits.MatchString(n.Value) && n.Value[0] == '-' && strings.Trim(n.Value, "-0_") != "" {
		d.errorf(n, "%s: found %s, a scale below zero; expected a whole number from 0 to %d", what, n.Value, maxCount)
		return 0
	}
	return d.integer(n, what, 0, maxCount)
}

// timedLink reads a network change: a network.yaml entry, of which only
// the fields written change.
func (d *decoder) timedLink(n *yaml.Node) *Link {
	l, _ := d.linkFields(n, "network")
	if n.Kind == yaml.MappingNode && !slices.ContainsFunc(linkChanges, l.Has) && !unknownKey(l.Node, linkKeys) {
		d.errs.At(l.Pos, "network link: nothing to change; expected at least one of: %s", strings.Join(linkChanges, ", "))
	}
	return &l
}

func (d *decoder) timedRun(n *yaml.Node) *TimedRun {
	fs, node := d.fields(n, "run", runKeys)
	r := &TimedRun{Node: node}
	for _, f := range fs {
		switch f.key {
		case "hosts":
			r.Hosts = d.str(f.v, "run.hosts")
		case "tasks":
			r.Tasks = d.tasks(f.v, "run.tasks", 0)
			if len(r.Tasks) == 0 && (isNull(f.v) || f.v.Kind == yaml.SequenceNode) {
				d.errorf(f.v, "run.tasks: found %s, expected a list of tasks", describe(f.v))
			}
		}
	}
	if n.Kind == yaml.MappingNode {
		d.require(node, "run", "hosts", "tasks")
	}
	return r
}

// checkOverlaps refuses two changes at the same time to one link (in
// either direction a symmetric change covers) or to one service: which one
// would win is written nowhere.
func (tl *Timeline) checkOverlaps(d *decoder) {
	type target struct {
		at       time.Duration
		from, to string // lower-case: patterns and keys ignore case
	}
	links, services := map[target]Pos{}, map[target]Pos{}
	for _, c := range tl.Changes {
		for _, s := range c.Scale {
			if s.Layer == "" {
				continue
			}
			k := target{at: c.At, from: s.Layer + "." + s.Name}
			if p, dup := services[k]; dup {
				d.errs.At(s.Pos, "scale: overlapping changes to one service: %s at %v is already scaled at line %d", s.Service, c.At, p.Line)
				continue
			}
			services[k] = s.Pos
		}
		l := c.Network
		if l == nil || l.Src == "" || l.Dst == "" {
			continue
		}
		ends := [][2]string{{l.Src, l.Dst}}
		if l.Symmetric {
			ends = append(ends, [2]string{l.Dst, l.Src})
		}
		keys := make([]target, len(ends))
		for i, e := range ends {
			keys[i] = target{c.At, strings.ToLower(e[0]), strings.ToLower(e[1])}
		}
		for i, k := range keys {
			if p, dup := links[k]; dup {
				d.errs.At(l.Pos, "network link: overlapping changes to one link: %s -> %s at %v is already changed at line %d",
					ends[i][0], ends[i][1], c.At, p.Line)
				break
			}
		}
		for _, k := range keys {
			if _, dup := links[k]; !dup {
				links[k] = l.Pos
			}
		}
	}
}

// checkServices reports scale changes naming no service of ls; names
// compare without case, as in host keys.
func (tl *Timeline) checkServices(ls *LayersServices) error {
	var errs Errors
	var names []string
	known := map[string]bool{}
	for _, l := range ls.Layers {
		for _, s := range l.Services {
			names = append(names, l.Name+"."+s.Name)
			known[strings.ToLower(l.Name+"."+s.Name)] = true
		}
	}
	for _, c := range tl.Changes {
		for _, s := range c.Scale {
			if s.Layer != "" && !known[s.Layer+"."+s.Name] {
				errs.At(s.Pos, "scale: %q names no service of %s%s", s.Service, LayersServicesFile, suggest.Hint(s.Service, names))
			}
		}
	}
	return errs.Err()
}
