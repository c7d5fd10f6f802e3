package ansiblediff

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestCases reads every case of testdata/: each says what it tests and
// fits in the suite's subnets.
func TestCases(t *testing.T) {
	cases, err := LoadCases("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 50 {
		t.Fatalf("%d cases", len(cases))
	}
	if _, err := Subnet(len(cases) - 1); err != nil {
		t.Error(err)
	}
	for _, c := range cases {
		if c.Deliberate != "" && len(c.Deliberate) < 20 {
			t.Errorf("%s: a deliberate difference says why: %q", c.File, c.Deliberate)
		}
	}
}

// TestLines: each tool's file has every task on the same line, and that
// line leads back to the task's line in the case file, so that "failed at
// line N" names the same task for both tools.
func TestLines(t *testing.T) {
	cases, err := LoadCases("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		var doc yaml.Node
		yaml.Unmarshal([]byte(c.play), &doc)
		var want []int
		for _, l := range taskLines(value(doc.Content[0], "tasks")) {
			want = append(want, c.playLine+l-1)
		}
		for _, f := range []struct{ text, key string }{{c.playbook(), "tasks"}, {c.workflow(), "launch"}} {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(f.text), &doc); err != nil {
				t.Fatalf("%s: %v\n%s", c.Name, err, f.text)
			}
			var got []int
			for _, l := range taskLines(value(doc.Content[0].Content[0], f.key)) {
				got = append(got, c.caseLine(l))
			}
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Errorf("%s (%s): tasks at case lines %v, want %v", c.Name, f.key, got, want)
			}
		}
	}
}

// taskLines are the lines of the tasks of a list, blocks' tasks included.
func taskLines(tasks *yaml.Node) []int {
	var lines []int
	for _, task := range tasks.Content {
		lines = append(lines, task.Line)
		for _, k := range []string{"block", "rescue", "always"} {
			if b := value(task, k); b != nil {
				lines = append(lines, taskLines(b)...)
			}
		}
	}
	return lines
}

func TestLoadCase(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		err        string // a part of the error; "" loads
		playLine   int
		registers  []string
		facts      []string
		files      map[string]File
	}{
		{name: "every source of names", text: `about: x
files:
  a.txt: "A\n"
  bin/run.sh: {mode: "0755", content: "echo\n"}
  b.gz: {base64: "aGk="}
---
tasks:
- block:
  - shell: "true"
    register: one
  rescue:
  - set_fact: {x: 1, cacheable: true}
  always:
  - command: "true"
    register: two
- set_fact: a=1 b="{{ x }}"
- ansible.builtin.set_fact: {y: 2}
- shell: "true"
  register: one
`, playLine: 7, registers: []string{"one", "two"}, facts: []string{"x", "a", "b", "y"},
			files: map[string]File{"a.txt": {"A\n", 0o644}, "bin/run.sh": {"echo\n", 0o755}, "b.gz": {"hi", 0o644}}},
		// The header's last line keeps its newline, so a file's text does.
		{name: "a text last", text: "about: x\nfiles:\n  f: |\n    text\n---\ntasks: []\n", playLine: 6,
			files: map[string]File{"f": {"text\n", 0o644}}},
		{name: "no separator", text: "about: x\ntasks: []\n", err: `no "---" line`},
		{name: "no about", text: "files: {}\n---\ntasks: []\n", err: `no "about"`},
		{name: "unknown header key", text: "about: x\nvars: {}\n---\ntasks: []\n", err: "field vars not found"},
		{name: "no tasks", text: "about: x\n---\nvars: {}\n", err: "needs a list of tasks"},
		{name: "a file outside", text: "about: x\nfiles: {../a: x}\n---\ntasks: []\n", err: "relative path inside"},
		{name: "a bad mode", text: "about: x\nfiles: {a: {mode: rw}}\n---\ntasks: []\n", err: "not octal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "c.yml")
			os.WriteFile(file, []byte(tc.text), 0o644)
			c, err := loadCase(file)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.registers, tc.registers) || !slices.Equal(c.facts, tc.facts) {
				t.Errorf("registers %v, facts %v", c.registers, c.facts)
			}
			for name, f := range tc.files {
				if c.Files[name] != f {
					t.Errorf("%s: %+v, want %+v", name, c.Files[name], f)
				}
			}
			if c.playLine != tc.playLine {
				t.Errorf("play at line %d", c.playLine)
			}
		})
	}
}
