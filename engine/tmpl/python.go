package tmpl

// Python's semantics for the plain data templates handle: numbers,
// truthiness, equality, ordering and str()/repr() output, so that rendered
// text matches what Ansible would produce.

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/e2c-dev/e2c/engine/ordered"
)

// tuple is a Python tuple: (a, b) in a template, or what items() and
// splitext give. It prints with parentheses and is a list everywhere else.
type tuple []any

// dict is a mapping that keeps its keys in the order they were set, as
// Python's dict does: scenario mappings, dict literals, combine, from_json
// and from_yaml give one, and values leave templates as one. Other Go maps
// (map[string]any) have no order; they are read in sorted key order.
type dict = ordered.Map

var newDict = ordered.New

// keysOf returns the keys of a mapping in iteration order, and whether v is
// one.
func keysOf(v any) ([]string, bool) {
	switch m := v.(type) {
	case *dict:
		return m.Keys(), true
	case map[string]any:
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return keys, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map {
		return nil, false
	}
	keys := make([]string, 0, rv.Len())
	for _, k := range rv.MapKeys() {
		keys = append(keys, pyStr(k.Interface()))
	}
	sort.Strings(keys)
	return keys, true
}

// getKey looks k up in v; isMap says whether v is a mapping at all.
func getKey(v any, k string) (val any, found, isMap bool) {
	switch m := v.(type) {
	case *dict:
		val, found = m.Get(k)
		return val, found, true
	case map[string]any:
		val, found = m[k]
		return val, found, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map {
		return nil, false, false
	}
	if rv.Type().Key().Kind() == reflect.String {
		e := rv.MapIndex(reflect.ValueOf(k).Convert(rv.Type().Key()))
		if e.IsValid() {
			return e.Interface(), true, true
		}
		return nil, false, true
	}
	for _, key := range rv.MapKeys() {
		if pyStr(key.Interface()) == k {
			return rv.MapIndex(key).Interface(), true, true
		}
	}
	return nil, false, true
}

// toDict returns v as a dict (a Go map's keys sorted), if it is a mapping.
func toDict(v any) (*dict, bool) {
	if d, ok := v.(*dict); ok {
		return d, true
	}
	keys, ok := keysOf(v)
	if !ok {
		return nil, false
	}
	d := newDict(len(keys))
	for _, k := range keys {
		e, _, _ := getKey(v, k)
		d.Set(k, e)
	}
	return d, true
}

func isMapping(v any) bool {
	switch v.(type) {
	case *dict, map[string]any:
		return true
	}
	return reflect.ValueOf(v).Kind() == reflect.Map
}

// isList reports whether v is a list or tuple (not a string).
func isList(v any) bool {
	switch v.(type) {
	case []any, tuple:
		return true
	case string:
		return false
	}
	k := reflect.ValueOf(v).Kind()
	return k == reflect.Slice || k == reflect.Array
}

// num is a number as Python sees it; booleans count as 0 and 1.
type num struct {
	i     int64
	f     float64
	isInt bool
}

func toNum(v any) (num, bool) {
	switch x := v.(type) {
	case int:
		return num{int64(x), float64(x), true}, true
	case float64:
		return num{int64(x), x, false}, true
	case bool:
		if x {
			return num{1, 1, true}, true
		}
		return num{0, 0, true}, true
	case string, nil, []any, map[string]any, *dict, tuple:
		return num{}, false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Bool:
		return toNum(rv.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return num{rv.Int(), float64(rv.Int()), true}, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return num{int64(rv.Uint()), float64(rv.Uint()), true}, true
	case reflect.Float32, reflect.Float64:
		return num{int64(rv.Float()), rv.Float(), false}, true
	}
	return num{}, false
}

func isBool(v any) bool { return reflect.ValueOf(v).Kind() == reflect.Bool }

func isStr(v any) bool { return reflect.ValueOf(v).Kind() == reflect.String }

// asStr returns v's string, if it is one.
func asStr(v any) (string, bool) {
	if s, ok := v.(string); ok {
		return s, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.String {
		return rv.String(), true
	}
	return "", false
}

// length is Python's len(), for the types that have one.
func length(v any) (int, bool) {
	if s, ok := asStr(v); ok {
		return len([]rune(s)), true
	}
	if d, ok := v.(*dict); ok {
		return d.Len(), true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		return rv.Len(), true
	}
	return 0, false
}

// Truthy is Python's truth value, which Jinja conditions (and Ansible's
// when) follow.
func Truthy(v any) bool { return truthy(v) }

func truthy(v any) bool {
	if n, ok := toNum(v); ok {
		return n.f != 0
	}
	if v == nil {
		return false
	}
	if n, ok := length(v); ok {
		return n > 0
	}
	return true
}

func pyEqual(x, y any) bool {
	if nx, ok := toNum(x); ok {
		ny, ok := toNum(y)
		if nx.isInt && ny.isInt {
			return nx.i == ny.i
		}
		return ok && nx.f == ny.f
	}
	if sx, ok := asStr(x); ok {
		sy, ok := asStr(y)
		return ok && sx == sy
	}
	if x == nil || y == nil {
		return x == nil && y == nil
	}
	if same(x, y) {
		return true
	}
	if isList(x) {
		_, tx := x.(tuple)
		_, ty := y.(tuple)
		if !isList(y) || tx != ty {
			return false
		}
		lx, _ := asList(x)
		ly, _ := asList(y)
		return slices.EqualFunc(lx, ly, pyEqual)
	}
	if kx, ok := keysOf(x); ok {
		ky, ok := keysOf(y)
		if !ok || len(kx) != len(ky) {
			return false
		}
		for _, k := range kx {
			a, _, _ := getKey(x, k)
			b, found, _ := getKey(y, k)
			if !found || !pyEqual(a, b) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(x, y)
}

// same reports whether x and y are one list or mapping, which is cheap to
// know and spares walking a structure shared many times.
func same(x, y any) bool {
	rx, ry := reflect.ValueOf(x), reflect.ValueOf(y)
	switch {
	case !rx.IsValid() || !ry.IsValid() || rx.Type() != ry.Type():
		return false
	case rx.Kind() == reflect.Slice:
		return rx.Len() == ry.Len() && (rx.Len() == 0 || rx.Pointer() == ry.Pointer())
	case rx.Kind() == reflect.Map, rx.Kind() == reflect.Pointer:
		return rx.Pointer() == ry.Pointer()
	}
	return false
}

// pyCompare orders x and y as Python's < does: numbers, strings, and lists
// item by item.
func pyCompare(op string, x, y any) (int, error) {
	if nx, ok := toNum(x); ok {
		if ny, ok := toNum(y); ok {
			if nx.isInt && ny.isInt {
				return cmpOrder(nx.i < ny.i, nx.i > ny.i), nil
			}
			return cmpOrder(nx.f < ny.f, nx.f > ny.f), nil
		}
	}
	if sx, ok := asStr(x); ok {
		if sy, ok := asStr(y); ok {
			return strings.Compare(sx, sy), nil
		}
	}
	if isList(x) && isList(y) {
		lx, _ := asList(x)
		ly, _ := asList(y)
		for i := 0; i < len(lx) && i < len(ly); i++ {
			if pyEqual(lx[i], ly[i]) {
				continue
			}
			return pyCompare(op, lx[i], ly[i])
		}
		return cmpOrder(len(lx) < len(ly), len(lx) > len(ly)), nil
	}
	return 0, fmt.Errorf("'%s' not supported between instances of '%s' and '%s'", op, typeName(x), typeName(y))
}

func cmpOrder(less, more bool) int {
	switch {
	case less:
		return -1
	case more:
		return 1
	}
	return 0
}

func contains(container, item any) (bool, error) {
	if s, ok := asStr(container); ok {
		sub, ok := asStr(item)
		if !ok {
			return false, fmt.Errorf("'in <string>' requires string as left operand, not %s", typeName(item))
		}
		return strings.Contains(s, sub), nil
	}
	if keys, ok := keysOf(container); ok {
		k, ok := asStr(item)
		return ok && slices.Contains(keys, k), nil
	}
	if l, err := asList(container); err == nil {
		return slices.ContainsFunc(l, func(e any) bool { return pyEqual(e, item) }), nil
	}
	return false, fmt.Errorf("argument of type '%s' is not iterable", typeName(container))
}

// asList returns v's elements if v is a list or tuple.
func asList(v any) ([]any, error) {
	switch l := v.(type) {
	case []any:
		return l, nil
	case tuple:
		return l, nil
	case string:
		return nil, fmt.Errorf("'%s' is not a list", typeName(v))
	}
	rv := reflect.ValueOf(v)
	if k := rv.Kind(); k != reflect.Slice && k != reflect.Array {
		return nil, fmt.Errorf("'%s' is not a list", typeName(v))
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, nil
}

// toList is Python's list(): a copy of a list, a string's characters or a
// mapping's keys.
func toList(v any) ([]any, error) {
	if s, ok := asStr(v); ok {
		out := []any{}
		for _, r := range s {
			out = append(out, string(r))
		}
		return out, nil
	}
	if keys, ok := keysOf(v); ok {
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = k
		}
		return out, nil
	}
	l, err := asList(v)
	if err != nil {
		return nil, fmt.Errorf("'%s' object is not iterable", typeName(v))
	}
	return append([]any{}, l...), nil
}

// pyInt is Python's int(s, base) for a string: whitespace around it,
// underscores between digits and, when base is 0 or matches, a 0x, 0o or
// 0b prefix are allowed.
func pyInt(s string, base int) (int, bool) {
	s = strings.TrimFunc(s, isSpace)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	lower := strings.ToLower(s)
	for _, p := range []struct {
		prefix string
		base   int
	}{{"0x", 16}, {"0o", 8}, {"0b", 2}} {
		if strings.HasPrefix(lower, p.prefix) && (base == 0 || base == p.base) {
			s, base = s[2:], p.base
			if strings.HasPrefix(s, "_") {
				s = s[1:]
			}
			break
		}
	}
	if base == 0 {
		if len(s) > 1 && strings.Trim(s, "0_") != "" && s[0] == '0' {
			return 0, false // Python refuses 012 with base 0
		}
		base = 10
	}
	if s == "" || strings.HasPrefix(s, "_") || strings.HasSuffix(s, "_") || strings.Contains(s, "__") {
		return 0, false
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), base, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		i = -i
	}
	return int(i), true
}

// pyFloatOf is Python's float() of a string.
func pyFloatOf(s string) (float64, bool) {
	s = strings.TrimFunc(s, isSpace)
	switch strings.ToLower(strings.TrimLeft(s, "+-")) {
	case "inf", "infinity", "nan":
	default:
		if s == "" || strings.ContainsAny(s, "xXpP") || strings.HasPrefix(strings.TrimLeft(s, "+-"), "_") {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	if err != nil && !strings.Contains(err.Error(), "range") {
		return 0, false
	}
	return f, true
}

func typeName(v any) string {
	switch v.(type) {
	case tuple:
		return "tuple"
	case *dict:
		return "dict"
	case *missing:
		return "AnsibleUndefined"
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Invalid:
		return "NoneType"
	case reflect.Bool:
		return "bool"
	case reflect.String:
		return "str"
	case reflect.Float32, reflect.Float64:
		return "float"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map:
		return "dict"
	}
	if _, ok := toNum(v); ok {
		return "int"
	}
	return fmt.Sprintf("%T", v)
}

// plain converts v to the plain data types of YAML/JSON: *ordered.Map
// (keys in v's order), []any, string, int, float64, bool and nil. It fails
// beyond maxSize values, which a template can reach by nesting one list in
// another many times ({% set b = [a, a] %}).
func plain(v any) (any, error) {
	budget := maxSize
	return plainB(v, &budget)
}

func plainB(v any, budget *int) (any, error) {
	if *budget--; *budget < 0 {
		return nil, errTooLarge
	}
	switch x := v.(type) {
	case nil, string, bool, int, float64:
		return x, nil
	case *missing:
		return nil, x.err()
	}
	if n, ok := toNum(v); ok {
		if isBool(v) {
			return n.i == 1, nil
		}
		if n.isInt {
			return int(n.i), nil
		}
		return n.f, nil
	}
	if s, ok := asStr(v); ok {
		return s, nil
	}
	if l, err := asList(v); err == nil {
		out := make([]any, len(l))
		for i, e := range l {
			if out[i], err = plainB(e, budget); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	if keys, ok := keysOf(v); ok {
		out := newDict(len(keys))
		for _, k := range keys {
			e, _, _ := getKey(v, k)
			p, err := plainB(e, budget)
			if err != nil {
				return nil, err
			}
			out.Set(k, p)
		}
		return out, nil
	}
	return fmt.Sprint(v), nil
}

// pyStr formats v as Python's str() does, so output matches Ansible's.
// Text beyond maxSize bytes is left out: callers bound what they build.
func pyStr(v any) string {
	if s, ok := asStr(v); ok {
		return s
	}
	var b strings.Builder
	writePy(&b, v, false)
	return b.String()
}

// pyRepr is Python's repr, as items inside a printed list or dict are.
func pyRepr(v any) string {
	var b strings.Builder
	writePy(&b, v, true)
	return b.String()
}

func writePy(b *strings.Builder, v any, repr bool) {
	if b.Len() > maxSize {
		return
	}
	if s, ok := asStr(v); ok {
		if repr {
			writeRepr(b, s)
		} else {
			b.WriteString(s)
		}
		return
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("None")
		return
	case tuple:
		b.WriteByte('(')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writePy(b, e, true)
		}
		if len(x) == 1 {
			b.WriteByte(',')
		}
		b.WriteByte(')')
		return
	}
	if isBool(v) {
		if truthy(v) {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
		return
	}
	if n, ok := toNum(v); ok {
		if n.isInt {
			b.WriteString(strconv.FormatInt(n.i, 10))
		} else {
			b.WriteString(pyFloat(n.f))
		}
		return
	}
	if l, err := asList(v); err == nil {
		b.WriteByte('[')
		for i, e := range l {
			if i > 0 {
				b.WriteString(", ")
			}
			writePy(b, e, true)
			if b.Len() > maxSize {
				return
			}
		}
		b.WriteByte(']')
		return
	}
	if keys, ok := keysOf(v); ok {
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			e, _, _ := getKey(v, k)
			writeRepr(b, k)
			b.WriteString(": ")
			writePy(b, e, true)
			if b.Len() > maxSize {
				return
			}
		}
		b.WriteByte('}')
		return
	}
	fmt.Fprint(b, v)
}

// pyFloat is Python's repr of a float: 2.0, 0.5, 1e+16, inf.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	if exp := math.Floor(math.Log10(math.Abs(f))); f != 0 && (exp < -4 || exp >= 16) {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// writeRepr writes a string as Python's repr does.
func writeRepr(b *strings.Builder, s string) {
	q := '\''
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	b.WriteRune(q)
	for _, r := range s {
		switch {
		case r == '\\' || r == q:
			b.WriteRune('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r >= 0x7f && r < 0xa0:
			fmt.Fprintf(b, `\x%02x`, r)
		case r > 0x7f && !unicode.IsPrint(r):
			if r > 0xffff {
				fmt.Fprintf(b, `\U%08x`, r)
			} else {
				fmt.Fprintf(b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteRune(q)
}

// isSpace is Python's str.isspace for one character.
func isSpace(r rune) bool { return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f }

// index resolves a Python index i into a sequence of n items.
func index(i, n int) (int, bool) {
	if i < 0 {
		i += n
	}
	return i, i >= 0 && i < n
}

// pySlice is Python's v[start:stop:step] on a string, list or tuple; nil
// bounds are left out.
func pySlice(v, start, stop, step any) (any, error) {
	st := 1
	if step != nil {
		n, ok := toNum(step)
		if !ok || !n.isInt {
			return nil, fmt.Errorf("slice indices must be integers or None")
		}
		if st = int(n.i); st == 0 {
			return nil, fmt.Errorf("slice step cannot be zero")
		}
	}
	var items []any
	s, isS := asStr(v)
	var runes []rune
	if isS {
		runes = []rune(s)
	} else {
		l, err := asList(v)
		if err != nil {
			return nil, fmt.Errorf("'%s' object is not subscriptable", typeName(v))
		}
		items = l
	}
	n := len(items)
	if isS {
		n = len(runes)
	}
	bound := func(b any, def int) (int, error) {
		if b == nil {
			return def, nil
		}
		x, ok := toNum(b)
		if !ok || !x.isInt {
			return 0, fmt.Errorf("slice indices must be integers or None")
		}
		i := int(x.i)
		if i < 0 {
			i += n
			if i < 0 {
				i = -1
				if st > 0 {
					i = 0
				}
			}
		} else if i >= n {
			i = n
			if st < 0 {
				i = n - 1
			}
		}
		return i, nil
	}
	lo, hi := 0, n
	if st < 0 {
		lo, hi = n-1, -1
	}
	lo, err := bound(start, lo)
	if err != nil {
		return nil, err
	}
	if hi, err = bound(stop, hi); err != nil {
		return nil, err
	}
	var idx []int
	for i := lo; st > 0 && i < hi || st < 0 && i > hi; i += st {
		idx = append(idx, i)
	}
	if isS {
		out := make([]rune, len(idx))
		for k, i := range idx {
			out[k] = runes[i]
		}
		return string(out), nil
	}
	out := make([]any, len(idx))
	for k, i := range idx {
		out[k] = items[i]
	}
	if _, ok := v.(tuple); ok {
		return tuple(out), nil
	}
	return out, nil
}

// val returns k's value in d, or nil.
func val(d *dict, k string) any {
	v, _ := d.Get(k)
	return v
}
