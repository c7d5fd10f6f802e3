package providers

import (
	"reflect"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/schema"
)

func TestPlanResize(t *testing.T) {
	host := func(name string) Host { return Host{Machine: plan.Machine{Name: name, Address: name + ".addr"}} }
	r := &Reservation{Hosts: [][]Host{{host("a"), host("b")}, {host("c")}}}
	in := func(q ...int) []plan.Instance {
		var out []plan.Instance
		for i, n := range q {
			out = append(out, plan.Instance{Layer: "edge", Name: "p", Index: i + 1, Service: &schema.Service{Quantity: n}})
		}
		return out
	}
	// Kept hosts are the reservation's, whatever the caller's copy holds.
	p, err := PlanResize(r, in(3, 0, 1), [][]Host{{{Machine: plan.Machine{Name: "b"}}}})
	want := ResizePlan{Keep: [][]Host{{host("b")}, nil, nil}, Release: []Host{host("a"), host("c")}, Add: []int{2, 0, 1}}
	if err != nil || !reflect.DeepEqual(p, want) {
		t.Errorf("plan %+v, %v; want %+v", p, err, want)
	}
	for _, c := range []struct {
		instances []plan.Instance
		keep      [][]Host
		want      string
	}{
		{in(1), [][]Host{{host("a")}, {host("c")}}, "keeps hosts for 2 instances, but 1 are asked for"},
		{in(1), [][]Host{{host("z")}}, `edge.p.1: host "z" to keep is not one of the reservation`},
		{in(2, 1), [][]Host{{host("a")}, {host("a")}}, `edge.p.2: host "a" is kept twice`},
		{in(1), [][]Host{{host("a"), host("b")}}, "edge.p.1: keeps 2 hosts, more than its quantity 1"},
		{in(-1), nil, "edge.p.1: quantity -1, expected 0 or more"},
	} {
		if _, err := PlanResize(r, c.instances, c.keep); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.keep, err, c.want)
		}
	}
}

func TestNewHostNames(t *testing.T) {
	in := []plan.Instance{
		{Layer: "edge", Name: "my_producer", Index: 1, Service: &schema.Service{}},
		{Layer: "cloud", Name: "sink", Index: 2, Service: &schema.Service{}},
	}
	taken := map[string]bool{"edge-my-producer-1-1": true, "edge-my-producer-1-3": true}
	got := NewHostNames(in, []int{3, 1}, func(n string) bool { return taken[n] })
	want := [][]string{{"edge-my-producer-1-2", "edge-my-producer-1-4", "edge-my-producer-1-5"}, {"cloud-sink-2-1"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("names %v, want %v", got, want)
	}
}
