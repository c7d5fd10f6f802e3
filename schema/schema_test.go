package schema

import (
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

const goodLayers = `environment:
  job_name: test
  walltime: "100:00:00"
  g5k: {cluster: paradoxe, queue: production}
layers:
- name: cloud
  services:
  - {name: Flink, quantity: 2, roles: [monitoring], image_tag: "1.17"}
- name: edge
  services:
  - {name: Producer, repeat: 3, env: {rate: 5}}
`

func TestDecodeLayersServices(t *testing.T) {
	ls, err := DecodeLayersServices("ls.yaml", []byte(goodLayers))
	if err != nil {
		t.Fatal(err)
	}
	if got := ls.Environment.Walltime; got != 100*time.Hour {
		t.Errorf("walltime = %v, want 100h (no 23:59:59 cap)", got)
	}
	if ls.Environment.Master() != "g5k" || ls.Environment.Testbeds[0].Data()["queue"] != "production" {
		t.Errorf("testbeds = %+v", ls.Environment.Testbeds)
	}
	flink := ls.Layers[0].Services[0]
	if flink.Quantity != 2 || flink.Repeat != 0 || flink.Roles[0] != "monitoring" || flink.Extra["image_tag"] != "1.17" {
		t.Errorf("flink = %+v", flink)
	}
	prod := ls.Layers[1].Services[0]
	if prod.Quantity != 1 || prod.Repeat != 3 || prod.Env["rate"] != 5 {
		t.Errorf("producer = %+v", prod)
	}
	if p := prod.At("repeat"); p.Line != 11 || p.Col != 30 {
		t.Errorf("repeat at %v, want line 11 col 30", p)
	}
}

// TestErrors checks one message per problem, with its position.
func TestErrors(t *testing.T) {
	tests := []struct {
		name, file, yaml string
		want             []string
	}{
		{"syntax", "ls", "environment:\n  g5k: {\n layers: [", []string{"x.yaml:3:2: invalid YAML: did not find expected node content"}},
		{"tab", "ls", "environment:\n\tg5k: {}\n", []string{"x.yaml:2:2: invalid YAML: found character that cannot start any token"}},
		{"empty layers file", "ls", "", []string{"x.yaml:1:1: empty file"}},
		{"misspelt top key", "ls", "environment: {g5k: }\nlayers: [{name: a, services: [{name: s}]}]\nmonitorng: {type: dstat}\n",
			[]string{`x.yaml:3:1: layers_services: unknown key "monitorng" (did you mean "monitoring"?)`}},
		{"missing keys", "ls", "environment: {g5k: }\n", []string{`x.yaml:1:1: layers_services: missing required key "layers"`}},
		{"quantity float", "ls", "environment: {g5k: }\nlayers: [{name: a, services: [{name: s, quantity: 2.5}]}]\n",
			[]string{"x.yaml:2:51: service.quantity: found 2.5, expected a whole number"}},
		{"quantity zero", "ls", "environment: {g5k: }\nlayers: [{name: a, services: [{name: s, quantity: 0}]}]\n",
			[]string{"x.yaml:2:51: service.quantity: found 0, expected a whole number from 1 to 10000"}},
		{"quantity huge", "ls", "environment: {g5k: }\nlayers: [{name: a, services: [{name: s, quantity: 99999999999999999999}]}]\n",
			[]string{"service.quantity: found 99999999999999999999, expected a whole number from 1 to 10000"}},
		{"too many machines", "ls", "environment: {g5k: }\nlayers: [{name: a, services: [{name: s, quantity: 10000, repeat: 10000}]}]\n",
			[]string{"x.yaml:2:9: layers: the services need 100010000 machines; e2c plans at most 100000"}},
		{"alias loop", "ls", "environment: {g5k: }\nlayers: [{name: a, services: [{name: s, env: &e {self: *e}}]}]\n",
			[]string{"x.yaml:2:56: alias *e is inside the value its anchor &e names (line 2)"}},
		{"billion laughs", "ls", laughs, []string{"x.yaml:8:22: aliases expand the file to more than 1000000 values (*a5 here repeats 211111)"}},
		{"two documents", "ls", "environment: {g5k: }\nlayers: [{name: a, services: [{name: s}]}]\n---\nlayers: []\n",
			[]string{"x.yaml:3:1: a second YAML document (after ---): expected one document per file"}},
		{"empty services", "ls", "environment: {g5k: }\nlayers: [{name: a, services: []}]\n", []string{"services: found an empty list, expected a list of services"}},
		{"huge walltime", "ls", "environment: {walltime: '2562048:00:00', g5k: }\nlayers: [{name: a, services: [{name: s}]}]\n", []string{"at most 87600 hours"}},
		{"nan rate", "net", "networks:\n- {src: a, dst: b, rate: nanbit}\n", []string{`networks.rate: found "nanbit"`}},
		{"tiny delay", "net", "networks:\n- {src: a, dst: b, delay: 1e-300ms}\n", []string{"below tc's resolution of 1us"}},
		{"zero delay", "net", "networks:\n- {src: a, dst: b, delay: 0ms}\n", []string{"needs a delay or a rate above zero"}},
		{"service typo", "ls", "environment: {g5k: }\nlayers: [{name: a, services: [{name: s, quantiy: 2}]}]\n",
			[]string{`x.yaml:2:41: service: unknown key "quantiy" (did you mean "quantity"?)`}},
		{"walltime", "ls", "environment: {walltime: '1:60:00', g5k: }\nlayers: [{name: a, services: [{name: s}]}]\n",
			[]string{`x.yaml:1:25: environment.walltime: found "1:60:00", expected HH:MM:SS with minutes and seconds 00 to 59`}},
		{"bad layer name", "ls", "environment: {g5k: }\nlayers: [{name: a.b, services: [{name: s}]}]\n",
			[]string{`x.yaml:2:17: layer name: "a.b" may only contain letters, digits`}},
		{"duplicate layer", "ls", "environment: {g5k: }\nlayers:\n- {name: a, services: [{name: s}]}\n- {name: A, services: [{name: s}]}\n",
			[]string{`x.yaml:4:10: layer "A" is already defined at line 3`}},
		{"duplicate key", "ls", "environment: {g5k: }\nlayers: []\nlayers: []\n",
			[]string{`x.yaml:3:1: layers_services: key "layers" is already defined at line 2`}},
		{"unknown service env", "ls", "environment: {g5k: }\nlayers: [{name: a, services: [{name: s, environment: g5:k}]}]\n",
			[]string{`service s: environment "g5:k" has no block under environment: (did you mean "g5k"?)`}},
		{"tig", "ls", "environment: {g5k: }\nmonitoring: {type: tig}\nlayers: [{name: a, services: [{name: s}]}]\n",
			[]string{`x.yaml:2:20: monitoring.type: "tig" is not supported by e2c yet; use dstat`}},
		{"cluster and servers", "ls", "environment: {g5k: }\nlayers: [{name: a, services: [{name: s, cluster: c, servers: [h]}]}]\n",
			[]string{`x.yaml:2:50: service s: both cluster and servers are given; E2Clab would take the cluster and ignore servers: keep one`}},

		{"bad delay", "net", "networks:\n- {src: a, dst: b, delay: 50}\n", []string{`x.yaml:2:27: networks.delay: found "50", expected a delay with a unit`}},
		{"bytes rate", "net", "networks:\n- {src: a, dst: b, rate: 10mbps}\n", []string{`tc reads "bps" as bytes per second`}},
		{"bad loss", "net", "networks:\n- {src: a, dst: b, rate: 1gbit, loss: 120%}\n", []string{`networks.loss: found "120%", expected a percentage`}},
		{"no delay no rate", "net", "networks:\n- {src: a, dst: b, loss: 1%}\n", []string{"x.yaml:2:3: network link: needs a delay or a rate"}},
		{"link typo", "net", "networks:\n- {src: a, dst: b, delya: 5ms}\n", []string{`unknown key "delya" (did you mean "delay"?)`}},
		{"missing dst", "net", "networks:\n- {src: a, rate: 1gbit}\n", []string{`network link: missing required key "dst"`}},

		{"not a list", "wf", "hosts: a\n", []string{"x.yaml:1:1: workflow: found a mapping, expected a list of plays"}},
		{"unknown module", "wf", "- hosts: a\n  launch:\n  - shel: ls\n", []string{`x.yaml:3:5: task: unknown module or keyword "shel" (did you mean "shell"?)`}},
		{"unsupported module", "wf", "- hosts: a\n  launch:\n  - community.docker.docker_container: {name: x}\n",
			[]string{`x.yaml:3:5: task: module "community.docker.docker_container" is not supported: containers come with the services of layers_services.yaml (issue 12)`}},
		{"two modules", "wf", "- hosts: a\n  launch:\n  - shell: ls\n    debug: {msg: x}\n", []string{`x.yaml:4:5: task: "shell" and "debug" are both modules`}},
		{"keyword typo", "wf", "- hosts: a\n  launch:\n  - shell: ls\n    asynk: 10\n", []string{`x.yaml:4:5: task: unknown module or keyword "asynk" (did you mean "async"?)`}},
		{"no module", "wf", "- hosts: a\n  launch:\n  - name: nothing\n", []string{"task: no module"}},
		{"copy without dest", "wf", "- hosts: a\n  prepare:\n  - copy: {src: x}\n", []string{`copy: missing required key "dest"`}},
		{"copy unknown arg", "wf", "- hosts: a\n  prepare:\n  - copy: {src: x, dst: y}\n", []string{`copy: unknown key "dst" (did you mean "dest"?)`}},
		{"debug both", "wf", "- hosts: a\n  prepare:\n  - debug: {msg: x, var: y}\n", []string{"x.yaml:3:12: debug: msg and var cannot be given together"}},
		{"bad grouping", "wf", "- hosts: a\n  depends_on: {service_selector: b, prefix: p, grouping: roundrobin}\n",
			[]string{`depends_on.grouping: unknown value "roundrobin" (did you mean "round_robin"?)`}},
		{"array_info without asarray", "wf", "- hosts: a\n  depends_on: {service_selector: b, prefix: p, array_info: id}\n",
			[]string{"depends_on: array_info only applies to grouping asarray"}},
		{"duplicate prefix", "wf", "- hosts: a\n  depends_on:\n  - {service_selector: b, prefix: p}\n  - {service_selector: c, prefix: p}\n",
			[]string{`x.yaml:4:35: depends_on: prefix "p" is already used in this play at line 3`}},
		{"bad prefix", "wf", "- hosts: a\n  depends_on: {service_selector: b, prefix: my-gw}\n", []string{`depends_on.prefix: "my-gw" is not a valid variable name`}},
		{"play keyword", "wf", "- hosts: a\n  serial: 2\n", []string{`play: unknown key "serial"`}},
		{"missing hosts", "wf", "- launch: []\n", []string{`play: missing required key "hosts"`}},
		{"bad loop", "wf", "- hosts: a\n  launch:\n  - {shell: ls, loop: 3}\n", []string{"task.loop: found 3, expected a list or a template"}},
		{"validate_checksum", "wf", "- hosts: a\n  finalize:\n  - fetch: {src: a, dest: b, validate_checksum: maybe}\n",
			[]string{`x.yaml:3:49: fetch.validate_checksum: found "maybe", expected a boolean (yes, no, true, false, 1, 0)`}},

		{"env nested", "env", "low: {clients: [1, 2]}\n", []string{"workflow_env.low.clients: found a list, expected a single value"}},
		{"env key", "env", "low: {max-clients: 1}\n", []string{`"max-clients" is not usable as env_max-clients`}},
	}
	decoders := map[string]func(string, []byte) error{
		"ls":  func(f string, b []byte) error { _, err := DecodeLayersServices(f, b); return err },
		"net": func(f string, b []byte) error { _, err := DecodeNetwork(f, b); return err },
		"wf":  func(f string, b []byte) error { _, err := DecodeWorkflow(f, b); return err },
		"env": func(f string, b []byte) error { _, err := DecodeWorkflowEnv(f, b); return err },
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decoders[tt.file]("x.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
		})
	}
}

// laughs is a "billion laughs" document: nine levels of ten aliases.
var laughs = func() string {
	s := "environment: {g5k: }\nx0: &a0 [lol]\n"
	for i := 1; i <= 9; i++ {
		s += fmt.Sprintf("x%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), 10), ","))
	}
	return s + "layers: [{name: a, services: [{name: s, env: {v: *a9}}]}]\n"
}()

func TestMergeKeys(t *testing.T) {
	ls, err := DecodeLayersServices("x.yaml", []byte(`environment: {g5k: }
layers:
- name: a
  services:
  - &base {name: srv, quantity: 2, roles: [monitoring]}
  - {<<: *base, name: srv2}
  - {<<: [*base], quantity: 3}
`))
	if err != nil {
		t.Fatal(err)
	}
	s := ls.Layers[0].Services
	if s[1].Name != "srv2" || s[1].Quantity != 2 || s[1].Roles[0] != "monitoring" || s[2].Name != "srv" || s[2].Quantity != 3 {
		t.Errorf("services = %+v", s)
	}
}

func TestDecodeValid(t *testing.T) {
	w, err := DecodeWorkflow("wf.yaml", []byte(`
- hosts: edge.*
  depends_on:
    service_selector: fog.*
    grouping: asarray
    prefix: gws
  vars: {port: 1883}
  launch:
    - ansible.builtin.shell: "run {{ item }}"
      loop: "{{ range(1, 4)|list }}"
      async: 30
      poll: 0
    - command: {cmd: ls, chdir: /tmp}
      register: out
      when: out is defined
      ignore_errors: yes
  finalize:
    - fetch: {src: /tmp/x, dest: "{{ working_dir }}/r/", validate_checksum: no, flat: "{{ flat }}"}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := w.Plays[0]
	if d := p.DependsOn[0]; d.Grouping != "asarray" || d.ArrayInfo != "id" || d.Prefix != "gws" {
		t.Errorf("depends_on = %+v", d)
	}
	sh := p.Tasks[Launch][0]
	if sh.Module != "shell" || sh.Args["cmd"] != "run {{ item }}" || sh.Async != 30 || sh.Poll != 0 || sh.Loop != "{{ range(1, 4)|list }}" {
		t.Errorf("shell task = %+v", sh)
	}
	cmd := p.Tasks[Launch][1]
	if cmd.Args["chdir"] != "/tmp" || cmd.Register != "out" || !cmd.IgnoreErrors || cmd.When[0] != "out is defined" {
		t.Errorf("command task = %+v", cmd)
	}
	fetch := p.Tasks[Finalize][0].Args
	if fetch["validate_checksum"] != false || fetch["flat"] != "{{ flat }}" {
		t.Errorf("fetch args = %v", fetch)
	}

	n, err := DecodeNetwork("n.yaml", []byte("networks:\n- {src: a, dst: b, delay: 0.5ms, rate: 1.5gbit, loss: 0.1%, symmetric: yes}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l := n.Links[0]; l.Delay != 500*time.Microsecond || l.Rate != 1_500_000_000 || l.Loss != 0.1 || !l.Symmetric {
		t.Errorf("link = %+v", l)
	}
	if n, err := DecodeNetwork("n.yaml", []byte("networks:\n")); err != nil || len(n.Links) != 0 {
		t.Errorf("null networks: %v, %v", n, err)
	}
}

func TestRateString(t *testing.T) {
	for in, want := range map[string]string{"150mbit": "150mbit", "1gbit": "1gbit", "1.5gbit": "1500mbit", "1000kbit": "1mbit", "7bit": "7bit"} {
		r, err := ParseRate(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %s", in, r, err, want)
		}
	}
}

func TestParseWalltime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"01:30:00", 90 * time.Minute, true},
		{"23:59:59", 24*time.Hour - time.Second, true},
		{"72:00:00", 72 * time.Hour, true},
		{"1:00:00", time.Hour, true},
		{"00:00:00", 0, false},
		{"01:30", 0, false},
		{"01:3:00", 0, false},
		{"aa:00:00", 0, false},
		{"-1:00:00", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseWalltime(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseWalltime(%q) = %v, %v", tt.in, got, err)
		}
	}
}

// TestLoadGolden loads a scenario with problems in every file and compares
// the whole report with a golden file: all problems at once, sorted.
func TestLoadGolden(t *testing.T) {
	_, err := Load("testdata/bad")
	if err == nil {
		t.Fatal("no error")
	}
	got := err.Error() + "\n"
	golden := filepath.Join("testdata", "bad.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "layers_services.yaml: missing") || !strings.Contains(err.Error(), "workflow.yaml: missing") {
		t.Errorf("err = %v", err)
	}
	if _, err := Load("testdata/nonexistent"); err == nil || !strings.Contains(err.Error(), "not a scenario folder") {
		t.Errorf("err = %v", err)
	}
}

func TestLoadExamples(t *testing.T) {
	dirs := exampleDirs(t, "../examples")
	for _, dir := range dirs {
		if _, err := Load(dir); err != nil {
			t.Errorf("%s: %v", dir, err)
		}
	}
}

// exampleDirs finds every scenario folder under root.
func exampleDirs(t *testing.T, root string) []string {
	t.Helper()
	var dirs []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "layers_services.yaml" {
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	})
	if len(dirs) < 2 {
		t.Fatalf("found only %v under %s", dirs, root)
	}
	return dirs
}

// TestMappingsKeepTheirOrder: a mapping inside a value is read in the order
// it was written, as Ansible (Python's dict) keeps it, wherever it is.
func TestMappingsKeepTheirOrder(t *testing.T) {
	w, err := DecodeWorkflow("wf.yaml", []byte(`
- hosts: edge.*
  vars: {conf: {zeta: 1, alpha: [1, {b: x, a: y}]}}
  launch:
  - set_fact: {f: {zeta: 1, alpha: 2}}
    vars: {v: {zeta: 1, alpha: 2}}
  - uri: {url: "http://x", body_format: json, body: {zeta: 1, alpha: 2}}
`))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := DecodeLayersServices("ls.yaml", []byte(`environment: {g5k: {monitor: {zeta: 1, alpha: 2}}}
layers:
- name: a
  services:
  - {name: s, env: {e: {zeta: 1, alpha: 2}}, extra: {zeta: 1, alpha: 2}}
`))
	if err != nil {
		t.Fatal(err)
	}
	p, s := w.Plays[0], ls.Layers[0].Services[0]
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"play vars", p.Vars["conf"], `{"zeta":1,"alpha":[1,{"b":"x","a":"y"}]}`},
		{"module args", p.Tasks[Launch][0].Args["f"], `{"zeta":1,"alpha":2}`},
		{"task vars", p.Tasks[Launch][0].Vars["v"], `{"zeta":1,"alpha":2}`},
		{"uri body", p.Tasks[Launch][1].Args["body"], `{"zeta":1,"alpha":2}`},
		{"service env", s.Env["e"], `{"zeta":1,"alpha":2}`},
		{"service key", s.Extra["extra"], `{"zeta":1,"alpha":2}`},
		{"testbed setting", ls.Environment.Testbed("g5k").Data()["monitor"], `{"zeta":1,"alpha":2}`},
	} {
		if got, err := json.Marshal(tc.v); err != nil || string(got) != tc.want {
			t.Errorf("%s = %s (%v), want %s", tc.name, got, err, tc.want)
		}
	}
}
