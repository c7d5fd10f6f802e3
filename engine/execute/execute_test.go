package execute

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/servicedef"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/schema"
)

// setup plans workflow on n local hosts (each its own folder) and returns
// an executor whose hosts run for real on this machine.
func setup(t *testing.T, n int, workflow string) (*Executor, *bytes.Buffer, map[string]string) {
	t.Helper()
	return setupWith(t, n, workflow, nil)
}

// setupWith is setup whose hosts are reached through wrap, when set.
func setupWith(t *testing.T, n int, workflow string, wrap func(host string, r transport.Runner) (transport.Runner, error)) (*Executor, *bytes.Buffer, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	scenario := filepath.Join(dir, "scenario")
	os.MkdirAll(scenario, 0o755)
	layers := "environment: {local: }\nlayers:\n- name: edge\n  services:\n  - {name: node, quantity: " + itoa(n) + "}\n"
	os.WriteFile(filepath.Join(scenario, schema.LayersServicesFile), []byte(layers), 0o644)
	os.WriteFile(filepath.Join(scenario, schema.WorkflowFile), []byte(workflow), 0o644)
	sc, err := schema.Load(scenario)
	if err != nil {
		t.Fatal(err)
	}
	artifacts := filepath.Join(dir, "artifacts")
	os.MkdirAll(filepath.Join(artifacts, "tree", "sub"), 0o755)
	os.WriteFile(filepath.Join(artifacts, "tree", "a.txt"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(artifacts, "tree", "sub", "b.txt"), []byte("b"), 0o644)
	os.WriteFile(filepath.Join(artifacts, "hello.tmpl"), []byte("hello {{ inventory_hostname }} {{ who }}\n"), 0o644)
	run := filepath.Join(dir, "run")
	os.MkdirAll(run, 0o755)
	machines := plan.Synthetic(plan.Expand(sc.LayersServices))
	p, err := plan.Build(sc, servicedef.New(nil), machines, plan.Options{ScenarioDir: scenario, ArtifactsDir: artifacts, RunDir: run, RepeatCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	homes := map[string]string{}
	runners := map[string]transport.Runner{}
	for _, h := range p.Hosts {
		homes[h.Name] = filepath.Join(dir, "hosts", h.Name)
		runners[h.Name] = transport.NewLocal(homes[h.Name])
	}
	homes["run"], homes["artifacts"] = run, artifacts
	var out bytes.Buffer
	connect := func(ctx context.Context, host string) (transport.Runner, error) {
		if host == "edge-node-1-"+itoa(n) && strings.Contains(workflow, "UNREACHABLE_LAST") {
			return nil, errors.New("connection refused")
		}
		if wrap != nil {
			return wrap(host, runners[host])
		}
		return runners[host], nil
	}
	return New(p, connect, Options{Output: &syncBuffer{b: &out}}), &out, homes
}

type syncBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func itoa(n int) string { return strconv.Itoa(n) }

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestModules(t *testing.T) {
	ex, out, homes := setup(t, 2, `
- hosts: all
  vars: {who: world}
  prepare:
  - debug: {msg: "hi {{ inventory_hostname }}"}
  - shell: echo "$GREETING from $(pwd)" > greeting.txt; echo done
    environment: {GREETING: "it's me"}
    register: out
  - debug: {msg: "registered {{ out.stdout }} rc={{ out.rc }}"}
  - command: echo "a | b" $HOME
    register: cmd
  - shell: echo skipped > skipped.txt
    when: out.rc != 0
  - copy: {src: "{{ artifacts_dir }}/tree/", dest: contents/}
  - copy: {src: "{{ artifacts_dir }}/tree", dest: whole/}
  - copy: {src: "{{ artifacts_dir }}/tree/a.txt", dest: files/, mode: "0600"}
  - template: {src: hello.tmpl, dest: hello.txt}
  - shell: "exit 3"
    ignore_errors: yes
    register: failed
  - debug: {var: failed.rc}
  - shell: mkdir -p sub && echo x > "sub/{{ item }}.txt"
    loop: "{{ range(1, 4)|list }}"
  finalize:
  - fetch: {src: greeting.txt, dest: "{{ working_dir }}/r/"}
  - fetch: {src: hello.txt, dest: "{{ working_dir }}/flat/{{ inventory_hostname }}.txt", flat: yes}
`)
	if _, err := ex.Phase(context.Background(), "prepare"); err != nil {
		t.Fatalf("prepare: %v\n%s", err, out)
	}
	if _, err := ex.Phase(context.Background(), "finalize"); err != nil {
		t.Fatalf("finalize: %v\n%s", err, out)
	}
	// Hosts of a quantity-2 service: edge-node-1-1 and edge-node-1-2.
	h := homes["edge-node-1-1"]
	for path, want := range map[string]string{
		"greeting.txt":         "it's me from " + h + "\n",
		"contents/a.txt":       "a",
		"contents/sub/b.txt":   "b",
		"whole/tree/sub/b.txt": "b",
		"files/a.txt":          "a",
		"hello.txt":            "hello edge-node-1-1 world\n",
		"sub/3.txt":            "x\n",
	} {
		if got := read(t, filepath.Join(h, path)); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	if st, _ := os.Stat(filepath.Join(h, "files/a.txt")); st.Mode().Perm() != 0o600 {
		t.Errorf("copy mode = %v", st.Mode())
	}
	if _, err := os.Stat(filepath.Join(h, "skipped.txt")); err == nil {
		t.Error("a task whose when was false ran")
	}
	log := out.String()
	for _, want := range []string{
		"edge-node-1-1 | hi edge-node-1-1",
		"edge-node-1-2 | registered done rc=0",
		"edge-node-1-1 | a | b " + os.Getenv("HOME"), // command runs no shell, but expands $VAR as Ansible 2.14
		"edge-node-1-1 | failed.rc = 3",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("output lacks %q:\n%s", want, log)
		}
	}
	// fetch: dest/<host>/<src path>, and flat.
	run := homes["run"]
	if got := read(t, filepath.Join(run, "r", "edge-node-1-2", "greeting.txt")); !strings.HasPrefix(got, "it's me") {
		t.Errorf("fetched greeting = %q", got)
	}
	if got := read(t, filepath.Join(run, "flat", "edge-node-1-2.txt")); got != "hello edge-node-1-2 world\n" {
		t.Errorf("flat fetch = %q", got)
	}
}

// TestFailingHost checks that a failing host stops its own tasks only, and
// that every failure is reported in host order.
func TestFailingHost(t *testing.T) {
	ex, out, homes := setup(t, 3, `
- hosts: all
  launch:
  - shell: "[ {{ inventory_hostname }} != edge-node-1-2 ] || { echo boom >&2; exit 7; }"
  - shell: touch after.txt
- hosts: all
  launch:
  - shell: touch second-play.txt
`)
	reps, err := ex.Phase(context.Background(), "launch")
	var te *TaskError
	if err == nil || !errors.As(err, &te) || te.Host != "edge-node-1-2" {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "edge-node-1-2: launch task 1 (shell: [ {{ inventory_hostname }} != edge-node-1-2 ] || { echo b..., ") ||
		!strings.Contains(err.Error(), "exit status 7: boom") {
		t.Errorf("err = %v", err)
	}
	for host, want := range map[string]bool{"edge-node-1-1": true, "edge-node-1-2": false, "edge-node-1-3": true} {
		for _, f := range []string{"after.txt", "second-play.txt"} {
			if _, err := os.Stat(filepath.Join(homes[host], f)); (err == nil) != want {
				t.Errorf("%s: %s exists = %v, want %v\n%s", host, f, err == nil, want, out)
			}
		}
	}
	if len(reps) != 2 || reps[0].Failed() != 1 || reps[1].Failed() != 1 {
		t.Errorf("reports = %+v", reps)
	}
}

// TestFailuresListed: a phase's failures read one a line, counted, and
// each is found by errors.As and errors.Is, as in an errors.Join.
func TestFailuresListed(t *testing.T) {
	ex, _, _ := setup(t, 3, "- hosts: all\n  launch: [{shell: \"[ {{ inventory_hostname }} = edge-node-1-2 ] || exit 3\"}]\n")
	_, err := ex.Phase(context.Background(), "launch")
	var hosts []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var te *TaskError
		if errors.As(e, &te) {
			hosts = append(hosts, te.Host)
		}
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 || lines[0] != "2 failures:" || !strings.HasPrefix(lines[1], "  edge-node-1-1: launch task 1") ||
		!strings.HasPrefix(lines[2], "  edge-node-1-3: launch task 1") || strings.Join(hosts, " ") != "edge-node-1-1 edge-node-1-3" {
		t.Errorf("err = %v, hosts %v", err, hosts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ex.Phase(ctx, "launch"); !errors.Is(err, context.Canceled) {
		t.Errorf("an interrupted phase: %v", err)
	}
}

// TestUnreachable checks that a host that cannot be reached fails with the
// task it was about to run, and the others go on.
func TestUnreachable(t *testing.T) {
	ex, _, _ := setup(t, 2, "- hosts: all\n  launch: [{name: greet, debug: {msg: UNREACHABLE_LAST}}]\n")
	reps, err := ex.Phase(context.Background(), "launch")
	var te *TaskError
	if err == nil || !errors.As(err, &te) || te.Task.Name != "greet" ||
		!strings.Contains(err.Error(), "edge-node-1-2: launch task 1 (greet, ") || !strings.HasSuffix(err.Error(), "workflow.yaml:2:12): unreachable: connection refused") {
		t.Errorf("err = %v", err)
	}
	if reps[0].Failed() != 1 || reps[0].Hosts[0].Err != nil || reps[0].Hosts[0].Tasks != 1 {
		t.Errorf("report = %+v", reps[0])
	}
}

// TestTaskLines checks that each task's progress line says which task it
// is: its name, else its module and what it works on.
func TestTaskLines(t *testing.T) {
	ex, out, _ := setup(t, 1, `
- hosts: all
  vars: {who: me}
  launch:
  - {name: say hello, shell: echo hello}
  - shell: |
      echo one
      echo two
  - command: echo a very long command line that goes on and on well past sixty characters
  - copy: {src: tree/, dest: contents/}
  - template: {src: hello.tmpl, dest: hello.txt}
  - wait_for: {path: hello.txt, timeout: 5}
  - debug: {msg: "{{ item }}"}
    loop: [x]
`)
	if _, err := ex.Phase(context.Background(), "launch"); err != nil {
		t.Fatalf("launch: %v\n%s", err, out)
	}
	for _, want := range []string{
		"edge-node-1-1 | TASK say hello\n",
		"edge-node-1-1 | TASK shell: echo one; echo two\n",
		"edge-node-1-1 | TASK command: echo a very long command line that goes on and on well pa...\n",
		"edge-node-1-1 | TASK copy: tree/ to contents/\n",
		"edge-node-1-1 | TASK template: hello.tmpl to hello.txt\n",
		"edge-node-1-1 | TASK wait_for: path hello.txt\n",
		"edge-node-1-1 | TASK debug [item=x]\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestFetchStaysInside(t *testing.T) {
	ex, _, homes := setup(t, 1, `
- hosts: all
  finalize:
  - shell: echo secret > x.txt
  - fetch: {src: x.txt, dest: "{{ working_dir }}/r/", flat: yes}
  - fetch: {src: ../../x.txt, dest: "{{ working_dir }}/r/", flat: yes}
`)
	_, err := ex.Phase(context.Background(), "finalize")
	// "../../x.txt" flattened is "x.txt" inside r/: only the first two tasks
	// may write, and nothing may land outside the run folder.
	if err != nil && !strings.Contains(err.Error(), "fetch") {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(homes["run"]), "x.txt")); err == nil {
		t.Fatal("fetch wrote outside the run folder")
	}
}

// TestPathsAtRunTime checks that copy and template read, and fetch
// writes, only inside their folders when the task runs: for deferred tasks,
// whose paths validate cannot know, and for links made after validate.
func TestPathsAtRunTime(t *testing.T) {
	tests := []struct {
		name, phase, tasks, want string
		leak                     string // a file that must not exist afterwards, relative to the test's folder
	}{
		{"deferred copy", "launch", `
  - {shell: echo /etc/hostname, register: p}
  - copy: {src: "{{ p.stdout }}", dest: leaked}`, `launch task 2 (copy: {{ p.stdout }} to leaked, `, "hosts/edge-node-1-1/leaked"},
		{"link made late", "launch", `
  - shell: ln -s {{ scenario_dir }}/workflow.yaml {{ artifacts_dir }}/late
  - copy: {src: late, dest: leaked}`, `copy: src "late" is a link to `, "hosts/edge-node-1-1/leaked"},
		{"link made late in a folder", "launch", `
  - shell: ln -s {{ scenario_dir }}/workflow.yaml {{ artifacts_dir }}/tree/sub/evil
  - copy: {src: tree/, dest: leaked/}`, `copy: src "tree/": tree/sub/evil is a link to `, "hosts/edge-node-1-1/leaked/sub/evil"},
		{"deferred template", "launch", `
  - {shell: echo /etc/hostname, register: p}
  - template: {src: "{{ p.stdout }}", dest: leaked}`, `template: src "/etc/hostname" is outside ARTIFACTS_DIR (`, "hosts/edge-node-1-1/leaked"},
		{"deferred fetch", "finalize", `
  - {shell: echo x > x.txt; echo ../escaped.txt, register: d}
  - fetch: {src: x.txt, dest: "{{ working_dir }}/{{ d.stdout }}", flat: yes}`, `/001/escaped.txt" is outside the run folder (`, "escaped.txt"},
		{"fetch through a link", "finalize", `
  - shell: echo x > x.txt; ln -s {{ artifacts_dir }} {{ working_dir }}/r
  - fetch: {src: x.txt, dest: "{{ working_dir }}/r/", flat: yes}`, `goes through a symbolic link`, "artifacts/x.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex, out, homes := setup(t, 1, "- hosts: all\n  "+tt.phase+":"+tt.tasks+"\n")
			_, err := ex.Phase(context.Background(), schema.Phase(tt.phase))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant it to contain %q\n%s", err, tt.want, out)
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(homes["run"]), tt.leak)); err == nil {
				t.Errorf("%s was written", tt.leak)
			}
		})
	}
}

func TestWaitForAndAsync(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	ex, out, homes := setup(t, 1, `
- hosts: all
  launch:
  - shell: sleep 1; echo written > bg.txt; sleep 60
    async: 3
    poll: 0
  - wait_for: {path: bg.txt, timeout: 10}
  - wait_for: {host: 127.0.0.1, port: `+itoa(port)+`, timeout: 5}
  - shell: echo polled
    async: 10
    poll: 1
    register: polled
  - debug: {msg: "{{ polled.stdout }}"}
  - wait_for: {path: never.txt, timeout: 1}
`)
	start := time.Now()
	_, err = ex.Phase(context.Background(), "launch")
	if err == nil || !strings.Contains(err.Error(), "timed out after 1s") {
		t.Fatalf("err = %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "edge-node-1-1 | polled") {
		t.Errorf("output:\n%s", out)
	}
	if read(t, filepath.Join(homes["edge-node-1-1"], "bg.txt")) != "written\n" {
		t.Error("background task did not run")
	}
	// The background job is killed once async (3 s) has passed.
	deadline := start.Add(15 * time.Second)
	for {
		data, _ := os.ReadFile(jobFile(t, homes["edge-node-1-1"], "rc"))
		if len(data) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("background job still running after its async limit")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// jobFile finds a file of the first background job under home.
func jobFile(t *testing.T, home, name string) string {
	matches, _ := filepath.Glob(filepath.Join(home, ".e2c", "jobs", "*", "pid"))
	if len(matches) == 0 {
		t.Fatalf("no job under %s", home)
	}
	return filepath.Join(filepath.Dir(matches[0]), name)
}

func TestStopJobs(t *testing.T) {
	ex, out, homes := setup(t, 1, "- hosts: all\n  launch:\n  - {shell: sleep 300, async: 600, poll: 0}\n")
	if _, err := ex.Phase(context.Background(), "launch"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := ex.StopJobs(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if data, _ := os.ReadFile(jobFile(t, homes["edge-node-1-1"], "rc")); len(data) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job not stopped\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`echo a b`, []string{"echo", "a", "b"}},
		{`echo "a b" 'c d' e\ f`, []string{"echo", "a b", "c d", "e f"}},
		{`echo "a \"q\" $x"`, []string{"echo", `a "q" $x`}},
		{`echo a|b`, []string{"echo", "a|b"}},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.in)
		if err != nil || strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") {
			t.Errorf("splitWords(%q) = %q, %v", tt.in, got, err)
		}
	}
	for _, bad := range []string{`echo "a`, `echo 'a`, ``} {
		if _, err := splitWords(bad); err == nil {
			t.Errorf("splitWords(%q) accepted", bad)
		}
	}
}

// TestSecretNotDescribed: progress lines and errors describe a command as
// written, so that a secret templated into it reaches neither the log
// nor the terminal.
func TestSecretNotDescribed(t *testing.T) {
	ex, out, _ := setup(t, 1, `
- hosts: all
  vars: {token: s3cr3t}
  launch:
  - shell: test "{{ token }}" = other
`)
	_, err := ex.Phase(context.Background(), "launch")
	if err == nil {
		t.Fatal("the failing task did not fail")
	}
	for what, text := range map[string]string{"error": err.Error(), "output": out.String()} {
		if strings.Contains(text, "s3cr3t") || !strings.Contains(text, `test "{{ token }}" = other`) {
			t.Errorf("the %s shows the secret, or not the command as written:\n%s", what, text)
		}
	}
}
