package tmpl

import (
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/e2c-dev/e2c/schema/suggest"
)

// compiler translates the Jinja template into pongo2 source. Every
// expression becomes calls to the e2c_* helpers in funcs.go, so pongo2 only
// looks up the names templates bind and runs the for/if/set/with tags.
// Alongside it records the free variable paths the template reads and a
// map from output offsets back to the user's text for error positions.
type compiler struct {
	src    string
	out    strings.Builder
	spans  []span
	reads  []ref             // free variable paths, in the order read
	guards map[string]bool   // paths read directly under default or is (un)defined
	scopes []map[string]bool // names bound by for, set and with; [0] is the template
	blocks []block
	loops  int // open for-loops, inside which "loop" is Jinja's loop variable
	cond   int // > 0 where what is read is evaluated only on a condition
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
	unpack  bool // a for-loop with several names, whose body is inside a with
}

// ref is a free variable path and the offset of its first read.
type ref struct {
	path []seg
	pos  int
	cond bool // read only on a condition (a branch, a loop body, the right of and/or)
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
	}
	tagNames = []string{"for", "endfor", "if", "elif", "else", "endif", "set", "with", "endwith", "raw", "endraw"}
	// pongoWords are pongo2 keywords (plus Jinja's), which pongo2 cannot read as names.
	pongoWords = map[string]bool{"in": true, "and": true, "or": true, "not": true, "true": true, "false": true,
		"as": true, "export": true, "is": true, "if": true, "else": true, "none": true, "None": true, "True": true, "False": true}
)

func compile(src string, literal bool) (c *compiler, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(*Error)
			if !ok {
				panic(r)
			}
			c, err = nil, e
		}
	}()
	// Jinja drops the template's last line break (keep_trailing_newline is
	// off); Render adds back what Ansible does.
	body := src
	switch {
	case strings.HasSuffix(src, "\r\n"):
		body = src[:len(src)-2]
	case strings.HasSuffix(src, "\n"), strings.HasSuffix(src, "\r"):
		body = src[:len(src)-1]
	}
	segs, err := scan(body, literal)
	if err != nil {
		return nil, err
	}
	c = &compiler{src: src, guards: map[string]bool{}, scopes: []map[string]bool{{}}}
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

// copy writes the user's own text starting at offset pos, line breaks as
// "\n" as Jinja writes them.
func (c *compiler) copy(pos int, s string) {
	c.spans = append(c.spans, span{out: c.out.Len(), src: pos, copied: true})
	if strings.Contains(s, "\r") {
		s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	}
	c.out.WriteString(s)
}

// at writes the user's offset pos, the first argument of every helper
// call, which errors are reported at.
func (c *compiler) at(pos int) { c.w(pos, strconv.Itoa(pos)) }

func (c *compiler) exprTag(s segment) {
	p := &parser{src: c.src, toks: s.toks}
	if p.peek().kind == tEnd {
		c.fail(s.pos, "empty expression")
	}
	n := p.top(func() *node { return p.tupleOf(p.expr) })
	p.expectEnd()
	c.collect(n, false)
	c.w(s.pos, "{{ e2c_out(")
	c.at(n.pos)
	c.w(n.pos, ", ")
	c.emit(n)
	c.w(n.pos, ") }}")
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
	c.w(s.pos, "{% ")
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
		if !p.isName("in") {
			c.fail(p.peek().pos, `expected "in", found `+describe(p.peek()))
		}
		p.next()
		it := p.top(func() *node { return p.tupleOf(p.or) })
		if p.isName("if") || p.isName("recursive") {
			c.fail(p.peek().pos, fmt.Sprintf("%q in a for tag is not supported", p.peek().val))
		}
		p.expectEnd()
		c.collect(it, false)
		b := block{tag: "for", pos: s.pos, unpack: len(names) > 1}
		if !b.unpack {
			c.w(t.pos, "for "+names[0]+" in ")
			c.helper(it.pos, "e2c_iter", it)
		} else {
			// Each item is unpacked into the names, as in Python.
			c.w(t.pos, "for e2c_row in e2c_iter(")
			c.at(it.pos)
			c.w(it.pos, ", ")
			c.emit(it)
			c.w(it.pos, fmt.Sprintf(", %d) %%}{%% with", len(names)))
			for i, n := range names {
				c.w(t.pos, fmt.Sprintf(" %s=e2c_at(e2c_row, %d)", n, i))
			}
		}
		scope := map[string]bool{"loop": true}
		for _, n := range names {
			scope[n] = true
		}
		c.scopes = append(c.scopes, scope)
		c.blocks = append(c.blocks, b)
		c.loops++
		c.cond++
	case "endfor", "endif", "endwith":
		p.expectEnd()
		b := c.pop(t, strings.TrimPrefix(t.val, "end"))
		if b.unpack && !b.sawElse {
			c.w(t.pos, "endwith %}{% ")
		}
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
			c.cond++
		}
		c.w(t.pos, t.val+" ")
		c.helper(x.pos, "e2c_cond", x)
	case "else":
		p.expectEnd()
		b := c.top(t, "if", "for")
		if b.sawElse {
			c.fail(t.pos, `second "else" in the same block`)
		}
		b.sawElse = true
		switch {
		case b.tag == "if":
			c.w(t.pos, "else")
		case b.unpack:
			c.w(t.pos, "endwith %}{% empty")
		default:
			c.w(t.pos, "empty") // pongo2's name for a for-loop's else
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
		x := p.top(func() *node { return p.tupleOf(p.expr) })
		p.expectEnd()
		c.collect(x, false)
		c.scopes[len(c.scopes)-1][nt.val] = true
		c.w(t.pos, "set "+nt.val+" = ")
		c.helper(x.pos, "e2c_set", x)
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
			c.helper(pr.x.pos, "e2c_set", pr.x)
		}
		c.scopes = append(c.scopes, scope)
		c.blocks = append(c.blocks, block{tag: "with", pos: s.pos})
	case "include", "import", "from", "extends", "ssi":
		c.fail(t.pos, fmt.Sprintf("tag %q is not allowed: templates cannot read files", t.val))
	case "now":
		c.fail(t.pos, `tag "now" is not allowed: rendering must be reproducible`)
	case "macro", "call", "filter", "block", "break", "continue", "do", "autoescape", "trans":
		c.fail(t.pos, fmt.Sprintf("tag %q is not supported", t.val))
	default:
		c.fail(t.pos, fmt.Sprintf("unknown tag %q%s", t.val, suggest.Hint(t.val, tagNames)))
	}
	c.w(s.toks[len(s.toks)-1].pos, " %}")
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

func (c *compiler) pop(t token, tag string) block {
	b := *c.top(t, tag)
	c.blocks = c.blocks[:len(c.blocks)-1]
	if tag != "if" {
		c.scopes = c.scopes[:len(c.scopes)-1]
	}
	if tag == "for" {
		c.loops--
	}
	if tag != "with" {
		c.cond--
	}
	return b
}

// checkName vets a name the template binds, which pongo2 holds.
func (c *compiler) checkName(t token) {
	if t.kind != tName {
		c.fail(t.pos, "expected a variable name, found "+describe(t))
	}
	switch {
	case strings.HasPrefix(t.val, "e2c_") || t.val == "pongo2" || t.val == "forloop":
		c.fail(t.pos, fmt.Sprintf("the name %q is reserved", t.val))
	case pongoWords[t.val]:
		c.fail(t.pos, fmt.Sprintf("%q cannot be used as a variable name", t.val))
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

// collect records the free variable paths n reads. guarded marks a read
// directly under the default and mandatory filters or the defined and
// undefined tests: that path, and every path under it, may be undefined
// (mandatory fails with its own message).
func (c *compiler) collect(n *node, guarded bool) {
	switch n.kind {
	case kName, kGet:
		if segs, ok := c.path(n, guarded); ok {
			c.read(segs, n, guarded)
		}
		return
	case kFilter:
		name := filterName(n.name)
		c.collect(n.kids[0], name == "default" || name == "d" || name == "mandatory")
		for _, a := range n.kids[1:] {
			c.collect(a, false)
		}
		return
	case kTest:
		c.collect(n.kids[0], filterName(n.name) == "defined" || filterName(n.name) == "undefined")
		for _, a := range n.kids[1:] {
			c.collect(a, false)
		}
		return
	case kBin:
		if n.name == "and" || n.name == "or" {
			c.collect(n.kids[0], false)
			c.cond++
			c.collect(n.kids[1], false)
			c.cond--
			return
		}
	case kCond:
		c.collect(n.kids[0], false)
		c.cond++
		for _, k := range n.kids[1:] {
			c.collect(k, false)
		}
		c.cond--
		return
	case kCall:
		switch callee := n.kids[0]; callee.kind {
		case kName: // a function's name
		case kGet: // a method: its object
			c.collect(callee.kids[0], false)
		default:
			c.collect(callee, false)
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
// is one. A dynamic index ends the path: its base is recorded as read and
// the index expression is collected on its own.
func (c *compiler) path(n *node, guarded bool) ([]seg, bool) {
	switch n.kind {
	case kName:
		if c.bound(n.name) {
			return nil, false
		}
		return []seg{{key: n.name}}, true
	case kGet:
		segs, ok := c.path(n.kids[0], guarded)
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
		if ok {
			c.read(segs, n, guarded)
		}
		return nil, false
	}
	c.collect(n, false)
	return nil, false
}

func (c *compiler) read(segs []seg, n *node, guarded bool) {
	for n.kind == kGet {
		n = n.kids[0]
	}
	c.reads = append(c.reads, ref{append([]seg(nil), segs...), n.pos, c.cond > 0})
	if guarded {
		c.guards[dotted(segs)] = true
	}
}

// refs splits the paths read into those that must be defined, each once
// at its first read, and those that may not be, sorted: a guarded path or
// one under it, or a path read only on a condition, as Jinja evaluates
// "x.y" in "x is defined and x.y" or {% if x is defined %}{{ x.y }} only
// when x is defined.
func (c *compiler) refs() (required map[string]ref, optional []string) {
	required = map[string]ref{}
	seen := map[string]bool{}
	for _, r := range c.reads {
		name := dotted(r.path)
		lazy := r.cond
		for i := range r.path {
			lazy = lazy || c.guards[dotted(r.path[:i+1])]
		}
		switch {
		case lazy && !seen[name]:
			seen[name] = true
			optional = append(optional, name)
		case !lazy:
			if _, ok := required[name]; !ok {
				required[name] = r
			}
		}
	}
	slices.Sort(optional)
	return required, optional
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
		switch {
		case n.name == "loop" && c.loops > 0:
			c.fail(n.pos, `use loop.index, loop.index0, loop.revindex, loop.revindex0, loop.first, loop.last or loop.length`)
		case c.bound(n.name):
			c.w(n.pos, n.name)
		case strings.HasPrefix(n.name, "e2c_"):
			c.fail(n.pos, fmt.Sprintf("the name %q is reserved", n.name))
		default:
			c.w(n.pos, "e2c_var(")
			c.at(n.pos)
			c.w(n.pos, ", "+pongoQuote(n.name)+")")
		}
	case kConst:
		c.emitConst(n)
	case kList:
		c.call(n.pos, "e2c_list", n.kids...)
	case kTuple:
		c.call(n.pos, "e2c_tuple", n.kids...)
	case kDict:
		c.helper(n.pos, "e2c_dict", n.kids...)
	case kGet:
		c.emitGet(n)
	case kSlice:
		c.helper(n.pos, "e2c_slice", n.kids...)
	case kCall:
		c.emitCall(n)
	case kFilter:
		c.emitFilter(n)
	case kTest:
		c.emitTest(n)
	case kKw:
		c.w(n.pos, "e2c_kw("+pongoQuote(n.name)+", ")
		c.emit(n.kids[0])
		c.w(n.pos, ")")
	case kBin:
		c.op(n.pos, n.name, n.kids...)
	case kNot:
		c.op(n.pos, "not", n.kids...)
	case kNeg:
		c.op(n.pos, "neg", n.kids...)
	case kCat:
		c.helper(n.pos, "e2c_cat", n.kids...)
	case kCond:
		c.op(n.pos, "if", n.kids...)
	}
}

// call writes fn(args...).
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

// helper writes fn(pos, args...), for helpers that can fail at pos.
func (c *compiler) helper(pos int, fn string, args ...*node) {
	c.w(pos, fn+"(")
	c.at(pos)
	for _, a := range args {
		c.w(a.pos, ", ")
		c.emit(a)
	}
	c.w(pos, ")")
}

// named writes fn(pos, "name", args...).
func (c *compiler) named(pos int, fn, name string, args ...*node) {
	c.w(pos, fn+"(")
	c.at(pos)
	c.w(pos, ", "+pongoQuote(name))
	for _, a := range args {
		c.w(a.pos, ", ")
		c.emit(a)
	}
	c.w(pos, ")")
}

func (c *compiler) op(pos int, op string, args ...*node) { c.named(pos, "e2c_op", op, args...) }

func (c *compiler) emitConst(n *node) {
	switch v := n.val.(type) {
	case nil:
		c.w(n.pos, "e2c_id()")
	case bool:
		c.w(n.pos, strconv.FormatBool(v))
	case int:
		c.w(n.pos, strconv.Itoa(v))
	case float64:
		c.w(n.pos, "e2c_float("+strconv.Quote(strconv.FormatFloat(v, 'g', -1, 64))+")")
	case string:
		if strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) < 0 {
			c.w(n.pos, pongoQuote(v))
			return
		}
		// pongo2 strings cannot hold a line break or control characters.
		c.w(n.pos, "e2c_hex("+strconv.Quote(hex.EncodeToString([]byte(v)))+")")
	}
}

func pongoQuote(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

func (c *compiler) emitGet(n *node) {
	obj, idx := n.kids[0], n.kids[1]
	if obj.kind == kName && obj.name == "loop" && c.loops > 0 {
		key, _ := idx.val.(string)
		if idx.kind == kConst && key == "length" {
			c.w(n.pos, "e2c_op(")
			c.at(n.pos)
			c.w(n.pos, `, "+", forloop.Counter, forloop.Revcounter0)`)
			return
		}
		if s, ok := loopAttrs[key]; ok && idx.kind == kConst {
			c.w(n.pos, s)
			return
		}
		c.fail(n.pos, fmt.Sprintf("loop.%v is not supported", idx.val))
	}
	// An undefined step is reported where the path starts, as Refs are.
	root := n
	for root.kind == kGet {
		root = root.kids[0]
	}
	c.w(n.pos, "e2c_get(")
	c.at(root.pos)
	c.w(n.pos, ", "+pongoQuote(describePath(n))+", ")
	c.emit(obj)
	c.w(idx.pos, ", ")
	c.emit(idx)
	c.w(n.pos, ")")
}

// describePath names the value n reads for an error: "kafka.url",
// "hosts.0", or the name of the value indexed.
func describePath(n *node) string {
	switch n.kind {
	case kName:
		return n.name
	case kGet:
		base := describePath(n.kids[0])
		if idx := n.kids[1]; idx.kind == kConst {
			switch k := idx.val.(type) {
			case string:
				return base + "." + k
			case int:
				return base + "." + strconv.Itoa(k)
			}
		}
		return base + "[...]"
	}
	return "value"
}

func (c *compiler) emitCall(n *node) {
	callee, args := n.kids[0], n.kids[1:]
	switch callee.kind {
	case kName:
		name := callee.name
		switch {
		case functions[name] != nil:
			c.checkArgs(callee.pos, "function "+name, functions[name].sig, args)
			c.named(callee.pos, "e2c_call", name, args...)
		case name == "lookup" || name == "query" || name == "q":
			c.fail(callee.pos, fmt.Sprintf("function %q is not available: templates cannot read files or the environment", name))
		case name == "now":
			c.fail(callee.pos, `function "now" is not available: rendering must be reproducible`)
		case name == "replace" || name == "regex_replace":
			c.fail(callee.pos, fmt.Sprintf("function %q does not exist; use the filter: x | %s(...)", name, name))
		default:
			c.fail(callee.pos, fmt.Sprintf("function %q does not exist%s", name, suggest.Hint(name, slices.Sorted(maps.Keys(functions)))))
		}
	case kGet:
		name, _ := callee.kids[1].val.(string)
		m := methods[name]
		if callee.kids[1].kind != kConst || m == nil {
			c.fail(callee.pos, fmt.Sprintf("method .%v() is not supported; use a filter", callee.kids[1].val))
		}
		c.checkArgs(callee.pos, "method ."+name+"()", m.sig, args)
		c.named(callee.pos, "e2c_method", name, append([]*node{callee.kids[0]}, args...)...)
	default:
		c.fail(n.pos, "only functions and methods can be called")
	}
}

// filterName strips the collection Ansible's built-in filters and tests
// may be named with.
func filterName(name string) string { return strings.TrimPrefix(name, "ansible.builtin.") }

func (c *compiler) emitFilter(n *node) {
	name := filterName(n.name)
	f := filters[name]
	if f == nil {
		c.unknown(n.pos, "filter", name, refusedFilters, slices.Collect(maps.Keys(filters)))
	}
	c.checkArgs(n.pos, "filter "+name, f.sig, n.kids[1:])
	c.named(n.pos, "e2c_filter", name, n.kids...)
}

func (c *compiler) emitTest(n *node) {
	name := filterName(n.name)
	t := tests[name]
	if t == nil {
		c.unknown(n.pos, "test", name, refusedTests, slices.Collect(maps.Keys(tests)))
	}
	c.checkArgs(n.pos, "test "+name, t.sig, n.kids[1:])
	c.named(n.pos, "e2c_test", name, n.kids...)
}

// unknown fails for a filter or test that is refused or does not exist.
func (c *compiler) unknown(pos int, what, name string, refused map[string]string, known []string) {
	if why, ok := refused[name]; ok {
		if why != "" {
			why = ": " + why
		}
		c.fail(pos, fmt.Sprintf("%s %q is not supported%s", what, name, why))
	}
	if strings.Contains(name, ".") {
		c.fail(pos, fmt.Sprintf("%s %q is not available: only ansible.builtin's are", what, name))
	}
	c.fail(pos, fmt.Sprintf("%s %q does not exist%s", what, name, suggest.Hint(name, slices.Sorted(slices.Values(known)))))
}

// checkArgs checks a call's arguments against sig when the template is
// parsed, so that a wrong call is an error at validate.
func (c *compiler) checkArgs(pos int, what string, sig *signature, args []*node) {
	var pos0 []any
	var kw []kwarg
	for _, a := range args {
		if a.kind == kKw {
			kw = append(kw, kwarg{name: a.name})
		} else {
			pos0 = append(pos0, nil)
		}
	}
	if _, err := sig.bind(pos0, kw); err != nil {
		c.fail(pos, fmt.Sprintf("%s: %v", what, err))
	}
}
