package experiment

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTestbedOverride runs a scenario written for Grid'5000 (a g5k block,
// cluster and servers hints) on the local provider, unchanged: --testbed
// local puts every service there with its defaults, and run.json says so.
func TestTestbedOverride(t *testing.T) {
	dir, artifacts := localScenario(t)
	os.WriteFile(filepath.Join(dir, "layers_services.yaml"), []byte(`environment:
  job_name: twin
  walltime: "01:00:00"
  cluster: parasilo
  g5k: {cluster: parasilo, env_name: debian11-big}
layers:
- name: cloud
  services: [{name: server, cluster: gros}]
- name: edge
  services: [{name: client, quantity: 2, servers: [paravance-1, paravance-2]}]
`), 0o644)
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Testbed: "local", Out: &out}, Release)
	if err != nil {
		t.Fatalf("deploy --testbed local: %v\n%s", err, out.String())
	}
	rec, err := readRecord(runs[0])
	if err != nil {
		t.Fatal(err)
	}
	if rec.TestbedOverride != "local" || len(rec.Testbeds) != 1 || rec.Testbeds["local"] == nil || len(rec.Hosts) != 3 || rec.Hosts[0].Testbed != "local" {
		t.Errorf("run.json: override %q, testbeds %v, hosts %+v", rec.TestbedOverride, rec.Testbeds, rec.Hosts)
	}
	if got := readFile(t, filepath.Join(runs[0], "out.txt")); !strings.HasPrefix(got, "v1\n") {
		t.Errorf("the run's output: %q", got)
	}
	if !strings.Contains(readFile(t, filepath.Join(runs[0], "scenario", "layers_services.yaml")), "g5k:") {
		t.Error("the run's scenario/ copy is not the file as written")
	}
	if _, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Testbed: "nosuch", Out: &out}, ReleaseIfInterrupted); err == nil ||
		!strings.Contains(err.Error(), `--testbed: no provider for testbed "nosuch" (available: `) {
		t.Errorf("an unknown testbed: %v", err)
	}
}

// TestDeployWarnings: what is probably a mistake is said before the runs,
// and runs are numbered from 1 everywhere.
func TestDeployWarnings(t *testing.T) {
	dir, _ := localScenario(t)
	empty := t.TempDir()
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte(`- hosts: all
  launch:
  - shell: sleep 1
    async: 10
    poll: 0
  - shell: exit 3
`), 0o644)
	var out strings.Builder
	_, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: empty, Repeat: 1, Out: &out}, Release)
	for _, want := range []string{
		"warning: the artifacts folder " + empty + " is empty",
		"warning: --duration is 0 but launch starts background jobs (" + filepath.Join(dir, "workflow.yaml") + ":3:5)",
		"run 1 of 2: ", "run 1 of 2 failed: ", "run 2 of 2 failed: ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err == nil || !strings.Contains(err.Error(), "run 1 of 2: launch: ") || !strings.Contains(err.Error(), "run 2 of 2: launch: ") || strings.Contains(err.Error(), "run 0") {
		t.Errorf("error: %v", err)
	}
}
