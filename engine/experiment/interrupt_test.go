package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/results"
)

// TestInterrupted cancels a deploy in the middle of launch, as Ctrl-C
// does: the command is killed, finalize still fetches what was produced,
// the run is marked interrupted and the hosts are released.
func TestInterrupted(t *testing.T) {
	root := t.TempDir()
	dir, artifacts := filepath.Join(root, "s"), filepath.Join(root, "a")
	os.MkdirAll(dir, 0o755)
	os.MkdirAll(artifacts, 0o755)
	os.WriteFile(filepath.Join(dir, "layers_services.yaml"), []byte("environment: {local: }\nlayers:\n- name: edge\n  services: [{name: node, quantity: 2}]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte(`
- hosts: all
  launch:
  - shell: echo started > s.tmp && mv s.tmp started.txt; sleep 30; echo late > late.txt
  finalize:
  - fetch: {src: started.txt, dest: "{{ working_dir }}/r/"}
`), 0o644)
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			matches, _ := filepath.Glob(filepath.Join(dir, ".e2c", "local", "hosts", "*", "started.txt"))
			if len(matches) == 2 {
				cancel(errors.New("interrupt received"))
				return
			}
		}
	}()
	start := time.Now()
	var out strings.Builder
	runs, err := deploy(ctx, Options{ScenarioDir: dir, ArtifactsDir: artifacts, Duration: time.Minute, Out: &out}, ReleaseIfInterrupted)
	if err == nil || !strings.Contains(err.Error(), "interrupted: interrupt received") {
		t.Fatalf("err = %v\n%s", err, out.String())
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %s: the launched command was not stopped", d)
	}
	var rec results.Record
	data, _ := os.ReadFile(filepath.Join(runs[0], "run.json"))
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	status := map[string]results.Status{}
	for _, s := range rec.Steps {
		status[s.Name] = s.Status
	}
	if rec.Status != results.Interrupted || status["launch"] != results.Interrupted || status["finalize"] != results.Succeeded {
		t.Errorf("status %s, steps %v", rec.Status, status)
	}
	for _, h := range []string{"edge-node-1-1", "edge-node-1-2"} {
		if got := readFile(t, filepath.Join(runs[0], "r", h, "started.txt")); got != "started\n" {
			t.Errorf("%s: fetched %q", h, got)
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, ".e2c", "local", "hosts", "*", "late.txt")); len(matches) != 0 {
		t.Errorf("the launched command went on after the interrupt: %v", matches)
	}
	if st, _ := LoadState(dir); len(st.Reservations) != 0 {
		t.Errorf("hosts kept after an interrupt: %v", st.Reservations)
	}
}

// TestServiceDeployTasks checks that a service definition's deploy tasks
// run on the service's hosts, before prepare, as the services step.
func TestServiceDeployTasks(t *testing.T) {
	root := t.TempDir()
	dir, artifacts := filepath.Join(root, "s"), filepath.Join(root, "a")
	os.MkdirAll(filepath.Join(dir, "services"), 0o755)
	os.MkdirAll(artifacts, 0o755)
	os.WriteFile(filepath.Join(dir, "layers_services.yaml"), []byte("environment: {local: }\nlayers:\n- name: fog\n  services: [{name: broker, quantity: 2}, {name: client}]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "services", "broker.yaml"), []byte(`name: broker
port: 1883
deploy:
- shell: echo "broker on {{ _self.url }}" > deployed.txt
`), 0o644)
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte(`
- hosts: fog.broker.*
  prepare:
  - shell: cat deployed.txt
    register: d
  finalize:
  - fetch: {src: deployed.txt, dest: "{{ working_dir }}/r/"}
`), 0o644)
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: &out}, Release)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for i, h := range []string{"fog-broker-1-1", "fog-broker-1-2"} {
		// Each scenario has its own block of loopback addresses.
		want := regexp.MustCompile(fmt.Sprintf(`^broker on 127\.\d+\.\d+\.%d:1883\n$`, i+1))
		if got := readFile(t, filepath.Join(runs[0], "r", h, "deployed.txt")); !want.MatchString(got) {
			t.Errorf("%s: %q, want %s", h, got, want)
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, ".e2c", "local", "hosts", "fog-client-2-1", "deployed.txt")); len(matches) != 0 {
		t.Error("deploy tasks ran on a host of another service")
	}
	var rec results.Record
	data, _ := os.ReadFile(filepath.Join(runs[0], "run.json"))
	json.Unmarshal(data, &rec)
	if len(rec.Steps) < 3 || rec.Steps[1].Name != "services" || rec.Steps[1].Status != results.Succeeded || rec.Steps[2].Name != "network" || rec.Steps[3].Name != "prepare" {
		var names []string
		for _, s := range rec.Steps {
			names = append(names, s.Name)
		}
		t.Errorf("steps = %v", names)
	}
}
