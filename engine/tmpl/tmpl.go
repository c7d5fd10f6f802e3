// Package tmpl renders the Jinja2/Ansible-flavoured templates found in
// E2Clab scenario files ("{{ kafka.url }}", "{{ range(1, 41)|list }}") on
// top of pongo2.
//
// pongo2 speaks Django, not Jinja, so Parse reads each expression with a
// small Jinja parser and re-emits it as pongo2 calls to e2c_* helpers that
// give operators, filters, tests and printing the semantics of Jinja2 as
// Ansible configures it. The same parser lists the variables a template
// reads, so that an undefined variable is an error (pongo2 would print an
// empty string). Templates cannot read files, and one parsed Template may
// be rendered from many goroutines at once.
package tmpl

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/e2c-dev/e2c/schema/suggest"
	"github.com/flosch/pongo2/v6"
)

// Error is a template syntax or render error; Line and Col are 1-based
// positions inside the template text (0 when unknown).
type Error struct {
	Line, Col int
	Msg       string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
}

// UndefinedError reports a variable the template reads that the variables
// do not define. Name is the dotted path up to the step that failed, e.g.
// "kafka.ulr"; Hint is like `did you mean "kafka.url"?`, or "". Line and Col
// are where the template first reads the path, as in Error; Error() leaves
// them out, for callers that report the template's own position instead.
type UndefinedError struct {
	Name      string
	Hint      string
	Line, Col int
}

func (e *UndefinedError) Error() string {
	s := fmt.Sprintf("undefined variable %q", e.Name)
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Template is a parsed template. It is safe for concurrent use.
type Template struct {
	src      string
	out      string // the generated pongo2 source
	spans    []span
	refs     []string
	paths    []ref // of refs, in the same order
	optional []string
	newlines int // the line breaks that end src, which Render keeps
	single   bool
	field    bool   // from ParseField: Value gives what Ansible's templar gives
	bare     string // the variable of a field that is exactly "{{ name }}"
	pt       *pongo2.Template
}

var (
	set = newSet()
	// parseMu serializes pongo2's FromString, which writes to the set.
	parseMu sync.Mutex
)

// noFiles is the set's loader: templates cannot read files.
type noFiles struct{}

func (noFiles) Abs(base, name string) string { return name }

func (noFiles) Get(path string) (io.Reader, error) {
	return nil, errors.New("templates cannot read files")
}

// newSet configures pongo2 once. The bans guard against tags that read
// files (ssi even bypasses the loader), that are not reproducible (now,
// lorem) or that mutate the parsed template while it renders, which would
// race (cycle, ifchanged), and against pongo2's filters, which are not
// bounded and are not Jinja's (compiled templates call e2c_filter). Parse
// refuses these itself; the set's bans are a second line.
func newSet() *pongo2.TemplateSet {
	pongo2.SetAutoescape(false)
	s := pongo2.NewSet("e2c", noFiles{})
	for _, tag := range []string{"include", "import", "extends", "ssi", "now", "cycle", "ifchanged", "lorem", "macro", "filter"} {
		if err := s.BanTag(tag); err != nil {
			panic(err)
		}
	}
	for _, name := range pongoFilters {
		if pongo2.FilterExists(name) {
			if err := s.BanFilter(name); err != nil {
				panic(err)
			}
		}
	}
	s.Globals.Update(globals)
	return s
}

// pongoFilters are pongo2's own filters, which the set bans.
var pongoFilters = []string{"escape", "e", "safe", "escapejs", "add", "addslashes", "capfirst", "center",
	"cut", "date", "default", "default_if_none", "divisibleby", "first", "floatformat", "get_digit",
	"iriencode", "join", "last", "length", "length_is", "linebreaks", "linebreaksbr", "linenumbers",
	"ljust", "lower", "make_list", "pluralize", "random", "removetags", "rjust", "slice", "split",
	"stringformat", "striptags", "time", "title", "truncatechars", "truncatechars_html", "truncatewords",
	"truncatewords_html", "upper", "urlencode", "urlize", "urlizetrunc", "wordcount", "wordwrap", "yesno",
	"float", "integer"}

// Has reports whether s contains template markup ("{{", "{%" or "{#");
// strings without it are plain text and need no parsing.
func Has(s string) bool {
	return strings.Contains(s, "{{") || strings.Contains(s, "{%") || strings.Contains(s, "{#")
}

// Parse compiles src as Ansible's template module reads a template file,
// and as it reads a when condition written as "{{ " + condition + " }}":
// string literals have Jinja's (Python's) escapes, '\n' is a line break.
// Errors are *Error.
func Parse(src string) (*Template, error) { return parse(src, false) }

// ParseField compiles src as Ansible templates a task's field or a
// variable's value written in YAML: inside "{{ }}", backslashes in string
// literals are plain characters ('\n' is a backslash and an n, and
// regex_replace('(\d)', '<\1>') refers to the group), because Ansible
// doubles them before Jinja reads them. Errors are *Error.
func ParseField(src string) (*Template, error) { return parse(src, true) }

func parse(src string, literal bool) (t *Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, &Error{Msg: fmt.Sprintf("%s: %v", internal, r)}
		}
	}()
	c, err := compile(src, literal)
	if err != nil {
		return nil, err
	}
	t = &Template{src: src, out: c.out.String(), spans: c.spans, single: c.single, field: literal}
	if m := bareVar.FindStringSubmatch(src); literal && m != nil {
		t.bare = m[1]
	}
	t.newlines = len(src) - len(strings.TrimRight(src, "\n"))
	required, optional := c.refs()
	for name := range required {
		t.refs = append(t.refs, name)
	}
	sort.Strings(t.refs)
	for _, name := range t.refs {
		t.paths = append(t.paths, required[name])
	}
	t.optional = optional
	parseMu.Lock()
	t.pt, err = set.FromString(t.out)
	parseMu.Unlock()
	if err != nil {
		return nil, t.mapErr(err)
	}
	return t, nil
}

// Source returns the template text as given to Parse.
func (t *Template) Source() string { return t.src }

// Refs lists the free variable paths the template reads and that must be
// defined, sorted, e.g. ["item", "kafka.url", "working_dir"]. Names the
// template binds (for, set, with, loop) are left out, and so are the paths
// Optional lists. A name bound by set counts as bound from the set to the
// end of its block, even in branches that did not run.
func (t *Template) Refs() []string { return append([]string(nil), t.refs...) }

// Optional lists, sorted, the free variable paths the template reads that
// may be undefined: those read under the default filter or the defined and
// undefined tests ("r.stdout | default(”)", "x is defined"), and the
// paths under them ("x.y" after "x is defined"). The caller passes them
// when they are defined; reading one that is not is an error only where
// its value is used.
func (t *Template) Optional() []string { return append([]string(nil), t.optional...) }

// Render renders to text. It first checks every ref against vars: an
// undefined variable is an error, never an empty string. The error is an
// *UndefinedError, or when several refs fail, their errors.Join in sorted
// order (errors.As finds the first). As Ansible does, the line breaks
// that end the template end the text too (Jinja would drop the last).
func (t *Template) Render(vars map[string]any) (string, error) {
	if err := t.check(vars); err != nil {
		return "", err
	}
	s, err := t.exec(vars, func(any) error { return nil })
	if err != nil {
		return "", err
	}
	if n := t.newlines - (len(s) - len(strings.TrimRight(s, "\n"))); n > 0 {
		s += strings.Repeat("\n", n)
	}
	return s, nil
}

// Value is Render for fields that must keep their type: when the whole
// source is one expression "{{ expr }}" (surrounding whitespace allowed) it
// returns the expression's value as plain data (a list as []any, a mapping
// as *ordered.Map in its keys' order, int, float64, bool, string or nil);
// otherwise it returns Render's string. A template from ParseField gives
// what Ansible gives a task field instead: text, except for lists,
// mappings and booleans (and text that reads as one of them).
func (t *Template) Value(vars map[string]any) (any, error) {
	v, err := t.value(vars)
	if err != nil || !t.field {
		return v, err
	}
	if x, ok := vars[t.bare]; ok && t.bare != "" {
		if _, num := toNum(x); num || x == nil {
			return v, nil // Ansible passes a number, a boolean or None named alone as it is
		}
	}
	return fieldValue(v), nil
}

// bareVar is Ansible's SINGLE_VAR: a field that is one variable's name.
var bareVar = regexp.MustCompile(`^\{\{\s*(\w*)\s*\}\}$`)

func (t *Template) value(vars map[string]any) (any, error) {
	if !t.single || t.field && strings.TrimSpace(t.src) != t.src { // Ansible keeps a field's spaces
		s, err := t.Render(vars)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	if err := t.check(vars); err != nil {
		return nil, err
	}
	var got any
	_, err := t.exec(vars, func(v any) (err error) {
		got, err = plain(v)
		return err
	})
	if err != nil {
		return nil, err
	}
	return got, nil
}

// outStr prints a value as Ansible does: like Python's str(), except that
// None prints as nothing.
func outStr(v any) string {
	if v == nil {
		return ""
	}
	return pyStr(v)
}

// exec runs the pongo2 template; seen is given the value of every
// "{{ }}", so that Value can capture it; its error fails the render there.
func (t *Template) exec(vars map[string]any, seen func(any) error) (s string, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = "", &Error{Msg: fmt.Sprintf("%s: %v", internal, r)}
		}
	}()
	ctx := make(pongo2.Context, 6)
	// A value that is an error, or undefined, fails the render where it is
	// used: printed, tested, looped over or assigned. raised keeps the
	// error with its position; pongo2 would keep only its text.
	var raised error
	raise := func(v any, undefinedOK bool) error {
		if _, ok := v.(*missing); ok && undefinedOK {
			return nil
		}
		if f := use(v); f != nil {
			raised = t.positioned(f)
			return raised
		}
		return nil
	}
	var buf cappedBuffer
	ctx["e2c_var"] = func(pos, name *pongo2.Value) *pongo2.Value {
		if v, ok := vars[name.String()]; ok {
			return pongo2.AsValue(v)
		}
		return pongo2.AsValue(&missing{name: name.String(), pos: pos.Integer(), parent: vars, key: name.String()})
	}
	ctx["e2c_out"] = func(pos, v *pongo2.Value) (*pongo2.Value, error) {
		x := v.Interface()
		if err := raise(x, false); err != nil {
			return nil, err
		}
		if err := seen(x); err != nil {
			var e *Error
			var u *UndefinedError
			if raised = err; !errors.As(err, &e) && !errors.As(err, &u) {
				raised = errAt(t.src, pos.Integer(), err.Error())
			}
			return nil, raised
		}
		return pongo2.AsSafeValue(outStr(x)), nil
	}
	ctx["e2c_cond"] = func(_, v *pongo2.Value) (*pongo2.Value, error) {
		x := v.Interface()
		if err := raise(x, false); err != nil {
			return nil, err
		}
		return pongo2.AsValue(truthy(x)), nil
	}
	ctx["e2c_set"] = func(_, v *pongo2.Value) (*pongo2.Value, error) {
		return v, raise(v.Interface(), true)
	}
	// Loops and output are bounded per render, so that no template can
	// exhaust memory or loop for ever (nested loops count every step).
	steps := 0
	ctx["e2c_iter"] = func(vs ...*pongo2.Value) (*pongo2.Value, error) {
		pos, x := vs[0].Integer(), vs[1].Interface()
		if err := raise(x, false); err != nil {
			return nil, err
		}
		l, err := toList(x)
		if err == nil && len(vs) > 2 {
			l, err = unpack(l, vs[2].Integer(), x)
		}
		if err == nil {
			if steps += len(l); steps > maxSteps {
				err = fmt.Errorf("loops run more than %d steps", maxSteps)
			}
		}
		if err != nil {
			raised = errAt(t.src, pos, err.Error())
			return nil, raised
		}
		return pongo2.AsValue(l), nil
	}
	if err := t.pt.ExecuteWriterUnbuffered(ctx, &buf); err != nil {
		if raised != nil {
			return "", raised
		}
		return "", t.mapErr(err)
	}
	if buf.over {
		return "", &Error{Msg: fmt.Sprintf("output larger than %d bytes", maxSize)}
	}
	return buf.String(), nil
}

// positioned gives f's error the template position it happened at.
func (t *Template) positioned(f *failed) error {
	at := errAt(t.src, f.pos, f.err.Error())
	var u *UndefinedError
	if errors.As(f.err, &u) {
		c := *u
		c.Line, c.Col = at.Line, at.Col
		return &c
	}
	return at
}

// maxSteps bounds the loop steps of one render.
const maxSteps = maxSize

// cappedBuffer keeps at most maxSize bytes and notes whether more came.
type cappedBuffer struct {
	strings.Builder
	over bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if b.over || b.Len()+len(p) > maxSize {
		b.over = true
		return len(p), nil // pongo2 ignores some write errors; the flag is checked after
	}
	return b.Builder.Write(p)
}

func (b *cappedBuffer) WriteString(s string) (int, error) { return b.Write([]byte(s)) }

// check resolves every ref in vars.
func (t *Template) check(vars map[string]any) error {
	var errs []error
	for _, r := range t.paths {
		cur := any(vars)
		for i, s := range r.path {
			next, keys, ok := step(cur, s)
			if ok {
				cur = next
				continue
			}
			at := errAt(t.src, r.pos, "")
			e := &UndefinedError{Name: dotted(r.path[:i+1]), Line: at.Line, Col: at.Col}
			if c := suggest.Closest(s.key, keys); c != "" && !s.isIdx {
				e.Hint = fmt.Sprintf("did you mean %q?", dotted(append(r.path[:i:i], seg{key: c})))
			}
			errs = append(errs, e)
			break
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...) // every undefined variable, in sorted order
}

// step looks s up in cur. On failure it returns the keys cur has, if it is
// a mapping, for a suggestion.
func step(cur any, s seg) (any, []string, bool) {
	switch c := cur.(type) {
	case map[string]any:
		if v, ok := c[s.key]; ok && !s.isIdx {
			return v, nil, true
		}
		keys := make([]string, 0, len(c))
		for k := range c {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return nil, keys, false
	case *dict:
		if v, ok := c.Get(s.key); ok && !s.isIdx {
			return v, nil, true
		}
		keys := slices.Clone(c.Keys())
		sort.Strings(keys)
		return nil, keys, false
	case []any:
		if s.isIdx && s.idx < len(c) {
			return c[s.idx], nil, true
		}
		return nil, nil, false
	case string:
		if r := []rune(c); s.isIdx && s.idx < len(r) {
			return string(r[s.idx]), nil, true
		}
		return nil, nil, false
	case nil:
		return nil, nil, false
	}
	// Other map and slice types, as pongo2 reads them.
	p, _ := plain(cur)
	switch p := p.(type) {
	case *dict, []any:
		return step(p, s)
	}
	return nil, nil, false
}

// internal prefixes the message of a recovered panic.
const internal = "internal template error"

// nestedErr matches the prefix pongo2's Error.Error puts before a message.
var nestedErr = regexp.MustCompile(`^\[Error(?: \(where: [^)]*\))?(?: in [^|\]]*)?(?: \| Line (\d+) Col (\d+)(?: near '[^']*')?)?\] `)

// mapErr converts pongo2's error, whose position is in the generated
// source, to an *Error positioned in the user's text.
func (t *Template) mapErr(err error) error {
	var pe *pongo2.Error
	if !errors.As(err, &pe) {
		return &Error{Msg: err.Error()}
	}
	msg, line, col := pe.Error(), pe.Line, pe.Column
	if pe.OrigError != nil {
		msg = pe.OrigError.Error()
	}
	// An error inside a function's argument reaches us flattened into the
	// message of the call's error; the innermost position is the useful one.
	for {
		m := nestedErr.FindStringSubmatch(msg)
		if m == nil {
			break
		}
		if m[1] != "" {
			line, _ = strconv.Atoi(m[1])
			col, _ = strconv.Atoi(m[2])
		}
		msg = msg[len(m[0]):]
	}
	if line <= 0 {
		return &Error{Msg: msg}
	}
	off := 0
	for l := 1; l < line; l++ {
		k := strings.IndexByte(t.out[off:], '\n')
		if k < 0 {
			break
		}
		off += k + 1
	}
	off = min(off+max(col-1, 0), len(t.out))
	i := sort.Search(len(t.spans), func(i int) bool { return t.spans[i].out > off }) - 1
	pos := 0
	if i >= 0 {
		pos = t.spans[i].src
		if t.spans[i].copied {
			pos += off - t.spans[i].out
		}
	}
	return errAt(t.src, pos, msg)
}

// errAt makes an *Error at byte offset pos of src.
func errAt(src string, pos int, msg string) *Error {
	pos = min(max(pos, 0), len(src))
	line := 1 + strings.Count(src[:pos], "\n")
	start := strings.LastIndexByte(src[:pos], '\n') + 1
	return &Error{Line: line, Col: 1 + utf8.RuneCountInString(src[start:pos]), Msg: msg}
}
