package tmpl

// YAML and JSON as Ansible reads and writes them: to_yaml is PyYAML's
// yaml.dump with Ansible's dumper (libyaml's emitter, YAML 1.1 types, keys
// sorted), from_yaml PyYAML's safe loader, from_json Python's json.loads.
// Mappings read keep their order.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

type flowMode int

const (
	flowAuto  flowMode = iota // PyYAML's default_flow_style=None: flow for collections of scalars
	flowNever                 // default_flow_style=False
	flowAlways
)

type yamlStyle struct {
	indent, width int
	flow          flowMode
	sortKeys      bool
}

// toYAML is Ansible's to_yaml and to_nice_yaml with st, or the keyword
// arguments given.
func toYAML(in any, st yamlStyle, kw *dict) (any, error) {
	for _, k := range kw.Keys() {
		v := val(kw, k)
		switch k {
		case "indent", "width":
			n, ok := toNum(v)
			if !ok || !n.isInt {
				return nil, fmt.Errorf("%s must be an integer", k)
			}
			if k == "indent" {
				st.indent = int(n.i)
			} else {
				st.width = int(min(n.i, maxSize))
			}
		case "default_flow_style":
			switch {
			case v == nil:
				st.flow = flowAuto
			case truthy(v):
				st.flow = flowAlways
			default:
				st.flow = flowNever
			}
		case "sort_keys":
			st.sortKeys = truthy(v)
		case "allow_unicode":
			if !truthy(v) {
				return nil, errors.New("allow_unicode=False is not supported")
			}
		default:
			return nil, fmt.Errorf("keyword argument %q is not supported", k)
		}
	}
	if st.indent <= 1 || st.indent >= 10 {
		st.indent = 2 // as PyYAML does
	}
	if st.width <= st.indent*2 {
		st.width = 80
	}
	budget := maxSize
	n, err := represent(in, st, 0, &budget)
	if err != nil {
		return nil, err
	}
	e := &emitter{st: st, indent: -1, whitespace: true, indention: true}
	e.node(n, true, false, false, false)
	e.writeIndent()
	if e.b.Len() > maxSize {
		return nil, errTooLarge
	}
	return e.b.String(), nil
}

// ynode is a represented value: a scalar, or a sequence or mapping.
type ynode struct {
	scalar   bool
	text     string
	plainOK  bool // reading the text as a plain scalar gives the same value
	items    []*ynode
	mapping  bool // items are key, value, key, value...
	flow     bool
	analysis *analysis
}

func represent(v any, st yamlStyle, depth int, budget *int) (*ynode, error) {
	if *budget--; *budget < 0 {
		return nil, errTooLarge
	}
	if depth > 1000 {
		return nil, errors.New("value nested too deeply")
	}
	scalar := func(text string, isStr bool) *ynode {
		return &ynode{scalar: true, text: text, plainOK: !isStr || yamlResolve(text) == "str"}
	}
	switch x := v.(type) {
	case nil:
		return scalar("null", false), nil
	case *missing:
		return nil, x.err()
	}
	if isBool(v) {
		return scalar(strconv.FormatBool(truthy(v)), false), nil
	}
	if n, ok := toNum(v); ok {
		if n.isInt {
			return scalar(strconv.FormatInt(n.i, 10), false), nil
		}
		return scalar(yamlFloat(n.f), false), nil
	}
	if s, ok := asStr(v); ok {
		return scalar(s, true), nil
	}
	var children []any
	mapping := false
	if l, err := asList(v); err == nil {
		children = l
	} else if keys, ok := keysOf(v); ok {
		mapping = true
		if st.sortKeys {
			keys = slices.Sorted(slices.Values(keys))
		}
		for _, k := range keys {
			e, _, _ := getKey(v, k)
			children = append(children, k, e)
		}
	} else {
		return nil, fmt.Errorf("cannot represent an object: %s", pyStr(v))
	}
	out := &ynode{mapping: mapping, flow: st.flow == flowAlways}
	best := true
	for _, c := range children {
		n, err := represent(c, st, depth+1, budget)
		if err != nil {
			return nil, err
		}
		best = best && n.scalar
		out.items = append(out.items, n)
	}
	if st.flow == flowAuto {
		out.flow = best
	}
	return out, nil
}

// yamlFloat is PyYAML's represent_float.
func yamlFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return ".nan"
	case math.IsInf(f, 1):
		return ".inf"
	case math.IsInf(f, -1):
		return "-.inf"
	}
	s := strings.ToLower(pyFloat(f))
	if !strings.Contains(s, ".") && strings.Contains(s, "e") {
		s = strings.Replace(s, "e", ".0e", 1)
	}
	return s
}

// YAML 1.1's implicit types, as PyYAML resolves plain scalars.
var yamlTypes = []struct {
	tag string
	re  *regexp.Regexp
}{
	{"bool", regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)},
	{"float", regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)},
	{"int", regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)},
	{"merge", regexp.MustCompile(`^<<$`)},
	{"null", regexp.MustCompile(`^(?:~|null|Null|NULL|)$`)},
	{"timestamp", regexp.MustCompile(`^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$`)},
	{"value", regexp.MustCompile(`^=$`)},
}

// yamlResolve is the type a plain scalar reads as.
func yamlResolve(s string) string {
	for _, t := range yamlTypes {
		if t.re.MatchString(s) {
			return t.tag
		}
	}
	return "str"
}

// emitter writes represented values as libyaml's emitter does (PyYAML's
// emitter.py is a port of it); the names follow emitter.py.
type emitter struct {
	b                         strings.Builder
	st                        yamlStyle
	column, indent            int // indent -1: none yet
	indents                   []int
	flowLevel                 int
	whitespace, indention     bool
	root, sequence, inMapping bool
	simpleKey                 bool
}

func (e *emitter) node(n *ynode, root, sequence, mapping, simpleKey bool) {
	if e.b.Len() > maxSize {
		return
	}
	e.root, e.sequence, e.inMapping, e.simpleKey = root, sequence, mapping, simpleKey
	switch {
	case n.scalar:
		e.increaseIndent(true, false)
		e.scalar(n)
		e.popIndent()
	case e.flowLevel > 0 || n.flow || len(n.items) == 0:
		e.flowCollection(n)
	case n.mapping:
		e.blockMapping(n)
	default:
		e.blockSequence(n)
	}
}

func (e *emitter) increaseIndent(flow, indentless bool) {
	e.indents = append(e.indents, e.indent)
	switch {
	case e.indent < 0 && flow:
		e.indent = e.st.indent
	case e.indent < 0:
		e.indent = 0
	case !indentless:
		e.indent += e.st.indent
	}
}

func (e *emitter) popIndent() {
	e.indent = e.indents[len(e.indents)-1]
	e.indents = e.indents[:len(e.indents)-1]
}

func (e *emitter) flowCollection(n *ynode) {
	open, close := "[", "]"
	if n.mapping {
		open, close = "{", "}"
	}
	e.writeIndicator(open, true, true, false)
	e.flowLevel++
	e.increaseIndent(true, false)
	step := 1
	if n.mapping {
		step = 2
	}
	for i := 0; i < len(n.items); i += step {
		if i > 0 {
			e.writeIndicator(",", false, false, false)
		}
		if e.column > e.st.width {
			e.writeIndent()
		}
		if !n.mapping {
			e.node(n.items[i], false, true, false, false)
			continue
		}
		if e.checkSimpleKey(n.items[i]) {
			e.node(n.items[i], false, false, true, true)
			e.writeIndicator(":", false, false, false)
		} else {
			e.writeIndicator("?", true, false, false)
			e.node(n.items[i], false, false, true, false)
			if e.column > e.st.width {
				e.writeIndent()
			}
			e.writeIndicator(":", true, false, false)
		}
		e.node(n.items[i+1], false, false, true, false)
	}
	e.popIndent()
	e.flowLevel--
	e.writeIndicator(close, false, false, false)
}

func (e *emitter) blockSequence(n *ynode) {
	e.increaseIndent(false, e.inMapping && !e.indention)
	for _, it := range n.items {
		e.writeIndent()
		e.writeIndicator("-", true, false, true)
		e.node(it, false, true, false, false)
	}
	e.popIndent()
}

func (e *emitter) blockMapping(n *ynode) {
	e.increaseIndent(false, false)
	for i := 0; i < len(n.items); i += 2 {
		e.writeIndent()
		if e.checkSimpleKey(n.items[i]) {
			e.node(n.items[i], false, false, true, true)
			e.writeIndicator(":", false, false, false)
		} else {
			e.writeIndicator("?", true, false, true)
			e.node(n.items[i], false, false, true, false)
			e.writeIndent()
			e.writeIndicator(":", true, false, true)
		}
		e.node(n.items[i+1], false, false, true, false)
	}
	e.popIndent()
}

func (e *emitter) checkSimpleKey(n *ynode) bool {
	if !n.scalar {
		return len(n.items) == 0
	}
	return len(n.text) <= 128 && !n.analyze().multiline // libyaml's test, which allows an empty key
}

func (e *emitter) writeIndicator(ind string, needWhitespace, whitespace, indention bool) {
	if !e.whitespace && needWhitespace {
		ind = " " + ind
	}
	e.whitespace = whitespace
	e.indention = e.indention && indention
	e.column += len([]rune(ind))
	e.b.WriteString(ind)
}

func (e *emitter) writeIndent() {
	indent := max(e.indent, 0)
	if !e.indention || e.column > indent || e.column == indent && !e.whitespace {
		e.writeLineBreak()
	}
	if e.column < indent {
		e.whitespace = true
		e.b.WriteString(strings.Repeat(" ", indent-e.column))
		e.column = indent
	}
}

func (e *emitter) writeLineBreak() {
	e.whitespace, e.indention = true, true
	e.column = 0
	e.b.WriteByte('\n')
}

func (e *emitter) write(s []rune) {
	e.column += len(s)
	e.b.WriteString(string(s))
}

// analysis is what analyze_scalar finds in a scalar's text.
type analysis struct {
	empty, multiline                                  bool
	flowPlain, blockPlain, singleQuoted, doubleQuoted bool
}

func (n *ynode) analyze() *analysis {
	if n.analysis == nil {
		n.analysis = analyzeScalar([]rune(n.text))
	}
	return n.analysis
}

func isBreak(r rune) bool { return r == '\n' || r == 0x85 || r == 0x2028 || r == 0x2029 }

func isBlankZ(r rune) bool { return r == 0 || r == ' ' || r == '\t' || r == '\r' || isBreak(r) }

// printable is libyaml's IS_PRINTABLE (which, unlike PyYAML's, leaves out
// characters beyond the BMP and U+0085).
func printable(r rune) bool {
	return r == '\n' || r >= 0x20 && r <= 0x7e || r >= 0xa0 && r <= 0xd7ff || r >= 0xe000 && r <= 0xfffd && r != 0xfeff
}

func analyzeScalar(s []rune) *analysis {
	if len(s) == 0 {
		return &analysis{empty: true, blockPlain: true, singleQuoted: true, doubleQuoted: true}
	}
	var blockInd, flowInd, lineBreaks, special bool
	var leadingSpace, leadingBreak, trailingSpace, trailingBreak, breakSpace, spaceBreak bool
	if str := string(s); strings.HasPrefix(str, "---") || strings.HasPrefix(str, "...") {
		blockInd, flowInd = true, true
	}
	preceded := true
	followed := len(s) == 1 || isBlankZ(s[1])
	prevSpace, prevBreak := false, false
	for i, ch := range s {
		if i == 0 {
			if strings.ContainsRune("#,[]{}&*!|>'\"%@`", ch) {
				flowInd, blockInd = true, true
			}
			if ch == '?' || ch == ':' {
				flowInd = true
				if followed {
					blockInd = true
				}
			}
			if ch == '-' && followed {
				flowInd, blockInd = true, true
			}
		} else {
			if strings.ContainsRune(",?[]{}", ch) {
				flowInd = true
			}
			if ch == ':' {
				flowInd = true
				if followed {
					blockInd = true
				}
			}
			if ch == '#' && preceded {
				flowInd, blockInd = true, true
			}
		}
		if isBreak(ch) {
			lineBreaks = true
		}
		if !printable(ch) {
			special = true
		}
		switch {
		case ch == ' ':
			if i == 0 {
				leadingSpace = true
			}
			if i == len(s)-1 {
				trailingSpace = true
			}
			if prevBreak {
				breakSpace = true
			}
			prevSpace, prevBreak = true, false
		case isBreak(ch):
			if i == 0 {
				leadingBreak = true
			}
			if i == len(s)-1 {
				trailingBreak = true
			}
			if prevSpace {
				spaceBreak = true
			}
			prevSpace, prevBreak = false, true
		default:
			prevSpace, prevBreak = false, false
		}
		preceded = isBlankZ(ch)
		followed = i+2 >= len(s) || isBlankZ(s[i+2])
	}
	a := &analysis{multiline: lineBreaks, flowPlain: true, blockPlain: true, singleQuoted: true, doubleQuoted: true}
	if leadingSpace || leadingBreak || trailingSpace || trailingBreak {
		a.flowPlain, a.blockPlain = false, false
	}
	if breakSpace {
		a.flowPlain, a.blockPlain, a.singleQuoted = false, false, false
	}
	if spaceBreak || special {
		a.flowPlain, a.blockPlain, a.singleQuoted = false, false, false
	}
	if lineBreaks {
		a.flowPlain, a.blockPlain = false, false
	}
	if flowInd {
		a.flowPlain = false
	}
	if blockInd {
		a.blockPlain = false
	}
	return a
}

func (e *emitter) scalar(n *ynode) {
	a := n.analyze()
	split := !e.simpleKey
	text := []rune(n.text)
	// libyaml's yaml_emitter_select_scalar_style.
	switch {
	case n.plainOK && (e.flowLevel > 0 && a.flowPlain || e.flowLevel == 0 && a.blockPlain) && !(a.empty && (e.flowLevel > 0 || e.simpleKey)):
		e.writePlain(text, split)
	case a.singleQuoted:
		e.writeSingleQuoted(text, split)
	default:
		e.writeDoubleQuoted(text, split)
	}
}

func (e *emitter) writePlain(text []rune, split bool) {
	if len(text) == 0 {
		return
	}
	if !e.whitespace {
		e.write([]rune{' '})
	}
	e.whitespace, e.indention = false, false
	spaces := false
	start := 0
	for end := 0; end <= len(text); end++ {
		var ch rune = -1
		if end < len(text) {
			ch = text[end]
		}
		if spaces {
			if ch != ' ' {
				if start+1 == end && e.column > e.st.width && split {
					e.writeIndent()
					e.whitespace, e.indention = false, false
				} else {
					e.write(text[start:end])
				}
				start = end
			}
		} else if ch < 0 || ch == ' ' {
			e.write(text[start:end])
			start = end
		}
		if ch >= 0 {
			spaces = ch == ' '
		}
	}
}

func (e *emitter) writeSingleQuoted(text []rune, split bool) {
	e.writeIndicator("'", true, false, false)
	spaces, breaks := false, false
	start := 0
	for end := 0; end <= len(text); end++ {
		var ch rune = -1
		if end < len(text) {
			ch = text[end]
		}
		switch {
		case spaces:
			if ch != ' ' {
				if start+1 == end && e.column > e.st.width && split && start != 0 && end != len(text) {
					e.writeIndent()
				} else {
					e.write(text[start:end])
				}
				start = end
			}
		case breaks:
			if ch < 0 || !isBreak(ch) {
				if text[start] == '\n' {
					e.writeLineBreak()
				}
				for _, br := range text[start:end] {
					if br == '\n' {
						e.writeLineBreak()
					} else {
						e.b.WriteRune(br)
						e.whitespace, e.indention, e.column = true, true, 0
					}
				}
				e.writeIndent()
				start = end
			}
		default:
			if ch < 0 || ch == ' ' || isBreak(ch) || ch == '\'' {
				if start < end {
					e.write(text[start:end])
					start = end
				}
			}
		}
		if ch == '\'' {
			e.write([]rune("''"))
			start = end + 1
		}
		if ch >= 0 {
			spaces, breaks = ch == ' ', isBreak(ch)
		}
	}
	e.writeIndicator("'", false, false, false)
}

var yamlEscapes = map[rune]string{0: "0", 7: "a", 8: "b", 9: "t", 10: "n", 11: "v", 12: "f", 13: "r", 27: "e",
	'"': "\"", '\\': "\\", 0x85: "N", 0xa0: "_", 0x2028: "L", 0x2029: "P"}

func (e *emitter) writeDoubleQuoted(text []rune, split bool) {
	e.writeIndicator(`"`, true, false, false)
	start := 0
	for end := 0; end <= len(text); end++ {
		var ch rune = -1
		if end < len(text) {
			ch = text[end]
		}
		if ch < 0 || ch == '"' || ch == '\\' || ch == 0x85 || ch == 0x2028 || ch == 0x2029 || ch == 0xfeff || !printable(ch) || ch == '\n' {
			if start < end {
				e.write(text[start:end])
				start = end
			}
			if ch >= 0 {
				var data string
				switch esc, ok := yamlEscapes[ch]; {
				case ok:
					data = `\` + esc
				case ch <= 0xff:
					data = fmt.Sprintf(`\x%02X`, ch)
				case ch <= 0xffff:
					data = fmt.Sprintf(`\u%04X`, ch)
				default:
					data = fmt.Sprintf(`\U%08X`, ch)
				}
				e.write([]rune(data))
				start = end + 1
			}
		}
		if 0 < end && end < len(text)-1 && (ch == ' ' || start >= end) && e.column+(end-start) > e.st.width && split {
			data := append(append([]rune{}, text[start:end]...), '\\')
			if start < end {
				start = end
			}
			e.write(data)
			e.writeIndent()
			e.whitespace, e.indention = false, false
			if text[start] == ' ' {
				e.write([]rune{'\\'})
			}
		}
	}
	e.writeIndicator(`"`, false, false, false)
}

// fromYAML reads YAML documents as PyYAML's safe loader does (YAML 1.1:
// yes/no are booleans, 0755 is octal), mappings in their order.
func fromYAML(s string) ([]any, error) {
	dec := yaml.NewDecoder(strings.NewReader(s))
	var docs []any
	budget := maxSize
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if err.Error() == "EOF" {
				return docs, nil
			}
			return nil, err
		}
		v, err := yamlValue(&n, &budget, 0)
		if err != nil {
			return nil, err
		}
		docs = append(docs, v)
	}
}

func yamlValue(n *yaml.Node, budget *int, depth int) (any, error) {
	if *budget--; *budget < 0 {
		return nil, errTooLarge
	}
	if depth > 1000 {
		return nil, errors.New("YAML nested too deeply")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return yamlValue(n.Content[0], budget, depth+1)
	case yaml.AliasNode:
		return yamlValue(n.Alias, budget, depth+1)
	case yaml.SequenceNode:
		out := []any{}
		for _, c := range n.Content {
			v, err := yamlValue(c, budget, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		d := newDict(len(n.Content) / 2)
		var merged []*dict
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, err := yamlValue(n.Content[i], budget, depth+1)
			if err != nil {
				return nil, err
			}
			v, err := yamlValue(n.Content[i+1], budget, depth+1)
			if err != nil {
				return nil, err
			}
			if n.Content[i].Tag == "!!merge" || n.Content[i].Value == "<<" && n.Content[i].Style == 0 {
				for _, m := range append([]any{v}, listOrNone(v)...) {
					if md, ok := m.(*dict); ok {
						merged = append(merged, md)
					}
				}
				continue
			}
			d.Set(pyStr(k), v)
		}
		for _, m := range merged { // explicit keys win over merged ones, the first merge over later ones
			for _, k := range m.Keys() {
				if _, ok := d.Get(k); !ok {
					d.Set(k, val(m, k))
				}
			}
		}
		return d, nil
	}
	tag := n.Tag
	if n.Style&yaml.TaggedStyle == 0 {
		tag = "!!str"
		if n.Style == 0 {
			tag = "!!" + yamlResolve(n.Value)
		}
	}
	return yamlScalar(tag, n.Value)
}

func listOrNone(v any) []any {
	l, _ := v.([]any)
	return l
}

// yamlScalar constructs a scalar of YAML 1.1's type tag, as PyYAML's
// SafeConstructor does.
func yamlScalar(tag, s string) (any, error) {
	switch tag {
	case "!!null":
		return nil, nil
	case "!!bool":
		switch strings.ToLower(s) {
		case "yes", "true", "on":
			return true, nil
		case "no", "false", "off":
			return false, nil
		}
	case "!!int":
		v := strings.ReplaceAll(s, "_", "")
		sign := int64(1)
		if v != "" && (v[0] == '-' || v[0] == '+') {
			if v[0] == '-' {
				sign = -1
			}
			v = v[1:]
		}
		var n int64
		var err error
		switch {
		case v == "0":
		case strings.HasPrefix(v, "0b"):
			n, err = strconv.ParseInt(v[2:], 2, 64)
		case strings.HasPrefix(v, "0x"):
			n, err = strconv.ParseInt(v[2:], 16, 64)
		case strings.HasPrefix(v, "0"):
			n, err = strconv.ParseInt(v[1:], 8, 64)
		case strings.Contains(v, ":"):
			for _, d := range strings.Split(v, ":") {
				k, e := strconv.ParseInt(d, 10, 64)
				n, err = n*60+k, errors.Join(err, e)
			}
		default:
			n, err = strconv.ParseInt(v, 10, 64)
		}
		if err == nil {
			return int(sign * n), nil
		}
	case "!!float":
		v := strings.ToLower(strings.ReplaceAll(s, "_", ""))
		sign := 1.0
		if v != "" && (v[0] == '-' || v[0] == '+') {
			if v[0] == '-' {
				sign = -1
			}
			v = v[1:]
		}
		switch {
		case v == ".inf":
			return sign * math.Inf(1), nil
		case v == ".nan":
			return math.NaN(), nil
		case strings.Contains(v, ":"):
			f := 0.0
			for _, d := range strings.Split(v, ":") {
				k, _ := strconv.ParseFloat(d, 64)
				f = f*60 + k
			}
			return sign * f, nil
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return sign * f, nil
		}
	case "!!str", "!!timestamp", "!!value", "!!binary":
		return s, nil
	}
	return nil, fmt.Errorf("cannot read %q as %s", s, strings.TrimPrefix(tag, "!!"))
}

// FromJSON reads JSON text as from_json (Python's json.loads) does: a
// mapping as an *ordered.Map, its keys in order, an integer as int.
func FromJSON(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	v, err := jsonValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("Extra data")
	}
	return v, nil
}

func jsonValue(dec *json.Decoder, depth int) (any, error) {
	if depth > 1000 {
		return nil, errors.New("JSON nested too deeply")
	}
	t, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("Expecting value: %v", err)
	}
	switch x := t.(type) {
	case json.Delim:
		if x == '[' {
			out := []any{}
			for dec.More() {
				v, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			_, err := dec.Token()
			return out, err
		}
		d := newDict(0)
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := jsonValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			d.Set(k.(string), v)
		}
		_, err := dec.Token()
		return d, err
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return int(i), nil
		}
		f, _ := strconv.ParseFloat(string(x), 64)
		return f, nil
	}
	return t, nil
}
