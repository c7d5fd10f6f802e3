package tmpl

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/flosch/pongo2/v6"
	"gopkg.in/yaml.v3"
)

// maxSize bounds the lists and strings that range(), operators and filters
// build, so that a template cannot exhaust memory.
const maxSize = 1 << 20

// globals are the e2c_* helpers the compiled templates call. They are
// stateless; e2c_out, which may capture a value, is added per render.
var globals = pongo2.Context{
	"e2c_id":            fnID,
	"e2c_op":            fnOp,
	"e2c_cat":           fnCat,
	"e2c_list":          fnList,
	"e2c_dict":          fnDict,
	"e2c_lines":         fnLines,
	"e2c_get":           fnGet,
	"e2c_iter":          fnIter,
	"e2c_items":         fnItems,
	"e2c_range":         fnRange,
	"e2c_replace":       fnReplace,
	"e2c_regex_replace": fnRegexReplace,
}

// filterFuncs are registered with pongo2, replacing built-ins of the same
// name whose behaviour differs from Jinja's.
var filterFuncs = map[string]func(in any, param *pongo2.Value) (any, error){
	"default": func(in any, p *pongo2.Value) (any, error) {
		if in == nil {
			if p.IsNil() {
				return "", nil
			}
			return p.Interface(), nil
		}
		return in, nil
	},
	"mandatory": func(in any, p *pongo2.Value) (any, error) {
		if in != nil {
			return in, nil
		}
		if !p.IsNil() {
			return nil, errors.New(p.String())
		}
		return nil, errors.New("variable not defined")
	},
	"list": func(in any, _ *pongo2.Value) (any, error) { return toList(in) },
	"join": func(in any, p *pongo2.Value) (any, error) {
		items, err := toList(in)
		if err != nil {
			return nil, err
		}
		parts := make([]string, len(items))
		for i, v := range items {
			parts[i] = pyStr(v)
		}
		sep := ""
		if !p.IsNil() {
			sep = pyStr(p.Interface())
		}
		size := len(sep) * len(parts)
		for _, s := range parts {
			size += len(s)
		}
		if size > maxSize {
			return nil, errTooLarge
		}
		return strings.Join(parts, sep), nil
	},
	// Django's padding filters, bounded.
	"ljust":  pad(func(s string, n int) string { return s + strings.Repeat(" ", n) }),
	"rjust":  pad(func(s string, n int) string { return strings.Repeat(" ", n) + s }),
	"center": pad(func(s string, n int) string { return strings.Repeat(" ", n/2) + s + strings.Repeat(" ", n-n/2) }),
	"int":    func(in any, _ *pongo2.Value) (any, error) { return toInt(in), nil },
	"float":  func(in any, _ *pongo2.Value) (any, error) { return toFloat(in), nil },
	"string": func(in any, _ *pongo2.Value) (any, error) { return pyStr(in), nil },
	"upper":  func(in any, _ *pongo2.Value) (any, error) { return strings.ToUpper(pyStr(in)), nil },
	"lower":  func(in any, _ *pongo2.Value) (any, error) { return strings.ToLower(pyStr(in)), nil },
	"bool": func(in any, _ *pongo2.Value) (any, error) {
		switch v := in.(type) {
		case bool:
			return v, nil
		case string:
			switch strings.ToLower(v) {
			case "yes", "on", "1", "true":
				return true, nil
			}
			return false, nil
		}
		n, ok := toNum(in)
		return ok && n.f == 1, nil
	},
	"to_json": func(in any, _ *pongo2.Value) (any, error) {
		var b strings.Builder
		writeJSON(&b, plain(in))
		return b.String(), nil
	},
	"to_yaml": func(in any, _ *pongo2.Value) (any, error) {
		out, err := yaml.Marshal(plain(in))
		return string(out), err
	},
	"b64encode": func(in any, _ *pongo2.Value) (any, error) {
		return base64.StdEncoding.EncodeToString([]byte(pyStr(in))), nil
	},
	"b64decode": func(in any, _ *pongo2.Value) (any, error) {
		out, err := base64.StdEncoding.DecodeString(pyStr(in))
		return string(out), err
	},
	"quote": func(in any, _ *pongo2.Value) (any, error) {
		return "'" + strings.ReplaceAll(pyStr(in), "'", `'\''`) + "'", nil
	},
	"basename": func(in any, _ *pongo2.Value) (any, error) {
		s := pyStr(in)
		return s[strings.LastIndexByte(s, '/')+1:], nil
	},
	"dirname": func(in any, _ *pongo2.Value) (any, error) { // Python's posixpath.dirname
		s := pyStr(in)
		head := s[:strings.LastIndexByte(s, '/')+1]
		if strings.Trim(head, "/") != "" {
			head = strings.TrimRight(head, "/")
		}
		return head, nil
	},
	// pongo2's wordwrap (n words a line), which crashed on a short last line.
	"wordwrap": func(in any, p *pongo2.Value) (any, error) {
		words, n := strings.Fields(pyStr(in)), p.Integer()
		if n <= 0 {
			return in, nil
		}
		var lines []string
		for len(words) > 0 {
			k := min(n, len(words))
			lines = append(lines, strings.Join(words[:k], " "))
			words = words[k:]
		}
		return strings.Join(lines, "\n"), nil
	},
	// pongo2's removetags in one pass: it compiled every name into a regexp
	// of its own, so "(" crashed it and many names took many passes.
	"removetags": func(in any, p *pongo2.Value) (any, error) {
		remove := map[string]bool{}
		for _, tag := range strings.Split(p.String(), ",") {
			remove[tag] = true
		}
		out := htmlTag.ReplaceAllStringFunc(pyStr(in), func(m string) string {
			if remove[strings.TrimSuffix(strings.TrimPrefix(m[1:len(m)-1], "/"), "/")] {
				return ""
			}
			return m
		})
		return strings.TrimSpace(out), nil
	},
}

// pad makes a padding filter; argChecks bounds its width.
func pad(fill func(s string, n int) string) func(any, *pongo2.Value) (any, error) {
	return func(in any, p *pongo2.Value) (any, error) {
		s := pyStr(in)
		return fill(s, max(p.Integer()-len([]rune(s)), 0)), nil
	}
}

// pongoFilters are pongo2's own filters, left available.
var pongoFilters = []string{"escape", "e", "safe", "escapejs", "add", "addslashes", "capfirst",
	"cut", "date", "default_if_none", "divisibleby", "first", "floatformat", "get_digit", "iriencode",
	"last", "length", "length_is", "linebreaks", "linebreaksbr", "linenumbers", "make_list",
	"phone2numeric", "pluralize", "slice", "split", "stringformat", "striptags",
	"time", "title", "truncatechars", "truncatewords",
	"urlencode", "urlize", "urlizetrunc", "wordcount", "yesno", "integer"}

// refusedFilters are pongo2's filters that templates cannot use, and why.
var refusedFilters = map[string]string{
	"random":             "rendering must be reproducible",
	"truncatechars_html": "its work grows with the square of its input; use truncatechars",
	"truncatewords_html": "its work grows with the square of its input; use truncatewords",
}

func filterExists(name string) bool {
	_, ok := filterFuncs[name]
	return ok || slices.Contains(pongoFilters, name)
}

// filterPrefix names the filters compiled templates call: filter x is
// registered as e2c_x, x wrapped by bounded, and the set bans pongo2's
// unwrapped names.
const filterPrefix = "e2c_"

func registerFilters() {
	for name, fn := range filterFuncs {
		register(name, func(in, p *pongo2.Value) (*pongo2.Value, error) {
			out, err := fn(in.Interface(), p)
			if err != nil {
				return nil, err
			}
			return pongo2.AsValue(out), nil
		})
	}
	for _, name := range pongoFilters {
		register(name, func(in, p *pongo2.Value) (*pongo2.Value, error) {
			out, err := pongo2.ApplyFilter(name, in, p)
			if err != nil {
				return nil, err
			}
			return out, nil
		})
	}
}

func register(name string, fn func(in, p *pongo2.Value) (*pongo2.Value, error)) {
	if err := pongo2.RegisterFilter(filterPrefix+name, bounded(name, fn)); err != nil {
		panic(err)
	}
}

// bounded makes fn a filter within e2c's bounds: its argument passes
// argChecks before it runs, and a result longer than maxSize bytes or
// items is refused. Filters whose result is at most a constant times their
// input need only the second; argChecks covers those whose argument sets
// the size.
func bounded(name string, fn func(in, p *pongo2.Value) (*pongo2.Value, error)) pongo2.FilterFunction {
	check := argChecks[name]
	return func(in, p *pongo2.Value) (*pongo2.Value, *pongo2.Error) {
		var out *pongo2.Value
		var err error
		if check != nil {
			err = check(p)
		}
		if err == nil {
			out, err = fn(in, p)
		}
		if err == nil && tooLarge(out.Interface()) {
			err = errTooLarge
		}
		if err == nil {
			return out, nil
		}
		var pe *pongo2.Error
		if errors.As(err, &pe) && pe.OrigError != nil {
			err = pe.OrigError
		}
		return nil, &pongo2.Error{Sender: "filter:" + name, OrigError: fmt.Errorf("filter %s: %w", name, err)}
	}
}

func tooLarge(v any) bool {
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.String, reflect.Slice, reflect.Array, reflect.Map:
		return rv.Len() > maxSize
	}
	return false
}

// argChecks vet the argument of the filters whose argument, not their
// input, sets the size of their result.
var argChecks = map[string]func(p *pongo2.Value) error{
	"floatformat":   sizeArg("precision", true),
	"center":        sizeArg("width", false),
	"ljust":         sizeArg("width", false),
	"rjust":         sizeArg("width", false),
	"truncatechars": sizeArg("length", false),
	"truncatewords": sizeArg("length", false),
	"urlizetrunc":   sizeArg("length", false),
	"wordwrap":      sizeArg("width", false),
	"stringformat":  checkLayout,
}

// sizeArg bounds a size argument by maxSize; pongo2 reads the argument as
// a float (strings too) and truncates it to an int.
func sizeArg(what string, signed bool) func(*pongo2.Value) error {
	return func(p *pongo2.Value) error {
		switch f := p.Float(); {
		case f < 0 && !signed:
			return fmt.Errorf("%s %s must not be negative", what, pyStr(p.Interface()))
		case !(math.Abs(f) <= maxSize):
			return fmt.Errorf("%s %s is beyond e2c's bound of %d", what, pyStr(p.Interface()), maxSize)
		}
		return nil
	}
}

// checkLayout refuses "*" widths and "[n]" argument indexes in a
// stringformat layout. Without them only one verb prints the input, and Go's
// fmt caps each width and precision at 10^6, so the result stays within a
// constant of the input and the layout.
func checkLayout(p *pongo2.Value) error {
	f := p.String() // as pongo2's stringformat reads it
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		for i++; i < len(f) && strings.IndexByte("+-# .0123456789", f[i]) >= 0; i++ {
		}
		if i < len(f) && (f[i] == '*' || f[i] == '[') {
			return fmt.Errorf(`layout %q: "*" widths and "[n]" argument indexes are not supported`, f[:i+1])
		}
	}
	return nil
}

// htmlTag matches the tags removetags removes: <name>, </name>, <name/>.
var htmlTag = regexp.MustCompile(`</?[^<>/]*/?>`)

func args(vs []*pongo2.Value) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v.Interface()
	}
	return out
}

func fnID(vs ...*pongo2.Value) *pongo2.Value {
	if len(vs) == 0 {
		return pongo2.AsValue(nil)
	}
	return vs[0]
}

func fnCat(vs ...*pongo2.Value) (*pongo2.Value, error) {
	var b strings.Builder
	for _, v := range args(vs) {
		b.WriteString(pyStr(v))
		if b.Len() > maxSize {
			return pongo2.AsValue(nil), errTooLarge
		}
	}
	return pongo2.AsValue(b.String()), nil
}

func fnList(vs ...*pongo2.Value) *pongo2.Value { return pongo2.AsValue(args(vs)) }

func fnDict(vs ...*pongo2.Value) *pongo2.Value {
	m := map[string]any{}
	for i := 0; i+1 < len(vs); i += 2 {
		m[pyStr(vs[i].Interface())] = vs[i+1].Interface()
	}
	return pongo2.AsValue(m)
}

func fnLines(vs ...*pongo2.Value) *pongo2.Value {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return pongo2.AsValue(strings.Join(parts, "\n"))
}

// fnGet indexes like Python: negative list indexes count from the end, and
// a missing key or index gives None, as pongo2's own paths do.
func fnGet(obj, key *pongo2.Value) *pongo2.Value {
	o, k := obj.Interface(), key.Interface()
	rv := reflect.ValueOf(o)
	switch rv.Kind() {
	case reflect.Map:
		if s, ok := k.(string); ok && rv.Type().Key().Kind() == reflect.String {
			if v := rv.MapIndex(reflect.ValueOf(s).Convert(rv.Type().Key())); v.IsValid() {
				return pongo2.AsValue(v.Interface())
			}
		}
	case reflect.Slice, reflect.Array, reflect.String:
		var runes []rune
		if rv.Kind() == reflect.String {
			runes = []rune(rv.String())
			rv = reflect.ValueOf(runes)
		}
		if i, ok := toNum(k); ok && i.isInt {
			n := int(i.i)
			if n < 0 {
				n += rv.Len()
			}
			switch {
			case n < 0 || n >= rv.Len():
			case runes != nil:
				return pongo2.AsValue(string(runes[n]))
			default:
				return pongo2.AsValue(rv.Index(n).Interface())
			}
		}
	}
	return pongo2.AsValue(nil)
}

// fnIter gives the items a one-variable for-loop visits: a mapping's keys in
// sorted order (Go maps have no order) and a string's characters.
func fnIter(v *pongo2.Value) (*pongo2.Value, error) {
	l, err := toList(v.Interface())
	return pongo2.AsValue(l), err
}

func fnItems(v *pongo2.Value) (*pongo2.Value, error) {
	if reflect.ValueOf(v.Interface()).Kind() != reflect.Map {
		return pongo2.AsValue(nil), fmt.Errorf("for k, v in x: x must be a mapping, not %s", typeName(v.Interface()))
	}
	return v, nil
}

func fnRange(vs ...*pongo2.Value) (*pongo2.Value, error) {
	var n [3]int64
	for i, v := range args(vs) {
		x, ok := toNum(v)
		if !ok || !x.isInt && x.f != math.Trunc(x.f) {
			return pongo2.AsValue(nil), fmt.Errorf("range() needs integers, not %s", typeName(v))
		}
		n[i] = x.i
		if !x.isInt {
			n[i] = int64(x.f)
		}
	}
	start, stop, step := int64(0), n[0], int64(1)
	if len(vs) > 1 {
		start, stop = n[0], n[1]
	}
	if len(vs) > 2 {
		step = n[2]
	}
	if step == 0 {
		return pongo2.AsValue(nil), errors.New("range() step must not be zero")
	}
	var count int64
	if step > 0 && stop > start {
		count = (stop - start + step - 1) / step
	} else if step < 0 && stop < start {
		count = (start - stop - step - 1) / -step
	}
	if count > maxSize || count < 0 {
		return pongo2.AsValue(nil), errTooLarge
	}
	out := make([]any, 0, count)
	for i := int64(0); i < count; i++ {
		out = append(out, int(start+i*step))
	}
	return pongo2.AsValue(out), nil
}

func fnReplace(s, old, repl *pongo2.Value) (*pongo2.Value, error) {
	out := strings.ReplaceAll(pyStr(s.Interface()), pyStr(old.Interface()), pyStr(repl.Interface()))
	if len(out) > maxSize {
		return pongo2.AsValue(nil), errTooLarge
	}
	return pongo2.AsValue(out), nil
}

// fnRegexReplace is Python's re.sub with Go's RE2 syntax; the replacement's
// \1 and \g<name> references are translated.
func fnRegexReplace(vs ...*pongo2.Value) (*pongo2.Value, error) {
	a := args(vs)
	re, err := regexp.Compile(pyStr(a[1]))
	if err != nil {
		return pongo2.AsValue(nil), fmt.Errorf("regex_replace: %w", err)
	}
	repl := ""
	if len(a) > 2 {
		repl = pyStr(a[2])
	}
	var b strings.Builder
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		switch {
		case c == '$':
			b.WriteString("$$")
		case c == '\\' && i+1 < len(repl):
			i++
			switch d := repl[i]; {
			case isDigit(d):
				j := i
				for j < len(repl) && j < i+2 && isDigit(repl[j]) {
					j++
				}
				b.WriteString("${" + repl[i:j] + "}")
				i = j - 1
			case d == 'g' && i+1 < len(repl) && repl[i+1] == '<' && strings.IndexByte(repl[i:], '>') > 0:
				end := i + strings.IndexByte(repl[i:], '>')
				b.WriteString("${" + repl[i+2:end] + "}")
				i = end
			case d == 'n':
				b.WriteByte('\n')
			case d == 't':
				b.WriteByte('\t')
			case d == '\\':
				b.WriteByte('\\')
			default:
				b.WriteByte('\\')
				b.WriteByte(d)
			}
		default:
			b.WriteByte(c)
		}
	}
	out := re.ReplaceAllString(pyStr(a[0]), b.String())
	if len(out) > maxSize {
		return pongo2.AsValue(nil), errTooLarge
	}
	return pongo2.AsValue(out), nil
}

var errTooLarge = fmt.Errorf("result larger than %d bytes or items", maxSize)

// fnOp implements Jinja's operators with Python semantics. "and", "or" and
// "if" evaluate all operands (pongo2 evaluates function arguments eagerly)
// but return the operand Python would.
func fnOp(vs ...*pongo2.Value) (*pongo2.Value, error) {
	if len(vs) < 2 {
		return pongo2.AsValue(nil), errors.New("e2c_op: missing operands")
	}
	op, a := vs[0].String(), args(vs[1:])
	var r any
	var err error
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
	case "if":
		switch {
		case truthy(a[0]):
			r = a[1]
		case len(a) > 2:
			r = a[2]
		}
	default:
		if len(a) < 2 {
			return pongo2.AsValue(nil), errors.New("e2c_op: missing operands")
		}
		r, err = binary(op, a[0], a[1])
	}
	if err != nil {
		return pongo2.AsValue(nil), err
	}
	return pongo2.AsValue(r), nil
}

func binary(op string, x, y any) (any, error) {
	switch op {
	case "and":
		if !truthy(x) {
			return x, nil
		}
		return y, nil
	case "or":
		if truthy(x) {
			return x, nil
		}
		return y, nil
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
	case "+":
		if s, ok := x.(string); ok {
			if t, ok := y.(string); ok {
				if len(s)+len(t) > maxSize {
					return nil, errTooLarge
				}
				return s + t, nil
			}
		}
		lx, errx := asList(x)
		ly, erry := asList(y)
		if errx == nil && erry == nil {
			if len(lx)+len(ly) > maxSize {
				return nil, errTooLarge
			}
			return append(append([]any{}, lx...), ly...), nil
		}
	case "*":
		s, n := x, y
		if _, ok := s.(string); !ok {
			s, n = y, x
		}
		if str, ok := s.(string); ok {
			if k, ok := toNum(n); ok && k.isInt {
				if k.i <= 0 {
					return "", nil
				}
				if int64(len(str))*k.i > maxSize {
					return nil, errTooLarge
				}
				return strings.Repeat(str, int(k.i)), nil
			}
		}
	}
	return nil, fmt.Errorf("unsupported operand types for %s: '%s' and '%s'", op, typeName(x), typeName(y))
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
		return nil, errors.New("division by zero")
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
