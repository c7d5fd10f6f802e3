package plan

import (
	"reflect"
	"testing"
)

// TestOnly: a plan cut down to some hosts runs on them alone, and keeps
// every host's variables, services and the plan's hosts for templates.
func TestOnly(t *testing.T) {
	sc := load(t, "environment: {local: {}}\nlayers:\n- name: edge\n  services: [{name: node, quantity: 3}]\n- name: fog\n  services: [{name: gw}]\n", `
- hosts: edge.node.*
  depends_on: {service_selector: "fog.gw.*", grouping: round_robin, prefix: gw}
  prepare: [{shell: "echo {{ gw.url }}"}]
- hosts: fog.gw.*
  launch: [{shell: "true"}]
`, "networks:\n- {src: edge, dst: fog, rate: 1mbit}\n")
	p := mustBuild(t, sc)
	q := p.Only([]string{"edge-node-1-2"})
	if got := q.Plays[0].Hosts; !reflect.DeepEqual(got, []string{"edge-node-1-2"}) {
		t.Errorf("play 1 hosts %v", got)
	}
	if runs := q.Plays[0].Phases["prepare"]; len(runs) != 1 || runs[0].Host != "edge-node-1-2" {
		t.Errorf("play 1 prepare runs %+v", runs)
	}
	if len(q.Plays[1].Phases) != 0 || len(q.Plays[1].Hosts) != 0 {
		t.Errorf("play 2 keeps %v, %v", q.Plays[1].Hosts, q.Plays[1].Phases)
	}
	if len(q.Constraints) != 1 || q.Constraints[0].Src != "edge-node-1-2" {
		t.Errorf("constraints %+v", q.Constraints)
	}
	if len(q.Hosts) != len(p.Hosts) || len(q.Services) != len(p.Services) || len(q.Plays[0].HostVars) != 3 {
		t.Errorf("hosts %d, services %d, host vars %d: not whole", len(q.Hosts), len(q.Services), len(q.Plays[0].HostVars))
	}
	if len(p.Plays[0].Phases["prepare"]) != 3 || len(p.Constraints) != 3 {
		t.Errorf("the plan itself was cut: %d runs, %d constraints", len(p.Plays[0].Phases["prepare"]), len(p.Constraints))
	}
}
