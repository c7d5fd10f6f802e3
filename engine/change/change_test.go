package change

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/servicedef"
	"github.com/e2c-dev/e2c/schema"
)

// edit replaces text in one file of the test scenario.
type edit struct{ file, old, new string }

// scenario copies testdata/pipeline into a temporary folder, makes each
// edit (its old text found exactly once) and loads it.
func scenario(t testing.TB, edits ...edit) *schema.Scenario {
	t.Helper()
	dir := t.TempDir()
	err := os.CopyFS(dir, os.DirFS("testdata/pipeline"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edits {
		path := filepath.Join(dir, e.file)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(data), e.old); n != 1 {
			t.Fatalf("%s: %q found %d times, want once", e.file, e.old, n)
		}
		if err := os.WriteFile(path, []byte(strings.Replace(string(data), e.old, e.new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sc, err := schema.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// build plans sc. Given the plan of the running experiment, it plans as
// apply does: on the hosts kept from it, and stand-in hosts (with addresses
// of their own) for new instances.
func build(t testing.TB, sc *schema.Scenario, running *plan.Plan) *plan.Plan {
	t.Helper()
	machines := plan.Synthetic(plan.Expand(sc.LayersServices))
	if running != nil {
		kept := map[string]plan.Machine{}
		for _, h := range running.Hosts {
			kept[h.Name] = h.Machine
		}
		n := 0
		for _, ms := range machines {
			for i, m := range ms {
				if k, ok := kept[m.Name]; ok {
					ms[i] = k
					continue
				}
				n++
				ms[i].Address4 = fmt.Sprintf("198.19.0.%d", n)
				ms[i].Address6 = fmt.Sprintf("2001:db8:1::%d", n)
			}
		}
	}
	opt := plan.Options{ScenarioDir: "/s", ArtifactsDir: "/a", RunDir: "/s/run", RepeatCount: 1}
	p, err := plan.Build(sc, servicedef.New(sc.ServiceDefs), machines, opt)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// throughJSON is p as apply reads it back from the run folder's plan.json.
func throughJSON(t testing.TB, p *plan.Plan) *plan.Plan {
	t.Helper()
	var buf bytes.Buffer
	if err := p.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var out plan.Plan
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

var fourGateways = edit{schema.LayersServicesFile, "quantity: 2", "quantity: 4"}

func TestPlans(t *testing.T) {
	producers := []string{"edge-producer-1-1", "edge-producer-1-2", "edge-producer-1-3", "edge-producer-1-4"}
	gateways := []string{"fog-gateway-1-1", "fog-gateway-1-2"}
	tests := []struct {
		name          string
		before, after []edit
		lines         []string
		shaped        []string
		unshaped      []string
		reconfigure   map[int][]string
		added         []string
		removed       []string
	}{{
		name: "identical", // from two folders: every position differs
	}, {
		name: "positions moved",
		after: []edit{
			{schema.WorkflowFile, "- hosts: all\n", "# Comments move every task below.\n\n- hosts: all\n"},
			{schema.NetworkFile, "networks:\n", "# and every link\nnetworks:\n"},
			{"services/sink.yaml", "name: sink\n", "# and every container\nname: sink\n"},
		},
	}, {
		name:  "quantity 2 to 4",
		after: []edit{fourGateways},
		lines: []string{
			"+ service fog.gateway.1.3 (on fog-gateway-1-3)",
			"+ service fog.gateway.1.4 (on fog-gateway-1-4)",
			"+ host fog-gateway-1-3 (fog.gateway.1)",
			"+ host fog-gateway-1-4 (fog.gateway.1)",
			"~ link edge -> fog: dst hosts +fog-gateway-1-3, +fog-gateway-1-4",
			"~ link fog -> cloud: src hosts +fog-gateway-1-3, +fog-gateway-1-4",
			"~ play 1 (all): hosts +fog-gateway-1-3, +fog-gateway-1-4",
			"~ play 2 (edge.producer.*): depends_on gateway services +fog.gateway.1.3, +fog.gateway.1.4; host vars changed on 2 hosts; launch changed on 2 hosts",
			"~ play 3 (fog.gateway.*): hosts +fog-gateway-1-3, +fog-gateway-1-4",
			"~ host edge-producer-1-3 needs reconfigure: play 2 (edge.producer.*)",
			"~ host edge-producer-1-4 needs reconfigure: play 2 (edge.producer.*)",
		},
		// The new gateways, and the producers, now shaped towards them too
		// (the link is symmetric); not the sink (fog -> cloud is not).
		shaped:      append([]string{"fog-gateway-1-3", "fog-gateway-1-4"}, producers...),
		reconfigure: map[int][]string{1: {"edge-producer-1-3", "edge-producer-1-4"}}, // their round-robin gateway moved
		added:       []string{"fog-gateway-1-3", "fog-gateway-1-4"},
	}, {
		name:   "quantity 4 to 2",
		before: []edit{fourGateways},
		lines: []string{
			"- service fog.gateway.1.3 (on fog-gateway-1-3)",
			"- service fog.gateway.1.4 (on fog-gateway-1-4)",
			"- host fog-gateway-1-3 (fog.gateway.1)",
			"- host fog-gateway-1-4 (fog.gateway.1)",
			"~ link edge -> fog: dst hosts -fog-gateway-1-3, -fog-gateway-1-4",
			"~ link fog -> cloud: src hosts -fog-gateway-1-3, -fog-gateway-1-4",
			"~ play 1 (all): hosts -fog-gateway-1-3, -fog-gateway-1-4",
			"~ play 2 (edge.producer.*): depends_on gateway services -fog.gateway.1.3, -fog.gateway.1.4; host vars changed on 2 hosts; launch changed on 2 hosts",
			"~ play 3 (fog.gateway.*): hosts -fog-gateway-1-3, -fog-gateway-1-4",
			"~ host edge-producer-1-3 needs reconfigure: play 2 (edge.producer.*)",
			"~ host edge-producer-1-4 needs reconfigure: play 2 (edge.producer.*)",
		},
		// The producers lose their rules towards the removed gateways; the
		// removed gateways, released, are not unshaped.
		shaped:      producers,
		reconfigure: map[int][]string{1: {"edge-producer-1-3", "edge-producer-1-4"}},
		removed:     []string{"fog-gateway-1-3", "fog-gateway-1-4"},
	}, {
		name:   "rate changed",
		after:  []edit{{schema.NetworkFile, "rate: 1gbit", "rate: 500mbit"}},
		lines:  []string{"~ link fog -> cloud: rate 1gbit -> 500mbit"},
		shaped: gateways, // the link's src hosts, and no others
	}, {
		name:   "delay and loss changed",
		after:  []edit{{schema.NetworkFile, "delay: 20ms, rate: 100mbit", "delay: 30ms, rate: 100mbit, loss: 1%"}},
		lines:  []string{"~ link edge -> fog: delay 20ms -> 30ms; loss none -> 1%"},
		shaped: append(slices.Clone(gateways), producers...), // symmetric: both ends
	}, {
		name:     "link removed",
		after:    []edit{{schema.NetworkFile, "- {src: edge, dst: fog, delay: 20ms, rate: 100mbit, symmetric: true}\n", ""}},
		lines:    []string{"- link edge -> fog (delay 20ms, rate 100mbit, symmetric)"},
		shaped:   gateways,  // still shaped towards the sink
		unshaped: producers, // shaped no more
	}, {
		name:  "task edited",
		after: []edit{{schema.WorkflowFile, "-out latency.csv", "-out lat.csv"}},
		lines: []string{
			"~ play 4 (cloud.sink.*): launch changed on 1 host",
			"~ host cloud-sink-1-1 needs reconfigure: play 4 (cloud.sink.*)",
		},
		reconfigure: map[int][]string{3: {"cloud-sink-1-1"}},
	}, {
		name:  "env changed",
		after: []edit{{schema.LayersServicesFile, "LEVEL: info", "LEVEL: debug"}},
		lines: []string{
			"~ service cloud.sink.1.1: container env.LEVEL",
			"~ host cloud-sink-1-1: containers ~cloud.sink.1.1",
		},
	}, {
		name:  "info changed",
		after: []edit{{"services/sink.yaml", "port: 7000", "port: 7001"}},
		lines: []string{
			"~ service cloud.sink.1.1: info port, url, url4, url6",
			"~ play 1 (all): host vars changed on 1 host",
			"~ play 3 (fog.gateway.*): host vars changed on 2 hosts; launch changed on 2 hosts",
			"~ play 4 (cloud.sink.*): host vars changed on 1 host; launch changed on 1 host",
			"~ host cloud-sink-1-1 needs reconfigure: plays 1 (all), 4 (cloud.sink.*)",
			"~ host fog-gateway-1-1 needs reconfigure: play 3 (fog.gateway.*)",
			"~ host fog-gateway-1-2 needs reconfigure: play 3 (fog.gateway.*)",
		},
		// The sink through _self (in every play it is in: tasks evaluated
		// when they run read it too), the gateways through depends_on.
		reconfigure: map[int][]string{0: {"cloud-sink-1-1"}, 2: gateways, 3: {"cloud-sink-1-1"}},
	}, {
		name:  "play added",
		after: []edit{{schema.WorkflowFile, "      poll: 0\n", "      poll: 0\n- hosts: cloud.sink.*\n  finalize: [{fetch: {src: latency.csv, dest: \"{{ working_dir }}/\"}}]\n"}},
		lines: []string{"+ play 5 (cloud.sink.*) (1 host)"}, // the second of its pattern
	}, {
		name:  "play removed",
		after: []edit{{schema.WorkflowFile, "- hosts: all\n  prepare:\n  - copy: {src: \"{{ artifacts_dir }}/\", dest: .}\n", ""}},
		lines: []string{"- play 1 (all) (8 hosts)"}, // the others, one index down, are the same
	}, {
		name:  "hosts pattern edited", // plays are matched by pattern: another play
		after: []edit{{schema.WorkflowFile, "- hosts: cloud.sink.*", "- hosts: cloud.*"}},
		lines: []string{"+ play 4 (cloud.*) (2 hosts)", "- play 4 (cloud.sink.*) (1 host)"},
	}, {
		name:  "a sub-service moved", // Flink's task manager, from the job manager's host to its own
		after: []edit{{schema.LayersServicesFile, "quantity: 1", "quantity: 2"}},
		lines: []string{
			"~ service cloud.flink.2.task_manager.1: host cloud-flink-2-1 -> cloud-flink-2-2; info __address4__, __address6__, __address__, g5k_ipv6_hostname, url, url4, url6",
			"~ host cloud-flink-2-1: keys -cloud.flink.2.task_manager.1; containers -cloud.flink.2.task_manager.1",
			"+ host cloud-flink-2-2 (cloud.flink.2)",
			"~ link fog -> cloud: dst hosts +cloud-flink-2-2",
			"~ play 1 (all): hosts +cloud-flink-2-2",
		},
		shaped: gateways,
		added:  []string{"cloud-flink-2-2"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := build(t, scenario(t, tt.before...), nil)
			after := build(t, scenario(t, tt.after...), before)
			d := Plans(before, after)
			if got := d.Lines(); !slices.Equal(got, tt.lines) {
				t.Errorf("lines:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.lines, "\n"))
			}
			for _, f := range []struct {
				name      string
				got, want []string
			}{{"shaped", d.Shaped, tt.shaped}, {"unshaped", d.Unshaped, tt.unshaped}, {"added", d.Added, tt.added}, {"removed", d.Removed, tt.removed}} {
				if !slices.Equal(f.got, f.want) {
					t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
				}
			}
			if !reflect.DeepEqual(d.Reconfigure, tt.reconfigure) {
				t.Errorf("reconfigure = %v, want %v", d.Reconfigure, tt.reconfigure)
			}
			if d.Empty() != (len(tt.lines) == 0) {
				t.Errorf("Empty() = %v with %d lines", d.Empty(), len(tt.lines))
			}
			// The running experiment's plan is read back from plan.json.
			if j := Plans(throughJSON(t, before), after); !reflect.DeepEqual(j, d) {
				t.Errorf("through plan.json:\n%s\nfresh:\n%s", strings.Join(j.Lines(), "\n"), strings.Join(d.Lines(), "\n"))
			}
		})
	}
}

func TestWrite(t *testing.T) {
	sc := scenario(t)
	before := build(t, sc, nil)
	var buf bytes.Buffer
	Plans(before, build(t, sc, before)).Write(&buf)
	if got := buf.String(); got != "no change\n" {
		t.Errorf("unchanged: %q, want \"no change\\n\"", got)
	}
	buf.Reset()
	d := Plans(before, build(t, scenario(t, edit{schema.NetworkFile, "rate: 1gbit", "rate: 500mbit"}), before))
	d.Write(&buf)
	if got, want := buf.String(), "~ link fog -> cloud: rate 1gbit -> 500mbit\n"; got != want {
		t.Errorf("rate changed: %q, want %q", got, want)
	}
}

func TestOrder(t *testing.T) {
	tests := []struct {
		before, after, want []string
	}{
		{nil, nil, []string{}},
		{[]string{"a", "b"}, []string{"a", "b"}, []string{"a", "b"}},
		{[]string{"a", "b", "c", "d"}, []string{"a", "d"}, []string{"a", "b", "c", "d"}},
		{[]string{"a", "b"}, []string{"a", "x", "b", "y"}, []string{"a", "x", "b", "y"}},
		{[]string{"a", "b", "c"}, []string{"x", "c"}, []string{"x", "a", "b", "c"}},
		{[]string{"a", "b", "c"}, []string{"c", "a"}, []string{"b", "c", "a"}}, // moved: after's order
	}
	for _, tt := range tests {
		if got := order(tt.before, tt.after); !slices.Equal(got, tt.want) {
			t.Errorf("order(%q, %q) = %q, want %q", tt.before, tt.after, got, tt.want)
		}
	}
}

func TestDelta(t *testing.T) {
	tests := []struct {
		added, removed, changed []string
		want                    string
	}{
		{nil, nil, nil, ""},
		{[]string{"a"}, []string{"b"}, []string{"c"}, "+a, -b, ~c"},
		{[]string{"a", "b", "c", "d"}, nil, nil, "+a, +b, +c, +d"},
		{[]string{"a", "b", "c", "d", "e"}, []string{"x"}, nil, "+a, +b, +c, +2 more, -x"},
	}
	for _, tt := range tests {
		if got := delta(tt.added, tt.removed, tt.changed...); got != tt.want {
			t.Errorf("delta(%q, %q, %q) = %q, want %q", tt.added, tt.removed, tt.changed, got, tt.want)
		}
	}
}
