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

var renderTests = []struct {
	src, want string
}{
	// Variables as E2Clab scenarios use them.
	{"{{ mosquitto.url }}", "tcp://10.0.0.1:1883"},
	{"{{ _self.url }}", "10.0.0.2"},
	{"{{ working_dir }}/libs/", "/opt/app/libs/"},
	{"{{ item }}", "x1"},
	{"{{ self_container }}", "c1"},
	{"rate={{ env_rate }}", "rate=10"},
	{"{{ current_repeat }}", "2"},
	{"plain text", "plain text"},

	// range excludes the stop, as in Python.
	{"{{ range(1, 41)|list }}", pyStr(seq(1, 41))},
	{"{{ range(5)|list }}", "[0, 1, 2, 3, 4]"},
	{"{{ range(0, 10, 2)|list }}", "[0, 2, 4, 6, 8]"},
	{"{{ range(5, 0, -2)|list }}", "[5, 3, 1]"},
	{"{{ range(3, 1)|list }}", "[]"},
	{"{% for i in range(3) %}{{ i }}{% endfor %}", "012"},

	// Filters.
	{"{{ x | default('fallback') }}", "fallback"},
	{"{{ nothing | default('fb') }}", "fb"},
	{"{{ kafka.missing | default('d') }}", "d"},
	{"{{ name | default('fb') }}", "kafka"},
	{"{{ 0 | default(5) }}", "0"}, // Jinja: only undefined/None take the default
	{"{{ x | default(a ~ b) }}", "foobar"},
	{"{{ x | default() }}", ""},
	{"{{ hosts | join(',') }}", "h1,h2,h3"},
	{"{{ xs | join }}", "123"},
	{"{{ hosts|join('\\n') }}", "h1\nh2\nh3"},
	{"{{ n | int + 1 }}", "42"},
	{"{{ '3.7' | int }}", "3"},
	{"{{ 'x' | int }}", "0"},
	{"{{ '2' | float }}", "2.0"},
	{"{{ 3 | string ~ 'x' }}", "3x"},
	{"{{ nothing | string }}", "None"},
	{"{{ name | upper }}", "KAFKA"},
	{"{{ 'ABC' | lower }}", "abc"},
	{"{{ xs | length }}", "3"},
	{"{{ name | length }}", "5"},
	{"{{ hosts | first }}-{{ hosts | last }}", "h1-h3"},
	{"{{ 'abc' | list }}", "['a', 'b', 'c']"},
	{"{{ conf | list }}", "['a', 'b']"},
	{"{{ 'yes'|bool }} {{ 'on'|bool }} {{ '1'|bool }} {{ 'TRUE'|bool }} {{ 1|bool }}", "True True True True True"},
	{"{{ 'no'|bool }} {{ 'off'|bool }} {{ '0'|bool }} {{ 'false'|bool }} {{ nothing|bool }} {{ 2|bool }}", "False False False False False False"},
	{"{{ xs | to_json }}", "[1, 2, 3]"},
	{"{{ conf | to_json }}", `{"a": 1, "b": 2}`},
	{"{{ 'é\"' | to_json }}", `"\u00e9\""`},
	{"{{ two | to_json }}", "2.0"},
	{"{{ conf | to_yaml }}", "a: 1\nb: 2\n"},
	{"{{ 'hello' | b64encode }}", "aGVsbG8="},
	{"{{ 'aGVsbG8=' | b64decode }}", "hello"},
	{`{{ "it's" | quote }}`, `'it'\''s'`},
	{"{{ 'a b' | quote }}", "'a b'"},
	{"{{ '/a/b/c.txt' | basename }}", "c.txt"},
	{"{{ '/a/b/c.txt' | dirname }}", "/a/b"},
	{"{{ '/' | dirname }}", "/"},
	{"{{ 'file' | dirname }}", ""},
	{"{{ (a ~ b) | upper }}", "FOOBAR"},
	{"{{ name | upper | lower }}", "kafka"},
	{"{{ 'x' | capfirst }}", "X"}, // pongo2's own filters stay available

	// Functions.
	{"{{ replace(working_dir, '/opt', '/srv') }}", "/srv/app"},
	{`{{ regex_replace('node-12', '^node-(\d+)$', 'n\1') }}`, "n12"},
	{`{{ regex_replace('a.b', '\.', '$') }}`, "a$b"},
	{`{{ regex_replace('John Smith', '(?P<first>\w+) (?P<last>\w+)', '\g<last>, \g<first>') }}`, "Smith, John"},
	{`{{ regex_replace('abc', 'b') }}`, "ac"},
	{"{{ x | default(name | upper) }}", "KAFKA"},
	{"{{ x | default(-1) }} {{ x | default(kafka.port + 1) }}", "-1 9093"},

	// Indexing.
	{"{{ peers[0] }}", "p0"},
	{"{{ peers.0 }}", "p0"},
	{"{{ peers[-1] }}", "p1"},
	{"{{ kafka['url'] }}", "k:9092"},
	{"{{ nodes[1].ip }}", "10.0.0.2"},
	{"{{ nodes.0.name }}", "n1"},
	{"{% set i = 1 %}{{ peers[i] }}", "p1"},
	{"{{ 'abc'[1] }}", "b"},
	{"{{ {'k': 'v'}.k }}", "v"},
	{"{{ [1, 2][1] }}", "2"},

	// Operators.
	{"{{ a ~ b }}", "foobar"},
	{"{{ 'a' ~ 1 }}", "a1"},
	{"{{ 1 ~ 2 }}", "12"},
	{"{{ a ~ '-' ~ current_repeat }}", "foo-2"},
	{"{{ 'x' ~ half }}", "x0.5"},
	{"{{ 2 * 3 ~ 4 }}", "64"}, // * binds tighter than ~
	{"{{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }}", "3.5 3 -4 2 1024"},
	{"{{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 10 - 4 * 2 }}", "2.5 0.30000000000000004 2"},
	{"{{ 'ab' * 2 }} {{ 'a' + 'b' }}", "abab ab"},
	{"{{ [1] + [2] }}", "[1, 2]"},
	{"{{ 1 == 1 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 1 < 2 < 3 }} {{ 3 < 2 }} {{ 'a' < 'b' }}", "True True True True False True"},
	{"{{ 'h1' in hosts }} {{ 'h9' in hosts }} {{ 'h9' not in hosts }} {{ 'kz' in 'kafka' }} {{ 'url' in kafka }}", "True False True False True"},
	{"{{ not yes }} {{ not no and yes }} {{ no or 'x' }} {{ nothing or 'dflt' }} {{ yes and 'y' }}", "False True x dflt y"},
	{"{{ 'x' if yes else 'y' }}|{{ 'x' if no else 'y' }}|{{ 'x' if no }}", "x|y|"},
	{"{{ -env_rate }} {{ +2 }}", "-10 2"},

	// Printing as Python/Ansible do.
	{"{{ 2 }} {{ half }} {{ two }} {{ 1.0 }}", "2 0.5 2.0 1.0"},
	{"{{ yes }} {{ no }} {{ true }} {{ False }}", "True False True False"},
	{"[{{ nothing }}] [{{ None }}]", "[] []"},
	{"{{ hosts }}", "['h1', 'h2', 'h3']"},
	{"{{ conf }}", "{'a': 1, 'b': 2}"},
	{"{{ [nothing, yes, \"it's\"] }}", `[None, True, "it's"]`},
	{`{{ ['a\nb', 'c\\d', 'q"'] }}`, `['a\nb', 'c\\d', 'q"']`},
	{"{{ 10.0 ** 20 }} {{ 2 ** -1 }} {{ 1 / 3 }}", "1e+20 0.5 0.3333333333333333"},

	// Statements.
	{"{% for h in peers %}{{ h }} {% endfor %}", "p0 p1 "},
	{"{% if yes %}y{% else %}n{% endif %}", "y"},
	{"{% if no %}y{% else %}n{% endif %}", "n"},
	{"{% if env_rate > 50 %}a{% elif env_rate > 5 and yes %}b{% else %}c{% endif %}", "b"},
	{"{% set y = 3 %}{{ y }}", "3"},
	{"{% set y = n | int %}{{ y * 2 }}", "82"},
	{"{% for k, v in conf.items() %}{{ k }}={{ v }};{% endfor %}", "a=1;b=2;"},
	{"{% for k, v in conf %}{{ k }}={{ v }};{% endfor %}", "a=1;b=2;"},
	{"{% for k in conf %}{{ k }}{% endfor %}", "ab"},
	{"{% for c in 'abc' %}{{ c }}.{% endfor %}", "a.b.c."},
	{"{% for h in hosts %}{{ loop.index }}/{{ loop.length }}{% if not loop.last %},{% endif %}{% endfor %}", "1/3,2/3,3/3"},
	{"{% for h in hosts %}{{ loop.index0 }}{{ loop.first }}{% endfor %}", "0True1False2False"},
	{"{% for h in hosts %}{{ forloop.Counter }}{% endfor %}", "123"},
	{"{% for x in [] %}a{% else %}empty{% endfor %}", "empty"},
	{"{% for n in nodes %}{{ n.name }}={{ n.ip }} {% endfor %}", "n1=10.0.0.1 n2=10.0.0.2 "},
	{"{% for p in peers %}{% for q in peers %}{{ p }}{{ q }} {% endfor %}{% endfor %}", "p0p0 p0p1 p1p0 p1p1 "},
	{"{% with z = env_rate * 2, w = 'w' %}{{ z }}{{ w }}{% endwith %}", "20w"},

	// Jinja rewrites must leave string literals alone.
	{`{{ "a|b(c)" }}`, "a|b(c)"},
	{"{{ 'x ~ y' }}", "x ~ y"},
	{"{{ 'x is defined' }}", "x is defined"},
	{"{{ '|default(1)' ~ '~' }}", "|default(1)~"},
	{`{{ "%}" }}{{ "}}" }}{{ '{{ x }}' }}`, "%}}}{{ x }}"},
	{`{{ "say \"hi\"" }} {{ 'it\'s' }} {{ "back\\slash" }}`, `say "hi" it's back\slash`},
	{`{{ 'tab\tx' }}`, "tab\tx"},

	// Template syntax.
	{"a{# comment #}b", "ab"},
	{"a{# multi\nline #}b", "ab"},
	{"{% raw %}{{ not parsed }}{% endraw %}", "{{ not parsed }}"},
	{"a  {{- a -}}  b", "afoob"},
	{"x\n  {%- if yes %}y{% endif %}", "xy"},
	{"{{ a\n  ~ b }}", "foobar"},
	{"{ a } {{ a }} }", "{ a } foo }"},
	{"{{ cmd }}", "a<b && c"},
}

func TestRender(t *testing.T) {
	vars := testVars()
	for _, tt := range renderTests {
		tpl, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.src, err)
			continue
		}
		got, err := tpl.Render(vars)
		if err != nil {
			t.Errorf("Render(%q): %v", tt.src, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Render(%q) = %q, want %q", tt.src, got, tt.want)
		}
	}
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
		{"{{ conf }}", map[string]any{"a": 1, "b": 2}},
		{"{{ nodes[0] }}", map[string]any{"name": "n1", "ip": "10.0.0.1"}},
		{"{{ [1, 'a'] }}", []any{1, "a"}},
		{"{# note #}{{ xs|length }}", 3},
		{"x{{ env_rate }}", "x10"},
		{"{{ a }}{{ b }}", "foobar"},
		{"{% if yes %}{{ env_rate }}{% endif %}", "10"},
		{"plain", "plain"},
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
		src  string
		want []string
	}{
		{"{{ kafka.url }} {{ working_dir }}/x {{ item }} {{ kafka.url }}", []string{"item", "kafka.url", "working_dir"}},
		{"{% for h in hosts %}{{ h.name }} {{ loop.index }} {{ forloop.Counter }}{% endfor %}", []string{"hosts"}},
		{"{% for k, v in conf.items() %}{{ k }}{{ v }}{% endfor %}", []string{"conf"}},
		{"{% for i in xs %}{% endfor %}{{ i }}", []string{"i", "xs"}},
		{"{{ x.y | default('z') }} {{ d | default(fallback) }} {{ e | upper | default('') }}", []string{"e", "fallback"}},
		{"{{ a.b[0].c }} {{ p['q'] }}", []string{"a.b.0.c", "p.q"}},
		{"{{ a[b].c }} {{ peers[-1] }}", []string{"a", "b", "peers"}},
		{"{{ a[b] | default(1) }}", []string{"b"}},
		{"{{ range(n | int) | list }} {{ replace(s, 'a', 'b') }} {{ t | mandatory }}", []string{"n", "s", "t"}},
		{"{% set y = base %}{{ y }} {{ z }}", []string{"base", "z"}},
		{"{{ y }}{% set y = 1 %}{{ y }}", []string{"y"}},
		{"{% with p = q %}{{ p }}{% endwith %}{{ p }}", []string{"p", "q"}},
		{"{% for h in hosts %}{% set last = h %}{% endfor %}{{ last }}", []string{"hosts", "last"}},
		{"{{ loop.index }}", []string{"loop.index"}},
		{"{% for x in loop %}{% endfor %}", []string{"loop"}},
		{"{{ x if c else y }} {{ not w }} {{ u ~ v }}", []string{"c", "u", "v", "w", "x", "y"}},
		{"{{ 'literal' }} {{ range(3) }} {{ true }} {{ none }}", nil},
		{"{% if env_rate > 1 %}{{ _self.name }}{% endif %}", []string{"_self.name", "env_rate"}},
		{"{% raw %}{{ hidden }}{% endraw %}{# {{ also_hidden }} #}", nil},
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
	}
}

// TestSoft: what is read only under default is listed, so that callers
// pass it when it is defined (the fallback is for undefined values only).
func TestSoft(t *testing.T) {
	tests := []struct {
		src  string
		want []string
	}{
		{"{{ x.y | default('z') }} {{ d | default(fallback) }} {{ e | upper | default('') }}", []string{"d", "x"}},
		{"{{ a[b] | default(1) }} {% for i in xs %}{{ i | default(0) }}{% endfor %}", []string{"a"}},
		{"{{ r.stdout }} {{ w | default(2) }}", []string{"w"}},
		{"{{ e | upper }}", nil},
	}
	for _, tt := range tests {
		tpl, err := Parse(tt.src)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.src, err)
		}
		if got := tpl.Soft(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Soft(%q) = %q, want %q", tt.src, got, tt.want)
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
		{"{% if no %}{{ never_read }}{% endif %}", "never_read", ""},
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
	if got, want := tpl.Refs(), []string{"_self.name", "hosts", "kafka.prot", "kafka.url"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Refs() = %q, want %q", got, want)
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
		{"{{ x | replace('a', 'b') }}", 1, 8, "use the function form replace(x, 'old', 'new')"},
		{"{{ x | regex_replace('a', 'b') }}", 1, 8, "function form regex_replace("},
		{"{{ x | default('a', true) }}", 1, 8, "takes at most one argument"},
		{"{{ x | regex_replace('a') }}", 1, 8, "function form regex_replace("},
		{"{{ x is defined }}", 1, 6, "use the default filter"},
		{"{% if x is not defined %}{% endif %}", 1, 9, "use the default filter"},
		{"{{ foo(1) }}", 1, 4, `function "foo" does not exist`},
		{"{{ rnage(3) }}", 1, 4, `did you mean "range"?`},
		{"{{ range() }}", 1, 4, "range() takes 1 to 3 arguments"},
		{"{{ x.split(',') }}", 1, 6, "method calls such as .split() are not supported"},
		{"{{ lookup('file', '/etc/passwd') }}", 1, 4, "templates cannot read files"},
		{"{{ range(n=3) }}", 1, 10, "keyword arguments"},
		{"{{ xs[1:2] }}", 1, 8, "slices are not supported"},
		{"{{ e2c_out }}", 1, 4, "reserved"},
		{"{% set pongo2 = 1 %}", 1, 8, "reserved"},
		{"{{ as }}", 1, 4, "cannot be used as a variable name"},
		{"{% for x in xs %}{{ loop.cycle }}{% endfor %}", 1, 26, "loop.cycle is not supported"},
		{"{% for x in loop %}{% for y in loop %}{% endfor %}{% endfor %}", 1, 32, `use loop.index`},
		{"{% macro m() %}{% endmacro %}", 1, 4, `unknown tag "macro"`},
		{"{% endfro %}", 1, 4, `did you mean "endfor"?`},
		{"{% set x %}a{% endset %}", 1, 4, "block set"},
		{"{{ xs|random }}", 1, 7, "reproducible"},
		{"{{ a|truncatechars_html(5) }}", 1, 6, `filter "truncatechars_html" is not allowed: its work grows with the square of its input; use truncatechars`},
		{"{{ a|truncatewords_html(5) }}", 1, 6, "use truncatewords"},
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
		{"x\n{{ a - 1 }}", 2, 6, "unsupported operand types for -: 'str' and 'int'"},
		{"{{ nothing | mandatory }}", 1, 14, "mandatory: variable not defined"},
		{"{{ nothing | mandatory('set nothing') }}", 1, 14, "set nothing"},
		{"{{ 'a' < 1 }}", 1, 8, "'<' not supported"},
		{"{% for k, v in hosts %}{% endfor %}", 1, 16, "must be a mapping"},
		{"{% for x in env_rate %}{% endfor %}", 1, 13, "'int' object is not iterable"},
		{"{{ range(0, 5, 0) }}", 1, 4, "step must not be zero"},
		{"{{ range(10000000) }}", 1, 4, "larger than"},
		{"{{ 'ab' * 10000000 }}", 1, 9, "larger than"},
		{"{{ '%%%' | b64decode }}", 1, 12, "b64decode"},
		{"{{ regex_replace(a, '(', '') }}", 1, 4, "regex_replace"},
		{"{{ name.x.y | default(1) }}", 1, 4, "field"}, // pongo2's own path error, positioned
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
	for src, want := range map[string]any{"{{ l }}": []any{"a", "b"}, "{{ i }}": 7, "{{ m }}": map[string]any{"k": "v"}} {
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
		`{{ "a"|ljust(1000000000) }}`,
		`{{ range(1000000)|join("a" * 1000000) }}`,
		`{% for i in range(1000000) %}{% for j in range(1000000) %}x{% endfor %}{% endfor %}`,
		`{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}`,
		`{% for i in range(1000000) %}xxxxxxxxxx{% endfor %}`,
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
	// A loop over a mapping counts its steps too.
	big := map[string]any{}
	for i := range 1100 {
		big[fmt.Sprint(i)] = i
	}
	tpl, err := Parse(`{% for k, v in big %}{% for k2, v2 in big %}{% endfor %}{% endfor %}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tpl.Render(map[string]any{"big": big}); err == nil || !strings.Contains(err.Error(), "loops run more than") {
		t.Errorf("nested mapping loops: err = %v, want the step bound", err)
	}
	tpl, err = Parse(`{{ "ab"|center(6) }}|{{ "ab"|ljust(4) }}|{{ "ab"|rjust(4) }}`)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := tpl.Render(nil); err != nil || out != "  ab  |ab  |  ab" {
		t.Errorf("padding = %q, %v", out, err)
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
// memory: each case is an ordinary error, refused having allocated little.
// (Unbounded, floatformat(200000000) allocated 572 MB and
// floatformat(1000000000) aborted the process.)
func TestFilterBounds(t *testing.T) {
	const maxAlloc = 32 << 20
	tests := []struct{ src, msg string }{
		{"{{ 1.5|floatformat(200000000) }}", "filter floatformat: precision 200000000 is beyond e2c's bound of 1048576"},
		{"{{ 1.5|floatformat(-200000000) }}", "precision -200000000 is beyond"},
		{"{{ 1.5|floatformat('300000000') }}", "precision 300000000 is beyond"},
		{"{{ 1.5|floatformat(1000000)|length }}", ""}, // at the bound: fine
		{"{{ (10.0 ** 300)|floatformat(1048500) }}", "filter floatformat: result larger than 1048576 bytes or items"},
		{"{{ 'a'|ljust('1e300') }}", "filter ljust: width 1e300 is beyond"},
		{"{{ 'a'|rjust('9999999999999999999999') }}", "filter rjust: width 9999999999999999999999 is beyond"},
		{"{{ 'a'|center(2000000) }}", "filter center: width 2000000 is beyond"},
		{"{{ 'abc'|truncatechars(-1) }}", "filter truncatechars: length -1 must not be negative"},
		{"{{ 'abc'|truncatechars(10.0 ** 300) }}", "is beyond e2c's bound"},
		{"{{ 'www.a.com'|urlizetrunc(-5) }}", "must not be negative"},
		{"{{ 'a b'|wordwrap(10.0 ** 30) }}", "filter wordwrap: width 1e+30 is beyond"},
		{`{{ 1|stringformat("%999999[1]d" * 100) }}`, `filter stringformat: layout "%999999[": "*" widths and "[n]" argument indexes are not supported`},
		{`{{ 999999|stringformat("%[1]*[1]d" * 100) }}`, `layout "%[": "*" widths`},
		{`{{ 1|stringformat("%.*d") }}`, `layout "%.*"`},
		{"{{ ('ab' * 400000)|add('ab' * 400000)|length }}", "filter add: result larger than"},
		{"{{ ('&' * 500000)|escape|length }}", "filter escape: result larger than"},
		{`{{ ('\n' * 200000)|linenumbers|length }}`, "filter linenumbers: result larger than"},
		{"{{ ('a' * 1000)|removetags(',' * 100000)|length }}", ""}, // one pass, not one per name
		{"{{ ('a' * 100)|truncatewords(-1) }}", "length -1 must not be negative"},
	}
	for _, tt := range tests {
		tpl, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.src, err)
			continue
		}
		var e *Error
		n := allocated(func() { _, err = tpl.Render(nil) })
		switch {
		case tt.msg == "" && err != nil:
			t.Errorf("Render(%q): %v", tt.src, err)
		case tt.msg != "" && (!errors.As(err, &e) || e.Line != 1 || !strings.Contains(e.Msg, tt.msg)):
			t.Errorf("Render(%q) = %v, want an error at line 1 containing %q", tt.src, err, tt.msg)
		}
		if n > maxAlloc {
			t.Errorf("Render(%q) allocated %d MB, want at most %d", tt.src, n>>20, maxAlloc>>20)
		}
	}
}

// Filters run on any input and argument without crashing (these did).
func TestFilterEdges(t *testing.T) {
	tests := []struct{ src, want string }{
		{"{{ 'a b c d e'|wordwrap(2) }}", "a b\nc d\ne"},
		{"{{ 'a b c'|wordwrap(100) }}", "a b c"},
		{"{{ 'a  b'|wordwrap(0) }}", "a  b"},
		{"{{ '<b>x</b> <i>y</i><br/>'|removetags('b,br') }}", "x <i>y</i>"},
		{"{{ '<a(>x'|removetags('(') }}", "<a(>x"},
		{"{{ '<(>x'|removetags('(') }}", "x"},
		{"{{ '<b>x'|removetags([1]) }}", "<b>x"},
		{"{{ 'abcdef'|truncatechars(5) }} {{ 'abcdef'|truncatechars(0) }}", "ab... "},
		{"{{ 3.14159|floatformat(2) }} {{ 3.0|floatformat(-2) }} {{ 3.14159|floatformat }}", "3.14 3 3.1"},
		{"{{ 42|stringformat('%05d') }} {{ 'x'|stringformat('%-3s|%%') }}", "00042 x  |%"},
		{"{{ 'ab'|add('cd') }} {{ 1|add(2) }}", "abcd 3"},
		{"{{ 'abcdef'|slice('1:-1') }}", "bcde"},
	}
	for _, tt := range tests {
		tpl, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.src, err)
			continue
		}
		if got, err := tpl.Render(nil); err != nil || got != tt.want {
			t.Errorf("Render(%q) = %q, %v; want %q", tt.src, got, err, tt.want)
		}
	}
}
