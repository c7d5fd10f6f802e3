package tmpl

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/ordered"
)

// testVars is shaped like the variables the engine passes: decoded YAML.
func testVars() map[string]any {
	return map[string]any{
		"mosquitto":      map[string]any{"url": "tcp://10.0.0.1:1883"},
		"_self":          map[string]any{"url": "10.0.0.2", "name": "node-1"},
		"working_dir":    "/opt/app",
		"item":           "x1",
		"self_container": "c1",
		"env_rate":       10,
		"current_repeat": 2,
		"hosts":          []any{"h1", "h2", "h3"},
		"peers":          []any{"p0", "p1"},
		"a":              "foo",
		"b":              "bar",
		"n":              "41",
		"name":           "kafka",
		"xs":             []any{1, 2, 3},
		"half":           0.5,
		"two":            2.0,
		"yes":            true,
		"no":             false,
		"cmd":            "a<b && c",
		"kafka":          map[string]any{"url": "k:9092", "port": 9092},
		"nothing":        nil,
		"conf":           map[string]any{"b": 2, "a": 1},
		"written":        ordered.Of("zeta", 1, "alpha", []any{1, 2}, "mid", ordered.Of("b", "x", "a", "y")), // as a scenario's YAML is read
		"nodes":          []any{map[string]any{"name": "n1", "ip": "10.0.0.1"}, map[string]any{"name": "n2", "ip": "10.0.0.2"}},
		"bad-key":        "ignored", // not an identifier: must not break rendering
	}
}

func seq(from, to int) []any {
	out := []any{}
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func TestValue(t *testing.T) {
	vars := testVars()
	tests := []struct {
		src  string
		want any
	}{
		{"{{ range(1, 41)|list }}", seq(1, 41)},
		{"  {{ range(1, 41) | list }}\n", seq(1, 41)},
		{"{{ env_rate }}", 10},
		{"{{ n | int }}", 41},
		{"{{ half }}", 0.5},
		{"{{ 7 / 2 }}", 3.5},
		{"{{ yes }}", true},
		{"{{ name }}", "kafka"},
		{"{{ nothing }}", nil},
		{"{{ xs }}", []any{1, 2, 3}},
		{"{{ conf }}", ordered.Of("a", 1, "b", 2)}, // a Go map is read in sorted order
		{"{{ written.mid }}", ordered.Of("b", "x", "a", "y")},
		{"{{ nodes[0] }}", ordered.Of("ip", "10.0.0.1", "name", "n1")},
		{"{{ [1, 'a'] }}", []any{1, "a"}},
		{"{# note #}{{ xs|length }}", 3},
		{"x{{ env_rate }}", "x10"},
		{"{{ a }}{{ b }}", "foobar"},
		{"{% if yes %}{{ env_rate }}{% endif %}", "10"},
		{"plain", "plain"},
		{"{{ (1, 'a') }}", []any{1, "a"}},
		{"{{ {'b': 1, 'a': 2} }}", ordered.Of("b", 1, "a", 2)},
		{"{{ conf | combine({'c': [3]}) }}", ordered.Of("a", 1, "b", 2, "c", []any{3})},
		{"{{ x | default(xs) }}", []any{1, 2, 3}},
	}
	for _, tt := range tests {
		tpl, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.src, err)
			continue
		}
		got, err := tpl.Value(vars)
		if err != nil {
			t.Errorf("Value(%q): %v", tt.src, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Value(%q) = %#v, want %#v", tt.src, got, tt.want)
		}
	}
}

func TestRefs(t *testing.T) {
	tests := []struct {
		src            string
		want, optional []string
	}{
		{"{{ kafka.url }} {{ working_dir }}/x {{ item }} {{ kafka.url }}", []string{"item", "kafka.url", "working_dir"}, nil},
		{"{% for h in hosts %}{{ h.name }} {{ loop.index }}{% endfor %}", []string{"hosts"}, nil},
		{"{% for k, v in conf.items() %}{{ k }}{{ v }}{% endfor %}", []string{"conf"}, nil},
		{"{% for i in xs %}{% endfor %}{{ i }}", []string{"i", "xs"}, nil},
		{"{{ x.y | default('z') }} {{ d | default(fallback) }} {{ e | upper | default('') }}", []string{"e", "fallback"}, []string{"d", "x.y"}},
		{"{{ a.b[0].c }} {{ p['q'] }}", []string{"a.b.0.c", "p.q"}, nil},
		{"{{ a[b].c }} {{ peers[-1] }}", []string{"a", "b", "peers"}, nil},
		{"{{ a[b] | default(1) }}", []string{"b"}, []string{"a"}},
		{"{{ range(n | int) | list }} {{ s | replace('a', 'b') }} {{ t | mandatory }}", []string{"n", "s"}, []string{"t"}},
		{"{% set y = base %}{{ y }} {{ z }}", []string{"base", "z"}, nil},
		{"{{ y }}{% set y = 1 %}{{ y }}", []string{"y"}, nil},
		{"{% with p = q %}{{ p }}{% endwith %}{{ p }}", []string{"p", "q"}, nil},
		{"{% for h in hosts %}{% set last = h %}{% endfor %}{{ last }}", []string{"hosts", "last"}, nil},
		{"{{ loop.index }}", []string{"loop.index"}, nil},
		{"{% for x in loop %}{% endfor %}", []string{"loop"}, nil},
		{"{{ x if c else y }} {{ not w }} {{ u ~ v }}", []string{"c", "u", "v", "w"}, []string{"x", "y"}},
		{"{{ 'literal' }} {{ range(3) }} {{ true }} {{ none }}", nil, nil},
		// What is read only on a condition may be undefined, as in Jinja.
		{"{% if env_rate > 1 %}{{ _self.name }}{% endif %}", []string{"env_rate"}, []string{"_self.name"}},
		{"{{ r is defined and r.rc == 0 }} {{ r.stdout }}", nil, []string{"r", "r.rc", "r.stdout"}},
		{"{{ flag or other.x }}", []string{"flag"}, []string{"other.x"}},
		{"{% if x is undefined %}{{ y }}{% else %}{{ x.z }}{% endif %}", nil, []string{"x", "x.z", "y"}},
		{"{{ s.split(',') | first }} {{ d.get('k') }}", []string{"d", "s"}, nil},
		{"{% raw %}{{ hidden }}{% endraw %}{# {{ also_hidden }} #}", nil, nil},
	}
	for _, tt := range tests {
		tpl, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.src, err)
			continue
		}
		if got := tpl.Refs(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Refs(%q) = %q, want %q", tt.src, got, tt.want)
		}
		if got := tpl.Optional(); !reflect.DeepEqual(got, tt.optional) {
			t.Errorf("Optional(%q) = %q, want %q", tt.src, got, tt.optional)
		}
	}
}

func TestUndefined(t *testing.T) {
	tests := []struct {
		src, name, hint string
	}{
		{"{{ kafka.ulr }}", "kafka.ulr", `did you mean "kafka.url"?`},
		{"{{ kafka.ulr.host }}", "kafka.ulr", `did you mean "kafka.url"?`},
		{"{{ kafak.url }}", "kafak", `did you mean "kafka"?`},
		{"{{ working_dri }}/x", "working_dri", `did you mean "working_dir"?`},
		{"{{ zzz }}", "zzz", ""},
		{"{{ peers[5] }}", "peers.5", ""},
		{"{{ peers.2 }}", "peers.2", ""},
		{"{{ name.first }}", "name.first", ""},
		{"{{ nothing.x }}", "nothing.x", ""},
		{"{{ kafka.0 }}", "kafka.0", ""},
		{"{{ zz }}{{ aa }}", "aa", ""}, // the first in sorted order
		// Read on a condition, an undefined variable fails where it is used.
		{"{% if yes %}{{ kafka.ulr }}{% endif %}", "kafka.ulr", `did you mean "kafka.url"?`},
		{"{{ yes and zzz }}", "zzz", ""},
		{"{{ x is defined and x.y or kafak.url }}", "kafak", `did you mean "kafka"?`},
		{"{{ nothing.x | int }}", "nothing.x", ""},
		{"{% for h in hosts %}{{ h }}{% endfor %}{{ h }}", "h", ""},
	}
	vars := testVars()
	for _, tt := range tests {
		tpl, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.src, err)
			continue
		}
		for _, render := range []func() (any, error){
			func() (any, error) { return tpl.Render(vars) },
			func() (any, error) { return tpl.Value(vars) },
		} {
			_, err := render()
			var ue *UndefinedError
			if !errors.As(err, &ue) {
				t.Errorf("%q: err = %v, want *UndefinedError", tt.src, err)
				continue
			}
			if ue.Name != tt.name || ue.Hint != tt.hint {
				t.Errorf("%q: got Name %q Hint %q, want %q %q", tt.src, ue.Name, ue.Hint, tt.name, tt.hint)
			}
		}
	}
	want := `undefined variable "kafka.ulr" (did you mean "kafka.url"?)`
	if got := (&UndefinedError{Name: "kafka.ulr", Hint: `did you mean "kafka.url"?`}).Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := (&UndefinedError{Name: "x"}).Error(); got != `undefined variable "x"` {
		t.Errorf("Error() = %q", got)
	}
	// nil vars: every ref is undefined.
	tpl, _ := Parse("{{ x }}")
	if _, err := tpl.Render(nil); err == nil {
		t.Error("Render(nil vars) succeeded for {{ x }}")
	}
}

// A template file (the template module's src) is parsed whole: errors and
// undefined variables carry a line and column inside the file, so that the
// plan can report them as conf.j2:4:19 at validate time.
func TestTemplateFile(t *testing.T) {
	file := "# for {{ _self.name }}\nbroker = {{ kafka.url }}\n{% for h in hosts %}\npeer = {{ h }}:{{ kafka.prot }}\n{% endfor %}\n"
	tpl, err := Parse(file)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tpl.Refs(), []string{"_self.name", "hosts", "kafka.url"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Refs() = %q, want %q", got, want)
	}
	if got, want := tpl.Optional(), []string{"kafka.prot"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Optional() = %q, want %q (read in a loop body)", got, want)
	}
	_, err = tpl.Render(testVars())
	var ue *UndefinedError
	if !errors.As(err, &ue) || ue.Name != "kafka.prot" || ue.Line != 4 || ue.Col != 19 || ue.Hint != `did you mean "kafka.port"?` {
		t.Errorf("Render: %#v, want kafka.prot undefined at line 4, column 19", err)
	}
	_, err = Parse("a\nb\n  {% include 'x.j2' %}\n")
	var e *Error
	if !errors.As(err, &e) || e.Line != 3 || e.Col != 6 || !strings.Contains(e.Msg, `tag "include" is not allowed: templates cannot read files`) {
		t.Errorf("Parse(include) = %v, want line 3, column 6", err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		src       string
		line, col int
		msg       string // a substring of Msg
	}{
		{"{{ x |lsit }}", 1, 7, `filter "lsit" does not exist (did you mean "list"?)`},
		{"line one\n  {{ a |lsit }}", 2, 9, `filter "lsit" does not exist`},
		{"{{ x", 1, 1, `unclosed "{{" (missing "}}")`},
		{"ok\n{{ x }\n", 2, 1, `unclosed "{{" (missing "}}"; found "}" at line 2, column 6)`},
		// An unclosed tag is reported at its opener, whatever text follows.
		{"a: {{ x }\nb: don't $stop {\n", 1, 4, `unclosed "{{" (missing "}}"; found "}" at line 1, column 9)`},
		{"{{ x }\n{{ y }}", 1, 1, `unclosed "{{" (missing "}}"; found "}" at line 1, column 6)`},
		{"{{ x\n{{ y }}", 1, 1, `unclosed "{{" (missing "}}"; found "{{" at line 2, column 1)`},
		{"{{ x\necho $HOME\n{{ y }}", 1, 1, `unclosed "{{" (missing "}}")`},
		{"{{ x\nit's", 1, 1, `unclosed "{{" (missing "}}")`},
		{"{{ {'a': 1} }\n", 1, 1, `unclosed "{{" (missing "}}"; found "}" at line 1, column 13)`},
		{"{{ x } }}", 1, 6, `unexpected "}"`},
		{"{% if x %\nyes\n{% endif %}", 1, 1, `unclosed "{%" (missing "%}"; found "{%" at line 3, column 1)`},
		{"{% if x %", 1, 1, `unclosed "{%" (missing "%}")`},
		{"{% if x }\nyes", 1, 1, `unclosed "{%" (missing "%}"; found "}" at line 1, column 9)`},
		{"{% if x } %}", 1, 9, `unexpected "}"`},
		{"x\n  {% for h in hosts %}\n{{ h }}\n", 2, 3, `unclosed "for" block (missing {% endfor %})`},
		{"{% for %}", 1, 8, "expected a variable name"},
		{"{% for x of xs %}{% endfor %}", 1, 10, `expected "in"`},
		{"{% for x in xs if x %}{% endfor %}", 1, 16, `"if" in a for tag`},
		{"{% if x %}a", 1, 1, `unclosed "if" block`},
		{"{% for x in xs %}\n{% if x %}\n{% endfor %}", 2, 1, `unclosed "if" block (missing {% endif %}; found "endfor" at line 3, column 4)`},
		{"{% if a %}{% for x in xs %}{% elif b %}{% endif %}", 1, 11, `unclosed "for" block (missing {% endfor %}; found "elif" at line 1, column 31)`},
		{"{% for x in xs %}{% endif %}", 1, 21, `"endif" outside of if block`},
		{"{% endif %}", 1, 4, "outside of if block"},
		{"{% if a %}{% else %}{% else %}{% endif %}", 1, 24, `second "else"`},
		{"{{ }}", 1, 1, "empty expression"},
		{"{{ 'abc }}", 1, 4, "unclosed string"},
		{"{{ a b }}", 1, 6, `unexpected "b"`},
		{"{{ (a }}", 1, 7, `expected ")"`},
		{"{{ a $ b }}", 1, 6, `unexpected character '$'`},
		// Arguments are checked against the filter's parameters.
		{"{{ x | default('a', true, 3) }}", 1, 8, "filter default: takes at most 2 positional arguments (3 given)"},
		{"{{ x | regex_replace('a', nope=1) }}", 1, 8, `filter regex_replace: got an unexpected keyword argument "nope"`},
		{"{{ x | sort(reverse=1, reverse=2) }}", 1, 8, `got multiple values for argument "reverse"`},
		{"{{ x | join(d='a', 'b') }}", 1, 20, "positional argument follows keyword argument"},
		{"{{ x | ternary('a') }}", 1, 8, `missing required argument "false_val"`},
		{"{{ x is divisibleby }}", 1, 9, `test divisibleby: missing required argument "num"`},
		{"{{ x is defiend }}", 1, 9, `test "defiend" does not exist (did you mean "defined"?)`},
		{"{{ x is defined is defined }}", 1, 17, "tests cannot be chained"},
		{"{{ x | community.general.json_query('a') }}", 1, 8, `filter "community.general.json_query" is not available: only ansible.builtin's are`},
		{"{{ x is ansible.builtin.nope }}", 1, 9, `test "nope" does not exist`},
		{"{{ x is exists }}", 1, 9, `test "exists" is not supported: templates cannot read files`},
		{"{{ x | password_hash('sha512') }}", 1, 8, `filter "password_hash" is not supported: rendering must be reproducible`},
		{"{{ x | wordwrap(3) }}", 1, 8, `filter "wordwrap" is not supported`},
		{"{{ x | capfirst }}", 1, 8, `filter "capfirst" does not exist`},
		{"{{ f(*xs) }}", 1, 6, "*args and **kwargs in calls are not supported"},
		{"{{ foo(1) }}", 1, 4, `function "foo" does not exist`},
		{"{{ rnage(3) }}", 1, 4, `did you mean "range"?`},
		{"{{ range() }}", 1, 4, `function range: missing required argument "start"`},
		{"{{ range(n=3) }}", 1, 4, `function range: got an unexpected keyword argument "n"`},
		{"{{ replace(s, 'a', 'b') }}", 1, 4, `function "replace" does not exist; use the filter: x | replace(...)`},
		{"{{ x.zfill(3) }}", 1, 6, "method .zfill() is not supported; use a filter"},
		{"{{ x.split(1, 2, 3) }}", 1, 6, "method .split(): takes at most 2 positional arguments (3 given)"},
		{"{{ [1]() }}", 1, 7, "only functions and methods can be called"},
		{"{{ lookup('file', '/etc/passwd') }}", 1, 4, "templates cannot read files"},
		{"{{ now() }}", 1, 4, "rendering must be reproducible"},
		{"{{ xs[1:2:3:4] }}", 1, 12, `expected "]"`},
		{"{{ e2c_out }}", 1, 4, "reserved"},
		{"{% set pongo2 = 1 %}", 1, 8, "reserved"},
		{"{% set forloop = 1 %}", 1, 8, "reserved"},
		{"{% set as = 1 %}", 1, 8, "cannot be used as a variable name"},
		{"{% for x in xs %}{{ loop.cycle }}{% endfor %}", 1, 26, "loop.cycle is not supported"},
		{"{% for x in loop %}{% for y in loop %}{% endfor %}{% endfor %}", 1, 32, `use loop.index`},
		{"{% macro m() %}{% endmacro %}", 1, 4, `tag "macro" is not supported`},
		{"{% break %}", 1, 4, `tag "break" is not supported`},
		{"{% endfro %}", 1, 4, `did you mean "endfor"?`},
		{"{% set x %}a{% endset %}", 1, 4, "block set"},
		{"{{ xs|random }}", 1, 7, "reproducible"},
		{"{{ xs|shuffle }}", 1, 7, "reproducible"},
		{"{% now \"Y\" %}", 1, 4, "reproducible"},
		{"{# open", 1, 1, "unclosed comment"},
		{"a\n  {# open\n{{ x }}", 2, 3, `unclosed comment "{#" (missing "#}")`},
		{"{% raw %}x", 1, 1, `unclosed "raw"`},
		{"ünï {{ x |lsit }}", 1, 11, "lsit"}, // columns count characters
	}
	for _, tt := range tests {
		_, err := Parse(tt.src)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%q): err = %v, want *Error", tt.src, err)
			continue
		}
		if e.Line != tt.line || e.Col != tt.col || !strings.Contains(e.Msg, tt.msg) {
			t.Errorf("Parse(%q) = line %d col %d %q, want line %d col %d containing %q", tt.src, e.Line, e.Col, e.Msg, tt.line, tt.col, tt.msg)
		}
	}
	_, err := Parse("{{ x |lsit }}")
	if want := `line 1, column 7: filter "lsit" does not exist (did you mean "list"?)`; err == nil || err.Error() != want {
		t.Errorf("Error() = %v, want %q", err, want)
	}
	if got := (&Error{Msg: "boom"}).Error(); got != "boom" {
		t.Errorf("Error() without position = %q", got)
	}
}

// Deep nesting must be refused, not overflow the stack (which is fatal).
func TestDeepNesting(t *testing.T) {
	const n = 100000
	for i, src := range []string{
		"{{ " + strings.Repeat("(", n) + "1" + strings.Repeat(")", n) + " }}",
		"{{ " + strings.Repeat("[", n) + strings.Repeat("]", n) + " }}",
		"{{ " + strings.Repeat("not ", n) + "1 }}",
		"{{ " + strings.Repeat("-", n) + "1 }}",
		"{{ 1" + strings.Repeat(" + 1", n) + " }}",
		"{{ x" + strings.Repeat("|upper", n) + " }}",
		"{{ x" + strings.Repeat(".a", n) + " }}",
		"{% if " + strings.Repeat("f(", n) + " %}",
	} {
		_, err := Parse(src)
		var e *Error
		if !errors.As(err, &e) || e.Msg != "expression nested too deeply" {
			t.Errorf("case %d: err = %v, want nesting error", i, err)
		}
	}
	_, err := Parse(strings.Repeat("{% if x %}", n))
	if err == nil || !strings.Contains(err.Error(), "blocks nested too deeply") {
		t.Errorf("nested blocks: err = %v", err)
	}
	// Ordinary depth is fine.
	src := "{{ " + strings.Repeat("(", 50) + "1" + strings.Repeat(" + 1)", 50) + " }}"
	if tpl, err := Parse(src); err != nil {
		t.Error(err)
	} else if got, err := tpl.Render(nil); err != nil || got != "51" {
		t.Errorf("Render = %q, %v", got, err)
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		src       string
		line, col int
		msg       string
	}{
		{"{{ 1 // 0 }}", 1, 6, "division or modulo by zero"},
		{"x\n{{ a - 1 }}", 2, 6, "unsupported operand type(s) for -: 'str' and 'int'"},
		{"{{ x | mandatory }}", 1, 8, "filter mandatory: Mandatory variable 'x' not defined."},
		{"{{ x | mandatory('set x') }}", 1, 8, "filter mandatory: set x"},
		{"{{ 'a' < 1 }}", 1, 8, "'<' not supported"},
		{"{% for k, v in conf %}{% endfor %}", 1, 16, "not enough values to unpack (expected 2, got 1): a mapping gives its keys; loop over its items() for keys and values"},
		{"{% for x in env_rate %}{% endfor %}", 1, 13, "'int' object is not iterable"},
		{"{{ range(0, 5, 0) }}", 1, 4, "range() arg 3 must not be zero"},
		{"{{ range(10000000) }}", 1, 4, "larger than"},
		{"{{ 'ab' * 10000000 }}", 1, 9, "larger than"},
		{"{{ 'a=' | b64decode }}", 1, 11, "filter b64decode: Incorrect padding"},
		{"{{ a | regex_replace('(', '') }}", 1, 8, "filter regex_replace: error parsing regexp"},
		{"{{ a | regex_replace('(?<=a)b', '') }}", 1, 8, "Go's RE2: no lookaround"},
		{"{{ a | regex_replace('a', '\\\\d') }}", 1, 8, `bad escape \d in the replacement`},
		{"{{ [] | first }}", 1, 9, "No first item, sequence was empty."},
		{"{{ [] | max }}", 1, 9, "No aggregated item, sequence was empty."},
		{"{{ a is failed }}", 1, 9, "test failed: The 'failed' test expects a dictionary"},
		{"{{ '%s %s' % a }}", 1, 12, "not enough arguments for format string"},
		{"{{ xs | sort(attribute='x') }}", 1, 9, `'int object' has no attribute 'x'`},
		{"{{ [1, 'a'] | sort }}", 1, 15, "'<' not supported between instances of 'str' and 'int'"},
		{"{{ '1.0' is version('a.1', '<') }}", 1, 13, "Version comparison failed: '<' not supported between instances of 'int' and 'str'"},
		{"{{ 'x' | from_json }}", 1, 10, "filter from_json: Expecting value"},
		{"{{ 'a: [' | from_yaml }}", 1, 13, "filter from_yaml: yaml:"},
		{"{{ {'a': 1} | combine(1) }}", 1, 15, "expected dicts but got a 'int'"},
		{"{{ 'x' | dict2items }}", 1, 10, "dict2items requires a dictionary, got str instead."},
		{"{{ ('a' * 600000) | replace('a', 'bb') }}", 1, 21, "filter replace: result larger than"},
		{"{{ 'a' | center(2000000) }}", 1, 10, "filter center: width 2000000 is beyond e2c's bound of 1048576"},
	}
	vars := testVars()
	for _, tt := range tests {
		tpl, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.src, err)
			continue
		}
		_, err = tpl.Render(vars)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Render(%q): err = %v, want *Error", tt.src, err)
			continue
		}
		if e.Line != tt.line || e.Col != tt.col || !strings.Contains(e.Msg, tt.msg) {
			t.Errorf("Render(%q) = line %d col %d %q, want line %d col %d containing %q", tt.src, e.Line, e.Col, e.Msg, tt.line, tt.col, tt.msg)
		}
	}
}

// Variables may come from decoders other than YAML's; they work the same.
func TestOtherTypes(t *testing.T) {
	vars := map[string]any{
		"m": map[string]string{"k": "v"}, "l": []string{"a", "b"},
		"i": int64(7), "f": float32(0.5), "u": uint8(3),
	}
	tpl, err := Parse("{{ m.k }}{{ l[1] }}{{ i + 1 }}{{ f }}{{ u }}{{ l }}")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tpl.Render(vars); err != nil || got != "vb80.53['a', 'b']" {
		t.Errorf("Render = %q, %v", got, err)
	}
	for src, want := range map[string]any{"{{ l }}": []any{"a", "b"}, "{{ i }}": 7, "{{ m }}": ordered.Of("k", "v")} {
		tpl, err := Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := tpl.Value(vars); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Value(%q) = %#v, %v; want %#v", src, got, err, want)
		}
	}
	for src, name := range map[string]string{"{{ m.x }}": "m.x", "{{ l.2 }}": "l.2", "{{ i.x }}": "i.x"} {
		tpl, err := Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		var ue *UndefinedError
		if _, err := tpl.Render(vars); !errors.As(err, &ue) || ue.Name != name {
			t.Errorf("Render(%q) = %v, want undefined %q", src, err, name)
		}
	}
}

func TestHas(t *testing.T) {
	for s, want := range map[string]bool{
		"plain": false, "{ x }": false, "100%": false, "": false,
		"{{ x }}": true, "{% if %}": true, "{# c #}": true, "a{{": true,
	} {
		if got := Has(s); got != want {
			t.Errorf("Has(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestSourceAndRefsCopy(t *testing.T) {
	src := "{{ b }}{{ a }}"
	tpl, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	if tpl.Source() != src {
		t.Errorf("Source() = %q", tpl.Source())
	}
	refs := tpl.Refs()
	refs[0] = "changed"
	if tpl.Refs()[0] != "a" {
		t.Error("Refs() returned the template's own slice")
	}
}

// Autoescape must be off: commands go to a shell, not a browser.
func TestNoAutoescape(t *testing.T) {
	tpl, err := Parse(`{{ cmd }} {{ '<b>&"' }} {{ cmd | upper }} {{ cmd ~ '>' }}`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpl.Render(testVars())
	if want := `a<b && c <b>&" A<B && C a<b && c>`; err != nil || got != want {
		t.Errorf("Render = %q, %v; want %q", got, err, want)
	}
}

// Templates must not read files, whatever the syntax.
func TestNoFileAccess(t *testing.T) {
	for _, src := range []string{
		`{% ssi "/etc/passwd" %}`,
		`{% ssi "/etc/passwd" parsed %}`,
		`{% include "/etc/passwd" %}`,
		`{% include '/etc/passwd' %}`,
		`{% import "/etc/passwd" x %}`,
		`{% from "/etc/passwd" import x %}`,
		`{% extends "/etc/passwd" %}`,
		`{{ lookup('file', '/etc/passwd') }}`,
		`a {% if yes %}{% ssi "/etc/passwd" %}{% endif %}`,
	} {
		tpl, err := Parse(src)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Msg, "templates cannot read files") {
			t.Errorf("Parse(%q) = %v, want an error saying templates cannot read files", src, err)
		}
		if tpl != nil {
			out, _ := tpl.Render(testVars())
			t.Errorf("Parse(%q) gave a template rendering %q", src, out)
		}
	}
	// A raw block must not be able to smuggle pongo2 tags past the compiler.
	src := `{% raw %}{% endverbatim %}{% ssi "/etc/passwd" %}{% verbatim %}{% endraw %}`
	if tpl, err := Parse(src); err == nil {
		out, _ := tpl.Render(nil)
		t.Errorf("Parse(%q) succeeded, renders %q", src, out)
	}
}

// The pongo2 set itself refuses what Parse refuses, in case the compiler
// ever lets something through.
func TestSetBans(t *testing.T) {
	for _, src := range []string{
		`{% ssi "/etc/passwd" %}`,
		`{% include "/etc/passwd" %}`,
		`{% import "/etc/passwd" x %}`,
		`{% extends "/etc/passwd" %}`,
		`{% now "Y" %}`,
		`{% cycle "a" "b" %}`,
		`{% ifchanged %}x{% endifchanged %}`,
		`{% lorem %}`,
		`{% macro m() %}{% endmacro %}`,
		`{{ "ab"|random }}`,
		`{{ 1.5|floatformat:200000000 }}`, // compiled templates call the bounded e2c_floatformat
		`{{ "a"|ljust:5 }}`,
	} {
		parseMu.Lock()
		tpl, err := set.FromString(src)
		parseMu.Unlock()
		if err == nil {
			out, err := tpl.Execute(nil)
			t.Errorf("set.FromString(%q) succeeded; renders %q, %v", src, out, err)
		}
	}
	if _, err := (noFiles{}).Get("/etc/passwd"); err == nil {
		t.Error("loader read a file")
	}
}

// One parsed template is rendered for many hosts at once; run with -race.
func TestConcurrentRender(t *testing.T) {
	tpl, err := Parse(`{% for p in peers %}{{ loop.index }}:{{ p | upper }}@{{ _self.url }}{% if not loop.last %},{% endif %}{% endfor %} {{ range(current_repeat) | list | length }}`)
	if err != nil {
		t.Fatal(err)
	}
	val, err := Parse("{{ range(0, current_repeat) | list }}")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vars := map[string]any{
				"peers":          []any{fmt.Sprint("a", i), fmt.Sprint("b", i)},
				"_self":          map[string]any{"url": fmt.Sprint("10.0.0.", i)},
				"current_repeat": i % 7,
			}
			want := fmt.Sprintf("1:A%d@10.0.0.%d,2:B%d@10.0.0.%d %d", i, i, i, i, i%7)
			if got, err := tpl.Render(vars); err != nil || got != want {
				errs <- fmt.Errorf("Render = %q, %v; want %q", got, err, want)
			}
			if got, err := val.Value(vars); err != nil || !reflect.DeepEqual(got, seq(0, i%7)) {
				errs <- fmt.Errorf("Value = %#v, %v; want %v", got, err, seq(0, i%7))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Parsing may also happen concurrently (pongo2's set is shared).
func TestConcurrentParse(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Parse(fmt.Sprintf("{{ x%d | default(%d) }}", i, i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

func TestPyFloat(t *testing.T) {
	for f, want := range map[float64]string{
		0: "0.0", 2: "2.0", 0.5: "0.5", -1.25: "-1.25", 1e16: "1e+16", 1e15: "1000000000000000.0",
		0.0001: "0.0001", 0.00001: "1e-05", 123456.789: "123456.789",
	} {
		if got := pyFloat(f); got != want {
			t.Errorf("pyFloat(%v) = %q, want %q", f, got, want)
		}
	}
}

// TestBounded checks that no template can exhaust memory or loop for ever.
func TestBounded(t *testing.T) {
	for _, src := range []string{
		`{{ "a"|center(1000000000) }}`,
		`{{ range(1000000)|join("a" * 1000000) }}`,
		`{% for i in range(1000000) %}{% for j in range(1000000) %}x{% endfor %}{% endfor %}`,
		`{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}`,
		`{% for i in range(1000000) %}xxxxxxxxxx{% endfor %}`,
		// A list shared many times is as large as it prints.
		`{{ [range(1000000)] * 1000000 }}`,
		`{% set a = range(1000) %}{% set b = [a] * 1000 %}{% set c = [b] * 1000 %}{{ c | to_json }}`,
		`{% set a = range(1000) %}{% set b = [a] * 1000 %}{% set c = [b] * 1000 %}{{ c | to_yaml }}`,
		`{% set a = range(1000) %}{% set b = [a] * 1000 %}{% set c = [b] * 1000 %}{{ c | flatten | length }}`,
	} {
		tpl, err := Parse(src)
		if err != nil {
			t.Fatalf("Parse(%q): %v", src, err)
		}
		start := time.Now()
		if _, err := tpl.Render(nil); err == nil {
			t.Errorf("Render(%q) succeeded", src)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Render(%q) took %s", src, d)
		}
	}
	// Value gives plain data, which must stay within the bound too.
	tpl, err := Parse(`{% set a = range(1000) %}{% set b = [a] * 1000 %}{{ [b] * 1000 }}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tpl.Value(nil); err == nil {
		t.Error("Value of a list shared a billion times succeeded")
	}
	// A loop over a mapping counts its steps too.
	big := map[string]any{}
	for i := range 1100 {
		big[fmt.Sprint(i)] = i
	}
	tpl, err = Parse(`{% for k, v in big.items() %}{% for k2 in big %}{% endfor %}{% endfor %}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tpl.Render(map[string]any{"big": big}); err == nil || !strings.Contains(err.Error(), "loops run more than") {
		t.Errorf("nested mapping loops: err = %v, want the step bound", err)
	}
}

// allocated returns the bytes the process allocates while f runs; tests
// using it do not run in parallel.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestFilterBounds checks that no filter argument can make a render exhaust
// memory or time: each case is an ordinary error, refused having
// allocated little, or a result within the bound, computed in linear time
// (BenchmarkLargeLists).
func TestFilterBounds(t *testing.T) {
	const maxAlloc = 64 << 20
	tests := []struct{ src, msg string }{
		{"{{ 'a'|center(2000000) }}", "filter center: width 2000000 is beyond e2c's bound of 1048576"},
		{"{{ 'a'|center(1000000)|length }}", ""},
		{"{{ 'x'|indent(2000000) }}", "filter indent: width 2000000 is beyond"},
		{`{{ ('a\n' * 500000)|indent(100) }}`, "filter indent: result larger than"},
		{"{{ [1]|batch(2000000, 0) }}", "filter batch: linecount must be a positive integer, at most 1048576"},
		{"{{ xs|slice(2000000) }}", "filter slice: slices must be a positive integer"},
		{"{{ '%2000000s' % 'a' }}", "width 2000000 is beyond e2c's bound"},
		{"{{ '%.2000000f' % 1.5 }}", "precision .2000000 is beyond e2c's bound"},
		{"{{ 'x=%s' | format('a' * 1048576) }}", "filter format: result larger than"},
		{"{{ ('a' * 600000)|replace('a', 'bb') }}", "filter replace: result larger than"},
		{"{{ ('a' * 600000).replace('a', 'bb') }}", "method .replace(): result larger than"},
		{"{{ range(1100)|product(range(1100)) }}", "filter product: result larger than"},
		{"{{ range(20)|permutations(10) }}", "filter permutations: result larger than"},
		{"{{ range(40)|combinations(20) }}", "filter combinations: result larger than"},
		{"{{ range(1000)|combinations(2)|length }}", ""},
		{"{{ xs|to_nice_json(indent=2000000) }}", "filter to_nice_json: indent 2000000 is beyond"},
		{"{{ [[[[1]]]]|to_nice_json(indent=1000000)|length }}", "filter to_nice_json: result larger than"},
		{"{{ range(1000000)|unique|length }}", ""}, // linear, not quadratic
		{"{{ range(1000000)|intersect(range(1000000))|length }}", ""},
		{"{{ range(100000)|map('string')|join|length }}", ""},
		{"{{ ('a ' * 500000)|split|length }}", ""},
		{"{{ ('x' * 1000000) ~ ('x' * 100000) }}", "result larger than"},
	}
	for _, tt := range tests {
		tpl, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.src, err)
			continue
		}
		var e *Error
		n := allocated(func() { _, err = tpl.Render(testVars()) })
		switch {
		case tt.msg == "" && err != nil:
			t.Errorf("Render(%q): %v", tt.src, err)
		case tt.msg != "" && (!errors.As(err, &e) || e.Line != 1 || !strings.Contains(e.Msg, tt.msg)):
			t.Errorf("Render(%q) = %v, want an error at line 1 containing %q", tt.src, err, tt.msg)
		case tt.msg != "" && n > maxAlloc:
			t.Errorf("Render(%q) allocated %d MB before refusing, want at most %d", tt.src, n>>20, maxAlloc>>20)
		}
	}
}

// BenchmarkLargeLists renders the million-item cases of TestFilterBounds
// (a quadratic filter there would not end before the test timeout); the
// time per item is their speed.
func BenchmarkLargeLists(b *testing.B) {
	for _, src := range []string{
		"{{ range(1000000)|unique|length }}",
		"{{ range(1000000)|intersect(range(1000000))|length }}",
		"{{ ('a ' * 500000)|split|length }}",
	} {
		tpl, err := Parse(src)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(src, func(b *testing.B) {
			for range b.N {
				if _, err := tpl.Render(testVars()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFieldValue: a task field's value is what ansible-core 2.14's templar
// gives (checked with ansible localhost -m debug -a 'var=...' over set_fact
// values): text, but lists, mappings and booleans, also when they come as
// text.
func TestFieldValue(t *testing.T) {
	vars := map[string]any{"port": 8080, "ports": []any{80, 443}, "conf": map[string]any{"a": 1}, "none": nil, "text": "[1, 'a']", "flag": true}
	for _, c := range []struct {
		src  string
		want any
	}{
		{"{{ port + 1 }}", "8081"},
		{"{{ 1.5 }}", "1.5"},
		{"{{ port > 1 }}", true},
		{"{{ ports + [port] }}", []any{80, 443, 8080}},
		{"{{ conf }}", ordered.Of("a", 1)},
		{"{{ none }}", nil},
		{"{{ port }}", 8080},
		{"{{port}}", 8080},
		{" {{ port }}", " 8080"},
		{"{{ (none) }}", ""},
		{"{{ port }} ", "8080 "},
		{"{{ flag }}", true},
		{"{{ 'x' | regex_search('y') }}", ""},
		{"{{ text }}", []any{1, "a"}},
		{"[{{ port }}, -2, null]", []any{8080, -2, nil}},
		{"{'k': {{ port }}}", ordered.Of("k", 8080)},
		{"[INFO] {{ port }}", "[INFO] 8080"},
		{"[{{ port }}] | length", "[8080] | length"},
		{"{{ 'True' }}", true},
		{"port {{ port }}", "port 8080"},
	} {
		tpl, err := ParseField(c.src)
		if err != nil {
			t.Fatalf("ParseField(%q): %v", c.src, err)
		}
		got, err := tpl.Value(vars)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Value(%q) = %#v, %v; want %#v", c.src, got, err, c.want)
		}
	}
}
