package plan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/schema"
)

// launch plans workflow on cctvLike and returns the launch tasks of its
// first play on its first host.
func launch(t *testing.T, workflow string) []*Task {
	t.Helper()
	p := mustBuild(t, load(t, cctvLike, workflow, ""))
	return p.Plays[0].Phases["launch"][0].Tasks
}

func TestPlanBlocks(t *testing.T) {
	tasks := launch(t, `
- hosts: cloud.*
  become: yes
  environment: {A: play}
  launch:
  - debug: {msg: first}
  - name: outer {{ inventory_hostname }}
    when: go
    vars: {go: yes, v: block}
    environment: {B: yes}
    ignore_errors: yes
    become: no
    block:
    - shell: echo {{ v }}
      when: v == 'block'
    - block:
      - shell: echo {{ v }}
        vars: {v: inner}
        no_log: true
    rescue:
    - debug: {msg: "{{ ansible_failed_result.msg }}"}
    always:
    - debug: {msg: always}
      ignore_errors: no
`)
	if len(tasks) != 2 || !tasks[1].IsBlock() || tasks[1].Name != "outer cloud-kafka-1-1" {
		t.Fatalf("tasks = %+v", tasks)
	}
	b := tasks[1]
	if len(b.Block) != 2 || len(b.Block[1].Block) != 1 || len(b.Rescue) != 1 || len(b.Always) != 1 {
		t.Fatalf("block = %+v", b)
	}
	var index []int
	Walk(tasks, func(t *Task) { index = append(index, t.Index) })
	if !reflect.DeepEqual(index, []int{0, 2, 4, 5, 6}) {
		t.Errorf("indexes = %v, want blocks counted in written order", index)
	}
	sh := b.Block[0]
	if sh.Args["cmd"] != "echo block" || !reflect.DeepEqual(sh.When, []string{"go", "v == 'block'"}) || sh.Become || !sh.IgnoreErrors ||
		!reflect.DeepEqual(sh.Environment, map[string]string{"A": "play", "B": "True"}) {
		t.Errorf("block task = %+v", sh)
	}
	if in := b.Block[1].Block[0]; in.Args["cmd"] != "echo inner" || !in.NoLog || in.Vars["v"] != "inner" {
		t.Errorf("inner task = %+v", in)
	}
	if r := b.Rescue[0]; !r.Deferred {
		t.Errorf("the rescue reads ansible_failed_result, and is not deferred: %+v", r)
	}
	if a := b.Always[0]; a.IgnoreErrors {
		t.Errorf("always task: ignore_errors: no lost: %+v", a)
	}
	var out bytes.Buffer
	p := mustBuild(t, load(t, cctvLike, "- hosts: cloud.*\n  launch:\n  - name: b\n    block: [{debug: {msg: x}}]\n    rescue: [{debug: {msg: y}}]\n    always: [{debug: {msg: z}}]\n", ""))
	if err := p.WriteWorkflow(&out, schema.Launch, func(int) string { return "" }); err != nil {
		t.Fatal(err)
	}
	want := `    - block: b
        - debug: {"msg":"x"}
      rescue:
        - debug: {"msg":"y"}
      always:
        - debug: {"msg":"z"}
`
	if !strings.Contains(out.String(), want) {
		t.Errorf("workflow-validate.out:\n%s\nwant it to contain:\n%s", out.String(), want)
	}
}

// TestPlanDeferral checks which tasks are rendered when they run: those
// reading what tasks register, directly or through vars.
func TestPlanDeferral(t *testing.T) {
	tasks := launch(t, `
- hosts: cloud.*
  vars: {out: "{{ r.stdout }}", plain: "x", via: "{{ out }}"}
  launch:
  - {shell: ls, register: r}
  - debug: {msg: "{{ via }}"}
  - debug: {msg: "{{ plain }}"}
  - debug: {msg: "{{ t }}"}
    vars: {t: "{{ r.rc }}"}
  - shell: ls
    register: again
    until: again.rc == 0
  - block:
    - debug: {msg: "{{ plain }}"}
    when: r.rc == 0
  - debug: {msg: "{{ plain }}"}
    delegate_to: "{{ r.stdout }}"
  - debug: {msg: "{{ r.stdout | default('none') }}"}
  - debug: {msg: "{{ item }}"}
    loop: "{{ r.stdout_lines | default([]) }}"
  - debug: {msg: "{{ plain | default('none') }} {{ nothing | default('none') }}"}
`)
	want := []bool{false, true, false, true, false, true, true, true, true, false}
	var got []bool
	Walk(tasks, func(t *Task) { got = append(got, t.Deferred) })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("deferred = %v, want %v", got, want)
	}
	if msg := tasks[len(tasks)-1].Args["msg"]; msg != "x none" {
		t.Errorf("default over a play var and an undefined one = %q, want %q", msg, "x none")
	}
}

func TestPlanLoops(t *testing.T) {
	tasks := launch(t, `
- hosts: cloud.*
  vars: {n: 3, pairs: [[a, b], c], users: {bob: 1, al: 2}}
  launch:
  - debug: {msg: "{{ item }}"}
    with_items: ["{{ pairs }}", d]
  - debug: {msg: "{{ item }}"}
    with_sequence: start=1 end={{ n }} format=h%02d
  - debug: {msg: "{{ item.key }}"}
    with_dict: "{{ users }}"
  - debug: {msg: "{{ item.a }}"}
    loop: [{k: 1, a: x}, {k: 2}]
    when: item.k == 1
    loop_control: {label: "k={{ item.k }}"}
`)
	items := func(t *Task) []any {
		var out []any
		for _, it := range t.Items {
			out = append(out, it.Args["msg"])
		}
		return out
	}
	for i, want := range [][]any{{[]any{"a", "b"}, "c", "d"}, {"h01", "h02", "h03"}, {"bob", "al"} /* as written, as Ansible */, {"x", "{{ item.a }}"}} {
		if got := items(tasks[i]); !reflect.DeepEqual(got, want) {
			t.Errorf("task %d items = %v, want %v", i, got, want)
		}
	}
	if second := tasks[3].Items[1]; !second.Skipped || second.Label != "k=2" {
		t.Errorf("the item whose when is false = %+v, want skipped, unrendered", second)
	}
}

func TestPlanDelegate(t *testing.T) {
	tasks := launch(t, `
- hosts: cloud.*
  launch:
  - {debug: {msg: x}, delegate_to: fog-mosquitto-2-1}
  - {debug: {msg: x}, delegate_to: "fog.mosquitto.3.*"}
  - {debug: {msg: x}, delegate_to: localhost}
  - {debug: {msg: x}, delegate_to: "{{ '198.18.0.1' }}"}
  - {local_action: debug msg=x}
`)
	var got []string
	for _, t := range tasks {
		got = append(got, t.DelegateTo)
	}
	if want := []string{"fog-mosquitto-2-1", "fog-mosquitto-3-1", "localhost", "cloud-kafka-1-1", "localhost"}; !reflect.DeepEqual(got, want) {
		t.Errorf("delegate_to = %v, want %v", got, want)
	}
}

func TestPlanLanguageErrors(t *testing.T) {
	tests := []struct{ name, workflow, want string }{
		{"vars cycle", "- hosts: cloud.*\n  vars: {a: \"{{ b }}\", b: \"{{ a }}\"}\n  launch: [{debug: {msg: \"{{ a }}\"}}]\n",
			"workflow.yaml:2:13: vars: a reads itself (a -> b -> a) (on host cloud-kafka-1-1)"},
		{"undefined in a var", "- hosts: cloud.*\n  vars: {base: x, app: \"{{ bse }}/app\"}\n  launch: [{debug: {msg: \"{{ app }}\"}}]\n",
			`workflow.yaml:2:24: undefined variable "bse" (did you mean "base"?)`},
		{"delegate to many", "- hosts: cloud.*\n  launch: [{debug: {msg: x}, delegate_to: fog}]\n",
			`workflow.yaml:2:43: delegate_to: "fog" selects 4 hosts (fog-mosquitto-1-1, fog-mosquitto-2-1, fog-mosquitto-3-1); it must name one`},
		{"delegate to nothing", "- hosts: cloud.*\n  launch: [{debug: {msg: x}, delegate_to: nowhere}]\n", `delegate_to: "nowhere" is no host of the experiment`},
		{"sequence", "- hosts: cloud.*\n  vars: {n: 0}\n  launch: [{debug: {msg: x}, with_sequence: \"start=5 end={{ n }}\"}]\n",
			"workflow.yaml:3:45: with_sequence: to count backwards make stride negative"},
		{"with_dict", "- hosts: cloud.*\n  launch: [{debug: {msg: x}, with_dict: \"{{ [1] }}\"}]\n", "with_dict: [1] is not a mapping"},
		{"reserved task var", "- hosts: cloud.*\n  launch: [{debug: {msg: x}, vars: {working_dir: /x}}]\n", `vars: "working_dir" would hide the variable e2c sets`},
		{"reserved loop var", "- hosts: cloud.*\n  launch: [{debug: {msg: x}, loop: [1], loop_control: {loop_var: inventory_hostname}}]\n", `loop_control: "inventory_hostname" would hide`},
		{"undefined in a block's task", "- hosts: cloud.*\n  launch:\n  - block: [{debug: {msg: \"{{ nope }}\"}}]\n", `workflow.yaml:3:27: undefined variable "nope"`},
		{"syntax in rescue", "- hosts: nothing\n  launch:\n  - {block: [], rescue: [{debug: {msg: \"{{ x | lsit }}\"}}]}\n", `filter "lsit" does not exist`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := build(t, load(t, cctvLike, tt.workflow, ""))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

// TestPlanKeepsMappingOrder: mappings keep their written order from the
// scenario through templates (a var that names another, a filter's
// result) and back into templates, as in Ansible.
func TestPlanKeepsMappingOrder(t *testing.T) {
	tasks := launch(t, `
- hosts: cloud.*
  vars: {conf: {zeta: 1, alpha: [1, 2], mid: {b: x, a: y}}, again: "{{ conf }}", both: "{{ conf.mid | combine({'c': 1}) }}"}
  launch:
  - debug: {msg: "{{ again | to_json }} {{ both | dict2items | map(attribute='key') | list }}"}
  - debug: {msg: "{{ item.key }}={{ item.value }}"}
    with_dict: "{{ again.mid }}"
  - uri: {url: "http://x", body_format: json, body: {zeta: "{{ both }}", alpha: 2}}
`)
	if got, want := tasks[0].Args["msg"], `{"zeta": 1, "alpha": [1, 2], "mid": {"b": "x", "a": "y"}} ['b', 'a', 'c']`; got != want {
		t.Errorf("msg = %v, want %v", got, want)
	}
	var items []any
	for _, it := range tasks[1].Items {
		items = append(items, it.Args["msg"])
	}
	if want := []any{"b=x", "a=y"}; !reflect.DeepEqual(items, want) {
		t.Errorf("with_dict items = %v, want %v", items, want)
	}
	if got, _ := json.Marshal(tasks[2].Args["body"]); string(got) != `{"zeta":{"b":"x","a":"y","c":1},"alpha":2}` {
		t.Errorf("uri body = %s, want the written order", got)
	}
}
