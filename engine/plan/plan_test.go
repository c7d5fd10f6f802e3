package plan

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/engine/netem"
	"github.com/e2c-dev/e2c/engine/servicedef"
	"github.com/e2c-dev/e2c/schema"
)

var update = flag.Bool("update", false, "rewrite golden files")

// load writes a scenario's files into a temporary folder and loads it.
func load(t testing.TB, layers, workflow, network string) *schema.Scenario {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{schema.LayersServicesFile: layers, schema.WorkflowFile: workflow, schema.NetworkFile: network}
	for name, text := range files {
		if text == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sc, err := schema.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func build(t testing.TB, sc *schema.Scenario) (*Plan, error) {
	t.Helper()
	opt := Options{ScenarioDir: "/s", ArtifactsDir: "/a", RunDir: "/s/run", Repeat: 1, RepeatCount: 3}
	return Build(sc, servicedef.New(sc.ServiceDefs), Synthetic(Expand(sc.LayersServices)), opt)
}

func mustBuild(t testing.TB, sc *schema.Scenario) *Plan {
	t.Helper()
	p, err := build(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const env = "environment: {g5k: {cluster: c}}\n"

func keys(p *Plan) []string {
	var out []string
	for _, s := range p.Services {
		out = append(out, s.Key)
	}
	return out
}

func TestExpandOrder(t *testing.T) {
	sc := load(t, env+`layers:
- name: Edge
  services:
  - {name: Producer, repeat: 1}
  - {name: sensor, quantity: 2}
- name: fog
  services:
  - {name: gw, quantity: 2, repeat: 1}
`, "- {hosts: all, launch: [{debug: {msg: hi}}]}\n", "")
	got := keys(mustBuild(t, sc))
	want := []string{
		"edge.producer.1.1", "edge.sensor.2.1", "edge.sensor.2.2", "edge.producer.3.1",
		"fog.gw.1.1", "fog.gw.1.2", "fog.gw.2.1", "fog.gw.2.2",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keys =\n%v\nwant\n%v", got, want)
	}
}

func TestDefinitions(t *testing.T) {
	sc := load(t, env+`layers:
- name: cloud
  services:
  - {name: Flink, quantity: 3}
  - {name: Kafka}
  - {name: Flink, environment: g5k}
`, "- {hosts: all, launch: [{debug: {msg: hi}}]}\n", "")
	p := mustBuild(t, sc)
	want := []string{
		"cloud.flink.1.job_manager.1", "cloud.flink.1.task_manager.1", "cloud.flink.1.task_manager.2",
		"cloud.kafka.2.zookeeper.1", "cloud.kafka.2.leader.1",
		"cloud.flink.3.job_manager.1", "cloud.flink.3.task_manager.1",
	}
	if got := keys(p); !reflect.DeepEqual(got, want) {
		t.Fatalf("keys =\n%v\nwant\n%v", got, want)
	}
	hostOf := map[string]string{}
	for _, s := range p.Services {
		hostOf[s.Key] = s.Host
	}
	if hostOf["cloud.flink.1.task_manager.1"] != "cloud-flink-1-2" || hostOf["cloud.flink.1.task_manager.2"] != "cloud-flink-1-3" {
		t.Errorf("task managers on %v", hostOf)
	}
	// A lone machine runs both (the fallback).
	if hostOf["cloud.flink.3.job_manager.1"] != hostOf["cloud.flink.3.task_manager.1"] {
		t.Errorf("flink 3: job and task manager on different hosts: %v", hostOf)
	}
	info := p.Services[0].Info
	wantInfo := map[string]any{
		"_id": "1_1_1", "layer_id": "1", "service_id": "1", "machine_id": "1", "__address__": "cloud-flink-1-1",
		"url": "cloud-flink-1-1:8081", "__address4__": "198.18.0.1", "url4": "198.18.0.1:8081",
		"__address6__": "2001:db8::1", "url6": "[2001:db8::1]:8081", "g5k_ipv6_hostname": "cloud-flink-1-1-ipv6",
		"port": 8081, "container": "job_manager",
	}
	if !reflect.DeepEqual(info, wantInfo) {
		t.Errorf("info =\n%v\nwant\n%v", info, wantInfo)
	}
	h := p.Hosts[0]
	if want := []string{"1_1", "1_1_1", "cloud", "flink", "g5k"}; !reflect.DeepEqual(h.Groups, want) {
		t.Errorf("groups = %v, want %v", h.Groups, want)
	}
	if want := []string{"cloud.flink.1.job_manager.1"}; !reflect.DeepEqual(h.Keys, want) {
		t.Errorf("host keys = %v", h.Keys)
	}
}

const cctvLike = env + `layers:
- name: cloud
  services:
  - {name: Kafka, roles: [monitoring]}
- name: fog
  services:
  - {name: Mosquitto, repeat: 3}
- name: edge
  services:
  - {name: Producer, repeat: 7}
`

// hostVar returns what prefix resolved to on each host of play i.
func hostVar(p *Plan, i int, prefix string) []any {
	var out []any
	for _, h := range p.Plays[i].Hosts {
		out = append(out, p.Plays[i].HostVars[h][prefix])
	}
	return out
}

func TestPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		want    []string
	}{
		{"cloud.kafka.*.leader", []string{"cloud-kafka-1-1"}},
		{"cloud.kafka.*.leader.*", []string{"cloud-kafka-1-1"}},
		{"cloud.kafka.1.leader.1", []string{"cloud-kafka-1-1"}},
		{"Fog.Mosquitto.*", []string{"fog-mosquitto-1-1", "fog-mosquitto-2-1", "fog-mosquitto-3-1", "fog-mosquitto-4-1"}},
		{"fog:&*.[12].*", []string{"fog-mosquitto-1-1", "fog-mosquitto-2-1"}},
		{"monitoring:edge.producer.8.1", []string{"cloud-kafka-1-1", "edge-producer-8-1"}},
		{"fog:!fog.mosquitto.[!4].*", []string{"fog-mosquitto-4-1"}},
		{"~edge\\.producer\\.[78]", []string{"edge-producer-7-1", "edge-producer-8-1"}},
		{"2_3", []string{"fog-mosquitto-3-1"}},
		{"3_2_1", []string{"edge-producer-2-1"}},
		{"edge-producer-5-1", []string{"edge-producer-5-1"}},
		{"g5k:&cloud", []string{"cloud-kafka-1-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			sc := load(t, cctvLike, "- hosts: '"+tt.pattern+"'\n  launch: [{debug: {msg: x}}]\n", "")
			p := mustBuild(t, sc)
			if got := p.Plays[0].Hosts; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("hosts = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPatternsOverHosts checks that & and ! combine hosts, as in Ansible,
// even when different services of one host put it in the groups.
func TestPatternsOverHosts(t *testing.T) {
	layers := env + "layers:\n- name: cloud\n  services:\n  - {name: Flink}\n  - {name: Kafka, quantity: 2}\n"
	tests := []struct {
		pattern string
		want    []string
		self    []any
	}{
		{"cloud:!cloud.flink.*.task_manager.*", []string{"cloud-kafka-2-1", "cloud-kafka-2-2"}, []any{"1_2_1", "1_2_1"}},
		{"cloud.flink.*.job_manager.*:&cloud.flink.*.task_manager.*", []string{"cloud-flink-1-1"}, []any{nil}},
		{"cloud.flink.*.task_manager", []string{"cloud-flink-1-1"}, []any{"1_1_1"}},
	}
	for _, tt := range tests {
		sc := load(t, layers, "- hosts: '"+tt.pattern+"'\n  launch: [{debug: {msg: x}}]\n", "")
		p := mustBuild(t, sc)
		if got := p.Plays[0].Hosts; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: hosts = %v, want %v", tt.pattern, got, tt.want)
			continue
		}
		for i, h := range tt.want {
			var id any
			if self, ok := p.Plays[0].HostVars[h]["_self"].(map[string]any); ok {
				id = self["_id"]
			}
			if id != tt.self[i] {
				t.Errorf("%s: %s _self._id = %v, want %v", tt.pattern, h, id, tt.self[i])
			}
		}
	}
}

func TestGroupings(t *testing.T) {
	sc := load(t, cctvLike, `
- hosts: edge.producer.*
  depends_on:
  - {service_selector: fog.mosquitto.*, grouping: round_robin, prefix: gw}
  - {service_selector: fog.mosquitto.*, grouping: asarray, prefix: ids}
  - {service_selector: "fog.mosquitto.[12].*", grouping: asarray, array_info: hostname, prefix: names}
  - {service_selector: fog.mosquitto.*, grouping: asarray, array_info: g5k_ipv6_hostname, prefix: v6}
  launch: [{debug: {msg: "{{ gw.url }}"}}]
- hosts: fog.*
  depends_on:
  - {service_selector: fog.mosquitto.*, grouping: address_match, prefix: me}
  - {service_selector: "cloud.kafka.*.leader:fog.mosquitto.[34]", grouping: aggregate, prefix: node}
  launch: [{debug: {msg: "{{ me.url }} {{ node1_1.url }} {{ node4_1.url }} {{ _self._id }}"}}]
`, "")
	p := mustBuild(t, sc)
	var gws []string
	for _, v := range hostVar(p, 0, "gw") {
		gws = append(gws, v.(map[string]any)["__address__"].(string))
	}
	wantGW := []string{"fog-mosquitto-1-1", "fog-mosquitto-2-1", "fog-mosquitto-3-1", "fog-mosquitto-4-1",
		"fog-mosquitto-1-1", "fog-mosquitto-2-1", "fog-mosquitto-3-1", "fog-mosquitto-4-1"}
	if !reflect.DeepEqual(gws, wantGW) {
		t.Errorf("round_robin = %v", gws)
	}
	if got := hostVar(p, 0, "ids")[5]; !reflect.DeepEqual(got, []any{"211", "221", "231", "241"}) {
		t.Errorf("asarray id = %v", got)
	}
	if got := hostVar(p, 0, "names")[0]; !reflect.DeepEqual(got, []any{"fog-mosquitto-1-1", "fog-mosquitto-2-1"}) {
		t.Errorf("asarray hostname = %v", got)
	}
	if got := hostVar(p, 0, "v6")[0].([]any)[0]; got != "fog-mosquitto-1-1-ipv6" {
		t.Errorf("asarray g5k_ipv6_hostname = %v", got)
	}
	run := p.Plays[1].Phases["launch"][2]
	if got := run.Tasks[0].Args["msg"]; got != "fog-mosquitto-3-1:1883 cloud-kafka-1-1:9092 fog-mosquitto-4-1:1883 2_3_1" {
		t.Errorf("host %s: msg = %q", run.Host, got)
	}
	if got := p.Plays[0].Phases["launch"][6].Tasks[0].Args["msg"]; got != "fog-mosquitto-3-1:1883" {
		t.Errorf("producer 7 talks to %v, want gateway 3", got)
	}
	if d := p.Plays[1].DependsOn[1]; d.Grouping != "aggregate" || !reflect.DeepEqual(d.Services,
		[]string{"cloud.kafka.1.leader.1", "fog.mosquitto.3.1", "fog.mosquitto.4.1"}) {
		t.Errorf("depends_on = %+v", d)
	}
}

func TestTemplatesAndVars(t *testing.T) {
	sc := load(t, cctvLike, `
- hosts: cloud.kafka.*.leader
  vars: {topic: in-data}
  prepare:
  - shell: "create {{ topic }} at {{ _self.url }} in {{ self_container }} from {{ working_dir }} run {{ current_repeat }}/{{ repeat_count }}"
  finalize:
  - fetch: {src: /opt/m, dest: "{{ working_dir }}/results/"}
  - shell: "echo {{ item }}"
    loop: "{{ range(1, 4)|list }}"
  - command: "echo {{ item.a }}"
    with_items: [{a: x}, {a: y}]
  - shell: hostname
    register: out
  - debug: {msg: "{{ out.stdout }}"}
`, "")
	p := mustBuild(t, sc)
	prep := p.Plays[0].Phases["prepare"][0].Tasks[0]
	if want := "create in-data at cloud-kafka-1-1:9092 in leader from /a run 1/3"; prep.Args["cmd"] != want {
		t.Errorf("cmd = %q, want %q", prep.Args["cmd"], want)
	}
	fin := p.Plays[0].Phases["finalize"][0].Tasks
	if fin[0].Args["dest"] != "/s/run/results/" {
		t.Errorf("finalize working_dir: %v", fin[0].Args)
	}
	var cmds []any
	for _, loop := range fin[1:3] {
		for _, task := range loop.Items {
			cmds = append(cmds, task.Args["cmd"])
		}
	}
	if want := []any{"echo 1", "echo 2", "echo 3", "echo x", "echo y"}; !reflect.DeepEqual(cmds, want) {
		t.Errorf("loops = %v", cmds)
	}
	if last := fin[len(fin)-1]; !last.Deferred || last.Args["msg"] != "{{ out.stdout }}" {
		t.Errorf("registered variable task = %+v, want deferred", last)
	}
}

// TestErrors checks that semantic problems are found before anything is
// reserved, each at its position.
func TestErrors(t *testing.T) {
	tests := []struct {
		name, workflow, network string
		want                    []string
	}{
		{"no match with hint", "- hosts: cloud.kafka.*.leadr\n  launch: [{debug: {msg: x}}]\n", "",
			[]string{`workflow.yaml:1:10: hosts: "cloud.kafka.*.leadr" matches no host; did you mean "cloud.kafka.*.leader"?`}},
		{"selector no match", "- hosts: edge.*\n  depends_on: {service_selector: fog.gateway.*, prefix: gw}\n", "",
			[]string{`workflow.yaml:2:34: depends_on.service_selector: "fog.gateway.*" matches no service`}},
		{"selector typo", "- hosts: edge.*\n  depends_on: {service_selector: \"cloud.kafka.*.leadr:fog.mosquito.*\", prefix: gw}\n", "",
			[]string{`depends_on.service_selector: "cloud.kafka.*.leadr:fog.mosquito.*" matches no service; did you mean "cloud.kafka.*.leader:fog.mosquitto.*"?`}},
		{"selector over hosts", "- hosts: edge.*\n  depends_on: {service_selector: \"cloud.kafka.*.leader:&cloud.kafka.*.zookeeper\", prefix: k}\n", "",
			[]string{`depends_on.service_selector: "cloud.kafka.*.leader:&cloud.kafka.*.zookeeper" matches no service; as a host pattern it selects cloud-kafka-1-1, but no one service is in every part of it: service_selector picks services, not hosts`}},
		{"bad pattern", "- hosts: \"cloud.[1\"\n  launch: [{debug: {msg: x}}]\n", "", []string{`workflow.yaml:1:10: hosts: host pattern "cloud.[1": unclosed "["`}},
		{"network no match", "- hosts: all\n", "networks:\n- {src: cloud, dst: fgo, rate: 1gbit}\n",
			[]string{`network.yaml:2:21: networks.dst: "fgo" matches no host; did you mean "fog"?`}},
		{"network conflict", "- hosts: all\n", "networks:\n- {src: cloud, dst: fog, rate: 1gbit}\n- {src: fog, dst: \"cloud.kafka.*\", rate: 2gbit, symmetric: true}\n",
			[]string{`network.yaml:3:3: network link: traffic from cloud-kafka-1-1 to fog-mosquitto-1-1 (and 3 more pairs) is shaped rate 2gbit here but rate 1gbit by the entry at `, `network.yaml:2:3: make the entries agree or narrow their patterns`}},
		{"network agreeing entries", "- hosts: all\n", "networks:\n- {src: cloud, dst: fog, rate: 1gbit}\n- {src: fog, dst: cloud, rate: 1gbit}\n- {src: cloud.kafka.*, dst: fog, rate: 1gbit}\n", nil},
		{"undefined variable", "- hosts: edge.*\n  depends_on: {service_selector: fog.*, prefix: gw}\n  launch:\n  - shell: \"run {{ gw.ulr }}\"\n", "",
			[]string{`workflow.yaml:4:12: undefined variable "gw.ulr" (did you mean "gw.url"?) (on 8 hosts: edge-producer-1-1, edge-producer-2-1, edge-producer-3-1, ...)`}},
		{"undefined root", "- hosts: cloud.*\n  launch:\n  - debug: {msg: \"{{ kafak.url }}\"}\n", "",
			[]string{`workflow.yaml:3:18: undefined variable "kafak"`, "(on host cloud-kafka-1-1)"}},
		{"template syntax", "- hosts: cloud.*\n  launch:\n  - debug: {msg: \"{{ x | lsit }}\"}\n", "",
			[]string{`workflow.yaml:3:18: template: `, `"lsit"`}},
		{"syntax on no host", "- hosts: nothing\n  launch:\n  - debug: {msg: \"{{ x | lsit }}\"}\n", "",
			[]string{`workflow.yaml:3:18: template: line 1, column 8: filter "lsit" does not exist`, `"nothing" matches no host`}},
		{"syntax in deferred task", "- hosts: cloud.*\n  launch:\n  - {shell: ls, register: out}\n  - debug: {msg: \"{{ out.stdout | lsit }}\"}\n", "",
			[]string{`workflow.yaml:4:18: template: line 1, column 17: filter "lsit" does not exist`}},
		{"loop not a list", "- hosts: cloud.*\n  launch:\n  - {debug: {msg: x}, loop: \"{{ 3 }}\"}\n", "",
			[]string{`workflow.yaml:3:29: loop: 3 is not a list (on host cloud-kafka-1-1)`}},
		{"asarray collision", "- hosts: edge.*\n  depends_on: {service_selector: cloud.kafka.*, grouping: asarray, prefix: ids}\n", "",
			[]string{`workflow.yaml:2:34: depends_on ids: asarray id value "111" is given by both cloud.kafka.1.zookeeper.1 and cloud.kafka.1.leader.1`}},
		{"aggregate collision", "- hosts: edge.*\n  depends_on: {service_selector: \"cloud:edge.producer.1.*\", grouping: aggregate, prefix: n}\n", "",
			[]string{`depends_on n: aggregate variable n1_1 is given by both cloud.kafka.1.zookeeper.1 and cloud.kafka.1.leader.1`}},
		{"address_match ambiguous", "- hosts: cloud.*\n  depends_on: {service_selector: cloud.*, grouping: address_match, prefix: me}\n", "",
			[]string{`depends_on me: address_match: host cloud-kafka-1-1 runs both cloud.kafka.1.zookeeper.1 and cloud.kafka.1.leader.1`}},
		{"aggregate hides a prefix", "- hosts: edge.*\n  depends_on:\n  - {service_selector: fog.mosquitto.1.*, grouping: aggregate, prefix: n}\n  - {service_selector: fog.*, prefix: n1_1}\n", "",
			[]string{"depends_on n1_1: variable n1_1 is also set by depends_on n"}},
		{"prefix hides a play var", "- hosts: edge.*\n  vars: {gw: 1}\n  depends_on: {service_selector: fog.*, prefix: gw}\n", "",
			[]string{"depends_on gw: variable gw is also set by the play's vars"}},
		{"reserved play var", "- hosts: edge.*\n  vars: {working_dir: /x}\n", "", []string{`vars: "working_dir" would hide the variable`}},
		{"when undefined", "- hosts: cloud.*\n  launch:\n  - {debug: {msg: x}, when: nosuch == 3}\n", "",
			[]string{`workflow.yaml:3:29: undefined variable "nosuch" (on host cloud-kafka-1-1)`}},
		{"when syntax", "- hosts: cloud.*\n  launch:\n  - {debug: {msg: x}, when: \"x ==\"}\n", "", []string{"workflow.yaml:3:29: template: "}},
		{"loop hosts once", "- hosts: cloud.*\n  launch:\n  - {debug: {msg: \"{{ nope }}\"}, loop: [1, 2, 3]}\n", "",
			[]string{`undefined variable "nope" (on host cloud-kafka-1-1)`}},
		{"reserved prefix", "- hosts: edge.*\n  depends_on: {service_selector: fog.*, prefix: item}\n", "",
			[]string{`workflow.yaml:2:49: depends_on: prefix "item" would hide the variable e2c sets`}},
		{"reserved register", "- hosts: edge.*\n  launch: [{shell: ls, register: working_dir}]\n", "",
			[]string{`register: "working_dir" would hide the variable`}},
		{"ipv6 name missing", "- hosts: edge.*\n  depends_on: {service_selector: fog.*, grouping: asarray, array_info: g5k_ipv6_hostname, prefix: v}\n", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := load(t, cctvLike, tt.workflow, tt.network)
			_, err := build(t, sc)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
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

func TestAllErrorsAtOnce(t *testing.T) {
	sc := load(t, cctvLike, `
- hosts: nothing
  launch: [{debug: {msg: x}}]
- hosts: edge.*
  depends_on: {service_selector: fog.*, prefix: gw}
  launch: [{debug: {msg: "{{ gw.nope }} {{ missing }}"}}]
`, "networks:\n- {src: cloud, dst: nowhere, rate: 1gbit}\n")
	_, err := build(t, sc)
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{`"nothing" matches no host`, `"gw.nope"`, `"nowhere" matches no host`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}

// TestCCTVGolden plans the published example and compares plan.json,
// layers_services-validate.yaml and workflow-validate.out with golden files.
func TestCCTVGolden(t *testing.T) {
	sc, err := schema.Load("../../examples/cctv")
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{ScenarioDir: "/e2c/examples/cctv", ArtifactsDir: "/e2c/artifacts", RunDir: "/e2c/examples/cctv/20261122-101500", RepeatCount: 2}
	p, err := Build(sc, servicedef.New(sc.ServiceDefs), Synthetic(Expand(sc.LayersServices)), opt)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]func(*bytes.Buffer) error{
		"cctv-plan.json":                     func(b *bytes.Buffer) error { return p.WriteJSON(b) },
		"cctv-layers_services-validate.yaml": func(b *bytes.Buffer) error { return p.WriteLayersServices(b) },
		"cctv-workflow-validate.out": func(b *bytes.Buffer) error {
			return p.WriteWorkflow(b, "", func(int) string { return "dry run: nothing executed" })
		},
		// The tc batches of network.yaml, every host on eth0.
		"cctv-tc.batch": func(b *bytes.Buffer) error {
			rules, err := netem.Build(p.Constraints, p.Addresses(), func(string, netip.Addr) string { return "eth0" })
			for _, r := range rules {
				fmt.Fprintf(b, "# %s %s\n%s\n", r.Host, r.Device, strings.Join(r.Batch(), "\n"))
			}
			return err
		},
	}
	for name, write := range outputs {
		var buf bytes.Buffer
		if err := write(&buf); err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", name)
		if *update {
			os.MkdirAll("testdata", 0o755)
			if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s differs from the golden file (go test -update to accept)", name)
		}
	}

	// The published wiring: producer i talks to gateway i mod 4, and the
	// Flink job manager reads the Kafka leader's url.
	var producers *Play
	for _, pl := range p.Plays {
		if pl.Pattern == "edge.producer.*" {
			producers = pl
		}
	}
	for i, run := range producers.Phases["launch"] {
		loop := run.Tasks[1]
		want := "tcp://fog-mosquitto-" + string(rune('1'+i%4)) + "-1:1883"
		if cmd := loop.Items[0].Args["cmd"].(string); !strings.Contains(cmd, want) || len(loop.Items) != 40 {
			t.Errorf("%s: %d items, first producer %q; want 40 producers talking to %s", run.Host, len(loop.Items), cmd, want)
		}
	}
	jm := p.Plays[1]
	if cmd := jm.Phases["launch"][0].Tasks[2].Args["cmd"].(string); !strings.Contains(cmd, "32 cloud-kafka-2-1:9092 in-uni-data out-uni-data cloud-kafka-2-1:9092 20") ||
		!strings.Contains(cmd, "docker exec job_manager flink run") {
		t.Errorf("job manager command = %q", cmd)
	}
}

// TestErrorsGolden plans a scenario with a problem of each kind and
// compares the whole report, positions included, with a golden file.
func TestErrorsGolden(t *testing.T) {
	sc, err := schema.Load("testdata/bad")
	if err != nil {
		t.Fatal(err)
	}
	_, err = build(t, sc)
	if err == nil {
		t.Fatal("no error")
	}
	got := []byte(err.Error() + "\n")
	golden := filepath.Join("testdata", "bad.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want, _ := os.ReadFile(golden); !bytes.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlayEnvironmentAndBecome(t *testing.T) {
	sc := load(t, cctvLike, `
- hosts: cloud.*
  become: true
  environment: {A: "play {{ inventory_hostname }}", B: play}
  launch:
  - {shell: env, environment: {B: task}}
`, "")
	task := mustBuild(t, sc).Plays[0].Phases["launch"][0].Tasks[0]
	if !task.Become || task.Environment["A"] != "play cloud-kafka-1-1" || task.Environment["B"] != "task" {
		t.Errorf("task = %+v", task)
	}
}

func TestPlayVarsRendered(t *testing.T) {
	sc := load(t, cctvLike, `
- hosts: cloud.*
  vars: {base: "{{ working_dir }}/x", me: "{{ _self.url }}"}
  launch: [{shell: "echo {{ base }} {{ me }}"}]
  finalize: [{shell: "echo {{ base }}"}]
`, "")
	p := mustBuild(t, sc)
	if got := p.Plays[0].Phases["launch"][0].Tasks[0].Args["cmd"]; got != "echo /a/x cloud-kafka-1-1:2181" {
		t.Errorf("launch cmd = %q", got)
	}
	if got := p.Plays[0].Phases["finalize"][0].Tasks[0].Args["cmd"]; got != "echo /s/run/x" {
		t.Errorf("finalize cmd = %q", got)
	}
}

// TestInfoAsE2Clab checks the service information E2Clab's own tests
// expect: string ids, and IPv6 urls bracketed with or without a port.
func TestInfoAsE2Clab(t *testing.T) {
	sc := load(t, cctvLike, `
- hosts: edge.producer.1.*
  depends_on: {service_selector: fog.mosquitto.1.*, prefix: gw}
  launch:
  - debug: {msg: "{{ _self.url6 }} {{ _self.__address6__ }} {{ gw.url6 }} {{ _self.machine_id == '1' }} {{ _self.machine_id == 1 }}"}
`, "")
	got := mustBuild(t, sc).Plays[0].Phases["launch"][0].Tasks[0].Args["msg"]
	if want := "[2001:db8::6] 2001:db8::6 [2001:db8::2]:1883 True False"; got != want {
		t.Errorf("msg = %q, want %q", got, want)
	}
}

// TestPrepareHasNoAppConf checks that prepare, which runs once for every
// configuration, sees no app_conf or env_* (as in E2Clab), and that a play
// var reading them is no error where no task reads the var.
func TestPrepareHasNoAppConf(t *testing.T) {
	sc := load(t, cctvLike, `
- hosts: edge.producer.1.*
  vars: {rate: "{{ env_rate }}"}
  prepare: [{shell: make}]
  launch: [{shell: "run --rate {{ rate }} --conf {{ app_conf }}"}]
- hosts: edge.producer.2.*
  prepare: [{shell: "run --conf {{ app_conf }} {{ env_rate }}"}]
`, "")
	sc.WorkflowEnv = schema.WorkflowEnv{"fast": {Values: map[string]any{"rate": 2.5}}}
	p, err := Build(sc, servicedef.New(nil), Synthetic(Expand(sc.LayersServices)), Options{RunDir: "/run", AppConf: "fast"})
	for _, want := range []string{
		`workflow.yaml:7:21: undefined variable "app_conf": prepare runs once for every configuration, so app_conf and env_* are not set there (use them in launch or finalize) (on host edge-producer-2-1)`,
		`workflow.yaml:7:21: undefined variable "env_rate": prepare runs once`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error:\n%v\nwant it to contain:\n%s", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), ":3:") {
		t.Errorf("the play var read only in launch is an error in prepare:\n%v", err)
	}
	if _, ok := p.ExtraVars["prepare"]["app_conf"]; ok {
		t.Errorf("prepare's variables hold app_conf: %v", p.ExtraVars["prepare"])
	}
	if got := p.Plays[0].Phases["launch"][0].Tasks[0].Args["cmd"]; got != "run --rate 2.5 --conf fast" {
		t.Errorf("launch cmd = %q", got)
	}
}

func TestAppConf(t *testing.T) {
	sc := load(t, cctvLike, `
- hosts: edge.producer.1.*
  launch: [{shell: "run --rate {{ env_rate }} --conf {{ app_conf }}"}]
  finalize: [{fetch: {src: /m, dest: "{{ working_dir }}/"}}]
`, "")
	sc.WorkflowEnv = schema.WorkflowEnv{"fast": {Values: map[string]any{"rate": 2.5}}}
	p, err := Build(sc, servicedef.New(nil), Synthetic(Expand(sc.LayersServices)), Options{RunDir: "/run", AppConf: "fast"})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Plays[0].Phases["launch"][0].Tasks[0].Args["cmd"]; got != "run --rate 2.5 --conf fast" {
		t.Errorf("cmd = %q", got)
	}
	if got := p.Plays[0].Phases["finalize"][0].Tasks[0].Args["dest"]; got != "/run/fast/" {
		t.Errorf("finalize working_dir = %q, want the app_conf's own folder", got)
	}
}

func TestDeterministic(t *testing.T) {
	sc, err := schema.Load("../../examples/cctv")
	if err != nil {
		t.Fatal(err)
	}
	var first []byte
	for range 5 {
		var buf bytes.Buffer
		if err := mustBuild(t, sc).WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		if first != nil && !bytes.Equal(first, buf.Bytes()) {
			t.Fatal("two plans of the same scenario differ")
		}
		first = buf.Bytes()
	}
}

func TestExamplesPlan(t *testing.T) {
	for _, dir := range exampleDirs(t, "../../examples") {
		sc, err := schema.Load(dir)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		if _, err := build(t, sc); err != nil {
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
