package tmpl

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"

	"github.com/e2c-dev/e2c/schema/suggest"
	"github.com/flosch/pongo2/v6"
)

// maxSize bounds the lists and strings that range(), operators and filters
// build, so that a template cannot exhaust memory.
const maxSize = 1 << 20

var errTooLarge = fmt.Errorf("result larger than %d bytes or items", maxSize)

// missing is Jinja's Undefined, as Ansible's AnsibleUndefined behaves: what
// reading an undefined variable, key or index gives. Looking inside it
// gives itself; the default filter and the defined tests take it; any other
// use is the error of an undefined variable.
type missing struct {
	why    string // instead of a name: what gave no value ("No first item, ...")
	name   string // the path up to the step that failed, e.g. "kafka.ulr"
	pos    int    // where the template reads it
	parent any    // the mapping the last step looked in, for a suggestion
	key    string
}

func (m *missing) err() error {
	if m.why != "" {
		return errors.New(m.why)
	}
	e := &UndefinedError{Name: m.name}
	if keys, ok := keysOf(m.parent); ok {
		if c := suggest.Closest(m.key, keys); c != "" {
			base := strings.TrimSuffix(m.name, m.key)
			e.Hint = fmt.Sprintf("did you mean %q?", base+c)
		}
	}
	return e
}

// failed is an error held as a value until it is used, so that operands
// Python would not evaluate ("x is defined and x.y", "a if c else b") do
// not fail the render: pongo2 evaluates every argument of a call.
type failed struct {
	pos int
	err error // *UndefinedError, or the message of an *Error at pos
}

// use returns the first of vs that is an error, or the first undefined one
// as the error of using it, or nil.
func use(vs ...any) *failed {
	for _, v := range vs {
		switch x := v.(type) {
		case *failed:
			return x
		case *missing:
			return &failed{pos: x.pos, err: x.err()}
		}
	}
	return nil
}

func fail(pos int, err error) *pongo2.Value { return pongo2.AsValue(&failed{pos: pos, err: err}) }

// kwarg is a keyword argument, name=value, of a filter, test or call.
type kwarg struct {
	name string
	val  any
}

// globals are the e2c_* helpers the compiled templates call. They are
// stateless and never fail: errors become failed values. The helpers that
// consume values (e2c_out, e2c_cond, e2c_iter, e2c_set) and e2c_var are
// added per render.
var globals = pongo2.Context{
	"e2c_id":     fnID,
	"e2c_op":     fnOp,
	"e2c_cat":    fnCat,
	"e2c_list":   fnList,
	"e2c_tuple":  fnTuple,
	"e2c_dict":   fnDict,
	"e2c_hex":    fnHex,
	"e2c_float":  fnFloat,
	"e2c_get":    fnGet,
	"e2c_slice":  fnSlice,
	"e2c_call":   fnCall,
	"e2c_method": fnMethod,
	"e2c_filter": fnFilter,
	"e2c_test":   fnTest,
	"e2c_kw":     fnKw,
	"e2c_at":     fnAt,
}

func values(vs []*pongo2.Value) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v.Interface()
	}
	return out
}

// splitArgs separates positional and keyword arguments.
func splitArgs(vs []any) (pos []any, kw []kwarg) {
	for _, v := range vs {
		if k, ok := v.(kwarg); ok {
			kw = append(kw, k)
		} else {
			pos = append(pos, v)
		}
	}
	return pos, kw
}

func fnID(vs ...*pongo2.Value) *pongo2.Value {
	if len(vs) == 0 {
		return pongo2.AsValue(nil)
	}
	return vs[0]
}

func fnKw(name, v *pongo2.Value) *pongo2.Value {
	return pongo2.AsValue(kwarg{name.String(), v.Interface()})
}

func fnCat(vs ...*pongo2.Value) *pongo2.Value {
	pos, a := vs[0].Integer(), values(vs[1:])
	if bad := use(a...); bad != nil {
		return pongo2.AsValue(bad)
	}
	var b strings.Builder
	for _, v := range a {
		b.WriteString(pyStr(v))
		if b.Len() > maxSize {
			return fail(pos, errTooLarge)
		}
	}
	return pongo2.AsValue(b.String())
}

func fnList(vs ...*pongo2.Value) *pongo2.Value {
	a := values(vs)
	if bad := use(a...); bad != nil {
		return pongo2.AsValue(bad)
	}
	return pongo2.AsValue(a)
}

func fnTuple(vs ...*pongo2.Value) *pongo2.Value {
	a := values(vs)
	if bad := use(a...); bad != nil {
		return pongo2.AsValue(bad)
	}
	return pongo2.AsValue(tuple(a))
}

func fnDict(vs ...*pongo2.Value) *pongo2.Value {
	a := values(vs[1:])
	if bad := use(a...); bad != nil {
		return pongo2.AsValue(bad)
	}
	d := newDict(len(a) / 2)
	for i := 0; i+1 < len(a); i += 2 {
		d.Set(pyStr(a[i]), a[i+1])
	}
	return pongo2.AsValue(d)
}

func fnHex(s *pongo2.Value) *pongo2.Value {
	b, _ := hex.DecodeString(s.String())
	return pongo2.AsValue(string(b))
}

func fnFloat(s *pongo2.Value) *pongo2.Value {
	f, _ := strconv.ParseFloat(s.String(), 64)
	return pongo2.AsValue(f)
}

// fnGet is Jinja's a.b and a[b]: a mapping's key, or a list's or string's
// index (negative ones count from the end); what is not there is undefined.
func fnGet(vs ...*pongo2.Value) *pongo2.Value {
	pos, name, obj, key := vs[0].Integer(), vs[1].String(), vs[2].Interface(), vs[3].Interface()
	switch o := obj.(type) {
	case *failed, *missing:
		return pongo2.AsValue(o) // undefined stays the first undefined, as in Ansible
	}
	if bad := use(key); bad != nil {
		return pongo2.AsValue(bad)
	}
	v, ok := item(obj, key)
	if ok {
		return pongo2.AsValue(v)
	}
	m := &missing{name: name, pos: pos}
	if k, isS := asStr(key); isS && isMapping(obj) {
		m.parent, m.key = obj, k
	}
	return pongo2.AsValue(m)
}

// item looks key up in obj, as Jinja's getattr and getitem do for data.
func item(obj, key any) (any, bool) {
	if k, ok := asStr(key); ok {
		v, found, _ := getKey(obj, k)
		return v, found
	}
	n, ok := toNum(key)
	if !ok || !n.isInt {
		return nil, false
	}
	if s, ok := asStr(obj); ok {
		r := []rune(s)
		if i, ok := index(int(n.i), len(r)); ok {
			return string(r[i]), true
		}
		return nil, false
	}
	l, err := asList(obj)
	if err != nil {
		return nil, false
	}
	if i, ok := index(int(n.i), len(l)); ok {
		return l[i], true
	}
	return nil, false
}

func fnSlice(vs ...*pongo2.Value) *pongo2.Value {
	pos, a := vs[0].Integer(), values(vs[1:])
	if bad := use(a...); bad != nil {
		return pongo2.AsValue(bad)
	}
	out, err := pySlice(a[0], a[1], a[2], a[3])
	if err != nil {
		return fail(pos, err)
	}
	return pongo2.AsValue(out)
}

// fnAt returns item i of a row e2c_iter has checked.
func fnAt(row, i *pongo2.Value) *pongo2.Value {
	return pongo2.AsValue(row.Interface().([]any)[i.Integer()])
}

// unpack checks that every row can be unpacked into n names, as Python's
// for a, b in rows does, and returns the rows as lists.
func unpack(rows []any, n int, from any) ([]any, error) {
	out := make([]any, len(rows))
	for i, r := range rows {
		l, err := toList(r)
		if err != nil {
			return nil, fmt.Errorf("cannot unpack non-iterable %s object", typeName(r))
		}
		switch {
		case len(l) < n:
			err = fmt.Errorf("not enough values to unpack (expected %d, got %d)", n, len(l))
		case len(l) > n:
			err = fmt.Errorf("too many values to unpack (expected %d)", n)
		}
		if err != nil {
			if isStr(r) && isMapping(from) {
				err = fmt.Errorf("%w: a mapping gives its keys; loop over its items() for keys and values", err)
			}
			return nil, err
		}
		out[i] = l
	}
	return out, nil
}

// signature is the parameters of a filter, test, function or method after
// its input, as Python binds them: positional, then by name, with defaults.
type signature struct {
	params []param
}

type param struct {
	name     string
	def      any
	required bool
	star     bool // *args: the extra positional arguments, as a list
	stars    bool // **kwargs: the extra keyword arguments, as a dict
}

// sig parses a Python parameter list: "sep=”, attribute=None", "*args",
// "**kwargs". Defaults are None, True, False, numbers or quoted strings.
func sig(spec string) *signature {
	s := &signature{}
	for _, p := range splitParams(spec) {
		name, def, hasDef := strings.Cut(p, "=")
		switch {
		case strings.HasPrefix(name, "**"):
			s.params = append(s.params, param{name: name[2:], stars: true})
		case strings.HasPrefix(name, "*"):
			s.params = append(s.params, param{name: name[1:], star: true})
		case !hasDef:
			s.params = append(s.params, param{name: name, required: true})
		default:
			s.params = append(s.params, param{name: name, def: pyLiteral(def)})
		}
	}
	return s
}

func splitParams(spec string) []string {
	var out []string
	quote := byte(0)
	start := 0
	for i := 0; i <= len(spec); i++ {
		switch {
		case i == len(spec) || spec[i] == ',' && quote == 0:
			if p := strings.TrimSpace(spec[start:i]); p != "" {
				out = append(out, p)
			}
			start = i + 1
		case quote != 0 && spec[i] == quote:
			quote = 0
		case quote == 0 && (spec[i] == '\'' || spec[i] == '"'):
			quote = spec[i]
		}
	}
	return out
}

func pyLiteral(s string) any {
	switch s {
	case "None":
		return nil
	case "True":
		return true
	case "False":
		return false
	}
	if i, err := strconv.Atoi(s); err == nil {
		return i
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') {
		out, _, _ := lexString(s, 0, false)
		return out
	}
	panic("tmpl: bad default " + s)
}

// bind matches arguments to the parameters, as Python does, and returns
// one value a parameter.
func (s *signature) bind(pos []any, kw []kwarg) ([]any, error) {
	out := make([]any, len(s.params))
	set := make([]bool, len(s.params))
	i := 0
	for _, v := range pos {
		for i < len(s.params) && s.params[i].stars {
			i++
		}
		if i >= len(s.params) {
			return nil, fmt.Errorf("takes at most %d positional arguments (%d given)", s.positional(), len(pos))
		}
		if s.params[i].star {
			rest, _ := out[i].([]any)
			out[i], set[i] = append(rest, v), true
			continue
		}
		out[i], set[i] = v, true
		i++
	}
	var extra *dict
	for _, k := range kw {
		j := s.find(k.name)
		switch {
		case j >= 0 && set[j]:
			return nil, fmt.Errorf("got multiple values for argument %q", k.name)
		case j >= 0:
			out[j], set[j] = k.val, true
		case s.find("**") >= 0:
			if extra == nil {
				extra = newDict(len(kw))
			}
			if _, dup := extra.Get(k.name); dup {
				return nil, fmt.Errorf("got multiple values for argument %q", k.name)
			}
			extra.Set(k.name, k.val)
		default:
			return nil, fmt.Errorf("got an unexpected keyword argument %q", k.name)
		}
	}
	for j, p := range s.params {
		switch {
		case set[j]:
		case p.required:
			return nil, fmt.Errorf("missing required argument %q", p.name)
		case p.star:
			out[j] = []any{}
		case p.stars:
			if extra == nil {
				extra = newDict(0)
			}
			out[j] = extra
		default:
			out[j] = p.def
		}
	}
	return out, nil
}

// find returns the index of the parameter name may set ("**" for the
// **kwargs one), or -1.
func (s *signature) find(name string) int {
	for j, p := range s.params {
		if name == "**" && p.stars || p.name == name && !p.star && !p.stars {
			return j
		}
	}
	return -1
}

func (s *signature) positional() int {
	n := 0
	for _, p := range s.params {
		if !p.star && !p.stars {
			n++
		}
	}
	return n
}

// callable is a function, method, filter or test: its parameters after
// the input, and what it computes from the input and the bound arguments.
type callable struct {
	sig *signature
	fn  func(in any, a []any) (any, error)
	// lazy ones take undefined values and errors as they are (default,
	// ternary, defined...); the others never see them.
	lazy bool
}

func fnFilter(vs ...*pongo2.Value) *pongo2.Value {
	name := vs[1].String()
	return apply(vs[0].Integer(), "filter "+name, filters[name], values(vs[2:]))
}

func fnTest(vs ...*pongo2.Value) *pongo2.Value {
	name := vs[1].String()
	return apply(vs[0].Integer(), "test "+name, tests[name], values(vs[2:]))
}

func fnMethod(vs ...*pongo2.Value) *pongo2.Value {
	name := vs[1].String()
	return apply(vs[0].Integer(), "method ."+name+"()", methods[name], values(vs[2:]))
}

func fnCall(vs ...*pongo2.Value) *pongo2.Value {
	name := vs[1].String()
	return apply(vs[0].Integer(), "function "+name, functions[name], append([]any{nil}, values(vs[2:])...))
}

// apply runs c on a[0] with the arguments a[1:]. Its result is bounded: a
// string, list or mapping of more than maxSize bytes or items is an error
// (filters whose arguments set the size of their result check them first).
func apply(pos int, what string, c *callable, a []any) *pongo2.Value {
	v, err := call(c, a[0], a[1:])
	if err != nil {
		var f *failed
		if errors.As(err, &f) {
			if f.pos == 0 { // undefined inside the filter's work
				f = &failed{pos: pos, err: fmt.Errorf("%s: %w", what, f.err)}
			}
			return pongo2.AsValue(f)
		}
		return fail(pos, fmt.Errorf("%s: %w", what, err))
	}
	if tooLarge(v) {
		return fail(pos, fmt.Errorf("%s: %w", what, errTooLarge))
	}
	if m, ok := v.(*missing); ok && m.why != "" && m.pos == 0 {
		m.pos = pos // "No first item..." where the filter is
	}
	return pongo2.AsValue(v)
}

// call binds the arguments and runs c; an undefined or failed input or
// argument is returned as a *failed error, unless c is lazy.
func call(c *callable, in any, args []any) (any, error) {
	pos, kw := splitArgs(args)
	if !c.lazy {
		if bad := use(in); bad != nil {
			return nil, bad
		}
		if bad := use(pos...); bad != nil {
			return nil, bad
		}
		for _, k := range kw {
			if bad := use(k.val); bad != nil {
				return nil, bad
			}
		}
	}
	bound, err := c.sig.bind(pos, kw)
	if err != nil {
		return nil, err
	}
	return c.fn(in, bound)
}

func (f *failed) Error() string { return f.err.Error() }

func tooLarge(v any) bool {
	if s, ok := asStr(v); ok {
		return len(s) > maxSize
	}
	n, ok := length(v)
	return ok && n > maxSize
}

// fnOp implements Jinja's operators with Python semantics. "and", "or" and
// "if" get every operand evaluated (pongo2 evaluates arguments eagerly) but
// use only those Python would, so an error in another is not one.
func fnOp(vs ...*pongo2.Value) *pongo2.Value {
	pos, op, a := vs[0].Integer(), vs[1].String(), values(vs[2:])
	var r any
	var err error
	switch op {
	case "and", "or":
		if bad := use(a[0]); bad != nil {
			return pongo2.AsValue(bad)
		}
		if truthy(a[0]) == (op == "or") {
			return pongo2.AsValue(a[0])
		}
		return pongo2.AsValue(a[1])
	case "if": // condition, then[, else]
		if bad := use(a[0]); bad != nil {
			return pongo2.AsValue(bad)
		}
		switch {
		case truthy(a[0]):
			return pongo2.AsValue(a[1])
		case len(a) > 2:
			return pongo2.AsValue(a[2])
		}
		return pongo2.AsValue(nil) // Ansible prints an if without else that is false as ""
	}
	if bad := use(a...); bad != nil {
		return pongo2.AsValue(bad)
	}
	switch op {
	case "not":
		r = !truthy(a[0])
	case "neg":
		n, ok := toNum(a[0])
		switch {
		case !ok:
			err = fmt.Errorf("bad operand type for unary -: '%s'", typeName(a[0]))
		case n.isInt:
			r = int(-n.i)
		default:
			r = -n.f
		}
	default:
		r, err = binary(op, a[0], a[1])
	}
	if err != nil {
		return fail(pos, err)
	}
	return pongo2.AsValue(r)
}

func binary(op string, x, y any) (any, error) {
	switch op {
	case "==":
		return pyEqual(x, y), nil
	case "!=":
		return !pyEqual(x, y), nil
	case "<", ">", "<=", ">=":
		c, err := pyCompare(op, x, y)
		if err != nil {
			return nil, err
		}
		return op == "<" && c < 0 || op == ">" && c > 0 || op == "<=" && c <= 0 || op == ">=" && c >= 0, nil
	case "in", "not in":
		in, err := contains(y, x)
		return in == (op == "in"), err
	}
	if nx, ok := toNum(x); ok {
		if ny, ok := toNum(y); ok {
			return arith(op, nx, ny)
		}
	}
	switch op {
	case "%":
		if s, ok := asStr(x); ok {
			return percent(s, y)
		}
	case "+":
		if s, ok := asStr(x); ok {
			if t, ok := asStr(y); ok {
				if len(s)+len(t) > maxSize {
					return nil, errTooLarge
				}
				return s + t, nil
			}
		}
		if isList(x) && isList(y) {
			lx, _ := asList(x)
			ly, _ := asList(y)
			if len(lx)+len(ly) > maxSize {
				return nil, errTooLarge
			}
			out := append(append([]any{}, lx...), ly...)
			if _, ok := x.(tuple); ok {
				if _, ok := y.(tuple); ok {
					return tuple(out), nil
				}
			}
			return out, nil
		}
	case "*":
		s, n := x, y
		if _, ok := toNum(s); ok {
			s, n = y, x
		}
		k, ok := toNum(n)
		if !ok || !k.isInt {
			break
		}
		if text, ok := asStr(s); ok {
			if k.i <= 0 {
				return "", nil
			}
			if int64(len(text))*k.i > maxSize {
				return nil, errTooLarge
			}
			return strings.Repeat(text, int(k.i)), nil
		}
		if l, err := asList(s); err == nil {
			if k.i <= 0 {
				return []any{}, nil
			}
			if int64(len(l))*k.i > maxSize {
				return nil, errTooLarge
			}
			out := make([]any, 0, int(k.i)*len(l))
			for range k.i {
				out = append(out, l...)
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("unsupported operand type(s) for %s: '%s' and '%s'", op, typeName(x), typeName(y))
}

func arith(op string, x, y num) (any, error) {
	if x.isInt && y.isInt {
		a, b := x.i, y.i
		switch op {
		case "+":
			return int(a + b), nil
		case "-":
			return int(a - b), nil
		case "*":
			return int(a * b), nil
		case "//", "%":
			if b == 0 {
				return nil, errors.New("integer division or modulo by zero")
			}
			q, m := a/b, a%b
			if m != 0 && (m < 0) != (b < 0) { // Python floors toward -inf
				q, m = q-1, m+b
			}
			if op == "//" {
				return int(q), nil
			}
			return int(m), nil
		case "**":
			if b >= 0 {
				r := int64(1)
				for ; b > 0; b >>= 1 {
					if b&1 == 1 {
						r *= a
					}
					a *= a
				}
				return int(r), nil
			}
		}
	}
	a, b := x.f, y.f
	switch op {
	case "+":
		return a + b, nil
	case "-":
		return a - b, nil
	case "*":
		return a * b, nil
	case "**":
		return math.Pow(a, b), nil
	}
	if b == 0 {
		return nil, errors.New("float division by zero")
	}
	switch op {
	case "/":
		return a / b, nil
	case "//":
		return math.Floor(a / b), nil
	case "%":
		m := math.Mod(a, b)
		if m != 0 && (m < 0) != (b < 0) {
			m += b
		}
		return m, nil
	}
	return nil, fmt.Errorf("unknown operator %q", op)
}

// functions are the global functions templates may call.
var functions = map[string]*callable{
	"range": {sig: sig("start, stop=None, step=None"), fn: func(_ any, a []any) (any, error) {
		return pyRange(a[0], a[1], a[2])
	}},
	"dict": {sig: sig("**kwargs"), fn: func(_ any, a []any) (any, error) { return a[0], nil }},
}

// pyRange is Python's range as a list: range(stop), range(start, stop[, step]).
func pyRange(a, b, c any) (any, error) {
	var n [3]int64
	given := 0
	for i, v := range []any{a, b, c} {
		if v == nil && i > 0 {
			break
		}
		x, ok := toNum(v)
		if !ok || !x.isInt {
			return nil, fmt.Errorf("'%s' object cannot be interpreted as an integer", typeName(v))
		}
		n[i], given = x.i, i+1
	}
	start, stop, step := int64(0), n[0], int64(1)
	if given > 1 {
		start, stop = n[0], n[1]
	}
	if given > 2 {
		step = n[2]
	}
	if step == 0 {
		return nil, errors.New("range() arg 3 must not be zero")
	}
	var count int64
	if step > 0 && stop > start {
		count = (stop - start + step - 1) / step
	} else if step < 0 && stop < start {
		count = (start - stop - step - 1) / -step
	}
	if count > maxSize || count < 0 {
		return nil, errTooLarge
	}
	out := make([]any, 0, count)
	for i := int64(0); i < count; i++ {
		out = append(out, int(start+i*step))
	}
	return out, nil
}

// methods are the Python methods of strings and mappings that templates
// may call, as Ansible users write them: x.split(','), d.items().
var methods = map[string]*callable{
	"items": {sig: sig(""), fn: func(in any, _ []any) (any, error) { return items(in) }},
	"keys": {sig: sig(""), fn: func(in any, _ []any) (any, error) {
		keys, ok := keysOf(in)
		if !ok {
			return nil, fmt.Errorf("'%s' object has no attribute 'keys'", typeName(in))
		}
		return toList(keys)
	}},
	"values": {sig: sig(""), fn: func(in any, _ []any) (any, error) {
		keys, ok := keysOf(in)
		if !ok {
			return nil, fmt.Errorf("'%s' object has no attribute 'values'", typeName(in))
		}
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i], _, _ = getKey(in, k)
		}
		return out, nil
	}},
	"get": {sig: sig("key, default=None"), fn: func(in any, a []any) (any, error) {
		if !isMapping(in) {
			return nil, fmt.Errorf("'%s' object has no attribute 'get'", typeName(in))
		}
		if v, ok := item(in, a[0]); ok {
			return v, nil
		}
		return a[1], nil
	}},
	"split":      strMethod("sep=None, maxsplit=-1", func(s string, a []any) (any, error) { return pySplit(s, a[0], a[1]) }),
	"strip":      strMethod("chars=None", func(s string, a []any) (any, error) { return pyStrip(s, a[0], true, true) }),
	"lstrip":     strMethod("chars=None", func(s string, a []any) (any, error) { return pyStrip(s, a[0], true, false) }),
	"rstrip":     strMethod("chars=None", func(s string, a []any) (any, error) { return pyStrip(s, a[0], false, true) }),
	"lower":      strMethod("", func(s string, _ []any) (any, error) { return strings.ToLower(s), nil }),
	"upper":      strMethod("", func(s string, _ []any) (any, error) { return pyUpper(s), nil }),
	"startswith": strMethod("prefix", func(s string, a []any) (any, error) { return affix(s, a[0], strings.HasPrefix) }),
	"endswith":   strMethod("suffix", func(s string, a []any) (any, error) { return affix(s, a[0], strings.HasSuffix) }),
	"replace": strMethod("old, new, count=-1", func(s string, a []any) (any, error) {
		return pyReplace(s, a[0], a[1], a[2])
	}),
	"splitlines": strMethod("", func(s string, _ []any) (any, error) { return splitLines(s), nil }),
	"format": strMethod("*args, **kwargs", func(s string, a []any) (any, error) {
		return strFormat(s, a[0].([]any), a[1].(*dict))
	}),
}

func strMethod(spec string, fn func(s string, a []any) (any, error)) *callable {
	return &callable{sig: sig(spec), fn: func(in any, a []any) (any, error) {
		s, ok := asStr(in)
		if !ok {
			return nil, fmt.Errorf("'%s' object has no such method", typeName(in))
		}
		return fn(s, a)
	}}
}

// affix is startswith/endswith, whose argument may be a tuple of choices.
func affix(s string, a any, has func(s, affix string) bool) (any, error) {
	choices := []any{a}
	if t, ok := a.(tuple); ok {
		choices = t
	}
	for _, c := range choices {
		p, ok := asStr(c)
		if !ok {
			return nil, fmt.Errorf("expected a str or a tuple of str, not %s", typeName(c))
		}
		if has(s, p) {
			return true, nil
		}
	}
	return false, nil
}

// items is a mapping's (key, value) pairs.
func items(in any) (any, error) {
	keys, ok := keysOf(in)
	if !ok {
		return nil, fmt.Errorf("can only get item pairs from a mapping, not %s", typeName(in))
	}
	out := make([]any, len(keys))
	for i, k := range keys {
		v, _, _ := getKey(in, k)
		out[i] = tuple{k, v}
	}
	return out, nil
}

// pySplit is Python's str.split.
func pySplit(s string, sep, maxsplit any) (any, error) {
	max := -1
	if n, ok := toNum(maxsplit); ok && n.isInt {
		max = int(n.i)
	}
	var parts []string
	if sep == nil {
		f := strings.FieldsFunc(s, isSpace)
		if max >= 0 && len(f) > max {
			// the rest after max splits keeps its inner whitespace
			rest := s
			for i := 0; i < max; i++ {
				rest = strings.TrimLeftFunc(rest, isSpace)
				rest = rest[strings.IndexFunc(rest, isSpace):]
			}
			f = append(f[:max], strings.TrimLeftFunc(rest, isSpace))
		}
		parts = f
	} else {
		p, ok := asStr(sep)
		if !ok {
			return nil, fmt.Errorf("must be str or None, not %s", typeName(sep))
		}
		if p == "" {
			return nil, errors.New("empty separator")
		}
		parts = strings.SplitN(s, p, max+1)
		if max < 0 {
			parts = strings.Split(s, p)
		}
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out, nil
}

// pyStrip is Python's strip: whitespace, or the characters of chars.
func pyStrip(s string, chars any, left, right bool) (any, error) {
	cut := isSpace
	if chars != nil {
		c, ok := asStr(chars)
		if !ok {
			return nil, fmt.Errorf("strip arg must be None or str")
		}
		cut = func(r rune) bool { return strings.ContainsRune(c, r) }
	}
	if left {
		s = strings.TrimLeftFunc(s, cut)
	}
	if right {
		s = strings.TrimRightFunc(s, cut)
	}
	return s, nil
}

func pyReplace(s string, old, repl, count any) (any, error) {
	o, ok1 := asStr(old)
	r, ok2 := asStr(repl)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("replace() arguments must be str")
	}
	n := -1
	if c, ok := toNum(count); ok && c.isInt && c.i >= 0 {
		n = int(c.i)
	}
	// Each replacement adds len(r) - len(o) bytes; bound before building.
	k := strings.Count(s, o)
	if n >= 0 {
		k = min(k, n)
	}
	if len(r) > len(o) && int64(len(s))+int64(k)*int64(len(r)-len(o)) > maxSize {
		return nil, errTooLarge
	}
	return strings.Replace(s, o, r, n), nil
}

// splitLines is Python's str.splitlines.
func splitLines(s string) []any {
	out := []any{}
	for s != "" {
		i := strings.IndexFunc(s, func(r rune) bool {
			return r == '\n' || r == '\r' || r == '\v' || r == '\f' || r >= 0x1c && r <= 0x1e || r == 0x85 || r == 0x2028 || r == 0x2029
		})
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i])
		n := len(string([]rune(s[i:])[0]))
		if strings.HasPrefix(s[i:], "\r\n") {
			n = 2
		}
		s = s[i+n:]
	}
	return out
}

// pyUpper is Python's str.upper, which writes ß as SS.
func pyUpper(s string) string { return strings.ReplaceAll(strings.ToUpper(s), "ß", "SS") }

// capitalize is Python's str.capitalize.
func capitalize(s string) string {
	r := []rune(strings.ToLower(s))
	if len(r) > 0 {
		r[0] = unicode.ToTitle(r[0])
	}
	return string(r)
}
