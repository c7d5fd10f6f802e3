package tmpl

// The tests templates may use ("x is defined", "r is failed"): Jinja2's
// and Ansible's (ansible-core 2.14).

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// refusedTests are Jinja's and Ansible's tests that templates cannot use,
// and why.
var refusedTests = map[string]string{
	"abs":             "templates cannot read files",
	"exists":          "templates cannot read files",
	"file":            "templates cannot read files",
	"directory":       "templates cannot read files",
	"link":            "templates cannot read files",
	"mount":           "templates cannot read files",
	"same_file":       "templates cannot read files",
	"vault_encrypted": "vaults are not supported",
	"callable":        "Python objects are not supported",
	"escaped":         "",
	"uri":             "",
	"url":             "",
	"urn":             "",
}

var tests map[string]*callable

func test(spec string, fn func(in any, a []any) (bool, error)) *callable {
	return &callable{sig: sig(spec), fn: func(in any, a []any) (any, error) { return fn(in, a) }}
}

// typeTest is a test of the input's type, which an undefined input fails
// (isinstance in Python never raises).
func typeTest(fn func(in any) bool) *callable {
	return &callable{sig: sig(""), lazy: true, fn: func(in any, _ []any) (any, error) {
		if f, ok := in.(*failed); ok {
			return nil, f
		}
		_, undefined := in.(*missing)
		return !undefined && fn(in), nil
	}}
}

// compare is a test that compares like an operator.
func compare(op string) *callable {
	return test("other", func(in any, a []any) (bool, error) {
		r, err := binary(op, in, a[0])
		return r == true, err
	})
}

// result is a test of a registered task result's key, as Ansible's failed,
// changed and skipped read it.
func result(name string, fn func(r any) (bool, error)) *callable {
	return test("", func(in any, _ []any) (bool, error) {
		if !isMapping(in) {
			return false, fmt.Errorf("The '%s' test expects a dictionary", name)
		}
		return fn(in)
	})
}

func key(r any, k string) any {
	v, _, _ := getKey(r, k)
	return v
}

func init() {
	defined := &callable{sig: sig(""), lazy: true, fn: func(in any, _ []any) (any, error) {
		if f, ok := in.(*failed); ok {
			return nil, f
		}
		_, undefined := in.(*missing)
		return !undefined, nil
	}}
	failed := result("failed", func(r any) (bool, error) { return truthy(key(r, "failed")), nil })
	succeeded := result("succeeded", func(r any) (bool, error) { return !truthy(key(r, "failed")), nil })
	changed := result("changed", func(r any) (bool, error) {
		if v, ok, _ := getKey(r, "changed"); ok {
			return truthy(v), nil
		}
		// A loop's result changed if one of its results did.
		results, _ := asList(key(r, "results"))
		if len(results) > 0 && isMapping(results[0]) {
			for _, x := range results {
				if truthy(key(x, "changed")) {
					return true, nil
				}
			}
		}
		return false, nil
	})
	skipped := result("skipped", func(r any) (bool, error) { return truthy(key(r, "skipped")), nil })
	unreachable := result("unreachable", func(r any) (bool, error) { return truthy(key(r, "unreachable")), nil })
	async := func(name string) *callable {
		return result(name, func(r any) (bool, error) {
			v, ok, _ := getKey(r, name)
			return !ok || pyEqual(v, 1), nil
		})
	}
	regex := func(fixed string) *callable {
		return test("pattern='', ignorecase=False, multiline=False, match_type='search'", func(in any, a []any) (bool, error) {
			kind := fixed
			if kind == "" {
				kind = pyStr(a[3])
			}
			re, err := compileRegex(a[0], truthy(a[1]), truthy(a[2]))
			if err != nil {
				return false, err
			}
			s := pyStr(in)
			switch kind {
			case "match":
				return regexp.MustCompile(`^(?:` + re.String() + `)`).MatchString(s), nil
			case "fullmatch":
				return regexp.MustCompile(`^(?:` + re.String() + `)$`).MatchString(s), nil
			}
			return re.MatchString(s), nil
		})
	}
	numTest := func(pred func(n num) bool) *callable {
		return test("", func(in any, _ []any) (bool, error) {
			n, ok := toNum(in)
			if !ok {
				return false, fmt.Errorf("unsupported operand type(s) for %%: '%s' and 'int'", typeName(in))
			}
			return pred(n), nil
		})
	}
	tests = map[string]*callable{
		// Jinja2's.
		"defined": defined,
		"undefined": {sig: sig(""), lazy: true, fn: func(in any, a []any) (any, error) {
			d, err := defined.fn(in, a)
			if err != nil {
				return nil, err
			}
			return !d.(bool), nil
		}},
		"none":    typeTest(func(in any) bool { return in == nil }),
		"boolean": typeTest(isBool),
		"true":    typeTest(func(in any) bool { return isBool(in) && truthy(in) }),
		"false":   typeTest(func(in any) bool { return isBool(in) && !truthy(in) }),
		"integer": typeTest(func(in any) bool { n, ok := toNum(in); return ok && n.isInt && !isBool(in) }),
		"float":   typeTest(func(in any) bool { n, ok := toNum(in); return ok && !n.isInt }),
		"number":  typeTest(func(in any) bool { _, ok := toNum(in); return ok }),
		"string":  typeTest(isStr),
		"mapping": typeTest(isMapping),
		"iterable": test("", func(in any, _ []any) (bool, error) {
			_, err := toList(in)
			return err == nil, nil
		}),
		"sequence": test("", func(in any, _ []any) (bool, error) {
			_, ok := length(in)
			return ok, nil
		}),
		"sameas": {sig: sig("other"), lazy: true, fn: func(in any, a []any) (any, error) {
			if bad := use(in, a[0]); bad != nil {
				return nil, bad
			}
			return sameAs(in, a[0]), nil
		}},
		"lower": test("", func(in any, _ []any) (bool, error) { return cased(pyStr(in), unicode.IsLower, unicode.IsUpper), nil }),
		"upper": test("", func(in any, _ []any) (bool, error) { return cased(pyStr(in), unicode.IsUpper, unicode.IsLower), nil }),
		"odd":   numTest(func(n num) bool { r, _ := arith("%", n, num{2, 2, true}); return pyEqual(r, 1) }),
		"even":  numTest(func(n num) bool { r, _ := arith("%", n, num{2, 2, true}); return pyEqual(r, 0) }),
		"divisibleby": test("num", func(in any, a []any) (bool, error) {
			r, err := binary("%", in, a[0])
			return err == nil && pyEqual(r, 0), err
		}),
		"in": test("seq", func(in any, a []any) (bool, error) { return contains(a[0], in) }),
		"eq": compare("=="), "equalto": compare("=="), "==": compare("=="),
		"ne": compare("!="), "!=": compare("!="),
		"lt": compare("<"), "lessthan": compare("<"), "<": compare("<"),
		"le": compare("<="), "<=": compare("<="),
		"gt": compare(">"), "greaterthan": compare(">"), ">": compare(">"),
		"ge": compare(">="), ">=": compare(">="),
		"filter": test("", func(in any, _ []any) (bool, error) { return filters[pyStr(in)] != nil, nil }),
		"test":   test("", func(in any, _ []any) (bool, error) { return tests[pyStr(in)] != nil, nil }),

		// Ansible's (ansible/plugins/test/core.py, mathstuff.py).
		"failed": failed, "failure": failed,
		"succeeded": succeeded, "success": succeeded, "successful": succeeded,
		"changed": changed, "change": changed,
		"skipped": skipped, "skip": skipped,
		"unreachable": unreachable,
		"reachable": result("reachable", func(r any) (bool, error) {
			u, err := unreachable.fn(r, nil)
			return err == nil && !u.(bool), err
		}),
		"started":         async("started"),
		"finished":        async("finished"),
		"match":           regex("match"),
		"search":          regex("search"),
		"regex":           regex(""),
		"version":         test("version, operator='eq', strict=None, version_type=None", versionCompare),
		"version_compare": test("version, operator='eq', strict=None, version_type=None", versionCompare),
		"subset":          test("b", func(in any, a []any) (bool, error) { return subset(in, a[0]) }),
		"superset":        test("b", func(in any, a []any) (bool, error) { return subset(a[0], in) }),
		"contains":        test("seed", func(in any, a []any) (bool, error) { return contains(in, a[0]) }),
		"any": test("", func(in any, _ []any) (bool, error) {
			l, err := toList(in)
			for _, v := range l {
				if truthy(v) {
					return true, err
				}
			}
			return false, err
		}),
		"all": test("", func(in any, _ []any) (bool, error) {
			l, err := toList(in)
			for _, v := range l {
				if !truthy(v) {
					return false, err
				}
			}
			return true, err
		}),
		"truthy": test("convert_bool=False", func(in any, a []any) (bool, error) { return truthy(convertBool(in, a[0])), nil }),
		"falsy":  test("convert_bool=False", func(in any, a []any) (bool, error) { return !truthy(convertBool(in, a[0])), nil }),
		"nan": test("", func(in any, _ []any) (bool, error) {
			n, ok := toNum(in)
			return ok && !n.isInt && math.IsNaN(n.f), nil
		}),
	}
}

// sameAs is Python's "is" for the values whose identity templates can see.
func sameAs(a, b any) bool {
	switch {
	case a == nil || b == nil:
		return a == nil && b == nil
	case isBool(a) || isBool(b):
		return isBool(a) && isBool(b) && truthy(a) == truthy(b)
	}
	if x, ok := toNum(a); ok && x.isInt {
		y, ok := toNum(b)
		return ok && y.isInt && x.i == y.i && x.i >= -5 && x.i <= 256 // CPython's cached ints
	}
	return false
}

// cased is Python's islower/isupper: some cased character, none of the
// other case.
func cased(s string, is, other func(rune) bool) bool {
	found := false
	for _, r := range s {
		if other(r) || unicode.IsTitle(r) {
			return false
		}
		found = found || is(r)
	}
	return found
}

func subset(a, b any) (bool, error) {
	la, err := toList(a)
	if err != nil {
		return false, err
	}
	for _, x := range la {
		if in, err := contains(b, x); err != nil || !in {
			return false, err
		}
	}
	return true, nil
}

// convertBool is Ansible's boolean(value, strict=False) when asked for.
func convertBool(v, convert any) any {
	if !truthy(convert) {
		return v
	}
	if isBool(v) {
		return v
	}
	s := strings.ToLower(strings.TrimSpace(pyStr(v)))
	switch s {
	case "y", "yes", "on", "1", "true", "t", "1.0":
		return true
	}
	return false
}

var versionOps = map[string]string{"==": "eq", "=": "eq", "eq": "eq", "<": "lt", "lt": "lt", "<=": "le", "le": "le",
	">": "gt", "gt": "gt", ">=": "ge", "ge": "ge", "!=": "ne", "<>": "ne", "ne": "ne"}

// versionCompare is Ansible's version test with LooseVersion (the
// default) or StrictVersion.
func versionCompare(in any, a []any) (bool, error) {
	if a[2] != nil && a[3] != nil {
		return false, errors.New("Cannot specify both 'strict' and 'version_type'")
	}
	if !truthy(in) {
		return false, errors.New("Input version value cannot be empty")
	}
	if !truthy(a[0]) {
		return false, errors.New("Version parameter to compare against cannot be empty")
	}
	strict := truthy(a[2])
	switch t := pyStr(a[3]); {
	case a[3] == nil, t == "loose":
	case t == "strict":
		strict = true
	default:
		return false, fmt.Errorf("version_type %s is not supported (loose or strict)", pyRepr(t))
	}
	op, ok := versionOps[pyStr(a[1])]
	if !ok {
		return false, fmt.Errorf("Invalid operator type (%s)", pyStr(a[1]))
	}
	parse := looseVersion
	if strict {
		parse = strictVersion
	}
	x, err := parse(pyStr(in))
	if err == nil {
		var y []any
		if y, err = parse(pyStr(a[0])); err == nil {
			var c int
			if c, err = pyCompare("<", tuple(x), tuple(y)); err == nil {
				switch op {
				case "eq":
					return c == 0, nil
				case "ne":
					return c != 0, nil
				case "lt":
					return c < 0, nil
				case "le":
					return c <= 0, nil
				case "gt":
					return c > 0, nil
				}
				return c >= 0, nil
			}
		}
	}
	return false, fmt.Errorf("Version comparison failed: %v", err)
}

var (
	looseComponent = regexp.MustCompile(`\d+|[a-z]+|\.`)
	strictRE       = regexp.MustCompile(`^(\d+)\.(\d+)(\.(\d+))?([ab](\d+))?$`)
)

// looseVersion is distutils' LooseVersion: numbers and words, compared
// item by item (a number against a word is an error, as in Python 3).
func looseVersion(s string) ([]any, error) {
	var out []any
	rest := s
	for rest != "" {
		loc := looseComponent.FindStringIndex(rest)
		if loc == nil {
			out = append(out, rest)
			break
		}
		if loc[0] > 0 {
			out = append(out, rest[:loc[0]])
		}
		if p := rest[loc[0]:loc[1]]; p != "." {
			if n, err := strconv.Atoi(p); err == nil {
				out = append(out, n)
			} else {
				out = append(out, p)
			}
		}
		rest = rest[loc[1]:]
	}
	return out, nil
}

// strictVersion is distutils' StrictVersion: N.N[.N][(a|b)N].
func strictVersion(s string) ([]any, error) {
	m := strictRE.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("invalid version number '%s'", s)
	}
	n := func(s string) int { i, _ := strconv.Atoi(s); return i }
	v := []any{n(m[1]), n(m[2]), n(m[4])}
	if m[5] == "" {
		return append(v, "z", 0), nil // a release sorts after its pre-releases
	}
	return append(v, m[5][:1], n(m[6])), nil
}
