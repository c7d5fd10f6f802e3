package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScaleStepByStep scales the nodes of a run between the step commands
// on the local provider: the new host is prepared and launched, finalize
// fetches from it, the removed one's results were fetched when it went,
// and an unchanged apply says so.
func TestScaleStepByStep(t *testing.T) {
	t.Setenv("E2C_SCENARIO_DIR", "")
	dir, artifacts := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(dir, "layers_services.yaml"), []byte("environment: {local: }\nlayers:\n- name: edge\n  services: [{name: node, quantity: 2}]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte(`
- hosts: all
  prepare:
  - shell: echo "{{ inventory_hostname }}" > out.txt
  launch:
  - shell: echo launched >> out.txt
  finalize:
  - fetch: {src: out.txt, dest: "{{ working_dir }}/r/"}
`), 0o644)
	for _, args := range [][]string{
		{"layers-services", dir, artifacts},
		{"workflow", dir, "prepare"},
		{"workflow", dir, "launch"},
		{"scale", dir, "edge.node=1"},
		{"scale", dir, "edge.node=2"},
		{"finalize", dir},
	} {
		if out, err := run(t, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	runs, _ := filepath.Glob(filepath.Join(dir, "2*"))
	if len(runs) != 1 {
		t.Fatalf("run folders: %v", runs)
	}
	for _, h := range []string{"edge-node-1-1", "edge-node-1-2", "edge-node-1-3"} {
		data, err := os.ReadFile(filepath.Join(runs[0], "r", h, "out.txt"))
		if err != nil || string(data) != h+"\nlaunched\n" {
			t.Errorf("%s: out.txt %q, %v", h, data, err)
		}
	}
	// The files still say 2 nodes, as the experiment now has.
	if out, err := run(t, "apply", dir); err != nil || !strings.Contains(out, "no change") || !strings.Contains(out, "nothing to change") {
		t.Errorf("apply of the unchanged scenario: %v\n%s", err, out)
	}
	if out, err := run(t, "destroy", dir); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
	if _, err := run(t, "scale", dir, "edge.node=3"); err == nil || !strings.Contains(err.Error(), "no kept experiment") {
		t.Errorf("scale after destroy: %v", err)
	}
}
