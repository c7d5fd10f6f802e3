// Package sweep expands a parameter sweep into points and writes each
// point's scenario files: a parameter is a path into one of the scenario
// files (layers_services.layers.fog.services.gateway.quantity,
// network.networks.0.delay, workflow_env.default.rate), its values the
// cartesian product of every parameter's list, less the excluded
// combinations.
package sweep

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// File is sweep.yaml in a scenario folder.
const File = "sweep.yaml"

// Spec is a sweep: values per parameter path, and combinations left out.
type Spec struct {
	Parameters map[string][]string `yaml:"parameters"`
	Exclude    []map[string]string `yaml:"exclude"`
}

// Point is one combination of values.
type Point struct {
	Name   string            `json:"name"`   // its folder: 01-quantity=1_delay=10ms
	Params map[string]string `json:"params"` // path -> value
}

// files are the scenario files a parameter may change, by path prefix.
var files = map[string]string{
	"layers_services": "layers_services.yaml",
	"network":         "network.yaml",
	"workflow":        "workflow.yaml",
	"workflow_env":    "workflow_env.yaml",
}

// Parse reads sweep.yaml.
func Parse(data []byte) (Spec, error) {
	var s Spec
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%s: %w", File, err)
	}
	return s, nil
}

// ParseParam reads a --param path=v1,v2 flag into s.
func (s *Spec) ParseParam(flag string) error {
	path, vals, ok := strings.Cut(flag, "=")
	if !ok || path == "" || vals == "" {
		return fmt.Errorf("--param %q: expected path=value1,value2", flag)
	}
	if s.Parameters == nil {
		s.Parameters = map[string][]string{}
	}
	s.Parameters[path] = strings.Split(vals, ",")
	return nil
}

// Points expands the sweep: parameters in path order, the last varying
// fastest, excluded combinations left out. Every path must name a file.
func (s Spec) Points() ([]Point, error) {
	paths := slices.Sorted(maps.Keys(s.Parameters))
	for _, p := range paths {
		if _, _, err := split(p); err != nil {
			return nil, err
		}
		if len(s.Parameters[p]) == 0 {
			return nil, fmt.Errorf("parameter %s: no values", p)
		}
	}
	for _, ex := range s.Exclude {
		for p := range ex {
			if _, ok := s.Parameters[p]; !ok {
				return nil, fmt.Errorf("exclude: %s is not a parameter of the sweep", p)
			}
		}
	}
	var out []Point
	var walk func(i int, params map[string]string)
	walk = func(i int, params map[string]string) {
		if i == len(paths) {
			for _, ex := range s.Exclude {
				if matches(ex, params) {
					return
				}
			}
			out = append(out, Point{Params: maps.Clone(params)})
			return
		}
		for _, v := range s.Parameters[paths[i]] {
			params[paths[i]] = v
			walk(i+1, params)
		}
	}
	if len(paths) > 0 {
		walk(0, map[string]string{})
	}
	width := len(strconv.Itoa(len(out)))
	short := shortNames(paths)
	for i := range out {
		var parts []string
		for j, p := range paths {
			parts = append(parts, short[j]+"="+out[i].Params[p])
		}
		out[i].Name = fmt.Sprintf("%0*d-%s", width, i+1, unsafe.ReplaceAllString(strings.Join(parts, "_"), "-"))
	}
	return out, nil
}

// shortNames are the shortest ends of the paths that tell them apart:
// quantity, or gateway.repeat and producer.repeat.
func shortNames(paths []string) []string {
	for k := 1; ; k++ {
		out := make([]string, len(paths))
		seen := map[string]bool{}
		unique, whole := true, true
		for i, p := range paths {
			segs := strings.Split(p, ".")
			out[i] = strings.Join(segs[max(0, len(segs)-k):], ".")
			unique = unique && !seen[out[i]]
			whole = whole && k >= len(segs)
			seen[out[i]] = true
		}
		if unique || whole {
			return out
		}
	}
}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9._=-]+`)

func matches(ex, params map[string]string) bool {
	for k, v := range ex {
		if params[k] != v {
			return false
		}
	}
	return true
}

// split separates a path into its file and the key path inside it.
func split(path string) (file string, keys []string, err error) {
	prefix, rest, _ := strings.Cut(path, ".")
	file, ok := files[prefix]
	if !ok || rest == "" {
		return "", nil, fmt.Errorf("parameter %q: expected <file>.<key>..., with file one of layers_services, network, workflow, workflow_env", path)
	}
	return file, strings.Split(rest, "."), nil
}

// Apply returns the scenario files with the point's values set. A path
// segment is a mapping key, a list index, or in a list the name of an
// element (layers_services.layers.fog picks the layer named fog); the last
// key is added when missing.
func Apply(scenario map[string][]byte, p Point) (map[string][]byte, error) {
	out := maps.Clone(scenario)
	docs := map[string]*yaml.Node{}
	for _, path := range slices.Sorted(maps.Keys(p.Params)) {
		file, keys, err := split(path)
		if err != nil {
			return nil, err
		}
		doc := docs[file]
		if doc == nil {
			doc = &yaml.Node{}
			if data, ok := out[file]; ok {
				if err := yaml.Unmarshal(data, doc); err != nil {
					return nil, fmt.Errorf("%s: %w", file, err)
				}
			}
			if len(doc.Content) == 0 {
				doc = &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
			}
			docs[file] = doc
		}
		// workflow_env.yaml is free-form: configurations and values are made
		// when missing. Elsewhere a missing key on the way is a typo.
		if err := set(doc.Content[0], keys, p.Params[path], file == files["workflow_env"]); err != nil {
			return nil, fmt.Errorf("parameter %s: %w", path, err)
		}
	}
	for file, doc := range docs {
		data, err := yaml.Marshal(doc)
		if err != nil {
			return nil, err
		}
		out[file] = data
	}
	return out, nil
}

func set(n *yaml.Node, keys []string, value string, create bool) error {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	key := keys[0]
	var child *yaml.Node
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				child = n.Content[i+1]
				if len(keys) == 1 {
					n.Content[i+1] = scalar(value)
					return nil
				}
			}
		}
		if child == nil {
			switch {
			case len(keys) == 1:
				n.Content = append(n.Content, scalar(key), scalar(value))
				return nil
			case !create:
				return fmt.Errorf("no key %q", key)
			}
			child = &yaml.Node{Kind: yaml.MappingNode}
			n.Content = append(n.Content, scalar(key), child)
		}
	case yaml.SequenceNode:
		if i, err := strconv.Atoi(key); err == nil {
			if i < 0 || i >= len(n.Content) {
				return fmt.Errorf("index %d out of a list of %d", i, len(n.Content))
			}
			if len(keys) == 1 {
				n.Content[i] = scalar(value)
				return nil
			}
			child = n.Content[i]
			break
		}
		for _, el := range n.Content {
			if name := field(el, "name"); strings.EqualFold(name, key) {
				child = el
				break
			}
		}
		if child == nil {
			return fmt.Errorf("no element named %q", key)
		}
		if len(keys) == 1 {
			return fmt.Errorf("%q is a whole element: name one of its keys", key)
		}
	default:
		return fmt.Errorf("%q is inside a single value", key)
	}
	return set(child, keys[1:], value, create)
}

func field(n *yaml.Node, key string) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1].Value
		}
	}
	return ""
}

// scalar is a value as the user wrote it on the command line or in
// sweep.yaml: numbers stay numbers, "10ms" stays a string.
func scalar(v string) *yaml.Node {
	n := &yaml.Node{}
	if err := yaml.Unmarshal([]byte(v), n); err == nil && len(n.Content) == 1 && n.Content[0].Kind == yaml.ScalarNode {
		return n.Content[0]
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Value: v}
}
