package plan

import (
	"reflect"
	"testing"
)

// Variables read under default (or a defined test) are passed when they are
// defined, and a task reading a registered value that way runs when the
// value exists: default must never win over a defined value.
func TestDefaultReadsDefinedValues(t *testing.T) {
	sc := load(t, cctvLike, `
- hosts: cloud.kafka.*.leader
  vars: {items: [a, b], name: kafka}
  prepare:
  - debug: {msg: "{{ name | default('none') }} {{ missing | default('none') }}"}
  - shell: "echo {{ item }}"
    loop: "{{ items | default([]) }}"
  - shell: hostname
    register: r
  - debug: {msg: "{{ r.stdout | default('none') }}"}
  - debug: {msg: "{{ 'yes' if r is defined else 'no' }}"}
`, "")
	p := mustBuild(t, sc)
	tasks := p.Plays[0].Phases["prepare"][0].Tasks
	if len(tasks) != 5 {
		t.Fatalf("%d tasks, want 5", len(tasks))
	}
	if got := tasks[0].Args["msg"]; got != "kafka none" {
		t.Errorf("default over a defined var: msg = %q, want %q", got, "kafka none")
	}
	var cmds []any
	for _, task := range tasks[1].Items {
		cmds = append(cmds, task.Args["cmd"])
	}
	if want := []any{"echo a", "echo b"}; !reflect.DeepEqual(cmds, want) {
		t.Errorf("loop over items | default([]) = %v, want %v", cmds, want)
	}
	for _, task := range tasks[3:] {
		if !task.Deferred {
			t.Errorf("task reading the registered r under default or defined = %+v, want deferred", task)
		}
	}
	play := p.Plays[0]
	rt := p.Scope(play, "prepare", play.Hosts[0], tasks[3], map[string]any{"r": map[string]any{"stdout": "host1"}})
	out, err := p.Render(tasks[3], rt)
	if err != nil || out.Args["msg"] != "host1" {
		t.Errorf("rendered when it runs: %v, %v; want msg host1", out, err)
	}
}
