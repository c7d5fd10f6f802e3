package tmpl

import "strings"

// fieldValue is what Ansible's templar gives for a task field or a
// variable (ansible_eval_concat, jinja2_native off, as ansible-core 2.14
// is configured by default): text, except that None prints as nothing, and
// text that reads as a Python list, mapping or boolean literal is that
// value. So "{{ port + 1 }}" is the text "8081", "{{ [port] }}" a list
// and "{{ x is defined }}" a boolean.
func fieldValue(v any) any {
	switch x := v.(type) {
	case nil:
		return ""
	case bool, []any, map[string]any, *dict:
		return x // their text reads back as the same value
	case string:
		if strings.HasPrefix(x, "{") || strings.HasPrefix(x, "[") || x == "True" || x == "False" {
			if lit, ok := literalEval(x); ok {
				return lit
			}
		}
		return x
	}
	return pyStr(v)
}

// literalEval is Python's ast.literal_eval of s, with JSON's true, false
// and null too (Ansible's Json2Python): literals, lists, tuples (as
// lists), mappings with text keys and negative numbers only.
func literalEval(s string) (v any, ok bool) {
	defer func() {
		if recover() != nil {
			v, ok = nil, false
		}
	}()
	segs, err := scan("{{ "+s+" }}", false)
	if err != nil || len(segs) != 1 || segs[0].kind != segExpr {
		return nil, false
	}
	p := &parser{src: s, toks: segs[0].toks}
	n := p.top(func() *node { return p.tupleOf(p.expr) })
	p.expectEnd()
	return literal(n)
}

func literal(n *node) (any, bool) {
	switch n.kind {
	case kConst:
		return n.val, true
	case kName:
		if n.name == "null" {
			return nil, true
		}
	case kNeg:
		if c := n.kids[0]; c.kind == kConst {
			switch x := c.val.(type) {
			case int:
				return -x, true
			case float64:
				return -x, true
			}
		}
	case kList, kTuple:
		out := make([]any, 0, len(n.kids))
		for _, k := range n.kids {
			v, ok := literal(k)
			if !ok {
				return nil, false
			}
			out = append(out, v)
		}
		return out, true
	case kDict:
		out := newDict(len(n.kids) / 2)
		for i := 0; i+1 < len(n.kids); i += 2 {
			k, ok := literal(n.kids[i])
			key, isText := k.(string)
			if !ok || !isText {
				return nil, false
			}
			v, ok := literal(n.kids[i+1])
			if !ok {
				return nil, false
			}
			out.Set(key, v)
		}
		return out, true
	}
	return nil, false
}
