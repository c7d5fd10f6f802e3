package tmpl

// The filters templates may use: Jinja2's and Ansible's (ansible-core 2.14),
// each with the parameters and the semantics of the Python it replaces.

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// refusedFilters are Jinja's and Ansible's filters that templates cannot
// use, and why ("": not implemented).
var refusedFilters = map[string]string{
	"random":          "rendering must be reproducible",
	"shuffle":         "rendering must be reproducible",
	"password_hash":   "rendering must be reproducible (it salts at random)",
	"fileglob":        "templates cannot read files",
	"realpath":        "templates cannot read files",
	"expanduser":      "templates cannot read the environment",
	"expandvars":      "templates cannot read the environment",
	"strftime":        "rendering must be reproducible (it reads the clock)",
	"to_datetime":     "date objects are not supported",
	"vault":           "vaults are not supported",
	"unvault":         "vaults are not supported",
	"type_debug":      "Ansible's answer names its own Python classes",
	"attr":            "Python attributes are not supported; use x[name]",
	"groupby":         "",
	"pprint":          "",
	"striptags":       "",
	"urlize":          "",
	"wordwrap":        "",
	"xmlattr":         "",
	"comment":         "",
	"human_readable":  "",
	"human_to_bytes":  "",
	"rekey_on_member": "",
	"urlsplit":        "",
	"urldecode":       "",
	"win_basename":    "",
	"win_dirname":     "",
	"win_splitdrive":  "",
	"relpath":         "",
}

var filters map[string]*callable

func f(spec string, fn func(in any, a []any) (any, error)) *callable {
	return &callable{sig: sig(spec), fn: fn}
}

// strF is a filter of the input as text (Python's str(input)).
func strF(spec string, fn func(s string, a []any) (any, error)) *callable {
	return f(spec, func(in any, a []any) (any, error) { return fn(pyStr(in), a) })
}

func init() {
	filters = map[string]*callable{
		// Jinja2's.
		"abs": f("", func(in any, _ []any) (any, error) {
			n, ok := toNum(in)
			switch {
			case !ok:
				return nil, fmt.Errorf("bad operand type for abs(): '%s'", typeName(in))
			case n.isInt:
				return int(abs64(n.i)), nil
			}
			return math.Abs(n.f), nil
		}),
		"batch":      f("linecount, fill_with=None", fnBatch),
		"capitalize": strF("", func(s string, _ []any) (any, error) { return capitalize(s), nil }),
		"center": strF("width=80", func(s string, a []any) (any, error) {
			w, err := sizeArg("width", a[0])
			if err != nil {
				return nil, err
			}
			n := utf8.RuneCountInString(s)
			if w <= n {
				return s, nil
			}
			marg := w - n
			left := marg/2 + (marg & w & 1) // CPython's str.center
			return strings.Repeat(" ", left) + s + strings.Repeat(" ", marg-left), nil
		}),
		"count":          f("", fnLength),
		"length":         f("", fnLength),
		"default":        {sig: sig("default_value='', boolean=False"), lazy: true, fn: fnDefault},
		"d":              {sig: sig("default_value='', boolean=False"), lazy: true, fn: fnDefault},
		"dictsort":       f("case_sensitive=False, by='key', reverse=False", fnDictsort),
		"escape":         strF("", func(s string, _ []any) (any, error) { return htmlEscape(s), nil }),
		"e":              strF("", func(s string, _ []any) (any, error) { return htmlEscape(s), nil }),
		"forceescape":    strF("", func(s string, _ []any) (any, error) { return htmlEscape(s), nil }),
		"safe":           f("", func(in any, _ []any) (any, error) { return in, nil }),
		"filesizeformat": f("binary=False", fnFilesize),
		"first": f("", func(in any, _ []any) (any, error) {
			l, err := toList(in)
			if err != nil || len(l) == 0 {
				return &missing{why: "No first item, sequence was empty."}, err
			}
			return l[0], nil
		}),
		"last": f("", func(in any, _ []any) (any, error) {
			l, err := toList(in)
			if err != nil || len(l) == 0 {
				return &missing{why: "No last item, sequence was empty."}, err
			}
			return l[len(l)-1], nil
		}),
		"float": f("default=0.0", func(in any, a []any) (any, error) {
			if n, ok := toNum(in); ok {
				return n.f, nil
			}
			if s, ok := asStr(in); ok {
				if v, ok := pyFloatOf(s); ok {
					return v, nil
				}
			}
			return a[0], nil
		}),
		"int": f("default=0, base=10", fnInt),
		"format": f("*args, **kwargs", func(in any, a []any) (any, error) {
			args, kw := a[0].([]any), a[1].(*dict)
			if len(args) > 0 && kw.Len() > 0 {
				return nil, errors.New("can't handle positional and keyword arguments at the same time")
			}
			if kw.Len() > 0 {
				return percent(pyStr(in), kw)
			}
			return percent(pyStr(in), tuple(args))
		}),
		"indent": f("width=4, first=False, blank=False", fnIndent),
		"items": {sig: sig(""), lazy: true, fn: func(in any, _ []any) (any, error) {
			if _, ok := in.(*missing); ok {
				return []any{}, nil
			}
			if bad := use(in); bad != nil {
				return nil, bad
			}
			return items(in)
		}},
		"join": f("d='', attribute=None", func(in any, a []any) (any, error) {
			l, err := mapAttr(in, a[1])
			if err != nil {
				return nil, err
			}
			sep := pyStr(a[0])
			var b strings.Builder
			for i, v := range l {
				if i > 0 {
					b.WriteString(sep)
				}
				if bad := use(v); bad != nil {
					return nil, bad
				}
				b.WriteString(pyStr(v))
				if b.Len() > maxSize {
					return nil, errTooLarge
				}
			}
			return b.String(), nil
		}),
		"list":       f("", func(in any, _ []any) (any, error) { return toList(in) }),
		"lower":      strF("", func(s string, _ []any) (any, error) { return strings.ToLower(s), nil }),
		"upper":      strF("", func(s string, _ []any) (any, error) { return pyUpper(s), nil }),
		"map":        f("*args, **kwargs", fnMap),
		"max":        f("case_sensitive=False, attribute=None", func(in any, a []any) (any, error) { return minMax(in, a, 1) }),
		"min":        f("case_sensitive=False, attribute=None", func(in any, a []any) (any, error) { return minMax(in, a, -1) }),
		"select":     f("*args, **kwargs", func(in any, a []any) (any, error) { return selectItems(in, a, true, false) }),
		"reject":     f("*args, **kwargs", func(in any, a []any) (any, error) { return selectItems(in, a, false, false) }),
		"selectattr": f("*args, **kwargs", func(in any, a []any) (any, error) { return selectItems(in, a, true, true) }),
		"rejectattr": f("*args, **kwargs", func(in any, a []any) (any, error) { return selectItems(in, a, false, true) }),
		"replace": strF("old, new, count=None", func(s string, a []any) (any, error) {
			return pyReplace(s, pyStr(a[0]), pyStr(a[1]), a[2])
		}),
		"reverse": f("", func(in any, _ []any) (any, error) {
			if s, ok := asStr(in); ok {
				r := []rune(s)
				slices.Reverse(r)
				return string(r), nil
			}
			l, err := toList(in)
			slices.Reverse(l)
			return l, err
		}),
		"round":  f("precision=0, method='common'", fnRound),
		"slice":  f("slices, fill_with=None", fnSliceFilter),
		"sort":   f("reverse=False, case_sensitive=False, attribute=None", fnSort),
		"string": f("", func(in any, _ []any) (any, error) { return pyStr(in), nil }),
		"sum": f("attribute=None, start=0", func(in any, a []any) (any, error) {
			l, err := mapAttr(in, a[0])
			if err != nil {
				return nil, err
			}
			total := a[1]
			for _, v := range l {
				if bad := use(v); bad != nil {
					return nil, bad
				}
				if total, err = binary("+", total, v); err != nil {
					return nil, err
				}
			}
			return total, nil
		}),
		"title": strF("", func(s string, _ []any) (any, error) {
			// Each word after -, ( { [ <, or whitespace starts in upper case.
			var b strings.Builder
			start := true
			for _, r := range s {
				switch {
				case strings.ContainsRune("-({[<", r) || isSpace(r):
					b.WriteRune(r)
					start = true
				case start:
					b.WriteRune(unicode.ToUpper(r))
					start = false
				default:
					b.WriteRune(unicode.ToLower(r))
				}
			}
			return b.String(), nil
		}),
		"tojson": f("indent=None", func(in any, a []any) (any, error) {
			st := jsonStyle{indent: -1, sortKeys: true, item: ", ", key: ": ", ascii: true}
			if a[0] != nil {
				n, err := sizeArg("indent", a[0])
				if err != nil {
					return nil, err
				}
				st.indent, st.item = max(n, 0), ","
			}
			var b strings.Builder
			if err := writeJSON(&b, in, st, 0); err != nil {
				return nil, err
			}
			return strings.NewReplacer("<", `\u003c`, ">", `\u003e`, "&", `\u0026`, "'", `\u0027`).Replace(b.String()), nil
		}),
		"trim":     strF("chars=None", func(s string, a []any) (any, error) { return pyStrip(s, a[0], true, true) }),
		"truncate": strF("length=255, killwords=False, end='...', leeway=None", fnTruncate),
		"unique": f("case_sensitive=False, attribute=None", func(in any, a []any) (any, error) {
			return unique(in, truthy(a[0]), a[1])
		}),
		"urlencode": f("", fnURLEncode),
		"wordcount": strF("", func(s string, _ []any) (any, error) { return len(word.FindAllString(s, -1)), nil }),

		// Ansible's (ansible/plugins/filter/core.py, mathstuff.py).
		"b64encode": f("encoding='utf-8'", func(in any, a []any) (any, error) {
			if err := utf8Only(a[0]); err != nil {
				return nil, err
			}
			return base64.StdEncoding.EncodeToString([]byte(pyStr(in))), nil
		}),
		"b64decode": f("encoding='utf-8'", func(in any, a []any) (any, error) {
			if err := utf8Only(a[0]); err != nil {
				return nil, err
			}
			// Python's b64decode skips characters outside the alphabet.
			s := strings.Map(func(r rune) rune {
				if r < 0x80 && (isIdentChar(byte(r)) && r != '_' || r == '+' || r == '/' || r == '=') {
					return r
				}
				return -1
			}, pyStr(in))
			out, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, errors.New("Incorrect padding")
			}
			if !utf8.Valid(out) {
				return nil, errors.New("the decoded bytes are not UTF-8 text")
			}
			return string(out), nil
		}),
		"to_json": f("**kwargs", func(in any, a []any) (any, error) { return toJSON(in, defaultJSON, a[0].(*dict)) }),
		"to_nice_json": f("indent=4, sort_keys=True, **kwargs", func(in any, a []any) (any, error) {
			st := jsonStyle{sortKeys: truthy(a[1]), item: ",", key: ": ", ascii: true}
			n, err := sizeArg("indent", a[0])
			if err != nil {
				return nil, err
			}
			st.indent = max(n, 0)
			return toJSON(in, st, a[2].(*dict))
		}),
		"from_json": strF("", func(s string, _ []any) (any, error) { return FromJSON(s) }),
		"to_yaml": f("**kwargs", func(in any, a []any) (any, error) {
			return toYAML(in, yamlStyle{indent: 2, width: 80, flow: flowAuto, sortKeys: true}, a[0].(*dict))
		}),
		"to_nice_yaml": f("indent=4, **kwargs", func(in any, a []any) (any, error) {
			n, ok := toNum(a[0])
			if !ok || !n.isInt {
				return nil, errors.New("indent must be an integer")
			}
			return toYAML(in, yamlStyle{indent: int(n.i), width: 80, flow: flowNever, sortKeys: true}, a[1].(*dict))
		}),
		"from_yaml": f("", func(in any, _ []any) (any, error) {
			if s, ok := asStr(in); ok {
				docs, err := fromYAML(s)
				if err != nil || len(docs) == 0 {
					return nil, err
				}
				return docs[0], nil
			}
			return in, nil
		}),
		"from_yaml_all": f("", func(in any, _ []any) (any, error) {
			if s, ok := asStr(in); ok {
				docs, err := fromYAML(s)
				return docs, err
			}
			return in, nil
		}),
		"basename": strF("", func(s string, _ []any) (any, error) { return s[strings.LastIndexByte(s, '/')+1:], nil }),
		"dirname":  strF("", func(s string, _ []any) (any, error) { return dirname(s), nil }),
		"splitext": strF("", func(s string, _ []any) (any, error) {
			root, ext := splitext(s)
			return tuple{root, ext}, nil
		}),
		"path_join": f("", func(in any, _ []any) (any, error) {
			if s, ok := asStr(in); ok {
				return s, nil
			}
			l, err := asList(in)
			if err != nil {
				return nil, fmt.Errorf("|path_join expects string or sequence, got %s instead", typeName(in))
			}
			out := ""
			for i, p := range l {
				s := pyStr(p)
				switch {
				case strings.HasPrefix(s, "/"), i == 0:
					out = s
				case out == "" || strings.HasSuffix(out, "/"):
					out += s
				default:
					out += "/" + s
				}
			}
			return out, nil
		}),
		"bool": f("", func(in any, _ []any) (any, error) {
			switch {
			case in == nil || isBool(in):
				return in, nil
			}
			if s, ok := asStr(in); ok {
				return slices.Contains([]string{"yes", "on", "1", "true"}, strings.ToLower(s)), nil
			}
			n, ok := toNum(in)
			return ok && n.f == 1, nil
		}),
		"quote": f("", func(in any, _ []any) (any, error) {
			s := ""
			if in != nil {
				s = pyStr(in)
			}
			return shellQuote(s), nil
		}),
		"md5":      strF("", func(s string, _ []any) (any, error) { return hexDigest(md5.New(), s), nil }),
		"sha1":     strF("", func(s string, _ []any) (any, error) { return hexDigest(sha1.New(), s), nil }),
		"checksum": strF("", func(s string, _ []any) (any, error) { return hexDigest(sha1.New(), s), nil }),
		"hash": strF("hashtype='sha1'", func(s string, a []any) (any, error) {
			h, ok := hashes[pyStr(a[0])]
			if !ok {
				return nil, fmt.Errorf("unsupported hash type %s (supported: md5, sha1, sha224, sha256, sha384, sha512)", pyStr(a[0]))
			}
			return hexDigest(h(), s), nil
		}),
		"regex_replace": strF("pattern='', replacement='', ignorecase=False, multiline=False", fnRegexReplace),
		"regex_search":  strF("regex, *args, **kwargs", fnRegexSearch),
		"regex_findall": strF("regex, multiline=False, ignorecase=False", fnRegexFindall),
		"regex_escape": strF("re_type='python'", func(s string, a []any) (any, error) {
			switch pyStr(a[0]) {
			case "python":
				var b strings.Builder
				for _, r := range s {
					if strings.ContainsRune("()[]{}?*+-|^$\\.&~# \t\n\r\v\f", r) {
						b.WriteByte('\\')
					}
					b.WriteRune(r)
				}
				return b.String(), nil
			case "posix_basic":
				return regexp.MustCompile(`([].[^$*\\])`).ReplaceAllString(s, `\$1`), nil
			}
			return nil, fmt.Errorf("Invalid regex type (%s)", pyStr(a[0]))
		}),
		"ternary": {sig: sig("true_val, false_val, none_val=None"), lazy: true, fn: func(in any, a []any) (any, error) {
			if bad := use(in); bad != nil {
				return nil, bad
			}
			switch {
			case in == nil && a[2] != nil:
				return a[2], nil
			case truthy(in):
				return a[0], nil
			}
			return a[1], nil
		}},
		"mandatory": {sig: sig("msg=None"), lazy: true, fn: func(in any, a []any) (any, error) {
			if m, ok := in.(*missing); ok {
				if a[0] != nil {
					return nil, errors.New(pyStr(a[0]))
				}
				return nil, fmt.Errorf("Mandatory variable '%s' not defined.", m.name)
			}
			if bad := use(in); bad != nil {
				return nil, bad
			}
			return in, nil
		}},
		"combine": f("*terms, **kwargs", fnCombine),
		"extract": f("container, morekeys=None", func(in any, a []any) (any, error) {
			keys := []any{in}
			switch m := a[1].(type) {
			case nil:
			case []any:
				keys = append(keys, m...)
			default:
				keys = append(keys, m)
			}
			v := a[0]
			for _, k := range keys {
				next, ok := item(v, k)
				if !ok {
					return &missing{name: pyStr(k)}, nil
				}
				v = next
			}
			return v, nil
		}),
		"flatten":     f("levels=None, skip_nulls=True", fnFlatten),
		"dict2items":  f("key_name='key', value_name='value'", fnDict2Items),
		"items2dict":  f("key_name='key', value_name='value'", fnItems2Dict),
		"subelements": f("subelements, skip_missing=False", fnSubelements),
		"split":       strF("sep=None, maxsplit=-1", func(s string, a []any) (any, error) { return pySplit(s, a[0], a[1]) }),
		"to_uuid":     strF("namespace='361E6D51-FAEC-444A-9079-341386DA8E2E'", fnUUID),
		"intersect": f("b", func(in any, a []any) (any, error) {
			return setOp(in, a[0], func(x any, inB bool) bool { return inB })
		}),
		"difference": f("b", func(in any, a []any) (any, error) {
			return setOp(in, a[0], func(x any, inB bool) bool { return !inB })
		}),
		"union": f("b", func(in any, a []any) (any, error) {
			l, err := binary("+", in, a[0])
			if err != nil {
				return nil, err
			}
			return unique(l, true, nil)
		}),
		"symmetric_difference": f("b", func(in any, a []any) (any, error) {
			both, err := setOp(in, a[0], func(x any, inB bool) bool { return inB })
			if err != nil {
				return nil, err
			}
			all, err := binary("+", in, a[0])
			if err != nil {
				return nil, err
			}
			all, _ = unique(all, true, nil)
			out := []any{}
			for _, x := range all.([]any) {
				if in, _ := contains(both, x); !in {
					out = append(out, x)
				}
			}
			return out, nil
		}),
		"log": f("base=None", func(in any, a []any) (any, error) {
			x, ok := toNum(in)
			if !ok {
				return nil, fmt.Errorf("log() can only be used on numbers")
			}
			switch b, ok := toNum(a[0]); {
			case a[0] == nil:
				return math.Log(x.f), nil
			case !ok:
				return nil, fmt.Errorf("log() can only be used on numbers")
			case b.f == 10:
				return math.Log10(x.f), nil
			default:
				return math.Log(x.f) / math.Log(b.f), nil
			}
		}),
		"pow": f("y", func(in any, a []any) (any, error) {
			x, ok1 := toNum(in)
			y, ok2 := toNum(a[0])
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("pow() can only be used on numbers")
			}
			return math.Pow(x.f, y.f), nil
		}),
		"root": f("base=2", func(in any, a []any) (any, error) {
			x, ok1 := toNum(in)
			b, ok2 := toNum(a[0])
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("root() can only be used on numbers")
			}
			if b.f == 2 {
				return math.Sqrt(x.f), nil
			}
			r := math.Pow(x.f, 1/b.f)
			// Go's Pow may be an ulp off where C's gives an exact root.
			if k := math.Round(r); math.Pow(k, b.f) == x.f {
				return k, nil
			}
			return r, nil
		}),
		"zip":          f("*others", func(in any, a []any) (any, error) { return zipLists(in, a[0].([]any), false, nil) }),
		"zip_longest":  f("*others, fillvalue=None", func(in any, a []any) (any, error) { return zipLists(in, a[0].([]any), true, a[1]) }),
		"product":      f("*others, repeat=1", fnProduct),
		"permutations": f("r=None", func(in any, a []any) (any, error) { return combinatorics(in, a[0], true) }),
		"combinations": f("r", func(in any, a []any) (any, error) { return combinatorics(in, a[0], false) }),
	}
}

func fnDefault(in any, a []any) (any, error) {
	if _, ok := in.(*missing); ok {
		return a[0], nil
	}
	if bad := use(in, a[1]); bad != nil {
		return nil, bad
	}
	if truthy(a[1]) && !truthy(in) {
		return a[0], nil
	}
	return in, nil
}

func fnLength(in any, _ []any) (any, error) {
	n, ok := length(in)
	if !ok {
		return nil, fmt.Errorf("object of type '%s' has no len()", typeName(in))
	}
	return n, nil
}

// sizeArg reads a size argument, bounded by maxSize.
func sizeArg(what string, v any) (int, error) {
	n, ok := toNum(v)
	switch {
	case !ok || !n.isInt:
		return 0, fmt.Errorf("%s must be an integer, not %s", what, typeName(v))
	case n.i > maxSize:
		return 0, fmt.Errorf("%s %d is beyond e2c's bound of %d", what, n.i, maxSize)
	}
	return int(n.i), nil
}

func fnInt(in any, a []any) (any, error) {
	base := 10
	if b, ok := toNum(a[1]); ok && b.isInt {
		base = int(b.i)
	}
	if base != 0 && (base < 2 || base > 36) {
		return nil, errors.New("int() base must be >= 2 and <= 36, or 0")
	}
	if s, ok := asStr(in); ok {
		if i, ok := pyInt(s, base); ok {
			return i, nil
		}
		if f, ok := pyFloatOf(s); ok && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return int(f), nil
		}
		return a[0], nil
	}
	if n, ok := toNum(in); ok {
		if n.isInt {
			return int(n.i), nil
		}
		if math.IsInf(n.f, 0) || math.IsNaN(n.f) {
			return nil, fmt.Errorf("cannot convert float %s to integer", pyFloat(n.f))
		}
		return int(n.f), nil
	}
	return a[0], nil
}

func fnBatch(in any, a []any) (any, error) {
	l, err := toList(in)
	if err != nil {
		return nil, err
	}
	n, ok := toNum(a[0])
	if !ok || !n.isInt || n.i <= 0 || n.i > maxSize {
		return nil, errors.New("linecount must be a positive integer, at most 1048576")
	}
	var out []any
	for len(l) > 0 {
		k := min(int(n.i), len(l))
		row := append([]any{}, l[:k]...)
		l = l[k:]
		for a[1] != nil && len(row) < int(n.i) {
			row = append(row, a[1])
		}
		out = append(out, row)
	}
	return append([]any{}, out...), nil
}

func fnSliceFilter(in any, a []any) (any, error) {
	seq, err := toList(in)
	if err != nil {
		return nil, err
	}
	n, ok := toNum(a[0])
	if !ok || !n.isInt || n.i <= 0 || n.i > maxSize {
		return nil, errors.New("slices must be a positive integer")
	}
	slices := int(n.i)
	per, extra := len(seq)/slices, len(seq)%slices
	offset := 0
	out := []any{}
	for i := 0; i < slices; i++ {
		start := offset + i*per
		if i < extra {
			offset++
		}
		end := offset + (i+1)*per
		part := append([]any{}, seq[start:end]...)
		if a[1] != nil && i >= extra {
			part = append(part, a[1])
		}
		out = append(out, part)
	}
	return out, nil
}

func fnIndent(in any, a []any) (any, error) {
	s := pyStr(in)
	ind := ""
	if w, ok := asStr(a[0]); ok {
		ind = w
	} else {
		w, err := sizeArg("width", a[0])
		if err != nil {
			return nil, err
		}
		ind = strings.Repeat(" ", max(w, 0))
	}
	if int64(len(ind))*int64(strings.Count(s, "\n")+1) > maxSize {
		return nil, errTooLarge
	}
	var lines []string
	for _, l := range splitLines(s + "\n") {
		lines = append(lines, l.(string))
	}
	var rv string
	if truthy(a[2]) {
		rv = strings.Join(lines, "\n"+ind)
	} else {
		rv = lines[0]
		for _, l := range lines[1:] {
			if l != "" {
				l = ind + l
			}
			rv += "\n" + l
		}
	}
	if truthy(a[1]) {
		rv = ind + rv
	}
	return rv, nil
}

func fnTruncate(s string, a []any) (any, error) {
	n, ok := toNum(a[0])
	if !ok || !n.isInt {
		return nil, errors.New("length must be an integer")
	}
	end := pyStr(a[2])
	leeway := int64(5)
	if a[3] != nil {
		l, ok := toNum(a[3])
		if !ok || !l.isInt || l.i < 0 {
			return nil, errors.New("expected leeway >= 0")
		}
		leeway = l.i
	}
	r := []rune(s)
	if n.i < int64(utf8.RuneCountInString(end)) {
		return nil, fmt.Errorf("expected length >= %d, got %d", utf8.RuneCountInString(end), n.i)
	}
	if int64(len(r)) <= n.i+leeway {
		return s, nil
	}
	cut := string(r[:n.i-int64(utf8.RuneCountInString(end))])
	if truthy(a[1]) {
		return cut + end, nil
	}
	if i := strings.LastIndexByte(cut, ' '); i >= 0 {
		cut = cut[:i]
	}
	return cut + end, nil
}

func fnFilesize(in any, a []any) (any, error) {
	var b float64
	if s, ok := asStr(in); ok {
		f, ok := pyFloatOf(s)
		if !ok {
			return nil, fmt.Errorf("could not convert string to float: %s", pyRepr(s))
		}
		b = f
	} else if n, ok := toNum(in); ok {
		b = n.f
	} else {
		return nil, fmt.Errorf("float() argument must be a string or a real number, not '%s'", typeName(in))
	}
	base := 1000.0
	prefixes := []string{"kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"}
	if truthy(a[0]) {
		base = 1024
		prefixes = []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"}
	}
	switch {
	case b == 1:
		return "1 Byte", nil
	case b < base:
		return fmt.Sprintf("%d Bytes", int64(b)), nil
	}
	unit := base
	for i, p := range prefixes {
		unit = math.Pow(base, float64(i+2))
		if b < unit || i == len(prefixes)-1 {
			return strconv.FormatFloat(base*b/unit, 'f', 1, 64) + " " + p, nil
		}
	}
	return nil, nil
}

func fnRound(in any, a []any) (any, error) {
	n, ok := toNum(in)
	if !ok {
		return nil, fmt.Errorf("type %s doesn't define __round__ method", typeName(in))
	}
	p, ok := toNum(a[0])
	if !ok || !p.isInt {
		return nil, errors.New("precision must be an integer")
	}
	method := pyStr(a[1])
	scale := math.Pow(10, float64(p.i))
	switch method {
	case "common":
		if n.isInt && p.i >= 0 {
			return int(n.i), nil
		}
		if p.i < 0 || p.i > 300 {
			return math.RoundToEven(n.f*scale) / scale, nil
		}
		// Python rounds the exact binary value, half to even, as
		// FormatFloat does.
		r, _ := strconv.ParseFloat(strconv.FormatFloat(n.f, 'f', int(p.i), 64), 64)
		return r, nil
	case "ceil":
		return math.Ceil(n.f*scale) / scale, nil
	case "floor":
		return math.Floor(n.f*scale) / scale, nil
	}
	return nil, errors.New("method must be common, ceil or floor")
}

// attrGetter is Jinja's make_attrgetter: "a.b.0" looks up a, then b, then
// index 0; a missing step gives def when there is one, else undefined.
func attrGetter(attr any, def any, lower bool) func(v any) any {
	var parts []any
	if s, ok := asStr(attr); ok {
		for _, p := range strings.Split(s, ".") {
			if i, err := strconv.Atoi(p); err == nil {
				parts = append(parts, i)
			} else {
				parts = append(parts, p)
			}
		}
	} else {
		parts = []any{attr}
	}
	return func(v any) any {
		for _, p := range parts {
			next, ok := item(v, p)
			if !ok {
				if def != nil {
					return def
				}
				return &missing{why: fmt.Sprintf("'%s object' has no attribute %s", typeName(v), pyRepr(p))}
			}
			v = next
		}
		if s, ok := asStr(v); ok && lower {
			return strings.ToLower(s)
		}
		return v
	}
}

// mapAttr lists in's items, or with attribute their attribute.
func mapAttr(in, attribute any) ([]any, error) {
	l, err := toList(in)
	if err != nil || attribute == nil {
		return l, err
	}
	get := attrGetter(attribute, nil, false)
	for i, v := range l {
		l[i] = get(v)
	}
	return l, nil
}

func fnMap(in any, a []any) (any, error) {
	args, kw := a[0].([]any), a[1].(*dict)
	l, err := toList(in)
	if err != nil {
		return nil, err
	}
	if attr, ok := kw.Get("attribute"); ok && len(args) == 0 {
		for _, k := range kw.Keys() {
			if k != "attribute" && k != "default" {
				return nil, fmt.Errorf("unexpected keyword argument %q", k)
			}
		}
		get := attrGetter(attr, val(kw, "default"), false)
		out := make([]any, len(l))
		for i, v := range l {
			out[i] = get(v)
		}
		return out, nil
	}
	if len(args) == 0 {
		return nil, errors.New("map requires a filter argument")
	}
	name, _ := asStr(args[0])
	c := filters[filterName(name)]
	if c == nil {
		return nil, fmt.Errorf("no filter named %s", pyRepr(args[0]))
	}
	rest := append([]any{}, args[1:]...)
	for _, k := range kw.Keys() {
		rest = append(rest, kwarg{k, val(kw, k)})
	}
	out := make([]any, len(l))
	for i, v := range l {
		if out[i], err = call(c, v, rest); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// selectItems is select, reject, selectattr and rejectattr: the items for
// which the test (or the item's truth, without one) is keep.
func selectItems(in any, a []any, keep, attr bool) (any, error) {
	args, kw := a[0].([]any), a[1].(*dict)
	l, err := toList(in)
	if err != nil {
		return nil, err
	}
	get := func(v any) any { return v }
	if attr {
		if len(args) == 0 {
			return nil, errors.New("missing parameter for attribute name")
		}
		get = attrGetter(args[0], nil, false)
		args = args[1:]
	}
	var test *callable
	var rest []any
	if len(args) > 0 {
		name, _ := asStr(args[0])
		if test = tests[filterName(name)]; test == nil {
			return nil, fmt.Errorf("no test named %s", pyRepr(args[0]))
		}
		rest = append(rest, args[1:]...)
		for _, k := range kw.Keys() {
			rest = append(rest, kwarg{k, val(kw, k)})
		}
	}
	out := []any{}
	for _, v := range l {
		x := get(v)
		var ok bool
		if test == nil {
			if bad := use(x); bad != nil {
				return nil, bad
			}
			ok = truthy(x)
		} else {
			r, err := call(test, x, rest)
			if err != nil {
				return nil, err
			}
			ok = truthy(r)
		}
		if ok == keep {
			out = append(out, v)
		}
	}
	return out, nil
}

// sortKey is Jinja's key for sort, unique, min and max: the attribute, and
// strings in lower case unless case-sensitive. Several comma-separated
// attributes give a tuple.
func sortKey(attribute any, caseSensitive bool) func(any) any {
	if s, ok := asStr(attribute); ok && strings.Contains(s, ",") {
		var gets []func(any) any
		for _, part := range strings.Split(s, ",") {
			gets = append(gets, attrGetter(strings.TrimSpace(part), nil, !caseSensitive))
		}
		return func(v any) any {
			t := make(tuple, len(gets))
			for i, g := range gets {
				t[i] = g(v)
			}
			return t
		}
	}
	if attribute != nil {
		return attrGetter(attribute, nil, !caseSensitive)
	}
	return func(v any) any {
		if s, ok := asStr(v); ok && !caseSensitive {
			return strings.ToLower(s)
		}
		return v
	}
}

// sortItems sorts l stably by key, as Python's sorted does.
func sortItems(l []any, key func(any) any, reverse bool) error {
	keys := make([]any, len(l))
	for i, v := range l {
		keys[i] = key(v)
		if bad := use(keys[i]); bad != nil {
			return bad
		}
	}
	idx := make([]int, len(l))
	for i := range idx {
		idx[i] = i
	}
	var err error
	sort.SliceStable(idx, func(i, j int) bool {
		a, b := keys[idx[i]], keys[idx[j]]
		if reverse {
			a, b = b, a
		}
		c, e := pyCompare("<", a, b)
		if e != nil && err == nil {
			err = e
		}
		return c < 0
	})
	if err != nil {
		return err
	}
	sorted := make([]any, len(l))
	for i, k := range idx {
		sorted[i] = l[k]
	}
	copy(l, sorted)
	return nil
}

func fnSort(in any, a []any) (any, error) {
	l, err := toList(in)
	if err != nil {
		return nil, err
	}
	return l, sortItems(l, sortKey(a[2], truthy(a[1])), truthy(a[0]))
}

func fnDictsort(in any, a []any) (any, error) {
	pairs, err := items(in)
	if err != nil {
		return nil, errors.New("you can only sort by either \"key\" or \"value\"")
	}
	pos := 0
	switch pyStr(a[1]) {
	case "key":
	case "value":
		pos = 1
	default:
		return nil, errors.New(`You can only sort by either "key" or "value"`)
	}
	cs := truthy(a[0])
	l := pairs.([]any)
	return l, sortItems(l, func(v any) any { return sortKey(nil, cs)(v.(tuple)[pos]) }, truthy(a[2]))
}

func minMax(in any, a []any, sign int) (any, error) {
	l, err := toList(in)
	if err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return &missing{why: "No aggregated item, sequence was empty."}, nil
	}
	key := sortKey(a[1], truthy(a[0]))
	best, bestKey := l[0], key(l[0])
	for _, v := range l[1:] {
		k := key(v)
		if bad := use(k, bestKey); bad != nil {
			return nil, bad
		}
		c, err := pyCompare("<", k, bestKey)
		if err != nil {
			return nil, err
		}
		if c*sign > 0 {
			best, bestKey = v, k
		}
	}
	return best, nil
}

// unique keeps the first item of each key, in order.
func unique(in any, caseSensitive bool, attribute any) (any, error) {
	l, err := toList(in)
	if err != nil {
		return nil, err
	}
	key := sortKey(attribute, caseSensitive)
	out := []any{}
	var seen valueSet
	for _, v := range l {
		k := key(v)
		if bad := use(k); bad != nil {
			return nil, bad
		}
		if !seen.has(k) {
			seen.add(k)
			out = append(out, v)
		}
	}
	return out, nil
}

// valueSet holds values by Python equality, in linear time for scalars (1,
// 1.0 and True are one value, as in Python).
type valueSet struct {
	scalars map[scalar]bool
	others  []any
}

type scalar struct {
	kind byte // 'n' a number (f holds an integral one), 's' a string, 'N' None
	f    float64
	i    int64
	s    string
}

func scalarOf(v any) (scalar, bool) {
	if v == nil {
		return scalar{kind: 'N'}, true
	}
	if n, ok := toNum(v); ok {
		if n.isInt {
			return scalar{kind: 'n', i: n.i}, true
		}
		if n.f == math.Trunc(n.f) && math.Abs(n.f) < 1<<62 {
			return scalar{kind: 'n', i: int64(n.f)}, true
		}
		return scalar{kind: 'n', f: n.f, i: math.MinInt64}, true
	}
	if s, ok := asStr(v); ok {
		return scalar{kind: 's', s: s}, true
	}
	return scalar{}, false
}

func (s *valueSet) add(v any) {
	if k, ok := scalarOf(v); ok {
		if s.scalars == nil {
			s.scalars = map[scalar]bool{}
		}
		s.scalars[k] = true
		return
	}
	s.others = append(s.others, v)
}

func (s *valueSet) has(v any) bool {
	if k, ok := scalarOf(v); ok {
		return s.scalars[k]
	}
	return slices.ContainsFunc(s.others, func(o any) bool { return pyEqual(o, v) })
}

// setOp is intersect and difference on lists: a's items, once each, that
// keep says to keep given whether b holds them.
func setOp(a, b any, keep func(x any, inB bool) bool) (any, error) {
	la, err := asList(a)
	if err != nil {
		return nil, err
	}
	lb, err := asList(b)
	if err != nil {
		return nil, err
	}
	var inB valueSet
	for _, y := range lb {
		inB.add(y)
	}
	var out []any
	for _, x := range la {
		if keep(x, inB.has(x)) {
			out = append(out, x)
		}
	}
	return unique(out, true, nil)
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&#39;", `"`, "&#34;").Replace(s)
}

var word = regexp.MustCompile(`[\p{L}\p{N}_]+`) // Python's \w

func fnURLEncode(in any, _ []any) (any, error) {
	quote := func(v any, qs bool) string {
		var b strings.Builder
		for _, c := range []byte(pyStr(v)) {
			switch {
			case c < 0x80 && (isIdentChar(c) || strings.IndexByte(".-~", c) >= 0 || c == '/' && !qs):
				b.WriteByte(c)
			case c == ' ' && qs:
				b.WriteByte('+')
			default:
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		return b.String()
	}
	if _, ok := asStr(in); ok || !isList(in) && !isMapping(in) {
		return quote(in, false), nil
	}
	var rows []any
	if isMapping(in) {
		r, _ := items(in)
		rows = r.([]any)
	} else {
		rows, _ = asList(in)
	}
	parts := make([]string, len(rows))
	for i, r := range rows {
		kv, err := asList(r)
		if err != nil || len(kv) != 2 {
			return nil, errors.New("urlencode needs a mapping or a list of pairs")
		}
		parts[i] = quote(kv[0], true) + "=" + quote(kv[1], true)
	}
	return strings.Join(parts, "&"), nil
}

func utf8Only(enc any) error {
	if e := strings.ToLower(strings.ReplaceAll(pyStr(enc), "-", "")); e != "utf8" {
		return fmt.Errorf("encoding %s is not supported (only utf-8)", pyStr(enc))
	}
	return nil
}

// shellQuote is Python's shlex.quote.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c < 0x80 && (isIdentChar(c) || strings.IndexByte("@%+=:,./-", c) >= 0)) {
			safe = false
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// dirname is Python's posixpath.dirname.
func dirname(s string) string {
	head := s[:strings.LastIndexByte(s, '/')+1]
	if strings.Trim(head, "/") != "" {
		head = strings.TrimRight(head, "/")
	}
	return head
}

// splitext is Python's posixpath.splitext: the extension starts at the
// last dot of the last component, unless only dots come before it.
func splitext(s string) (string, string) {
	dot := strings.LastIndexByte(s, '.')
	if dot <= strings.LastIndexByte(s, '/') {
		return s, ""
	}
	base := s[strings.LastIndexByte(s, '/')+1 : dot]
	if strings.Trim(base, ".") == "" {
		return s, ""
	}
	return s[:dot], s[dot:]
}

var hashes = map[string]func() hash.Hash{
	"md5": md5.New, "sha1": sha1.New, "sha224": sha256.New224, "sha256": sha256.New,
	"sha384": sha512.New384, "sha512": sha512.New,
}

func hexDigest(h hash.Hash, s string) string {
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil))
}

// fnUUID is Ansible's to_uuid: a version 5 UUID of s in namespace.
func fnUUID(s string, a []any) (any, error) {
	ns, err := hex.DecodeString(strings.ReplaceAll(strings.Trim(pyStr(a[0]), "{}"), "-", ""))
	if err != nil || len(ns) != 16 {
		return nil, fmt.Errorf("Invalid value '%s' for 'namespace'", pyStr(a[0]))
	}
	h := sha1.New()
	h.Write(ns)
	h.Write([]byte(s))
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	x := hex.EncodeToString(u)
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:], nil
}

// compileRegex compiles a Python pattern with Go's RE2, which lacks
// lookaround and backreferences.
func compileRegex(pattern any, ignorecase, multiline bool) (*regexp.Regexp, error) {
	p := pyStr(pattern)
	flags := ""
	if ignorecase {
		flags += "i"
	}
	if multiline {
		flags += "m"
	}
	if flags != "" {
		p = "(?" + flags + ")" + p
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("%v (e2c's regular expressions are Go's RE2: no lookaround or backreferences)", err)
	}
	return re, nil
}

func fnRegexReplace(s string, a []any) (any, error) {
	re, err := compileRegex(a[0], truthy(a[2]), truthy(a[3]))
	if err != nil {
		return nil, err
	}
	repl, err := pyReplacement(pyStr(a[1]))
	if err != nil {
		return nil, err
	}
	out := re.ReplaceAllString(s, repl)
	if len(out) > maxSize {
		return nil, errTooLarge
	}
	return out, nil
}

// pyReplacement translates re.sub's replacement (\1, \g<1>, \g<name>, \n)
// to Go's ($1, ${name}).
func pyReplacement(repl string) (string, error) {
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
			case d == '\\':
				b.WriteByte('\\')
			default:
				r, n := escape(repl[i:])
				if n == 0 || r < 0 || unicode.IsLetter(rune(d)) && !strings.ContainsRune("abfnrtv", rune(d)) {
					return "", fmt.Errorf(`bad escape \%c in the replacement`, d)
				}
				b.WriteRune(r)
				i += n - 1
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func fnRegexSearch(s string, a []any) (any, error) {
	args, kw := a[1].([]any), a[2].(*dict)
	var groups []string
	for _, g := range args {
		p := pyStr(g)
		switch {
		case strings.HasPrefix(p, `\g<`) && strings.HasSuffix(p, ">"):
			groups = append(groups, p[3:len(p)-1])
		case strings.HasPrefix(p, `\`) && len(p) > 1 && strings.Trim(p[1:], "0123456789") == "":
			groups = append(groups, p[1:])
		default:
			return nil, errors.New("Unknown argument")
		}
	}
	re, err := compileRegex(a[0], truthy(val(kw, "ignorecase")), truthy(val(kw, "multiline")))
	if err != nil {
		return nil, err
	}
	m := re.FindStringSubmatchIndex(s)
	if m == nil {
		return nil, nil
	}
	if len(groups) == 0 {
		return s[m[0]:m[1]], nil
	}
	out := []any{}
	for _, g := range groups {
		i, err := strconv.Atoi(g)
		if err != nil {
			if i = re.SubexpIndex(g); i < 0 {
				return nil, fmt.Errorf("unknown group name '%s'", g)
			}
		}
		if i > re.NumSubexp() {
			return nil, errors.New("invalid group reference")
		}
		if m[2*i] < 0 {
			out = append(out, nil)
		} else {
			out = append(out, s[m[2*i]:m[2*i+1]])
		}
	}
	return out, nil
}

func fnRegexFindall(s string, a []any) (any, error) {
	re, err := compileRegex(a[0], truthy(a[2]), truthy(a[1]))
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		switch len(m) {
		case 1:
			out = append(out, m[0])
		case 2:
			out = append(out, m[1])
		default:
			t := make(tuple, len(m)-1)
			for i, g := range m[1:] {
				t[i] = g
			}
			out = append(out, t)
		}
	}
	return out, nil
}

func fnCombine(in any, a []any) (any, error) {
	terms := append([]any{in}, a[0].([]any)...)
	kw := a[1].(*dict)
	recursive, listMerge := false, "replace"
	for _, k := range kw.Keys() {
		switch k {
		case "recursive":
			recursive = truthy(val(kw, k))
		case "list_merge":
			listMerge = pyStr(val(kw, k))
		default:
			return nil, errors.New("'recursive' and 'list_merge' are the only valid keyword arguments")
		}
	}
	if !slices.Contains([]string{"replace", "keep", "append", "prepend", "append_rp", "prepend_rp"}, listMerge) {
		return nil, fmt.Errorf("merge_hash: 'list_merge' is invalid: %s", listMerge)
	}
	flat, err := flatten(terms, 1, false)
	if err != nil {
		return nil, err
	}
	var dicts []*dict
	for _, t := range flat {
		d, ok := toDict(t)
		if !ok {
			return nil, fmt.Errorf("failed to combine variables, expected dicts but got a '%s'", typeName(t))
		}
		dicts = append(dicts, d)
	}
	if len(dicts) == 0 {
		return newDict(0), nil
	}
	result := dicts[len(dicts)-1]
	for i := len(dicts) - 2; i >= 0; i-- {
		result = mergeHash(dicts[i], result, recursive, listMerge)
	}
	return result, nil
}

// mergeHash is Ansible's merge_hash: y's keys over x's.
func mergeHash(x, y *dict, recursive bool, listMerge string) *dict {
	out := newDict(x.Len() + y.Len())
	if x.Len() == 0 || pyEqual(x, y) {
		for _, k := range y.Keys() {
			out.Set(k, val(y, k))
		}
		return out
	}
	for _, k := range x.Keys() {
		out.Set(k, val(x, k))
	}
	for _, k := range y.Keys() {
		yv := val(y, k)
		xv, ok := out.Get(k)
		if !ok {
			out.Set(k, yv)
			continue
		}
		xd, xIsMap := toDict(xv)
		yd, yIsMap := toDict(yv)
		switch {
		case xIsMap && yIsMap && recursive:
			out.Set(k, mergeHash(xd, yd, recursive, listMerge))
		case isList(xv) && isList(yv) && !(xIsMap || yIsMap):
			xl, _ := asList(xv)
			yl, _ := asList(yv)
			notInY := func() []any {
				var keep []any
				for _, z := range xl {
					if in, _ := contains(yl, z); !in {
						keep = append(keep, z)
					}
				}
				return keep
			}
			switch listMerge {
			case "replace":
				out.Set(k, yv)
			case "append":
				out.Set(k, slices.Concat(xl, yl))
			case "prepend":
				out.Set(k, slices.Concat(yl, xl))
			case "append_rp":
				out.Set(k, slices.Concat(notInY(), yl))
			case "prepend_rp":
				out.Set(k, slices.Concat(yl, notInY()))
			}
		default:
			out.Set(k, yv)
		}
	}
	return out
}

func fnFlatten(in any, a []any) (any, error) {
	levels := -1
	if a[0] != nil {
		n, ok := toNum(a[0])
		if !ok {
			return nil, errors.New("levels must be a number")
		}
		levels = int(n.i)
	}
	l, err := asList(in)
	if err != nil {
		return nil, err
	}
	return flatten(l, levels, truthy(a[1]))
}

// flatten is Ansible's: levels < 0 is all the way down; with skipNulls,
// None, 'None' and 'null' items are left out.
func flatten(l []any, levels int, skipNulls bool) ([]any, error) {
	out := []any{}
	for _, e := range l {
		if s, _ := asStr(e); skipNulls && (e == nil || s == "None" || s == "null") {
			continue
		}
		if isList(e) && levels != 0 {
			sub, _ := asList(e)
			inner, err := flatten(sub, levels-1, skipNulls)
			if err != nil {
				return nil, err
			}
			out = append(out, inner...)
		} else {
			out = append(out, e)
		}
		if len(out) > maxSize {
			return nil, errTooLarge
		}
	}
	return out, nil
}

func fnDict2Items(in any, a []any) (any, error) {
	keys, ok := keysOf(in)
	if !ok {
		return nil, fmt.Errorf("dict2items requires a dictionary, got %s instead.", typeName(in))
	}
	out := make([]any, len(keys))
	for i, k := range keys {
		v, _, _ := getKey(in, k)
		d := newDict(2)
		d.Set(pyStr(a[0]), k)
		d.Set(pyStr(a[1]), v)
		out[i] = d
	}
	return out, nil
}

func fnItems2Dict(in any, a []any) (any, error) {
	l, err := asList(in)
	if err != nil {
		return nil, fmt.Errorf("items2dict requires a list, got %s instead.", typeName(in))
	}
	out := newDict(len(l))
	for _, e := range l {
		if !isMapping(e) {
			return nil, fmt.Errorf("items2dict requires a list of dictionaries, got %s instead.", pyStr(in))
		}
		k, ok1, _ := getKey(e, pyStr(a[0]))
		v, ok2, _ := getKey(e, pyStr(a[1]))
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("items2dict requires each dictionary in the list to contain the keys '%s' and '%s', got %s instead.", pyStr(a[0]), pyStr(a[1]), pyStr(in))
		}
		out.Set(pyStr(k), v)
	}
	return out, nil
}

func fnSubelements(in any, a []any) (any, error) {
	var elems []any
	if keys, ok := keysOf(in); ok {
		for _, k := range keys {
			v, _, _ := getKey(in, k)
			elems = append(elems, v)
		}
	} else if l, err := asList(in); err == nil {
		elems = l
	} else {
		return nil, errors.New("obj must be a list of dicts or a nested dict")
	}
	var path []any
	if s, ok := asStr(a[0]); ok {
		for _, p := range strings.Split(s, ".") {
			path = append(path, p)
		}
	} else if l, err := asList(a[0]); err == nil {
		path = l
	} else {
		return nil, errors.New("subelements must be a list or a string")
	}
	out := []any{}
	for _, e := range elems {
		v := e
		skip := false
		for _, p := range path {
			if !isMapping(v) {
				return nil, fmt.Errorf("the key %s should point to a dictionary, got '%s'", pyStr(p), pyStr(v))
			}
			next, ok := item(v, p)
			if !ok {
				if truthy(a[1]) {
					skip = true
					break
				}
				return nil, fmt.Errorf("could not find %s key in iterated item %s", pyRepr(p), pyRepr(v))
			}
			v = next
		}
		if skip {
			continue
		}
		l, err := asList(v)
		if err != nil {
			return nil, fmt.Errorf("the key %s should point to a list, got %s", pyRepr(path[len(path)-1]), pyRepr(v))
		}
		for _, x := range l {
			out = append(out, tuple{e, x})
		}
		if len(out) > maxSize {
			return nil, errTooLarge
		}
	}
	return out, nil
}

func zipLists(in any, others []any, longest bool, fill any) (any, error) {
	lists := [][]any{}
	for _, v := range append([]any{in}, others...) {
		l, err := toList(v)
		if err != nil {
			return nil, err
		}
		lists = append(lists, l)
	}
	n := len(lists[0])
	for _, l := range lists {
		if longest {
			n = max(n, len(l))
		} else {
			n = min(n, len(l))
		}
	}
	out := make([]any, n)
	for i := range out {
		t := make(tuple, len(lists))
		for j, l := range lists {
			t[j] = fill
			if i < len(l) {
				t[j] = l[i]
			}
		}
		out[i] = t
	}
	return out, nil
}

func fnProduct(in any, a []any) (any, error) {
	var pools [][]any
	for _, v := range append([]any{in}, a[0].([]any)...) {
		l, err := toList(v)
		if err != nil {
			return nil, err
		}
		pools = append(pools, l)
	}
	r, ok := toNum(a[1])
	if !ok || !r.isInt || r.i < 0 || r.i > maxSize {
		return nil, errors.New("repeat must be a non-negative integer")
	}
	var all [][]any
	for range r.i {
		all = append(all, pools...)
	}
	count := int64(1)
	for _, p := range all {
		if count *= int64(len(p)); count > maxSize {
			return nil, errTooLarge
		}
	}
	out := []any{tuple{}}
	for _, p := range all {
		var next []any
		for _, t := range out {
			for _, x := range p {
				next = append(next, append(append(tuple{}, t.(tuple)...), x))
			}
		}
		out = next
	}
	return append([]any{}, out...), nil
}

// combinatorics is itertools' permutations and combinations, as lists of
// tuples in the same order.
func combinatorics(in, rArg any, perm bool) (any, error) {
	pool, err := toList(in)
	if err != nil {
		return nil, err
	}
	r := len(pool)
	if rArg != nil {
		n, ok := toNum(rArg)
		if !ok || !n.isInt || n.i < 0 {
			return nil, errors.New("r must be a non-negative integer")
		}
		r = int(min(n.i, maxSize))
	}
	count := int64(1)
	for i := 0; i < r && r <= len(pool); i++ {
		if count = count * int64(len(pool)-i); !perm {
			count /= int64(i + 1)
		}
		if count > maxSize {
			return nil, errTooLarge
		}
	}
	out := []any{}
	var idx []int
	used := make([]bool, len(pool))
	var rec func(start int) error
	rec = func(start int) error {
		if len(idx) == r {
			t := make(tuple, r)
			for i, k := range idx {
				t[i] = pool[k]
			}
			if out = append(out, t); len(out) > maxSize {
				return errTooLarge
			}
			return nil
		}
		for k := range pool {
			if perm && used[k] || !perm && k < start {
				continue
			}
			used[k] = true
			idx = append(idx, k)
			if err := rec(k + 1); err != nil {
				return err
			}
			idx = idx[:len(idx)-1]
			used[k] = false
		}
		return nil
	}
	if r <= len(pool) {
		if err := rec(0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// toJSON is Ansible's to_json and to_nice_json: json.dumps with st, or
// the keyword arguments given.
func toJSON(in any, st jsonStyle, kw *dict) (any, error) {
	for _, k := range kw.Keys() {
		v := val(kw, k)
		switch k {
		case "sort_keys":
			st.sortKeys = truthy(v)
		case "ensure_ascii":
			st.ascii = truthy(v)
		case "indent":
			if v == nil {
				st.indent = -1
				continue
			}
			n, err := sizeArg("indent", v)
			if err != nil {
				return nil, err
			}
			st.indent = max(n, 0)
			if _, given := kw.Get("separators"); !given {
				st.item = ","
			}
		case "separators":
			l, err := asList(v)
			if err != nil || len(l) != 2 {
				return nil, errors.New("separators must be a pair of strings")
			}
			st.item, st.key = pyStr(l[0]), pyStr(l[1])
		default:
			return nil, fmt.Errorf("keyword argument %q is not supported", k)
		}
	}
	var b strings.Builder
	if err := writeJSON(&b, in, st, 0); err != nil {
		return nil, err
	}
	return b.String(), nil
}
