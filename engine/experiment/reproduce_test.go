package experiment

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/results"
)

// localScenario is a small scenario on the local provider (no root).
func localScenario(t *testing.T) (dir, artifacts string) {
	t.Helper()
	root := t.TempDir()
	dir, artifacts = filepath.Join(root, "scenario"), filepath.Join(root, "artifacts")
	files := map[string]string{
		filepath.Join(dir, "layers_services.yaml"): "environment:\n  job_name: repro\n  local: {}\nlayers:\n- name: edge\n  services: [{name: node}]\n",
		filepath.Join(dir, "workflow.yaml"): `- hosts: all
  launch:
  - shell: cat {{ artifacts_dir }}/data.txt > out.txt; echo "run {{ current_repeat }} of {{ repeat_count }}" >> out.txt
  finalize:
  - fetch: {src: out.txt, dest: "{{ working_dir }}/out.txt", flat: yes}
`,
		filepath.Join(artifacts, "data.txt"): "v1\n",
	}
	for name, text := range files {
		os.MkdirAll(filepath.Dir(name), 0o755)
		os.WriteFile(name, []byte(text), 0o644)
	}
	return dir, artifacts
}

func TestReproduce(t *testing.T) {
	dir, artifacts := localScenario(t)
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Repeat: 1, Out: &out}, Release)
	if err != nil || len(runs) != 2 {
		t.Fatalf("deploy: %v %v\n%s", runs, err, out.String())
	}
	// The scenario changes afterwards: the reproduction uses what run 2 read.
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte("- hosts: all\n"), 0o644)
	again, err := Reproduce(context.Background(), runs[1], ReproduceOptions{Out: &out})
	if err != nil {
		t.Fatalf("reproduce: %v\n%s", err, out.String())
	}
	if got := readFile(t, filepath.Join(again, "out.txt")); got != "v1\nrun 1 of 2\n" {
		t.Errorf("reproduced run wrote %q, want run 2's own output", got)
	}
	if !strings.Contains(out.String(), "artifacts: all 1 files match the manifest") {
		t.Errorf("no artifacts check:\n%s", out.String())
	}
	recs, err := results.Runs(filepath.Dir(again))
	if err != nil || len(recs) != 1 || recs[0].Reproduces != runs[1] || recs[0].Repeat != 1 || recs[0].RepeatCount != 2 || recs[0].Status != results.Succeeded {
		t.Fatalf("the reproduction's record: %+v, %v", recs, err)
	}
	if all, _ := results.Runs(dir); len(all) != 2 {
		t.Errorf("the scenario lists %d runs, want its 2", len(all))
	}

	// A changed artifact is found and named, and refused without --force.
	os.WriteFile(filepath.Join(artifacts, "data.txt"), []byte("v2\n"), 0o644)
	os.WriteFile(filepath.Join(artifacts, "extra.bin"), nil, 0o644)
	_, err = Reproduce(context.Background(), runs[1], ReproduceOptions{Out: &out})
	if err == nil || !strings.Contains(err.Error(), "added: extra.bin") || !strings.Contains(err.Error(), "changed: data.txt (sha256 ") {
		t.Fatalf("changed artifacts: %v", err)
	}
	forced, err := Reproduce(context.Background(), runs[1], ReproduceOptions{Out: &out, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(forced, "out.txt")); got != "v2\nrun 1 of 2\n" {
		t.Errorf("forced run wrote %q", got)
	}
	if m := readFile(t, filepath.Join(forced, "artifacts.sha256")); !strings.Contains(m, "  ../../../artifacts/extra.bin\n") {
		t.Errorf("the forced run's manifest does not record what it used:\n%s", m)
	}
	if _, err := Reproduce(context.Background(), t.TempDir(), ReproduceOptions{Out: &out}); err == nil || !strings.Contains(err.Error(), "is not a run folder") {
		t.Errorf("not a run folder: %v", err)
	}
}

// TestMonitoring samples the hosts with the monitoring role through two
// app_confs, from the first launch to the last finalize, with e2c's own
// sampler where dstat is missing.
func TestMonitoring(t *testing.T) {
	dir, artifacts := localScenario(t)
	os.WriteFile(filepath.Join(dir, "layers_services.yaml"), []byte(`environment:
  job_name: mon
  local: {}
monitoring: {type: dstat, interval: 1}
layers:
- name: edge
  services: [{name: node, roles: [monitoring]}, {name: other}]
`), 0o644)
	os.WriteFile(filepath.Join(dir, "workflow_env.yaml"), []byte("a: {x: 1}\nb: {x: 2}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte("- hosts: all\n  launch: [{shell: sleep 1}]\n"), 0o644)
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, AppConfs: []string{"a", "b"},
		Duration: 2 * time.Second, Agent: testAgent, Out: &out}, Release)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	data := readFile(t, filepath.Join(runs[0], "monitoring-data", "edge-node-1-1.csv"))
	lines := strings.Split(strings.TrimSpace(data), "\n")
	// Two launches and waits of about 3 s each, sampled every second (or
	// dstat's own header lines where it is installed).
	if len(lines) < 4 || !strings.Contains(data, `"usr","sys","idl"`) {
		t.Errorf("monitoring data (%d lines):\n%s", len(lines), data)
	}
	if _, err := os.Stat(filepath.Join(runs[0], "monitoring-data", "edge-other-1-1.csv")); err == nil {
		t.Error("a host without the monitoring role was monitored")
	}
	rec, _ := readRecord(runs[0])
	for _, s := range rec.Steps {
		if s.Name == "monitoring" && s.Note != "monitoring 1 hosts every 1s (cpu, mem, net, disk)" {
			t.Errorf("monitoring step: %q", s.Note)
		}
	}
}

// TestMonitoringOptions: dstat's options (E2Clab's monitoring.options)
// choose the columns, also where e2c's own sampler stands in for dstat;
// those it cannot honour are refused at their line before anything runs.
func TestMonitoringOptions(t *testing.T) {
	dir, artifacts := localScenario(t)
	write := func(options string) {
		os.WriteFile(filepath.Join(dir, "layers_services.yaml"), []byte(`environment:
  job_name: mon
  local: {}
monitoring: {type: dstat, interval: 1, options: "`+options+`"}
layers:
- name: edge
  services: [{name: node, roles: [monitoring]}]
`), 0o644)
	}
	write("-m -n")
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte("- hosts: all\n  launch: [{shell: sleep 1}]\n"), 0o644)
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Duration: time.Second, Agent: testAgent, Out: &out}, Release)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	data := readFile(t, filepath.Join(runs[0], "monitoring-data", "edge-node-1-1.csv"))
	if !strings.Contains(data, `"used","free","buff","cach","recv","send"`) || strings.Contains(data, `"usr"`) {
		t.Errorf("with -m -n, the monitoring data:\n%s", data)
	}

	write("-c --top-cpu")
	_, err = deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Agent: testAgent, Out: &out}, Release)
	if err == nil || !strings.Contains(err.Error(), "layers_services.yaml:4:") || !strings.Contains(err.Error(), `monitoring.options: dstat option "--top-cpu" is not supported`) {
		t.Errorf("an option the sampler cannot honour: %v", err)
	}
}

// TestReproduceScenarioTemplate: a template the scenario folder holds
// (outside the artifacts, so the manifest does not record it) is kept with
// the run, and its reproduction renders the template the run read.
func TestReproduceScenarioTemplate(t *testing.T) {
	dir, artifacts := localScenario(t)
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	os.WriteFile(filepath.Join(dir, "templates", "conf.j2"), []byte("v1 on {{ inventory_hostname }}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte(`- hosts: all
  launch:
  - template: {src: "{{ scenario_dir }}/templates/conf.j2", dest: conf.txt}
  finalize:
  - fetch: {src: conf.txt, dest: "{{ working_dir }}/conf.txt", flat: yes}
`), 0o644)
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: &out}, Release)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	if got := readFile(t, filepath.Join(runs[0], "scenario", "templates", "conf.j2")); got != "v1 on {{ inventory_hostname }}\n" {
		t.Fatalf("the run keeps %q of the template", got)
	}
	os.WriteFile(filepath.Join(dir, "templates", "conf.j2"), []byte("v2\n"), 0o644)
	again, err := Reproduce(context.Background(), runs[0], ReproduceOptions{Out: &out})
	if err != nil {
		t.Fatalf("reproduce: %v\n%s", err, out.String())
	}
	if got := readFile(t, filepath.Join(again, "conf.txt")); got != "v1 on edge-node-1-1\n" {
		t.Errorf("the reproduction rendered %q, want the run's own template", got)
	}
}
