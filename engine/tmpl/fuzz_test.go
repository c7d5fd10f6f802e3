package tmpl

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzRender checks that no template text can crash the engine: Parse,
// Render and Value either succeed or return *Error / *UndefinedError.
func FuzzRender(f *testing.F) {
	for _, tt := range ansibleCases {
		f.Add(tt.src)
	}
	for _, s := range []string{
		`{% ssi "/etc/passwd" %}`, `{% include "x" %}`, "{{ x |lsit }}", "{{ x", "{% for %}",
		"{{ x is defined }}", "{{ kafka.ulr }}", "{{ 1 // 0 }}", "{% raw %}{{ a }}{% endraw %}",
		"{{ {'a': [1, (2, 3)]}['a'][1] }}", "{{ xs[-1] ~ peers.9 }}", "{%- if a -%}{{- b -}}{%- endif -%}",
	} {
		f.Add(s)
	}
	// Every filter, with arguments for the fuzzer to grow.
	for _, name := range slices.Sorted(maps.Keys(filters)) {
		for _, arg := range []string{"", "(3)", "(-2)", "('1:2')", "('%5d')", "('b,i')", "(1.5)"} {
			f.Add("{{ a|" + name + arg + " }} {{ xs|" + name + arg + " }} {{ half|" + name + arg + " }}")
		}
	}
	// Every templated line of the shipped examples.
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*", "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "{{") {
				_, value, _ := strings.Cut(line, ": ")
				f.Add(strings.Trim(strings.TrimSpace(value), `"'`))
			}
		}
	}
	vars := testVars()
	f.Fuzz(func(t *testing.T, src string) {
		fuzzOne(t, src, vars, Parse)
		fuzzOne(t, src, vars, ParseField)
	})
}

// fuzzOne checks src read by parse (Parse or ParseField).
func fuzzOne(t *testing.T, src string, vars map[string]any, parse func(string) (*Template, error)) {
	t.Helper()
	tpl, err := parse(src)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || strings.HasPrefix(e.Msg, internal) {
			t.Fatalf("Parse(%q): %T %v, want *Error", src, err, err)
		}
		return
	}
	if refs := tpl.Refs(); !slices.IsSorted(refs) || len(slices.Compact(slices.Clone(refs))) != len(refs) {
		t.Fatalf("Refs(%q) = %q: not sorted and unique", src, refs)
	}
	_, err = tpl.Render(vars)
	checkRenderErr(t, src, err)
	_, err = tpl.Value(vars)
	checkRenderErr(t, src, err)
}

func checkRenderErr(t *testing.T, src string, err error) {
	t.Helper()
	var e *Error
	var ue *UndefinedError
	if err != nil && !errors.As(err, &e) && !errors.As(err, &ue) {
		t.Fatalf("render %q: %T %v, want *Error or *UndefinedError", src, err, err)
	}
	// Parse and Render turn panics into errors; the fuzzer must still see them.
	if e != nil && strings.HasPrefix(e.Msg, internal) {
		t.Fatalf("render %q: %v", src, err)
	}
}
