package schema

import (
	"encoding/json"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// ansiblePython is the interpreter of Debian's ansible-core, with its
// ansible package and PyYAML.
const ansiblePython = "/usr/bin/python3"

// python runs a Python program with in on stdin as JSON and decodes its
// JSON output into out, or skips the test when Ansible's Python (or the
// module the program imports) is not installed.
func python(t *testing.T, program string, in, out any) {
	t.Helper()
	data, _ := json.Marshal(in)
	cmd := exec.Command(ansiblePython, "-c", program)
	cmd.Stdin = strings.NewReader(string(data))
	got, err := cmd.Output()
	if err != nil {
		t.Skipf("Ansible's Python is not available to compare with (%s): %v", ansiblePython, err)
	}
	if err := json.Unmarshal(got, out); err != nil {
		t.Fatal(err)
	}
}

var kvCases = []struct {
	text     string
	freeForm bool
	options  map[string]string
	raw      string
}{
	{"pwd > f chdir=/tmp/d", true, map[string]string{"chdir": "/tmp/d"}, "pwd > f"},
	{"echo x > g creates=/d/f chdir=/d", true, map[string]string{"creates": "/d/f", "chdir": "/d"}, "echo x > g"},
	{`echo a=b foo=bar "chdir=/x"`, true, map[string]string{}, `echo a=b foo=bar "chdir=/x"`},
	{"echo  x   chdir=/tmp   y", true, map[string]string{"chdir": "/tmp"}, "echo  x   y"},
	{`echo x\=y chdir\=/tmp`, true, map[string]string{}, "echo x=y chdir=/tmp"},
	{`command creates="/d/f*" 'chdir=/tmp'`, true, map[string]string{"creates": "/d/f*"}, `command 'chdir=/tmp'`},
	{"echo {{ 'a b' }} chdir=/tmp", true, map[string]string{"chdir": "/tmp"}, "echo {{ 'a b' }}"},
	{"echo one\necho two chdir=/tmp\n", true, map[string]string{"chdir": "/tmp"}, "echo one\necho two"},
	{"echo hi warn=no stdin=x", true, map[string]string{"warn": "no", "stdin": "x"}, "echo hi"},
	{"echo \"{{ x }} = y\" removes={{ f }}", true, map[string]string{"removes": "{{ f }}"}, `echo "{{ x }} = y"`},
	{"src=a dest='b c' mode=0644", false, map[string]string{"src": "a", "dest": "b c", "mode": "0644"}, ""},
	{"msg={{ a }} extra", false, map[string]string{"msg": "{{ a }}"}, "extra"},
}

func TestParseKV(t *testing.T) {
	for _, tt := range kvCases {
		options, raw, err := parseKV(tt.text, tt.freeForm)
		if err != nil || raw != tt.raw || !reflect.DeepEqual(options, tt.options) {
			t.Errorf("parseKV(%q) = %q, %q, %v; want %q, %q", tt.text, options, raw, err, tt.options, tt.raw)
		}
	}
	for _, bad := range []string{`echo "a`, "echo {{ x", "echo 'a b"} {
		if _, _, err := parseKV(bad, true); err == nil {
			t.Errorf("parseKV(%q) accepted", bad)
		}
	}
}

// TestParseKVAsAnsible checks the table against Ansible's own parse_kv.
func TestParseKVAsAnsible(t *testing.T) {
	type in struct {
		Text     string `json:"text"`
		FreeForm bool   `json:"free_form"`
	}
	var ins []in
	for _, tt := range kvCases {
		ins = append(ins, in{tt.text, tt.freeForm})
	}
	var want []map[string]string
	python(t, `import json, sys
from ansible.parsing.splitter import parse_kv
print(json.dumps([parse_kv(c["text"], check_raw=c["free_form"]) for c in json.load(sys.stdin)]))`, ins, &want)
	for i, tt := range kvCases {
		options, raw, _ := parseKV(tt.text, tt.freeForm)
		got := map[string]string{}
		for k, v := range options {
			got[k] = v
		}
		if raw != "" {
			got["_raw_params"] = raw
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("%q: e2c %q, Ansible %q", tt.text, got, want[i])
		}
	}
}

var sequenceCases = []struct{ term, want string }{
	{"start=1 end=10 stride=3 format=n%02d", "n01 n04 n07 n10"},
	{"2-6/2", "2 4 6"},
	{"count=3", "1 2 3"},
	{"5", "1 2 3 4 5"},
	{"5-8", "5 6 7 8"},
	{"4:host%02d", "host01 host02 host03 host04"},
	{"start=5 end=11 stride=2 format=0x%02x", "0x05 0x07 0x09 0x0b"},
	{"start=0x0f00 count=4 format=%04x", "0f00 0f01 0f02 0f03"},
	{"start=0 count=5 stride=2", "0 2 4 6 8"},
	{"start=1 count=5 stride=2", "1 3 5 7 9"},
	{"count=0", ""},
	{"start=3 end=1 stride=-1", "3 2 1"},
	{"start=1 end=3 format=%5.2f", " 1.00  2.00  3.00"},
	{"start=1 end=3 format=%#o", "0o1 0o2 0o3"},
	{"start=1 end=2 format=%s!", "1! 2!"},
	{"end=0x10 stride=0x5", "1 6 11 16"},
	{"end=1_0", "1 2 3 4 5 6 7 8 9 10"},
}

var sequenceErrors = map[string]string{
	"end=010":           "can't parse end=010 as integer",
	"count=2 end=3":     "can't specify both count and end in with_sequence",
	"start=5 end=1":     "to count backwards make stride negative",
	"x=1 end=2":         "unrecognized arguments to with_sequence: x",
	"end=3 format=%d%%": "bad formatting string: %d%%",
	"start=1 end=2 foo": "unrecognized arguments to with_sequence: _raw_params",
	"end=3 format=%q":   `problem formatting 1 with "%q"`,
	"start=1":           "must specify count or end in with_sequence",
	"end=_1":            "can't parse end=_1 as integer",
	"end=99999999":      "99999999 items; e2c makes at most 1048576",
}

func TestSequence(t *testing.T) {
	for _, tt := range sequenceCases {
		items, err := Sequence(tt.term)
		var got []string
		for _, it := range items {
			got = append(got, it.(string))
		}
		if err != nil || strings.Join(got, " ") != tt.want {
			t.Errorf("Sequence(%q) = %q, %v; want %q", tt.term, got, err, tt.want)
		}
	}
	for term, want := range sequenceErrors {
		if _, err := Sequence(term); err == nil || err.Error() != want {
			t.Errorf("Sequence(%q): err = %v, want %q", term, err, want)
		}
	}
}

// TestSequenceAsAnsible checks the table against Ansible's sequence lookup.
func TestSequenceAsAnsible(t *testing.T) {
	var terms []string
	for _, tt := range sequenceCases {
		terms = append(terms, tt.term)
	}
	var want [][]string
	python(t, `import json, sys
from ansible.plugins.lookup.sequence import LookupModule
print(json.dumps([LookupModule().run([t], {}) for t in json.load(sys.stdin)]))`, terms, &want)
	for i, tt := range sequenceCases {
		if got := strings.Join(want[i], " "); got != tt.want {
			t.Errorf("%q: Ansible gives %q, the table %q", tt.term, got, tt.want)
		}
	}
}

func decodeTasks(t *testing.T, tasks string) []Task {
	t.Helper()
	w, err := DecodeWorkflow("x.yaml", []byte("- hosts: a\n  launch:\n"+tasks))
	if err != nil {
		t.Fatal(err)
	}
	return w.Plays[0].Tasks[Launch]
}

func TestDecodeKeywords(t *testing.T) {
	ts := decodeTasks(t, `
  - name: outer
    when: ok
    become: yes
    become_user: app
    environment: {A: yes, B: 0644}
    vars: {x: 1}
    no_log: true
    block:
    - shell: pwd > f chdir=/tmp creates=/tmp/f
      args: {chdir: /ignored, removes: /r}
      register: r
      until: r.rc == 0
      retries: 5
      delay: 0
      failed_when: [r.rc > 1, "'x' in r.stdout"]
      changed_when: false
    - block:
      - debug: msg={{ item }}
        with_sequence: start=1 end=3
    rescue:
    - local_action: shell echo {{ inventory_hostname }}
      run_once: true
    always:
    - local_action: {module: copy, src: a, dest: b}
    - debug: {msg: "{{ who }} {{ i }}"}
      with_dict: {b: 1, a: 2}
      loop_control: {loop_var: who, index_var: i, label: "{{ who.key }}", pause: 0.5}
      delegate_to: "{{ peer }}"
  - command: ls
    with_items: [[1, 2], 3]
    ignore_errors: 1
`)
	if len(ts) != 2 || !ts[0].IsBlock() || ts[1].IsBlock() {
		t.Fatalf("tasks = %+v", ts)
	}
	b := ts[0]
	if b.Name != "outer" || !reflect.DeepEqual(b.When, []string{"ok"}) || !b.Become || b.BecomeUser != "app" || !b.NoLog ||
		!reflect.DeepEqual(b.Environment, map[string]any{"A": true, "B": 420}) || b.Vars["x"] != 1 || b.At("vars.x").Line != 9 {
		t.Errorf("block = %+v", b)
	}
	if len(b.Block) != 2 || len(b.Rescue) != 1 || len(b.Always) != 2 || !b.Block[1].IsBlock() || len(b.Block[1].Block) != 1 {
		t.Fatalf("block = %+v", b)
	}
	sh := b.Block[0]
	wantArgs := map[string]any{"cmd": "pwd > f", "chdir": "/tmp", "creates": "/tmp/f", "removes": "/r"}
	if sh.Module != "shell" || !reflect.DeepEqual(sh.Args, wantArgs) || sh.Register != "r" || sh.Retries != 5 || sh.Delay != 0 ||
		!reflect.DeepEqual(sh.Until, []string{"r.rc == 0"}) || len(sh.FailedWhen) != 2 || !reflect.DeepEqual(sh.ChangedWhen, []string{"False"}) {
		t.Errorf("shell = %+v", sh)
	}
	if seq := b.Block[1].Block[0]; seq.Module != "debug" || seq.Args["msg"] != "{{ item }}" || seq.Loop != "start=1 end=3" || seq.LoopWith != "sequence" {
		t.Errorf("sequence = %+v", seq)
	}
	if la := b.Rescue[0]; la.Module != "shell" || la.Args["cmd"] != "echo {{ inventory_hostname }}" || la.DelegateTo != "localhost" || !la.RunOnce {
		t.Errorf("local_action = %+v", la)
	}
	if la := b.Always[0]; la.Module != "copy" || !reflect.DeepEqual(la.Args, map[string]any{"src": "a", "dest": "b"}) || la.DelegateTo != "localhost" {
		t.Errorf("local_action mapping = %+v", la)
	}
	d := b.Always[1]
	wantLoop := []any{map[string]any{"key": "b", "value": 1}, map[string]any{"key": "a", "value": 2}} // as written
	if !reflect.DeepEqual(d.Loop, wantLoop) || d.LoopWith != "" || d.DelegateTo != "{{ peer }}" ||
		d.LoopControl != (LoopControl{Var: "who", IndexVar: "i", Label: "{{ who.key }}", Pause: 0.5}) {
		t.Errorf("with_dict = %+v", d)
	}
	if c := ts[1]; c.LoopWith != "items" || !reflect.DeepEqual(c.Loop, []any{[]any{1, 2}, 3}) || !c.IgnoreErrors || c.Retries != 3 || c.Delay != 5 {
		t.Errorf("with_items = %+v", c)
	}
}

func TestDecodeKeywordErrors(t *testing.T) {
	tests := []struct{ name, tasks, want string }{
		{"free-form option e2c lacks", "  - shell: echo hi warn=no\n",
			`x.yaml:3:12: shell: unknown argument "warn" (from warn=... in "echo hi warn=no"); e2c's shell takes: cmd, chdir, creates, removes, executable, stdin, stdin_add_newline, strip_empty_ends`},
		{"warn", "  - command: ls warn=no\n", `command: unknown argument "warn"`},
		{"not key=value", "  - copy: src=a dest=b extra\n", `x.yaml:3:11: copy: "extra" is not a key=value pair`},
		{"unbalanced", "  - shell: echo \"{{ x }}\n", "shell: unbalanced quotes"},
		{"two loops", "  - debug: {msg: x}\n    loop: [1]\n    with_items: [2]\n", "x.yaml:5:5: task: loop and with_items both give the loop; give one"},
		{"with_dict list", "  - debug: {msg: x}\n    with_dict: [1]\n", "task.with_dict: found a list, expected a mapping or a template"},
		{"with_items mapping", "  - debug: {msg: x}\n    with_items: {a: 1}\n", "use with_dict"},
		{"bad sequence", "  - debug: {msg: x}\n    with_sequence: start=5 end=1\n", "x.yaml:4:20: task.with_sequence: to count backwards make stride negative"},
		{"loop_control alone", "  - debug: {msg: x}\n    loop_control: {loop_var: y}\n", "loop_control without a loop"},
		{"loop_control key", "  - debug: {msg: x}\n    loop: [1]\n    loop_control: {extended: yes}\n", `loop_control: unknown key "extended"`},
		{"local_action and delegate_to", "  - local_action: shell ls\n    delegate_to: h\n", "local_action runs on this machine; it takes no delegate_to"},
		{"local_action unknown", "  - local_action: shel ls\n", `local_action: unknown module "shel" (did you mean "shell"?)`},
		{"local_action no module", "  - local_action: {cmd: ls}\n", `local_action: missing required key "module"`},
		{"rescue outside block", "  - shell: ls\n    rescue: []\n", "task: rescue belongs to a block"},
		{"loop on block", "  - block: [{shell: ls}]\n    loop: [1]\n", `block: "loop" applies to a task, not to a block`},
		{"block typo", "  - block: [{shell: ls}]\n    rescu: []\n", `block: unknown key "rescu" (did you mean "rescue"?)`},
		{"args not mapping", "  - shell: ls\n    args: chdir=/tmp\n", "args: found \"chdir=/tmp\", expected a mapping"},
		{"until condition", "  - shell: ls\n    until: {a: 1}\n", "task.until: found a mapping, expected a condition"},
		{"env name", "  - shell: ls\n    environment: {A-B: 1}\n", `"A-B" is not a valid environment variable name`},
		{"loop var name", "  - debug: {msg: x}\n    loop: [1]\n    loop_control: {loop_var: my-item}\n", `loop_control.loop_var: "my-item" is not a valid variable name`},
		{"pause", "  - debug: {msg: x}\n    loop: [1]\n    loop_control: {pause: soon}\n", `loop_control.pause: found "soon", expected a number of seconds`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeWorkflow("x.yaml", []byte("- hosts: a\n  launch:\n"+tt.tasks))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}
