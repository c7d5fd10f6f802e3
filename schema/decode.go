package schema

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/e2c-dev/e2c/engine/ordered"
	"github.com/e2c-dev/e2c/schema/suggest"
	"gopkg.in/yaml.v3"
)

// Node is embedded in every decoded object: it remembers where the object
// and each of its keys were written, so that checks made long after decoding
// can still point at the right line.
type Node struct {
	Pos  Pos            `json:"-"`
	keys map[string]Pos // position of each key's value
}

// At returns the position of the value of key, or of the object itself when
// the key was not written.
func (n Node) At(key string) Pos {
	if p, ok := n.keys[key]; ok {
		return p
	}
	return n.Pos
}

// Has reports whether key was written.
func (n Node) Has(key string) bool {
	_, ok := n.keys[key]
	return ok
}

// decoder reads one YAML file strictly, collecting every problem.
type decoder struct {
	file string
	errs *Errors
}

// Limits that no scenario comes near: a file's size, its values, and what
// YAML aliases may expand it to ("billion laughs": a few lines of aliases
// repeating aliases stand for gigabytes).
const (
	maxDepth      = 64
	maxFileSize   = 10_000_000 // bytes
	maxValues     = 1_000_000
	maxAliasBytes = 32_000_000 // scalar text, aliases expanded
)

// tooBig reports a file over maxFileSize, before anything reads it.
func tooBig(file string, size int64) *Error {
	return Errorf(Pos{File: file}, "the file is %.1f MB; a scenario file may be at most %d MB", float64(size)/1e6, maxFileSize/1_000_000)
}

// parse reads a whole document into its root node. A syntax error is
// reported at the line yaml.v3 names (it gives no column; the first
// non-blank character of that line stands in for it). A file over a limit
// gives that one problem and no node, rather than a problem per value.
func (d *decoder) parse(data []byte) *yaml.Node {
	if len(data) > maxFileSize {
		d.errs.Add(tooBig(d.file, int64(len(data))))
		return nil
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&doc)
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		d.syntaxError(data, err)
		return nil
	}
	if len(doc.Content) == 0 {
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		d.errs.At(Pos{File: d.file, Line: next.Line, Col: next.Column}, "a second YAML document (after ---): expected one document per file")
	}
	m := &measure{d: d, sizes: map[*yaml.Node]size{}, open: map[*yaml.Node]bool{}}
	if m.walk(doc.Content[0]); m.failed {
		return nil
	}
	return doc.Content[0]
}

// size is what a node stands for once its aliases are expanded.
type size struct{ values, bytes int }

// measure walks a document once, in order, counting the values written
// and what aliases expand them to; each anchored value is measured once, so
// that the walk is as cheap as the file is long.
type measure struct {
	d       *decoder
	sizes   map[*yaml.Node]size // anchored nodes measured
	open    map[*yaml.Node]bool // anchored nodes being measured
	written int                 // values written so far
	total   size                // values and text so far, aliases expanded
	failed  bool
}

func (m *measure) walk(n *yaml.Node) size {
	if m.failed {
		return size{}
	}
	m.written++
	if m.written > maxValues {
		m.fail(n, "the file holds more than %d values; e2c reads at most that many", maxValues)
		return size{}
	}
	if n.Kind == yaml.AliasNode {
		if m.open[n.Alias] {
			m.fail(n, "alias *%s is inside the value its anchor &%s names (line %d)", n.Value, n.Value, n.Alias.Line)
			return size{}
		}
		s := m.sizes[n.Alias]
		m.total.values += s.values
		m.total.bytes += s.bytes
		switch {
		case m.total.values > maxValues:
			m.fail(n, "aliases expand the file to more than %d values (*%s here repeats %d)", maxValues, n.Value, s.values)
		case m.total.bytes > maxAliasBytes:
			m.fail(n, "aliases expand the file to more than %d MB of text (*%s here repeats %.1f MB)", maxAliasBytes/1_000_000, n.Value, float64(s.bytes)/1e6)
		}
		return s
	}
	own := size{values: 1, bytes: len(n.Value)}
	m.total.values++
	m.total.bytes += len(n.Value)
	if n.Anchor != "" {
		m.open[n] = true
	}
	for _, c := range n.Content {
		s := m.walk(c)
		own.values += s.values
		own.bytes += s.bytes
	}
	if n.Anchor != "" {
		delete(m.open, n)
		m.sizes[n] = own
	}
	return own
}

func (m *measure) fail(n *yaml.Node, format string, args ...any) {
	m.failed = true
	m.d.errorf(n, format, args...)
}

var (
	yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)
	digits   = regexp.MustCompile(`^[-+]?[0-9_]+$`) // a whole number too big for yaml.v3's int
)

func (d *decoder) syntaxError(data []byte, err error) {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	p := Pos{File: d.file}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		msg = msg[len(m[0]):]
		if m[1] != "" {
			p.Line, _ = strconv.Atoi(m[1])
			p.Col = firstColumn(data, p.Line)
		}
	}
	if p.Line == 0 { // yaml.v3 names no line: the end of the stream, or the start
		p.Line, p.Col = 1, 1
		if strings.Contains(msg, "end of stream") {
			lines := bytes.Split(data, []byte("\n"))
			p.Line, p.Col = len(lines), len(lines[len(lines)-1])+1
		}
	}
	d.errs.At(p, "invalid YAML: %s", msg)
}

// document parses a file that must not be empty: an empty one is reported
// with what it should hold. Either way nil means there is nothing to decode.
func (d *decoder) document(data []byte, expected string) *yaml.Node {
	root := d.parse(data)
	if root == nil && d.errs.Len() == 0 {
		d.errs.At(Pos{File: d.file, Line: 1, Col: 1}, "empty file, expected %s", expected)
	}
	return root
}

func firstColumn(data []byte, line int) int {
	lines := bytes.Split(data, []byte("\n"))
	if line < 1 || line > len(lines) {
		return 0
	}
	return len(lines[line-1]) - len(bytes.TrimLeft(lines[line-1], " \t")) + 1
}

func (d *decoder) pos(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line, Col: n.Column} }

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs.At(d.pos(n), format, args...)
}

// resolve follows aliases (*anchor) to the node they stand for.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// describe names what a node holds, for "found X" in messages.
func describe(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.MappingNode && len(n.Content) == 0:
		return "an empty mapping"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode && len(n.Content) == 0:
		return "an empty list"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!null":
		return "nothing"
	case "!!str":
		return fmt.Sprintf("%q", n.Value)
	}
	return n.Value
}

// field is one key: value pair of a mapping.
type field struct {
	key string
	k   *yaml.Node
	v   *yaml.Node
}

// fields returns the pairs of a mapping node that names what; it reports a
// non-mapping, duplicate keys and keys outside allowed (with the closest
// allowed key as a hint). With allowed nil every key is accepted. The Node it
// returns records every key's position.
func (d *decoder) fields(n *yaml.Node, what string, allowed []string) ([]field, Node) {
	n = resolve(n)
	node := Node{Pos: d.pos(n), keys: map[string]Pos{}}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: found %s, expected a mapping", what, describe(n))
		return nil, node
	}
	var out []field
	for _, p := range d.pairs(n, what, 0) {
		k, v := p.k, p.v
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "%s: found %s as a key, expected a name", what, describe(k))
			continue
		}
		if q, dup := node.keys[k.Value]; dup {
			if !p.merged { // keys written win over merged ones, as YAML says
				d.errorf(k, "%s: key %q is already defined at line %d", what, k.Value, q.Line)
			}
			continue
		}
		node.keys[k.Value] = d.pos(v)
		if allowed != nil && !contains(allowed, k.Value) {
			d.errorf(k, "%s: unknown key %q%s; expected one of: %s", what, k.Value,
				suggest.Hint(k.Value, allowed), strings.Join(allowed, ", "))
			continue
		}
		out = append(out, field{key: k.Value, k: k, v: v})
	}
	return out, node
}

type pair struct {
	k, v   *yaml.Node
	merged bool // came from a merge key (<<: *base)
}

// pairs lists a mapping's keys and values: those written, then those of
// its merge keys (<<: *base, or a list of them) in order.
func (d *decoder) pairs(n *yaml.Node, what string, depth int) []pair {
	if depth > maxDepth {
		d.errorf(n, "%s: merge keys nested more than %d deep", what, maxDepth)
		return nil
	}
	var out []pair
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		out = append(out, pair{k: k, v: v, merged: depth > 0})
	}
	for _, m := range merges {
		sources := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			sources = m.Content
		}
		for _, src := range sources {
			if src = resolve(src); src.Kind != yaml.MappingNode {
				d.errorf(src, "%s: a merge key (<<) takes a mapping or a list of mappings, found %s", what, describe(src))
				continue
			}
			out = append(out, d.pairs(src, what, depth+1)...)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// require reports keys of node that are missing.
func (d *decoder) require(node Node, what string, keys ...string) {
	for _, k := range keys {
		if !node.Has(k) {
			d.errs.At(node.Pos, "%s: missing required key %q", what, k)
		}
	}
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// str reads a scalar as text. Numbers and booleans are accepted as written
// (job_name: 2024 is a name); null, lists and mappings are not.
func (d *decoder) str(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.errorf(n, "%s: found %s, expected a string", what, describe(n))
		return ""
	}
	return n.Value
}

// integer reads a whole number from min to max, refusing floats that
// yaml.v3 would otherwise truncate (quantity: 2.5 is not 2). Quoted digits
// are accepted too, as Ansible's keywords take "5".
func (d *decoder) integer(n *yaml.Node, what string, min, max int) int {
	v, err := yaml11(n)
	if s, ok := v.(string); ok && n.Kind == yaml.ScalarNode && !plain(n) && digits.MatchString(s) {
		x, perr := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
		v, err = int(x), perr
	}
	i, ok := v.(int)
	switch {
	case n.Kind != yaml.ScalarNode || err == nil && !ok:
		d.errorf(n, "%s: found %s, expected a whole number", what, describe(n))
		return min
	case err != nil && !errors.Is(err, errTooBig) && !errors.Is(err, strconv.ErrRange):
		d.errorf(n, "%s: %v", what, err)
		return min
	case err != nil || i < min || i > max:
		d.errorf(n, "%s: found %s, expected a whole number from %d to %d", what, n.Value, min, max)
		return min
	}
	return i
}

// boolean reads a keyword's boolean: YAML's, and Ansible's spellings
// (yes/no/on/off, y/n, 1/0), quoted or not, as Ansible's keywords take them.
func (d *decoder) boolean(n *yaml.Node, what string) bool {
	if n.Kind == yaml.ScalarNode {
		if b, ok := ParseBool(n.Value); ok {
			return b
		}
	}
	d.errorf(n, "%s: found %s, expected true or false", what, describe(n))
	return false
}

// ParseBool reads the spellings of a boolean that YAML 1.1 and Ansible
// accept for keywords and module arguments (Ansible's boolean()).
func ParseBool(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "on", "y", "t", "1":
		return true, true
	case "false", "no", "off", "n", "f", "0":
		return false, true
	}
	return false, false
}

// strings reads one string or a list of strings.
func (d *decoder) strings(n *yaml.Node, what string) []string {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		return []string{n.Value}
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: found %s, expected a string or a list of strings", what, describe(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		out = append(out, d.str(resolve(c), what))
	}
	return out
}

// value converts a node into plain data: string, int, float64, bool, nil,
// []any and *ordered.Map (a mapping, in its written order, as Ansible keeps
// it), the shapes templates and encoding/json handle.
func (d *decoder) value(n *yaml.Node, what string) any { return d.valueAt(n, what, 0) }

// mapping reads a mapping of names to values; it is nil if n is not one.
func (d *decoder) mapping(n *yaml.Node, what string) map[string]any {
	if resolve(n).Kind != yaml.MappingNode {
		return nil
	}
	fs, _ := d.fields(n, what, nil)
	out := make(map[string]any, len(fs))
	for _, f := range fs {
		out[f.key] = d.value(f.v, what+"."+f.key)
	}
	return out
}

func (d *decoder) valueAt(n *yaml.Node, what string, depth int) any {
	n = resolve(n)
	if depth > maxDepth {
		d.errorf(n, "%s: nested more than %d levels deep", what, maxDepth)
		return nil
	}
	switch n.Kind {
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			out = append(out, d.valueAt(c, what, depth+1))
		}
		return out
	case yaml.MappingNode:
		fs, _ := d.fields(n, what, nil)
		out := ordered.New(len(fs))
		for _, f := range fs {
			out.Set(f.key, d.valueAt(f.v, what+"."+f.key, depth+1))
		}
		return out
	}
	return d.scalar(n, what)
}

// stringMap reads a mapping of names to scalars, such as environment
// variables; values are kept as written.
func (d *decoder) stringMap(n *yaml.Node, what string) map[string]string {
	fs, _ := d.fields(n, what, nil)
	out := make(map[string]string, len(fs))
	for _, f := range fs {
		out[f.key] = d.str(f.v, what+"."+f.key)
	}
	return out
}
