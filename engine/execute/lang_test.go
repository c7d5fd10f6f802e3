package execute

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The expectations below are what ansible-core 2.14 gives for the same
// tasks on localhost (ansible-playbook -i localhost, -c local), results
// registered and dumped with to_json; volatile keys (start, end, delta,
// invocation) left out.

// run runs phase launch of workflow on n local hosts and returns the
// executor, its output, the hosts' folders and the phase's error.
func run(t *testing.T, n int, workflow string) (*Executor, string, map[string]string, error) {
	t.Helper()
	ex, out, homes := setup(t, n, workflow)
	_, err := ex.Phase(context.Background(), "launch")
	return ex, out.String(), homes, err
}

// registered returns what host registered under name, as JSON would
// give it (ints as float64), for comparing with Ansible's dumps.
func registered(t *testing.T, ex *Executor, host, name string) map[string]any {
	t.Helper()
	v, ok := ex.Memory().Registered[host][name]
	if !ok {
		t.Fatalf("%s registered no %s", host, name)
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// pick keeps the keys of m that want has, to compare results whose other
// keys (stdout_lines, rc...) are the modules' business; in the items of a
// loop's results too.
func pick(m map[string]any, want map[string]any) map[string]any {
	out := map[string]any{}
	for k, w := range want {
		v, ok := m[k]
		if !ok {
			continue
		}
		items, _ := v.([]any)
		wants, _ := w.([]any)
		if len(items) > 0 && len(items) == len(wants) {
			picked := make([]any, len(items))
			for i := range items {
				im, _ := items[i].(map[string]any)
				wm, _ := wants[i].(map[string]any)
				picked[i] = pick(im, wm)
			}
			v = picked
		}
		out[k] = v
	}
	return out
}

const h1 = "edge-node-1-1"

func TestLanguage(t *testing.T) {
	tests := []struct {
		name, tasks string
		fails       string            // the phase's error contains this; "" for none
		files       map[string]string // in edge-node-1-1's folder: content; "-" for absent
		registered  map[string]map[string]any
		output      []string // lines the output has
	}{
		{name: "default takes the value when there is one", tasks: `
  - shell: echo hi
    register: r
  - shell: echo "{{ r.stdout | default('none') }} {{ enabled | default(true) }} {{ nope | default('fb') }}" > def.txt
  - shell: echo {{ item }} >> items.txt
    loop: "{{ r.stdout_lines | default([]) }}"`,
			files: map[string]string{"def.txt": "hi False fb\n", "items.txt": "hi\n"},
		},
		{name: "with_items flattens one level", tasks: `
  - shell: echo {{ item }} >> items.txt
    with_items: [[1, 2], [3], 4]
    register: r`,
			files:      map[string]string{"items.txt": "1\n2\n3\n4\n"},
			registered: map[string]map[string]any{"r": {"changed": true, "msg": "All items completed", "skipped": false}},
		},
		{name: "free-form chdir, creates, removes", tasks: `
  - shell: mkdir -p sub && touch sub/there
  - shell: pwd > f chdir=sub
  - shell: echo x > g creates=there chdir=sub
    register: c
  - command: touch h removes=sub/nothere
    register: m
  - shell: echo ran > ran.txt creates=sub/nothere removes=sub/th*`,
			files: map[string]string{"sub/g": "-", "h": "-", "ran.txt": "ran\n"},
			registered: map[string]map[string]any{
				"c": {"changed": false, "rc": 0.0, "stdout": "skipped, since there exists", "msg": "Did not run command since 'there' exists", "failed": false},
				"m": {"changed": false, "stdout": "skipped, since sub/nothere does not exist", "msg": "Did not run command since 'sub/nothere' does not exist"},
			},
		},
		{name: "YAML 1.1 booleans", tasks: `
  - shell: echo "X=$X Y=$Y" > env.txt
    environment: {X: yes, Y: 0644}
  - shell: touch ran.txt
    when: enabled
    register: s`,
			files:      map[string]string{"env.txt": "X=True Y=420\n", "ran.txt": "-"},
			registered: map[string]map[string]any{"s": {"changed": false, "skipped": true, "skip_reason": "Conditional result was False"}},
		},
		{name: "a failing item does not stop the loop", tasks: `
  - shell: echo {{ item }} >> items.txt; exit {{ item }}
    loop: [0, 1, 0]
    register: r
    ignore_errors: yes
  - shell: echo {{ item }} >> second.txt; exit {{ item }}
    loop: [0, 1, 0]
  - shell: touch after.txt`,
			fails:      "launch task 2 (shell: echo {{ item }} >> second.txt; exit {{ item }} [item=1],",
			files:      map[string]string{"items.txt": "0\n1\n0\n", "second.txt": "0\n1\n0\n", "after.txt": "-"},
			registered: map[string]map[string]any{"r": {"changed": true, "failed": true, "msg": "One or more items failed", "skipped": false}},
		},
		{name: "loop results", tasks: `
  - debug: {msg: "{{ item }}"}
    loop: [1, 2]
    when: item == 5
    register: none
  - debug: {msg: "{{ item }}"}
    loop: []
    register: empty
  - debug: {msg: "{{ x }} {{ i }}"}
    loop: [a, b]
    loop_control: {loop_var: x, index_var: i, label: "L{{ x }}"}
    register: lc`,
			registered: map[string]map[string]any{
				"none":  {"changed": false, "msg": "All items skipped", "skipped": true},
				"empty": {"changed": false, "skipped": true, "skipped_reason": "No items in the list", "results": []any{}},
				"lc": {"changed": false, "msg": "All items completed", "skipped": false, "results": []any{
					map[string]any{"msg": "a 0", "failed": false, "changed": false, "x": "a", "ansible_loop_var": "x", "i": 0.0, "ansible_index_var": "i"},
					map[string]any{"msg": "b 1", "failed": false, "changed": false, "x": "b", "ansible_loop_var": "x", "i": 1.0, "ansible_index_var": "i"}}},
			},
			output: []string{h1 + " | TASK debug [item=La]", h1 + " | TASK debug [item=Lb]"},
		},
		{name: "play vars read each other", tasks: `
  - debug: {msg: "{{ deep }}"}
    register: d`,
			registered: map[string]map[string]any{"d": {"msg": "/base/app/x", "failed": false, "changed": false}},
		},
		{name: "block, rescue, always", tasks: `
  - name: blk
    block:
    - shell: echo in > block.txt
    - shell: exit 2
      register: r2
    - shell: touch not-reached.txt
    rescue:
    - shell: echo "{{ ansible_failed_result.rc }} {{ ansible_failed_task.action }} {{ r2.rc }}" > rescue.txt
    always:
    - shell: touch always.txt
  - shell: touch after.txt
  - block:
    - block:
      - shell: exit 1
      rescue:
      - shell: exit 4
      always:
      - shell: touch inner-always.txt
    rescue:
    - shell: echo "{{ ansible_failed_result.rc }}" > outer-rescue.txt
  - block:
    - shell: touch skipped.txt
    when: enabled
  - block:
    - shell: touch ok.txt
    rescue:
    - shell: touch ok-rescued.txt
    always:
    - shell: touch ok-always.txt`,
			files: map[string]string{"block.txt": "in\n", "not-reached.txt": "-", "rescue.txt": "2 shell 2\n", "always.txt": "", "after.txt": "",
				"inner-always.txt": "", "outer-rescue.txt": "4\n", "skipped.txt": "-", "ok.txt": "", "ok-rescued.txt": "-", "ok-always.txt": ""},
		},
		{name: "a failing rescue fails the host after always", tasks: `
  - block:
    - shell: exit 1
    rescue:
    - shell: exit 3
    always:
    - shell: touch always.txt
  - shell: touch after.txt`,
			fails: "exit status 3",
			files: map[string]string{"always.txt": "", "after.txt": "-"},
		},
		{name: "a failing always fails the host", tasks: `
  - block:
    - shell: touch ok.txt
    always:
    - shell: exit 3
  - shell: touch after.txt`,
			fails: "exit status 3",
			files: map[string]string{"ok.txt": "", "after.txt": "-"},
		},
		{name: "block keywords", tasks: `
  - block:
    - shell: echo "$A $B {{ v }}" > kw.txt
      environment: {B: task}
    - shell: echo task {{ v }} > v.txt
      vars: {v: task}
    environment: {A: block, B: block}
    vars: {v: block}
    ignore_errors: yes`,
			files: map[string]string{"kw.txt": "block task block\n", "v.txt": "task task\n"},
		},
		{name: "until, retries, delay", tasks: `
  - shell: echo x >> cnt; wc -l < cnt
    register: u
    until: u.stdout|int >= 3
    retries: 5
    delay: 0
  - shell: exit 1
    register: u2
    until: u2.rc == 0
    retries: 2
    delay: 0
    ignore_errors: yes
  - shell: echo hi
    register: u3
    until: false
    retries: 0`,
			registered: map[string]map[string]any{
				"u":  {"stdout": "3", "attempts": 3.0, "failed": false, "changed": true},
				"u2": {"rc": 1.0, "attempts": 2.0, "failed": true},
				"u3": {"attempts": 1.0, "failed": false},
			},
			output: []string{h1 + " | FAILED - RETRYING: shell: echo x >> cnt; wc -l < cnt (5 retries left)", "(4 retries left)", "(2 retries left)", "(1 retries left)"},
		},
		{name: "failed_when, changed_when", tasks: `
  - shell: echo hello; exit 3
    register: fw
    failed_when: "'hello' not in fw.stdout"
    changed_when: false
  - shell: echo hi
    register: fw2
    failed_when: fw2.rc == 0
    ignore_errors: yes
  - shell: echo hi
    register: cw
    changed_when: "'hi' in cw.stdout"
  - shell: touch ran.txt
    failed_when: nope == 1`,
			fails: `failed_when: the condition "nope == 1": undefined variable "nope"`,
			registered: map[string]map[string]any{
				"fw":  {"changed": false, "rc": 3.0, "failed": false, "failed_when_result": false},
				"fw2": {"changed": true, "failed": true, "failed_when_result": true},
				"cw":  {"changed": true, "failed": false},
			},
		},
		{name: "conditions per task and per item", tasks: `
  - block:
    - shell: echo 1
      register: x
    - shell: touch second.txt
    when: x | default('') == ''
  - shell: "false"
    loop: [1, 2]
    failed_when: [item == 2, true]
    register: fl
    ignore_errors: yes`,
			files: map[string]string{"second.txt": "-"},
			registered: map[string]map[string]any{"fl": {"changed": true, "failed": true, "msg": "One or more items failed", "results": []any{
				map[string]any{"changed": true, "failed": false, "failed_when_result": false, "item": 1.0, "rc": 1.0},
				map[string]any{"changed": true, "failed": true, "failed_when_result": true, "item": 2.0, "rc": 1.0}}}},
		},
		{name: "task vars", tasks: `
  - debug: {msg: "{{ v1 }} {{ v2 }}"}
    vars: {v1: one, v2: "{{ v1 }}-two"}
    register: tv`,
			registered: map[string]map[string]any{"tv": {"msg": "one one-two", "failed": false, "changed": false}},
		},
		{name: "args beside free-form", tasks: `
  - shell: mkdir -p d
  - shell: pwd > p.txt chdir=d
    args: {chdir: /nonexistent, creates: never}`,
			files: map[string]string{"d/p.txt": "{{home}}/d\n"},
		},
		{name: "args alone, local_action as a mapping", tasks: `
  - shell: mkdir -p d
  - shell: pwd > q.txt
    args: {chdir: d}
  - local_action: {module: debug, msg: "from {{ inventory_hostname }}"}
    register: la`,
			files:      map[string]string{"d/q.txt": "{{home}}/d\n"},
			registered: map[string]map[string]any{"la": {"msg": "from " + h1, "failed": false, "changed": false}},
		},
		{name: "with_dict and with_sequence", tasks: `
  - shell: echo {{ item.key }}={{ item.value }} >> dict.txt
    with_dict: {b: 1, a: 2}
  - shell: echo {{ item }} >> seq.txt
    with_sequence: start=1 end=10 stride=3 format=n%02d
  - shell: echo {{ item.key }} >> vars-dict.txt
    with_dict: "{{ {'y': 1, 'x': 2} }}"`,
			files: map[string]string{"dict.txt": "b=1\na=2\n", "seq.txt": "n01\nn04\nn07\nn10\n", "vars-dict.txt": "y\nx\n"},
		},
		{name: "mappings keep their written order through set_fact", tasks: `
  - set_fact:
      conf: {zeta: 1, alpha: [1, 2], mid: {b: x, a: y}}
      built: "{{ {'z': 1} | combine({'y': 2}) }}"
  - shell: echo '{{ conf | to_json }} {{ built | to_json }}' > order.txt
  - shell: echo {{ item.key }} >> keys.txt
    loop: "{{ conf | dict2items }}"
  - shell: echo {{ item.key }} >> built.txt
    with_dict: "{{ built }}"`,
			files: map[string]string{
				"order.txt": `{"zeta": 1, "alpha": [1, 2], "mid": {"b": "x", "a": "y"}} {"z": 1, "y": 2}` + "\n",
				"keys.txt":  "zeta\nalpha\nmid\n",
				"built.txt": "z\ny\n",
			},
		},
		{name: "deferred loop over registered results", tasks: `
  - shell: echo {{ item }}
    loop: [a, b, c]
    register: r
  - shell: echo {{ item.stdout }} >> out.txt
    loop: "{{ r.results }}"
    when: item.stdout != 'b'
    loop_control: {label: "{{ item.item }}"}`,
			files:  map[string]string{"out.txt": "a\nc\n"},
			output: []string{h1 + " | TASK shell: echo {{ item.stdout }} >> out.txt [item=a]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex, out, homes, err := run(t, 1, "- hosts: all\n  vars: {enabled: no, base: /base, app: \"{{ base }}/app\", deep: \"{{ app }}/x\"}\n  launch:"+tt.tasks+"\n")
			if tt.fails == "" && err != nil || tt.fails != "" && (err == nil || !strings.Contains(err.Error(), tt.fails)) {
				t.Fatalf("err = %v, want %q\n%s", err, tt.fails, out)
			}
			for path, want := range tt.files {
				data, err := os.ReadFile(filepath.Join(homes[h1], path))
				want = strings.ReplaceAll(want, "{{home}}", homes[h1])
				switch {
				case want == "-" && err == nil:
					t.Errorf("%s exists", path)
				case want != "-" && (err != nil || string(data) != want):
					t.Errorf("%s = %q (%v), want %q", path, data, err, want)
				}
			}
			for name, want := range tt.registered {
				got := registered(t, ex, h1, name)
				if !reflect.DeepEqual(pick(got, want), want) {
					t.Errorf("%s = %v\nwant %v", name, got, want)
				}
			}
			for _, want := range tt.output {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestWaits checks that loop_control.pause waits between items (not after
// the last), and until's delay between attempts.
func TestWaits(t *testing.T) {
	tests := []struct {
		name, tasks string
		least       time.Duration
	}{
		{"pause", "  - debug: {msg: x}\n    loop: [1, 2, 3]\n    loop_control: {pause: 0.4}\n", 800 * time.Millisecond},
		{"delay", "  - {shell: echo x >> n; wc -l < n, register: r, until: r.stdout|int == 2, delay: 1}\n", time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			if _, out, _, err := run(t, 1, "- hosts: all\n  launch:\n"+tt.tasks); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if took := time.Since(start); took < tt.least {
				t.Errorf("took %v, want at least %v", took, tt.least)
			}
		})
	}
}

// TestDelegateAndRunOnce checks delegate_to (another host of the plan,
// and this machine in the run's folder "localhost"; the result is the
// delegating host's) and run_once (one
// host runs it, every host gets its result).
func TestDelegateAndRunOnce(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "once.txt")
	ex, out, homes, err := run(t, 3, `
- hosts: all
  launch:
  - shell: echo {{ inventory_hostname }} >> delegated.txt; echo {{ inventory_hostname }}
    delegate_to: edge.node.1.3
    register: dl
  - local_action: shell echo {{ inventory_hostname }} > from-{{ inventory_hostname }}.txt
  - shell: echo {{ inventory_hostname }} >> `+shared+`; echo {{ inventory_hostname }}
    run_once: true
    register: once
`)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Fields(read(t, filepath.Join(homes["edge-node-1-3"], "delegated.txt")))
	if len(lines) != 3 {
		t.Errorf("delegated.txt on edge-node-1-3 = %q, want a line from each host", lines)
	}
	if _, err := os.Stat(filepath.Join(homes[h1], "delegated.txt")); err == nil {
		t.Error("the delegated task ran on its own host too")
	}
	for _, h := range []string{"edge-node-1-1", "edge-node-1-2", "edge-node-1-3"} {
		if got := read(t, filepath.Join(homes["run"], "localhost", "from-"+h+".txt")); got != h+"\n" {
			t.Errorf("local_action of %s wrote %q", h, got)
		}
		if got := registered(t, ex, h, "dl")["stdout"]; got != h {
			t.Errorf("%s registered the delegated task's stdout %v, want its own", h, got)
		}
	}
	ran := strings.Fields(read(t, shared))
	if len(ran) != 1 {
		t.Fatalf("run_once ran on %v", ran)
	}
	for _, h := range []string{"edge-node-1-1", "edge-node-1-2", "edge-node-1-3"} {
		if got := registered(t, ex, h, "once")["stdout"]; got != ran[0] {
			t.Errorf("%s registered %v, want the result of %s", h, got, ran[0])
		}
	}
}

// TestRunOnceFailsEveryHost: a run_once task that fails fails every host
// that reaches it, as in Ansible.
func TestRunOnceFailsEveryHost(t *testing.T) {
	_, out, _, err := run(t, 2, "- hosts: all\n  launch:\n  - {shell: exit 5, run_once: true}\n  - shell: touch after.txt\n")
	if err == nil || !strings.Contains(err.Error(), "2 failures") || !strings.Contains(err.Error(), "run once on ") {
		t.Errorf("err = %v\n%s", err, out)
	}
}

// TestNoLog checks that a no_log task's output, arguments and error reach
// neither the output nor the error, while its result is registered.
func TestNoLog(t *testing.T) {
	ex, out, _, err := run(t, 1, `
- hosts: all
  vars: {token: s3cr3t}
  launch:
  - shell: echo {{ token }}
    no_log: true
    register: r
  - debug: {msg: "{{ token }}"}
    no_log: true
  - shell: echo {{ item }}; echo {{ token }} >&2; exit 1
    loop: [s3cr3t-item]
    no_log: yes
`)
	if err == nil {
		t.Fatal("the failing task did not fail")
	}
	for what, text := range map[string]string{"error": err.Error(), "output": out} {
		if strings.Contains(text, "s3cr3t") || strings.Contains(text, "echo") {
			t.Errorf("the %s shows what no_log hides:\n%s", what, text)
		}
	}
	if !strings.Contains(err.Error(), "launch task 3 (shell, ") || !strings.Contains(err.Error(), "the error is hidden (no_log: true)") {
		t.Errorf("err = %v", err)
	}
	if got := registered(t, ex, h1, "r")["stdout"]; got != "s3cr3t" {
		t.Errorf("registered stdout = %v", got)
	}
}

// TestBecomeUser runs a task as nobody through sudo -n -u.
func TestBecomeUser(t *testing.T) {
	if os.Geteuid() != 0 {
		if err := exec.Command("sudo", "-n", "-u", "nobody", "true").Run(); err != nil {
			t.Skipf("cannot run commands as nobody here (not root, and sudo -n -u nobody: %v)", err)
		}
	}
	ex, out, _, err := run(t, 1, `
- hosts: all
  become: yes
  become_user: nobody
  launch:
  - {command: id -un, register: a}
  - {command: id -un, register: b, become_user: root}
  - {command: id -un, register: c, become: no}
`)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	me, _ := exec.Command("id", "-un").Output()
	for name, want := range map[string]string{"a": "nobody", "b": "root", "c": strings.TrimSpace(string(me))} {
		if got := registered(t, ex, h1, name)["stdout"]; got != want {
			t.Errorf("%s: ran as %v, want %s", name, got, want)
		}
	}
}
