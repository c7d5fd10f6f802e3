package experiment

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestStepsRegisterWhileJobsStart: in a step command one host registers
// values while another starts background jobs, each of which saves the
// state; the executor must not write into the maps the state saves (go
// test -race catches it, and without -race it may crash with "concurrent
// map iteration and map write").
func TestStepsRegisterWhileJobsStart(t *testing.T) {
	dir, artifacts := localScenario(t)
	os.WriteFile(filepath.Join(dir, "layers_services.yaml"), []byte("environment:\n  local: {}\nlayers:\n- name: edge\n  services: [{name: node, quantity: 2}]\n"), 0o644)
	var launch strings.Builder
	for range 20 {
		launch.WriteString(`  - shell: "true"
    register: r
    when: inventory_hostname == "edge-node-1-1"
  - shell: sleep 30
    async: 60
    poll: 0
    when: inventory_hostname == "edge-node-1-2"
`)
	}
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte(`- hosts: all
  prepare:
  - shell: echo prepared
    register: p
  launch:
`+launch.String()), 0o644)
	ctx := context.Background()
	var out strings.Builder
	if _, err := layersServices(ctx, Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: &out}); err != nil {
		t.Fatalf("layers-services: %v\n%s", err, out.String())
	}
	t.Cleanup(func() { destroy(context.Background(), dir, &strings.Builder{}) })
	if err := workflow(ctx, dir, "prepare", "", &out); err != nil {
		t.Fatalf("prepare: %v\n%s", err, out.String())
	}
	if err := workflow(ctx, dir, "launch", "", &out); err != nil {
		t.Fatalf("launch: %v\n%s", err, out.String())
	}
	st, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(st.jobs()["edge-node-1-2"]); got != 20 {
		t.Errorf("the state records %d background jobs, want 20", got)
	}
	if st.Memory.Registered["edge-node-1-1"]["r"] == nil || st.Memory.Registered["edge-node-1-1"]["p"] == nil {
		t.Errorf("the state lost registered values: %v", st.Memory.Registered)
	}
}

// alive tells whether process pid runs (a zombie does not).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// jobPids are the pids of the leaders of the background jobs of the host
// whose home is home, by job folder.
func jobPids(t *testing.T, home string) map[string]int {
	t.Helper()
	pids := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(home, ".e2c", "jobs", "*", "pid"))
	for _, f := range files {
		pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, f)))
		if err != nil {
			t.Fatal(err)
		}
		pids[filepath.Dir(f)] = pid
	}
	return pids
}

// TestReleasedKeptHostsJobsStopped: a kept reservation that no longer
// fits is released, and the background jobs of its hosts stopped first:
// static hosts outlive their reservation, and so would the jobs.
func TestReleasedKeptHostsJobsStopped(t *testing.T) {
	lab := staticLab(t, "10.235.8.0/24", "a", "b", "c")
	dir, artifacts := localScenario(t)
	t.Cleanup(func() { destroy(context.Background(), dir, &strings.Builder{}) })
	layers := func(quantity int, hosts ...int) {
		var list []string
		for _, i := range hosts {
			h := lab.Hosts()[i]
			list = append(list, fmt.Sprintf("{address: %s, alias: h-%s}", h.Address4, h.Name))
		}
		os.WriteFile(filepath.Join(dir, "layers_services.yaml"), fmt.Appendf(nil, "environment:\n%slayers:\n- name: edge\n  services: [{name: node, quantity: %d}]\n",
			staticEnv(lab, list...), quantity), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte("- hosts: all\n  launch:\n  - {shell: sleep 300, async: 600, poll: 0}\n"), 0o644)
	layers(1, 0)
	var out strings.Builder
	if _, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: &out}, ReleaseIfInterrupted); err != nil {
		t.Fatalf("first deploy: %v\n%s", err, out.String())
	}
	pids := jobPids(t, filepath.Join(lab.StateDir(), "hosts", "a", "root"))
	if len(pids) != 1 {
		t.Fatalf("jobs on a: %v", pids)
	}

	layers(2, 1, 2) // a is no longer in the scenario
	out.Reset()
	if _, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: &out}, Release); err != nil {
		t.Fatalf("second deploy: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "does not fit this scenario; releasing it") {
		t.Errorf("the kept reservation was not released:\n%s", out.String())
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("the job of the released host a still runs:\n%s", out.String())
		}
	}
}

// TestSamplerRecorded: the monitoring sampler is a background job
// recorded like the tasks' before it starts, so that after e2c is killed
// e2c destroy finds and stops it.
func TestSamplerRecorded(t *testing.T) {
	dir, artifacts := jobScenario(t)
	os.WriteFile(filepath.Join(dir, "layers_services.yaml"), []byte(`environment:
  local: {}
monitoring: {type: dstat, interval: 1}
layers:
- name: edge
  services: [{name: node, roles: [monitoring]}]
`), 0o644)
	c := startChild(t, "deploy", dir, artifacts)
	c.killWhen(t, "the wait", func() bool { return strings.Contains(c.out.String(), "WAIT") })
	st, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if jobs := st.jobs()["edge-node-1-1"]; len(jobs) != 2 {
		t.Fatalf("the state records %v: want the launched job and the sampler", jobs)
	}
	pids := jobPids(t, filepath.Join(dir, ".e2c", "local", "hosts", "edge-node-1-1"))
	for job, pid := range pids {
		if !alive(pid) {
			t.Fatalf("job %s died with e2c: nothing to test; rc %q err %q\n%s", job, readFileQuiet(filepath.Join(job, "rc")), readFileQuiet(filepath.Join(job, "err")), c.out.String())
		}
	}
	var out strings.Builder
	if err := destroy(context.Background(), dir, &out); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "stopped where still running") {
		t.Errorf("destroy did not stop the jobs:\n%s", out.String())
	}
	for job, pid := range pids {
		if alive(pid) {
			t.Errorf("job %s still runs after destroy", job)
		}
	}
}
