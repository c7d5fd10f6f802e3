package tmpl

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/e2c-dev/e2c/engine/suggest"
)

// compiler translates the Jinja template into pongo2 source. Every
// expression becomes calls to the e2c_* helpers in funcs.go, so pongo2 only
// looks up variables, applies filters and runs the for/if/set/with tags.
// Alongside it records the free variable paths (refs) and a map from output
// offsets back to the user's text for error positions.
type compiler struct {
	src    string
	out    strings.Builder
	spans  []span
	refs   map[string]ref
	soft   map[string]bool   // names read only under default: used when set
	scopes []map[string]bool // names bound by for, set and with; [0] is the template
	blocks []block
	loops  int // open for-loops, inside which "loop" is Jinja's loop variable
	single bool
}

// span maps output from offset out on to the user's offset src: byte for
// byte when copied, else every byte of it maps to src.
type span struct {
	out, src int
	copied   bool
}

type block struct {
	tag     string
	pos     int
	sawElse bool
}

// ref is a free variable path and the offset of its first read.
type ref struct {
	path []seg
	pos  int
}

// seg is one step of a variable path: a map key or a list index.
type seg struct {
	key   string
	idx   int
	isIdx bool
}

var (
	// loopAttrs translates Jinja's loop variable to pongo2's forloop.
	loopAttrs = map[string]string{
		"index":     "forloop.Counter",
		"index0":    "forloop.Counter0",
		"revindex":  "forloop.Revcounter",
		"revindex0": "forloop.Revcounter0",
		"first":     "forloop.First",
		"last":      "forloop.Last",
		"length":    `e2c_op("+", forloop.Counter, forloop.Revcounter0)`,
	}
	// functions are the callable built-ins with their argument counts.
	functions = map[string][2]int{"range": {1, 3}, "replace": {3, 3}, "regex_replace": {2, 3}}
	tagNames  = []string{"for", "endfor", "if", "elif", "else", "endif", "set", "with", "endwith", "raw", "endraw"}
	// pongoWords are pongo2 keywords (plus Jinja's), which pongo2 cannot read as names.
	pongoWords = map[string]bool{"in": true, "and": true, "or": true, "not": true, "true": true, "false": true,
		"as": true, "export": true, "is": true, "if": true, "else": true, "none": true, "None": true, "True": true, "False": true}
)

func compile(src string) (c *compiler, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(*Error)
			if !ok {
				panic(r)
			}
			c, err = nil, e
		}
	}()
	segs, err := scan(src)
	if err != nil {
		return nil, err
	}
	c = &compiler{src: src, refs: map[string]ref{}, soft: map[string]bool{}, scopes: []map[string]bool{{}}}
	exprs, other := 0, 0
	for _, s := range segs {
		switch s.kind {
		case segText:
			c.copy(s.pos, s.text)
			if strings.TrimSpace(s.text) != "" {
				other++
			}
		case segRaw:
			if strings.Contains(s.text, "endverbatim") {
				c.fail(s.pos, `a raw block cannot contain "endverbatim"`)
			}
			c.w(s.pos, "{% verbatim %}")
			c.copy(s.pos, s.text)
			c.w(s.pos+len(s.text), "{% endverbatim %}")
			other++
		case segExpr:
			c.exprTag(s)
			exprs++
		case segStmt:
			c.stmtTag(s)
			other++
		}
	}
	if n := len(c.blocks); n > 0 {
		b := c.blocks[n-1]
		c.fail(b.pos, fmt.Sprintf("unclosed %q block (missing {%% end%s %%})", b.tag, b.tag))
	}
	c.single = exprs == 1 && other == 0
	return c, nil
}

func (c *compiler) fail(pos int, msg string) { panic(errAt(c.src, pos, msg)) }

// w writes generated text attributed to the user's offset pos.
func (c *compiler) w(pos int, s string) {
	c.spans = append(c.spans, span{out: c.out.Len(), src: pos})
	c.out.WriteString(s)
}

// copy writes the user's own text starting at offset pos.
func (c *compiler) copy(pos int, s string) {
	c.spans = append(c.spans, span{out: c.out.Len(), src: pos, copied: true})
	c.out.WriteString(s)
}

func (c *compiler) open(s segment, delim string) {
	if s.trimL {
		delim += "-"
	}
	c.w(s.pos, delim+" ")
}

func (c *compiler) close(s segment, delim string) {
	if s.trimR {
		delim = "-" + delim
	}
	c.w(s.toks[len(s.toks)-1].pos, " "+delim)
}

func (c *compiler) exprTag(s segment) {
	p := &parser{src: c.src, toks: s.toks}
	if p.peek().kind == tEnd {
		c.fail(s.pos, "empty expression")
	}
	n := p.top(p.expr)
	p.expectEnd()
	c.collect(n, false)
	c.open(s, "{{")
	c.w(n.pos, "e2c_out(")
	c.emit(n)
	c.w(n.pos, ")")
	c.close(s, "}}")
}

func (c *compiler) stmtTag(s segment) {
	p := &parser{src: c.src, toks: s.toks}
	t := p.next()
	if t.kind != tName {
		c.fail(t.pos, "expected a tag name, found "+describe(t))
	}
	if len(c.blocks) >= maxDepth {
		c.fail(t.pos, "blocks nested too deeply")
	}
	c.open(s, "{%")
	switch t.val {
	case "for":
		var names []string
		for {
			nt := p.next()
			c.checkName(nt)
			names = append(names, nt.val)
			if !p.isOp(",") {
				break
			}
			p.next()
		}
		if len(names) > 2 {
			c.fail(t.pos, "at most two loop variables are supported (for k, v in mapping)")
		}
		if !p.isName("in") {
			c.fail(p.peek().pos, `expected "in", found `+describe(p.peek()))
		}
		p.next()
		it := p.top(p.or)
		if p.isName("if") || p.isName("recursive") {
			c.fail(p.peek().pos, fmt.Sprintf("%q in a for tag is not supported", p.peek().val))
		}
		p.expectEnd()
		if len(names) == 2 && it.kind == kCall && len(it.kids) == 1 && it.kids[0].kind == kGet && it.kids[0].kids[1].val == "items" {
			it = it.kids[0].kids[0] // for k, v in d.items()
		}
		c.collect(it, false)
		c.w(t.pos, "for "+strings.Join(names, ", ")+" in ")
		if len(names) == 1 {
			c.call(it.pos, "e2c_iter", it)
		} else {
			c.call(it.pos, "e2c_items", it)
			c.w(it.pos, " sorted")
		}
		scope := map[string]bool{"loop": true, "forloop": true}
		for _, n := range names {
			scope[n] = true
		}
		c.scopes = append(c.scopes, scope)
		c.blocks = append(c.blocks, block{tag: "for", pos: s.pos})
		c.loops++
	case "endfor", "endif", "endwith":
		p.expectEnd()
		c.pop(t, strings.TrimPrefix(t.val, "end"))
		c.w(t.pos, t.val)
	case "if", "elif":
		if t.val == "elif" {
			if b := c.top(t, "if"); b.sawElse {
				c.fail(t.pos, `"elif" after "else"`)
			}
		}
		x := p.top(p.expr)
		p.expectEnd()
		c.collect(x, false)
		if t.val == "if" {
			c.blocks = append(c.blocks, block{tag: "if", pos: s.pos})
		}
		c.w(t.pos, t.val+" ")
		c.emit(x)
	case "else":
		p.expectEnd()
		b := c.top(t, "if", "for")
		if b.sawElse {
			c.fail(t.pos, `second "else" in the same block`)
		}
		b.sawElse = true
		if b.tag == "for" {
			c.w(t.pos, "empty") // pongo2's name for a for-loop's else
		} else {
			c.w(t.pos, "else")
		}
	case "set":
		nt := p.next()
		c.checkName(nt)
		if p.isOp(",") || p.isOp(".") {
			c.fail(p.peek().pos, "set takes exactly one variable name")
		}
		if p.peek().kind == tEnd {
			c.fail(t.pos, "block set ({% set x %}...{% endset %}) is not supported")
		}
		p.expectOp("=")
		x := p.top(p.expr)
		p.expectEnd()
		c.collect(x, false)
		c.scopes[len(c.scopes)-1][nt.val] = true
		c.w(t.pos, "set "+nt.val+" = ")
		c.emit(x)
	case "with":
		type pair struct {
			name string
			x    *node
		}
		var pairs []pair
		for p.peek().kind != tEnd {
			nt := p.next()
			c.checkName(nt)
			p.expectOp("=")
			x := p.top(p.expr)
			c.collect(x, false)
			pairs = append(pairs, pair{nt.val, x})
			if !p.isOp(",") {
				break
			}
			p.next()
		}
		p.expectEnd()
		if len(pairs) == 0 {
			c.fail(t.pos, "with needs at least one assignment (with a = ...)")
		}
		scope := map[string]bool{}
		c.w(t.pos, "with")
		for _, pr := range pairs {
			scope[pr.name] = true
			c.w(pr.x.pos, " "+pr.name+"=")
			c.emit(pr.x)
		}
		c.scopes = append(c.scopes, scope)
		c.blocks = append(c.blocks, block{tag: "with", pos: s.pos})
	case "include", "import", "from", "extends", "ssi":
		c.fail(t.pos, fmt.Sprintf("tag %q is not allowed: templates cannot read files", t.val))
	case "now":
		c.fail(t.pos, `tag "now" is not allowed: rendering must be reproducible`)
	default:
		c.fail(t.pos, fmt.Sprintf("unknown tag %q%s", t.val, suggest.Hint(t.val, tagNames)))
	}
	c.close(s, "%}")
}

// top returns the innermost open block, which must be one of tags. When
// one of tags is open further out, the innermost block is the one left
// unclosed.
func (c *compiler) top(t token, tags ...string) *block {
	n := len(c.blocks)
	if n > 0 && slices.Contains(tags, c.blocks[n-1].tag) {
		return &c.blocks[n-1]
	}
	for _, b := range c.blocks {
		if slices.Contains(tags, b.tag) {
			in := c.blocks[n-1]
			c.fail(in.pos, fmt.Sprintf("unclosed %q block (missing {%% end%s %%}; found %q at %s)", in.tag, in.tag, t.val, where(c.src, t.pos)))
		}
	}
	c.fail(t.pos, fmt.Sprintf("%q outside of %s block", t.val, strings.Join(tags, " or ")))
	return nil
}

func (c *compiler) pop(t token, tag string) {
	c.top(t, tag)
	c.blocks = c.blocks[:len(c.blocks)-1]
	if tag != "if" {
		c.scopes = c.scopes[:len(c.scopes)-1]
	}
	if tag == "for" {
		c.loops--
	}
}

// checkName vets a name the template binds.
func (c *compiler) checkName(t token) {
	if t.kind != tName {
		c.fail(t.pos, "expected a variable name, found "+describe(t))
	}
	c.checkVar(t.pos, t.val)
}

func (c *compiler) checkVar(pos int, name string) {
	switch {
	case strings.HasPrefix(name, "e2c_") || name == "pongo2":
		c.fail(pos, fmt.Sprintf("the name %q is reserved", name))
	case pongoWords[name]:
		c.fail(pos, fmt.Sprintf("%q cannot be used as a variable name", name))
	}
}

func (c *compiler) bound(name string) bool {
	for _, s := range c.scopes {
		if s[name] {
			return true
		}
	}
	return false
}

// collect records the free variable paths n reads. A path read directly
// under the default filter is optional: not a ref, but its name is noted
// in soft.
func (c *compiler) collect(n *node, optional bool) {
	switch n.kind {
	case kName, kGet:
		if segs, ok := c.path(n, optional); ok && !optional {
			c.addRef(segs, n)
		} else if ok {
			c.soft[segs[0].key] = true
		}
		return
	case kFilter:
		c.collect(n.kids[0], n.name == "default")
		for _, a := range n.kids[1:] {
			c.collect(a, false)
		}
		return
	case kCall:
		if n.kids[0].kind != kName {
			c.collect(n.kids[0], false)
		}
		for _, a := range n.kids[1:] {
			c.collect(a, false)
		}
		return
	}
	for _, k := range n.kids {
		c.collect(k, false)
	}
}

// path returns the static path of n (a.b[0].c is a, b, 0, c) and whether n
// is one. A dynamic index ends the path: its base is recorded as a ref and
// the index expression is collected on its own.
func (c *compiler) path(n *node, optional bool) ([]seg, bool) {
	switch n.kind {
	case kName:
		if c.bound(n.name) {
			return nil, false
		}
		return []seg{{key: n.name}}, true
	case kGet:
		segs, ok := c.path(n.kids[0], optional)
		if idx := n.kids[1]; idx.kind == kConst {
			switch k := idx.val.(type) {
			case string:
				return append(segs, seg{key: k}), ok
			case int:
				if k >= 0 {
					return append(segs, seg{idx: k, isIdx: true}), ok
				}
			}
		} else {
			c.collect(idx, false)
		}
		if ok && !optional {
			c.addRef(segs, n)
		} else if ok {
			c.soft[segs[0].key] = true
		}
		return nil, false
	}
	c.collect(n, false)
	return nil, false
}

// addRef records segs, the path n reads, at the name the path starts with.
func (c *compiler) addRef(segs []seg, n *node) {
	name := dotted(segs)
	if _, ok := c.refs[name]; ok {
		return
	}
	for n.kind == kGet {
		n = n.kids[0]
	}
	c.refs[name] = ref{append([]seg(nil), segs...), n.pos}
}

func dotted(segs []seg) string {
	parts := make([]string, len(segs))
	for i, s := range segs {
		parts[i] = s.key
		if s.isIdx {
			parts[i] = strconv.Itoa(s.idx)
		}
	}
	return strings.Join(parts, ".")
}

// emit writes n as a pongo2 expression.
func (c *compiler) emit(n *node) {
	switch n.kind {
	case kName:
		c.checkVar(n.pos, n.name)
		if n.name == "loop" && c.loops > 0 {
			c.fail(n.pos, `use loop.index, loop.index0, loop.revindex, loop.revindex0, loop.first, loop.last or loop.length`)
		}
		c.w(n.pos, n.name)
	case kConst:
		c.emitConst(n)
	case kList:
		c.call(n.pos, "e2c_list", n.kids...)
	case kDict:
		c.call(n.pos, "e2c_dict", n.kids...)
	case kGet:
		c.emitGet(n)
	case kCall:
		c.emitCall(n)
	case kFilter:
		c.emitFilter(n)
	case kBin:
		c.op(n.pos, n.name, n.kids...)
	case kNot:
		c.op(n.pos, "not", n.kids...)
	case kNeg:
		c.op(n.pos, "neg", n.kids...)
	case kCat:
		c.call(n.pos, "e2c_cat", n.kids...)
	case kCond:
		c.op(n.pos, "if", n.kids...)
	}
}

func (c *compiler) call(pos int, fn string, args ...*node) {
	c.w(pos, fn+"(")
	for i, a := range args {
		if i > 0 {
			c.w(a.pos, ", ")
		}
		c.emit(a)
	}
	c.w(pos, ")")
}

func (c *compiler) op(pos int, op string, args ...*node) {
	c.w(pos, `e2c_op("`+op+`"`)
	for _, a := range args {
		c.w(a.pos, ", ")
		c.emit(a)
	}
	c.w(pos, ")")
}

func (c *compiler) emitConst(n *node) {
	switch v := n.val.(type) {
	case nil:
		c.w(n.pos, "e2c_id()")
	case bool:
		c.w(n.pos, strconv.FormatBool(v))
	case int:
		c.w(n.pos, strconv.Itoa(v))
	case float64:
		c.w(n.pos, n.name) // digits.digits, which pongo2 reads as a float
	case string:
		if !strings.Contains(v, "\n") {
			c.w(n.pos, pongoQuote(v))
			return
		}
		// pongo2 strings cannot hold a newline.
		c.w(n.pos, "e2c_lines(")
		for i, line := range strings.Split(v, "\n") {
			if i > 0 {
				c.w(n.pos, ", ")
			}
			c.w(n.pos, pongoQuote(line))
		}
		c.w(n.pos, ")")
	}
}

func pongoQuote(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

// isVar reports whether n is emitted as something pongo2 can follow with
// ".key" or use as a filter argument: a name, a path or a function call.
// Literals and filtered values must be wrapped in e2c_id() there.
func isVar(n *node) bool {
	if n.kind == kFilter {
		return false
	}
	if n.kind == kConst {
		s, ok := n.val.(string)
		return n.val == nil || ok && strings.Contains(s, "\n")
	}
	return true
}

func (c *compiler) emitVar(n *node) {
	if isVar(n) {
		c.emit(n)
	} else {
		c.call(n.pos, "e2c_id", n)
	}
}

func (c *compiler) emitGet(n *node) {
	obj, idx := n.kids[0], n.kids[1]
	if obj.kind == kName && obj.name == "loop" && c.loops > 0 {
		key, _ := idx.val.(string)
		if s, ok := loopAttrs[key]; ok && idx.kind == kConst {
			c.w(n.pos, s)
			return
		}
		c.fail(n.pos, fmt.Sprintf("loop.%v is not supported", idx.val))
	}
	// Keys use pongo2's paths; indexes go through e2c_get, as pongo2 would
	// index a string's bytes rather than its characters.
	if k, ok := idx.val.(string); ok && idx.kind == kConst && isIdent(k) && !pongoWords[k] {
		c.emitVar(obj)
		c.w(idx.pos, "."+k)
		return
	}
	c.call(n.pos, "e2c_get", obj, idx)
}

func (c *compiler) emitCall(n *node) {
	callee, args := n.kids[0], n.kids[1:]
	switch {
	case callee.kind == kName:
		name := callee.name
		arity, ok := functions[name]
		switch {
		case ok && (len(args) < arity[0] || len(args) > arity[1]):
			c.fail(callee.pos, fmt.Sprintf("%s() takes %d to %d arguments, not %d", name, arity[0], arity[1], len(args)))
		case ok:
			c.call(callee.pos, "e2c_"+name, args...)
		case name == "lookup" || name == "query" || name == "q":
			c.fail(callee.pos, fmt.Sprintf("function %q is not available: templates cannot read files or the environment", name))
		default:
			c.fail(callee.pos, fmt.Sprintf("function %q does not exist%s", name, suggest.Hint(name, []string{"range", "replace", "regex_replace"})))
		}
	case callee.kind == kGet && callee.kids[1].kind == kConst:
		c.fail(callee.pos, fmt.Sprintf("method calls such as .%v() are not supported; use a filter", callee.kids[1].val))
	default:
		c.fail(n.pos, "only range(), replace() and regex_replace() can be called")
	}
}

func (c *compiler) emitFilter(n *node) {
	name, args := n.name, n.kids[1:]
	switch name {
	case "replace":
		c.fail(n.pos, `the replace filter is not supported; use the function form replace(x, 'old', 'new')`)
	case "regex_replace":
		c.fail(n.pos, `the regex_replace filter is not supported; use the function form regex_replace(x, 'pattern', 'replacement')`)
	}
	if !filterExists(name) {
		if why, ok := refusedFilters[name]; ok {
			c.fail(n.pos, fmt.Sprintf("filter %q is not allowed: %s", name, why))
		}
		c.fail(n.pos, fmt.Sprintf("filter %q does not exist%s", name, suggest.Hint(name, filterNames())))
	}
	if len(args) > 1 {
		c.fail(n.pos, fmt.Sprintf("filter %q takes at most one argument", name))
	}
	c.emit(n.kids[0])
	c.w(n.pos, "|"+filterPrefix+name)
	if len(args) == 1 {
		c.w(args[0].pos, ":")
		c.emitVar(args[0])
	}
}

// filterNames lists the filters a template may use, for suggestions.
func filterNames() []string {
	var names []string
	for name := range filterFuncs {
		names = append(names, name)
	}
	names = append(names, pongoFilters...)
	sort.Strings(names)
	return names
}
