package schema

import (
	"reflect"
	"strings"
	"testing"
)

// task decodes a workflow of one task and returns it.
func task(t *testing.T, text string) (Task, error) {
	t.Helper()
	w, err := DecodeWorkflow("x.yaml", []byte("- hosts: a\n  launch:\n  - "+text+"\n"))
	if len(w.Plays) == 0 || len(w.Plays[0].Tasks[Launch]) == 0 {
		t.Fatalf("no task decoded from %q: %v", text, err)
	}
	return w.Plays[0].Tasks[Launch][0], err
}

func TestModuleArgs(t *testing.T) {
	tests := []struct {
		text   string
		module string
		args   map[string]any
	}{
		{`file: {dest: /tmp/x, state: directory, recurse: "1"}`, "file", map[string]any{"path": "/tmp/x", "state": "directory", "recurse": true}},
		{`lineinfile: {name: /etc/hosts, regex: "^a", value: a, create: "t"}`, "lineinfile", map[string]any{"path": "/etc/hosts", "regexp": "^a", "line": "a", "create": true}},
		{`copy: content="a b" dest=/tmp/{{ x }} mode=0644`, "copy", map[string]any{"content": "a b", "dest": "/tmp/{{ x }}", "mode": "0644"}},
		{`copy: content={{ out.stdout_lines | last | trim }} dest="{{ where }}"`, "copy", map[string]any{"content": "{{ out.stdout_lines | last | trim }}", "dest": "{{ where }}"}},
		{`shell: make all chdir=/src creates=bin/app`, "shell", map[string]any{"cmd": "make all", "chdir": "/src", "creates": "bin/app"}},
		{`shell: echo a=b "chdir=x y"`, "shell", map[string]any{"cmd": `echo a=b "chdir=x y"`}},
		{"shell: |\n      echo one\n      echo two", "shell", map[string]any{"cmd": "echo one\necho two\n"}},
		{`script: run.sh --fast creates=/tmp/done`, "script", map[string]any{"cmd": "run.sh --fast", "creates": "/tmp/done"}},
		{`set_fact: {a: 1, b_2: "{{ x }}", cacheable: yes}`, "set_fact", map[string]any{"a": 1, "b_2": "{{ x }}", "cacheable": true}},
		{`set_fact: a=1 b=two`, "set_fact", map[string]any{"a": "1", "b": "two"}},
		{`fail:`, "fail", map[string]any{}},
		{`ansible.builtin.systemd_service: {name: x, daemon-reload: yes}`, "systemd", map[string]any{"name": "x", "daemon_reload": true}},
		{`ansible.posix.synchronize: {src: a/, dest: /b}`, "synchronize", map[string]any{"src": "a/", "dest": "/b"}},
		{`apt: {pkg: [a, b], state: "{{ s }}"}`, "apt", map[string]any{"name": []any{"a", "b"}, "state": "{{ s }}"}},
		{`command: {argv: [echo, "a b"]}`, "command", map[string]any{"argv": []any{"echo", "a b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := task(t, tt.text)
			if err != nil {
				t.Fatal(err)
			}
			if got.Module != tt.module || !reflect.DeepEqual(got.Args, tt.args) {
				t.Errorf("got %s %v, want %s %v", got.Module, got.Args, tt.module, tt.args)
			}
		})
	}
}

func TestModuleArgErrors(t *testing.T) {
	tests := []struct{ text, want string }{
		{`file: {path: /x, state: dir}`, `x.yaml:3:29: file.state: unknown value "dir"; expected one of: file, directory, link, hard, touch, absent`},
		{`file: {path: /x, mdoe: "0644"}`, `file: unknown key "mdoe" (did you mean "mode"?)`},
		{`file: {state: absent}`, `file: missing required key "path"`},
		{`file: {path: /x, dest: /y}`, `file: path is given twice (under another of its names)`},
		{`lineinfile: {path: /x, line: a, insertafter: b, insertbefore: c}`, `lineinfile: insertbefore and insertafter cannot be given together`},
		{`copy: {dest: /x}`, `copy: expected exactly one of src, content`},
		{`copy: {src: a, content: b, dest: /x}`, `copy: expected exactly one of src, content`},
		{`copy: src=a dst=b`, `copy: unknown argument "dst" (from dst=... in "src=a dst=b") (did you mean "dest"?)`},
		{`copy: just some text`, `copy: "just some text" is not a key=value pair`},
		{`apt: {state: present}`, `apt: expected at least one of name, deb, update_cache`},
		{`apt: {name: x, update_cache: maybe}`, `apt.update_cache: found "maybe", expected a boolean`},
		{`set_fact: {my-var: 1}`, `set_fact: "my-var" is not a valid variable name`},
		{`assert: {fail_msg: x}`, `assert: missing required key "that"`},
		{`docker_container: {name: x}`, `task: module "docker_container" is not supported: containers come with the services`},
		{`check_mode: yes`, `task: unknown module or keyword "check_mode"`},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			_, err := task(t, tt.text)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestModuleBool: the words Ansible's modules take as booleans.
func TestModuleBool(t *testing.T) {
	for in, want := range map[any]bool{"yes": true, "On": true, "1": true, "t": true, 1: true, true: true, "no": false, "OFF": false, "0": false, "f": false, 0: false} {
		if got, ok := ModuleBool(in); !ok || got != want {
			t.Errorf("ModuleBool(%v) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []any{"maybe", 2, ""} {
		if _, ok := ModuleBool(in); ok {
			t.Errorf("ModuleBool(%v) accepted", in)
		}
	}
}
