package tmpl

import (
	"fmt"
	"strconv"
)

type nodeKind int

const (
	kName   nodeKind = iota // name
	kConst                  // val: string, int, float64, bool or nil; name keeps a float's digits
	kList                   // kids: items
	kDict                   // kids: key, value, key, value...
	kGet                    // kids: object, index (a.b, a[0], a[x])
	kCall                   // kids: callee, args...
	kFilter                 // name; kids: input, args...
	kBin                    // name: operator; kids: left, right
	kNot                    // kids: operand
	kNeg                    // kids: operand
	kCat                    // kids: operands of ~
	kCond                   // kids: condition, then[, else]
	kTuple                  // kids: items
	kSlice                  // kids: object, start, stop, step (absent: nil)
	kTest                   // name; kids: input, args... ("x is name(args)")
	kKw                     // name; kids: value (a keyword argument name=value)
)

// node is an expression in Jinja's grammar, one struct for all kinds to keep
// the parser short.
type node struct {
	kind nodeKind
	pos  int
	name string
	val  any
	kids []*node
}

// parser is a recursive-descent parser following Jinja's precedence
// (jinja2/parser.py), so that expressions mean what they mean in Ansible.
// Errors are raised by panicking with *Error; compile recovers them.
type parser struct {
	src   string
	toks  []token
	i     int
	depth int
}

// maxDepth bounds nesting, in the parser and in the trees it builds, so that
// deep input cannot overflow the stack here or in pongo2 (which is fatal).
const maxDepth = 200

func (p *parser) enter() {
	if p.depth++; p.depth > maxDepth {
		p.fail(p.peek().pos, "expression nested too deeply")
	}
}

func (p *parser) leave() { p.depth-- }

// top parses a whole expression with f and checks the height of its tree.
func (p *parser) top(f func() *node) *node {
	n := f()
	if tooDeep(n, 0) {
		p.fail(n.pos, "expression nested too deeply")
	}
	return n
}

func tooDeep(n *node, d int) bool {
	if d > maxDepth {
		return true
	}
	for _, k := range n.kids {
		if tooDeep(k, d+1) {
			return true
		}
	}
	return false
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEnd {
		p.i++
	}
	return t
}

func (p *parser) isOp(v string) bool {
	t := p.peek()
	return t.kind == tOp && t.val == v
}

func (p *parser) isName(v string) bool {
	t := p.peek()
	return t.kind == tName && t.val == v
}

func (p *parser) fail(pos int, msg string) {
	panic(errAt(p.src, pos, msg))
}

func (p *parser) expectOp(v string) token {
	if !p.isOp(v) {
		p.fail(p.peek().pos, fmt.Sprintf("expected %q, found %s", v, describe(p.peek())))
	}
	return p.next()
}

func (p *parser) expectEnd() {
	if t := p.peek(); t.kind != tEnd {
		p.fail(t.pos, "unexpected "+describe(t))
	}
}

func describe(t token) string {
	switch t.kind {
	case tEnd:
		return "end of tag"
	case tStr:
		return "string " + strconv.Quote(t.val)
	}
	return strconv.Quote(t.val)
}

// expr parses a full expression, including "a if c else b".
func (p *parser) expr() *node {
	p.enter()
	defer p.leave()
	n := p.or()
	for p.isName("if") {
		pos := p.next().pos
		c := p.or()
		kids := []*node{c, n}
		if p.isName("else") {
			p.next()
			kids = append(kids, p.expr())
		}
		n = &node{kind: kCond, pos: pos, kids: kids}
	}
	return n
}

// tupleOf parses f, or several separated by commas: a tuple without
// parentheses ({{ a, b }}, {% set t = 1, 2 %}).
func (p *parser) tupleOf(f func() *node) *node {
	n := f()
	if !p.isOp(",") {
		return n
	}
	t := &node{kind: kTuple, pos: n.pos, kids: []*node{n}}
	for p.isOp(",") {
		p.next()
		if p.peek().kind == tEnd {
			break
		}
		t.kids = append(t.kids, f())
	}
	return t
}

func (p *parser) or() *node {
	n := p.and()
	for p.isName("or") {
		pos := p.next().pos
		n = &node{kind: kBin, pos: pos, name: "or", kids: []*node{n, p.and()}}
	}
	return n
}

func (p *parser) and() *node {
	n := p.not()
	for p.isName("and") {
		pos := p.next().pos
		n = &node{kind: kBin, pos: pos, name: "and", kids: []*node{n, p.not()}}
	}
	return n
}

func (p *parser) not() *node {
	if p.isName("not") {
		p.enter()
		defer p.leave()
		pos := p.next().pos
		return &node{kind: kNot, pos: pos, kids: []*node{p.not()}}
	}
	return p.compare()
}

// compare parses comparisons; a chain a < b < c becomes (a < b) and (b < c),
// as in Python.
func (p *parser) compare() *node {
	var n *node
	left := p.math1()
	for {
		t := p.peek()
		op := ""
		switch {
		case t.kind == tOp && (t.val == "==" || t.val == "!=" || t.val == "<" || t.val == ">" || t.val == "<=" || t.val == ">="):
			op = t.val
		case p.isName("in"):
			op = "in"
		case p.isName("not") && p.toks[p.i+1].kind == tName && p.toks[p.i+1].val == "in":
			p.next()
			op = "not in"
		}
		if op == "" {
			break
		}
		p.next()
		right := p.math1()
		cmp := &node{kind: kBin, pos: t.pos, name: op, kids: []*node{left, right}}
		if n == nil {
			n = cmp
		} else {
			n = &node{kind: kBin, pos: t.pos, name: "and", kids: []*node{n, cmp}}
		}
		left = right
	}
	if n == nil {
		return left
	}
	return n
}

func (p *parser) math1() *node {
	n := p.concat()
	for p.isOp("+") || p.isOp("-") {
		t := p.next()
		n = &node{kind: kBin, pos: t.pos, name: t.val, kids: []*node{n, p.concat()}}
	}
	return n
}

// concat parses "~", which in Jinja binds tighter than + and -.
func (p *parser) concat() *node {
	n := p.math2()
	if !p.isOp("~") {
		return n
	}
	c := &node{kind: kCat, pos: p.peek().pos, kids: []*node{n}}
	for p.isOp("~") {
		p.next()
		c.kids = append(c.kids, p.math2())
	}
	return c
}

func (p *parser) math2() *node {
	n := p.pow()
	for p.isOp("*") || p.isOp("/") || p.isOp("//") || p.isOp("%") {
		t := p.next()
		n = &node{kind: kBin, pos: t.pos, name: t.val, kids: []*node{n, p.pow()}}
	}
	return n
}

func (p *parser) pow() *node {
	n := p.unary(true)
	for p.isOp("**") {
		t := p.next()
		n = &node{kind: kBin, pos: t.pos, name: "**", kids: []*node{n, p.unary(true)}}
	}
	return n
}

func (p *parser) unary(withFilter bool) *node {
	p.enter()
	defer p.leave()
	var n *node
	switch {
	case p.isOp("-"):
		pos := p.next().pos
		n = &node{kind: kNeg, pos: pos, kids: []*node{p.unary(false)}}
	case p.isOp("+"):
		p.next()
		n = p.unary(false)
	default:
		n = p.primary()
	}
	n = p.postfix(n)
	if withFilter {
		n = p.filters(n)
	}
	return n
}

func (p *parser) primary() *node {
	t := p.next()
	switch t.kind {
	case tName:
		switch t.val {
		case "true", "True":
			return &node{kind: kConst, pos: t.pos, val: true}
		case "false", "False":
			return &node{kind: kConst, pos: t.pos, val: false}
		case "none", "None":
			return &node{kind: kConst, pos: t.pos}
		}
		return &node{kind: kName, pos: t.pos, name: t.val}
	case tStr:
		s := t.val
		for p.peek().kind == tStr { // adjacent literals concatenate
			s += p.next().val
		}
		return &node{kind: kConst, pos: t.pos, val: s}
	case tInt:
		i, err := strconv.ParseInt(t.val, 0, 64)
		if err != nil {
			p.fail(t.pos, "number too large: "+t.val)
		}
		return &node{kind: kConst, pos: t.pos, val: int(i)}
	case tFloat:
		f, err := strconv.ParseFloat(t.val, 64)
		if err != nil {
			p.fail(t.pos, "bad number: "+t.val)
		}
		return &node{kind: kConst, pos: t.pos, val: f, name: t.val}
	case tOp:
		switch t.val {
		case "(":
			if p.isOp(")") { // () is an empty tuple
				p.next()
				return &node{kind: kTuple, pos: t.pos}
			}
			n := p.expr()
			if !p.isOp(",") {
				p.expectOp(")")
				return n
			}
			p.next()
			l := &node{kind: kTuple, pos: t.pos, kids: []*node{n}}
			l.kids = append(l.kids, p.items(")", false)...)
			return l
		case "[":
			return &node{kind: kList, pos: t.pos, kids: p.items("]", false)}
		case "{":
			d := &node{kind: kDict, pos: t.pos}
			for !p.isOp("}") {
				k := p.expr()
				p.expectOp(":")
				d.kids = append(d.kids, k, p.expr())
				if !p.isOp(",") {
					break
				}
				p.next()
			}
			p.expectOp("}")
			return d
		}
	}
	p.fail(t.pos, "unexpected "+describe(t))
	return nil
}

// items parses comma-separated expressions up to and including the closing
// bracket; a trailing comma is allowed. With kw, the arguments of a call,
// name=value arguments may follow the positional ones.
func (p *parser) items(closing string, kw bool) []*node {
	var kids []*node
	named := false
	for !p.isOp(closing) {
		t := p.peek()
		if t.kind == tOp && (t.val == "*" || t.val == "**") && kw {
			p.fail(t.pos, "*args and **kwargs in calls are not supported")
		}
		if t.kind == tName && p.toks[p.i+1].kind == tOp && p.toks[p.i+1].val == "=" {
			if !kw {
				p.fail(t.pos, `unexpected "="`)
			}
			p.next()
			p.next()
			kids = append(kids, &node{kind: kKw, pos: t.pos, name: t.val, kids: []*node{p.expr()}})
			named = true
		} else {
			if named {
				p.fail(t.pos, "positional argument follows keyword argument")
			}
			kids = append(kids, p.expr())
		}
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	p.expectOp(closing)
	return kids
}

func (p *parser) postfix(n *node) *node {
	for {
		switch {
		case p.isOp("."):
			p.next()
			t := p.next()
			switch t.kind {
			case tName:
				n = &node{kind: kGet, pos: t.pos, kids: []*node{n, {kind: kConst, pos: t.pos, val: t.val}}}
			case tInt:
				i, err := strconv.Atoi(t.val)
				if err != nil {
					p.fail(t.pos, "index too large: "+t.val)
				}
				n = &node{kind: kGet, pos: t.pos, kids: []*node{n, {kind: kConst, pos: t.pos, val: i}}}
			default:
				p.fail(t.pos, "expected a name after \".\", found "+describe(t))
			}
		case p.isOp("["):
			n = p.subscript(n)
		case p.isOp("("):
			pos := p.next().pos
			n = &node{kind: kCall, pos: pos, kids: append([]*node{n}, p.items(")", true)...)}
		default:
			return n
		}
	}
}

// subscript parses [index] or a slice [start:stop:step], any part left out.
func (p *parser) subscript(n *node) *node {
	pos := p.next().pos
	var parts []*node
	slice := false
	for {
		if p.isOp(":") || p.isOp("]") {
			parts = append(parts, &node{kind: kConst, pos: p.peek().pos})
		} else {
			parts = append(parts, p.expr())
		}
		if !p.isOp(":") || len(parts) == 3 {
			break
		}
		p.next()
		slice = true
	}
	p.expectOp("]")
	if !slice {
		return &node{kind: kGet, pos: pos, kids: []*node{n, parts[0]}}
	}
	for len(parts) < 3 {
		parts = append(parts, &node{kind: kConst, pos: pos})
	}
	return &node{kind: kSlice, pos: pos, kids: append([]*node{n}, parts...)}
}

// name parses a filter or test name, which may be dotted
// (ansible.builtin.to_json).
func (p *parser) name(what string) token {
	t := p.next()
	if t.kind != tName {
		p.fail(t.pos, fmt.Sprintf("expected a %s name, found %s", what, describe(t)))
	}
	for p.isOp(".") {
		p.next()
		n := p.next()
		if n.kind != tName {
			p.fail(n.pos, fmt.Sprintf("expected a %s name, found %s", what, describe(n)))
		}
		t.val += "." + n.val
	}
	return t
}

// filters parses the filters and tests after an operand: "x | f(args)",
// "x is t", "x is not t(args)" or "x is t arg", as Jinja's parser does.
func (p *parser) filters(n *node) *node {
	for {
		switch {
		case p.isOp("|"):
			p.next()
			t := p.name("filter")
			f := &node{kind: kFilter, pos: t.pos, name: t.val, kids: []*node{n}}
			if p.isOp("(") {
				p.next()
				f.kids = append(f.kids, p.items(")", true)...)
			}
			n = f
		case p.isName("is"):
			is := p.next()
			negated := p.isName("not")
			if negated {
				p.next()
			}
			t := p.name("test")
			test := &node{kind: kTest, pos: t.pos, name: t.val, kids: []*node{n}}
			next := p.peek()
			switch {
			case p.isOp("("):
				p.next()
				test.kids = append(test.kids, p.items(")", true)...)
			case next.kind == tName && next.val == "is":
				p.fail(next.pos, `tests cannot be chained ("x is a is b")`)
			case next.kind == tStr || next.kind == tInt || next.kind == tFloat || p.isOp("[") || p.isOp("{") ||
				next.kind == tName && next.val != "else" && next.val != "or" && next.val != "and" && next.val != "if":
				test.kids = append(test.kids, p.postfix(p.primary()))
			}
			n = test
			if negated {
				n = &node{kind: kNot, pos: is.pos, kids: []*node{n}}
			}
		default:
			return n
		}
	}
}
