package change

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/e2c-dev/e2c/engine/plan"
)

// encode is v's JSON encoding, what plan.json holds of it: a plan decoded
// from plan.json and a fresh one encode alike when they mean the same.
func encode(v any) string {
	b, err := json.Marshal(v)
	if err != nil { // plan.json could not have been written either
		return "unencodable: " + err.Error()
	}
	return string(b)
}

// generic is v as plan.json holds it: maps, lists, strings, numbers (as
// written), booleans.
func generic(v any) any {
	dec := json.NewDecoder(strings.NewReader(encode(v)))
	dec.UseNumber()
	var out any
	if dec.Decode(&out) != nil {
		return encode(v)
	}
	return out
}

// containerJSON is a container without the position of its definition.
func containerJSON(c *plan.Container) any {
	m, _ := generic(c).(map[string]any)
	delete(m, "pos")
	return m
}

// tasksJSON is tasks without their positions, which move when a file is
// edited above them: the tasks of blocks and a loop's items too.
func tasksJSON(tasks []*plan.Task) any {
	out := generic(tasks)
	var strip func(v any)
	strip = func(v any) {
		list, _ := v.([]any)
		for _, t := range list {
			if m, ok := t.(map[string]any); ok {
				delete(m, "pos")
				for _, k := range []string{"block", "rescue", "always", "items"} {
					strip(m[k])
				}
			}
		}
	}
	strip(out)
	return out
}

// fields names what differs between two values of generic: a key of a map
// as name.key, down through maps (not lists).
func fields(name string, a, b any) []string {
	ma, okA := a.(map[string]any)
	mb, okB := b.(map[string]any)
	if !okA || !okB {
		if encode(a) == encode(b) {
			return nil
		}
		return []string{name}
	}
	keys := slices.Collect(maps.Keys(ma))
	for k := range mb {
		if _, ok := ma[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		sub := k
		if name != "" {
			sub = name + "." + k
		}
		out = append(out, fields(sub, ma[k], mb[k])...)
	}
	return out
}
