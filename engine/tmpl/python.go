package tmpl

// Python's semantics for the plain data templates handle: numbers,
// truthiness, equality and str()/repr()/json.dumps output, so that rendered
// text matches what Ansible would produce.

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// num is a number as Python sees it; booleans count as 0 and 1.
type num struct {
	i     int64
	f     float64
	isInt bool
}

func toNum(v any) (num, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Bool:
		if rv.Bool() {
			return num{1, 1, true}, true
		}
		return num{0, 0, true}, true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return num{rv.Int(), float64(rv.Int()), true}, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return num{int64(rv.Uint()), float64(rv.Uint()), true}, true
	case reflect.Float32, reflect.Float64:
		return num{int64(rv.Float()), rv.Float(), false}, true
	}
	return num{}, false
}

// Truthy is Python's truth value, which Jinja conditions (and Ansible's
// when) follow.
func Truthy(v any) bool { return truthy(v) }

func truthy(v any) bool {
	if n, ok := toNum(v); ok {
		return n.f != 0
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Invalid:
		return false
	case reflect.String, reflect.Slice, reflect.Array, reflect.Map:
		return rv.Len() > 0
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
	return reflect.DeepEqual(plain(x), plain(y))
}

func pyCompare(op string, x, y any) (int, error) {
	if nx, ok := toNum(x); ok {
		if ny, ok := toNum(y); ok {
			switch {
			case nx.isInt && ny.isInt:
				return cmpOrder(nx.i < ny.i, nx.i > ny.i), nil
			default:
				return cmpOrder(nx.f < ny.f, nx.f > ny.f), nil
			}
		}
	}
	if sx, ok := x.(string); ok {
		if sy, ok := y.(string); ok {
			return strings.Compare(sx, sy), nil
		}
	}
	return 0, fmt.Errorf("'%s' not supported between '%s' and '%s'", op, typeName(x), typeName(y))
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
	if s, ok := container.(string); ok {
		sub, ok := item.(string)
		if !ok {
			return false, fmt.Errorf("'in <string>' requires a string, not %s", typeName(item))
		}
		return strings.Contains(s, sub), nil
	}
	rv := reflect.ValueOf(container)
	switch rv.Kind() {
	case reflect.Map:
		for _, k := range rv.MapKeys() {
			if pyEqual(k.Interface(), item) {
				return true, nil
			}
		}
		return false, nil
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			if pyEqual(rv.Index(i).Interface(), item) {
				return true, nil
			}
		}
		return false, nil
	}
	return false, fmt.Errorf("argument of type '%s' is not iterable", typeName(container))
}

// asList returns v's elements if v is a list.
func asList(v any) ([]any, error) {
	if l, ok := v.([]any); ok {
		return l, nil
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
// mapping's keys (sorted, as Go maps have no order).
func toList(v any) ([]any, error) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		var out []any
		for _, r := range rv.String() {
			out = append(out, string(r))
		}
		return out, nil
	case reflect.Map:
		out := make([]any, 0, rv.Len())
		for _, k := range sortedKeys(rv) {
			out = append(out, k.Interface())
		}
		return out, nil
	}
	l, err := asList(v)
	if err != nil {
		return nil, fmt.Errorf("'%s' object is not iterable", typeName(v))
	}
	return append([]any{}, l...), nil
}

func toInt(v any) int {
	if s, ok := v.(string); ok {
		s = strings.TrimSpace(s)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return int(i)
		}
		v = toFloat(s)
	}
	n, ok := toNum(v)
	switch {
	case !ok || math.IsNaN(n.f) || math.IsInf(n.f, 0):
		return 0
	case n.isInt:
		return int(n.i)
	}
	return int(n.f)
}

func toFloat(v any) float64 {
	if s, ok := v.(string); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return 0
		}
		return f
	}
	n, _ := toNum(v)
	return n.f
}

func typeName(v any) string {
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

func sortedKeys(rv reflect.Value) []reflect.Value {
	keys := rv.MapKeys()
	sort.Slice(keys, func(i, j int) bool { return pyStr(keys[i].Interface()) < pyStr(keys[j].Interface()) })
	return keys
}

// plain converts v to the plain data types of YAML/JSON: map[string]any,
// []any, string, int, float64, bool and nil.
func plain(v any) any {
	switch x := v.(type) {
	case nil, string, bool, int, float64:
		return x
	}
	if n, ok := toNum(v); ok {
		if n.isInt {
			return int(n.i)
		}
		return n.f
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return rv.String()
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = plain(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		out := make(map[string]any, rv.Len())
		for _, k := range rv.MapKeys() {
			out[pyStr(k.Interface())] = plain(rv.MapIndex(k).Interface())
		}
		return out
	}
	return fmt.Sprint(v)
}

// pyStr formats v as Python's str() does, so output matches Ansible's.
func pyStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return x
	case bool:
		if x {
			return "True"
		}
		return "False"
	}
	if n, ok := toNum(v); ok {
		if n.isInt {
			return strconv.FormatInt(n.i, 10)
		}
		return pyFloat(n.f)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return rv.String()
	case reflect.Slice, reflect.Array:
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = pyRepr(rv.Index(i).Interface())
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case reflect.Map:
		var parts []string
		for _, k := range sortedKeys(rv) {
			parts = append(parts, pyRepr(k.Interface())+": "+pyRepr(rv.MapIndex(k).Interface()))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
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

// pyRepr is Python's repr for items inside a printed list or dict.
func pyRepr(v any) string {
	s, ok := v.(string)
	if !ok {
		return pyStr(v)
	}
	q := '\''
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var b strings.Builder
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
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteRune(q)
	return b.String()
}

// writeJSON writes plain data as Python's json.dumps does by default
// (", " and ": " separators, ASCII only), with keys sorted.
func writeJSON(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	case float64:
		switch {
		case math.IsNaN(x):
			b.WriteString("NaN")
		case math.IsInf(x, 1):
			b.WriteString("Infinity")
		case math.IsInf(x, -1):
			b.WriteString("-Infinity")
		default:
			b.WriteString(pyFloat(x))
		}
	case string:
		b.WriteByte('"')
		for _, r := range x {
			switch r {
			case '"', '\\':
				b.WriteByte('\\')
				b.WriteRune(r)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			default:
				if r >= 0x20 && r < 0x7f {
					b.WriteRune(r)
					continue
				}
				if r == utf8.RuneError {
					r = 0xfffd
				}
				if r > 0xffff {
					r -= 0x10000
					fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
					continue
				}
				fmt.Fprintf(b, `\u%04x`, r)
			}
		}
		b.WriteByte('"')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJSON(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJSON(b, k)
			b.WriteString(": ")
			writeJSON(b, x[k])
		}
		b.WriteByte('}')
	}
}
