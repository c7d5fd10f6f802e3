package schema

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// seed adds every example's copy of file to the corpus.
func seed(f *testing.F, file string, extra ...string) {
	paths, _ := filepath.Glob(filepath.Join("..", "examples", "*", file))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, e := range extra {
		f.Add([]byte(e))
	}
}

// checkPositioned fails unless every problem in err is a *Error in file
// with a line (the file-level "empty" problems included).
func checkPositioned(t *testing.T, err error) {
	if err == nil {
		return
	}
	var m *Errors
	if !errors.As(err, &m) {
		t.Fatalf("error is %T, want *Errors: %v", err, err)
	}
	for _, e := range m.Unwrap() {
		var pe *Error
		if !errors.As(e, &pe) || pe.Pos.File != "f.yaml" || pe.Pos.Line < 1 {
			t.Fatalf("problem without a position: %#v", e)
		}
	}
}

func FuzzDecodeLayersServices(f *testing.F) {
	seed(f, LayersServicesFile, goodLayers, laughs, "environment: {g5k: }\nlayers: [{name: a, services: [{name: s, quantity: 2.5}]}]\n",
		"environment: {g5k: }\nlayers: [{name: a, services: [{name: s, env: &e {self: *e}}, {<<: *e, name: t}]}]\n")
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := DecodeLayersServices("f.yaml", data)
		checkPositioned(t, err)
	})
}

func FuzzDecodeNetwork(f *testing.F) {
	seed(f, NetworkFile, "networks:\n- {src: a, dst: b, delay: 0.5ms, rate: 1.5gbit, loss: 0.1%, symmetric: yes}\n")
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := DecodeNetwork("f.yaml", data)
		checkPositioned(t, err)
	})
}

func FuzzDecodeWorkflow(f *testing.F) {
	seed(f, WorkflowFile, "- hosts: a\n  depends_on: {service_selector: b, prefix: p, grouping: asarray, array_info: id}\n",
		"- hosts: a\n  vars: {on: yes, t: 1:30}\n  launch:\n  - block:\n    - shell: pwd > f chdir=/tmp 'x=y' \"{{ a }}\"\n      args: {creates: /f}\n      until: r.rc == 0\n"+
			"      with_sequence: 1-10/2:n%02d\n    rescue: [{local_action: copy src=a dest=b}]\n    always: [{debug: msg=x, with_dict: {b: 1}, loop_control: {loop_var: v, pause: 0.5}}]\n    when: no\n")
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := DecodeWorkflow("f.yaml", data)
		checkPositioned(t, err)
	})
}

func FuzzDecodeTimeline(f *testing.F) {
	seed(f, TimelineFile, "- {at: 10s, name: more, scale: {edge.producer: 6, Cloud.Sink: 0}}\n- {at: 1m30s, network: {src: fog, dst: edge, rate: 5mbit, symmetric: yes}}\n"+
		"- {at: 1m30s, network: {src: edge, dst: fog, delay: 0ms}}\n- at: 30s\n  run:\n    hosts: cloud.*\n    tasks: [{shell: echo hi, async: 10, poll: 0}]\n",
		"- &c {at: -1s, scale: {edge: -1, a.b: 10001}}\n- {<<: *c, run: {hosts: a, tasks: []}}\n")
	f.Fuzz(func(t *testing.T, data []byte) {
		tl, err := DecodeTimeline("f.yaml", data)
		checkPositioned(t, err)
		checkPositioned(t, tl.checkServices(&LayersServices{}))
	})
}

func FuzzDecodeServiceDef(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("..", "engine", "servicedef", "builtin", "*.yaml"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("name: x\ncontainer: &c {image: \"a:1\", ports: [\"1:2/udp\"], volumes: [\"v:/d:ro\"], readiness: {timeout: 2m}}\nsubservices:\n- {name: a, container: *c}\n- {name: b, container: b}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := DecodeServiceDef("f.yaml", data)
		checkPositioned(t, err)
	})
}
