// Package ordered has the mapping that keeps its keys in the order they
// were written, as Python's dict (and so Ansible) does: YAML mappings of a
// scenario are read into one, and templates give one back, so that
// to_json, dict2items, items() and with_dict follow the written order.
package ordered

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Map is a mapping from strings to values that remembers the order in
// which its keys were first set. The zero Map is empty and ready to use.
type Map struct {
	keys []string
	m    map[string]any
}

// New returns an empty Map with room for n keys.
func New(n int) *Map { return &Map{keys: make([]string, 0, n), m: make(map[string]any, n)} }

// Of returns a Map of the keys and values given in turn: Of("b", 1, "a", 2).
func Of(kv ...any) *Map {
	d := New(len(kv) / 2)
	for i := 0; i+1 < len(kv); i += 2 {
		d.Set(kv[i].(string), kv[i+1])
	}
	return d
}

// Set sets k to v; a new key goes last, an existing one keeps its place.
func (d *Map) Set(k string, v any) {
	if d.m == nil {
		d.m = map[string]any{}
	}
	if _, ok := d.m[k]; !ok {
		d.keys = append(d.keys, k)
	}
	d.m[k] = v
}

// Get returns k's value and whether k is set.
func (d *Map) Get(k string) (any, bool) {
	v, ok := d.m[k]
	return v, ok
}

// Keys returns the keys in order. The caller must not change the slice.
func (d *Map) Keys() []string { return d.keys }

// Len returns the number of keys.
func (d *Map) Len() int { return len(d.keys) }

// String prints d as fmt prints a Go map, with the keys in order:
// map[zeta:1 alpha:[1 2]].
func (d *Map) String() string {
	var b strings.Builder
	b.WriteString("map[")
	for i, k := range d.keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%v", k, d.m[k])
	}
	b.WriteByte(']')
	return b.String()
}

// MarshalJSON writes the keys in order. Values are written without
// escaping HTML; the encoder that called it escapes them if it does.
func (d *Map) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	b.WriteByte('{')
	for i, k := range d.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := enc.Encode(k); err != nil {
			return nil, err
		}
		b.WriteByte(':')
		if err := enc.Encode(d.m[k]); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
