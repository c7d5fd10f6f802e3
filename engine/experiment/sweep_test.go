package experiment

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/e2c-dev/e2c/engine/sweep"
	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/results/summary"
	"github.com/e2c-dev/e2c/schema"
)

// cancelOn cancels a context when a line containing text is written.
type cancelOn struct {
	mu     sync.Mutex
	text   string
	cancel context.CancelFunc
	b      strings.Builder
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.b.Write(p)
	if c.text != "" && strings.Contains(string(p), c.text) {
		c.cancel()
	}
	return len(p), nil
}

// TestSweepResumes runs a 2 x 2 sweep (a service's quantity and a play's
// variable) with one combination excluded, is interrupted after its first
// point, and is run again: the point that succeeded is not run twice, the
// others run, nothing is lost, and the summary tells the points apart.
func TestSweepResumes(t *testing.T) {
	dir, artifacts := localScenario(t)
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte(`- hosts: all
  vars: {x: 0}
  launch:
  - shell: echo {{ x }} > v.txt
  finalize:
  - fetch: {src: v.txt, dest: "{{ working_dir }}/v-{{ inventory_hostname }}.txt", flat: yes}
`), 0o644)
	os.WriteFile(filepath.Join(dir, "metrics.yaml"), []byte("metrics:\n- {name: x, files: v-*.txt, lines: true}\n"), 0o644)
	spec := sweep.Spec{
		Parameters: map[string][]string{"layers_services.layers.edge.services.node.quantity": {"1", "2"}, "workflow.0.vars.x": {"10", "20"}},
		Exclude:    []map[string]string{{"layers_services.layers.edge.services.node.quantity": "2", "workflow.0.vars.x": "20"}},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelOn{text: "sweep: point 2 of 3", cancel: cancel}
	_, err := Sweep(ctx, spec, Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: out})
	if err == nil || !strings.Contains(err.Error(), "sweep interrupted") {
		t.Fatalf("interrupted sweep: %v\n%s", err, out.b.String())
	}
	first := filepath.Join(dir, results.SweepDir, "1-quantity=1_x=10")
	if st, err := readPoint(first); err != nil || st.Status != results.Succeeded || len(st.Runs) != 1 {
		t.Fatalf("first point: %+v, %v", st, err)
	}

	out = &cancelOn{}
	points, err := Sweep(context.Background(), spec, Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: out})
	if err != nil || len(points) != 3 {
		t.Fatalf("resumed sweep: %v, %v\n%s", points, err, out.b.String())
	}
	if !strings.Contains(out.b.String(), "sweep: 1-quantity=1_x=10 succeeded in an earlier sweep: skipped") {
		t.Errorf("not skipped:\n%s", out.b.String())
	}
	if runs, _ := results.Runs(first); len(runs) != 1 {
		t.Errorf("the first point ran %d times", len(runs))
	}
	for _, p := range []string{"2-quantity=1_x=20", "3-quantity=2_x=10"} {
		st, err := readPoint(filepath.Join(dir, results.SweepDir, p))
		if err != nil || st.Status != results.Succeeded {
			t.Errorf("%s: %+v, %v", p, st, err)
		}
	}
	// The point with quantity 2 ran on two hosts, with the swept value.
	recs, _ := results.Runs(filepath.Join(dir, results.SweepDir, "3-quantity=2_x=10"))
	if len(recs) != 1 || len(recs[0].Hosts) != 2 {
		t.Fatalf("quantity 2: %+v", recs)
	}
	if got := readFile(t, filepath.Join(recs[0].Dir(), "v-edge-node-1-2.txt")); got != "10\n" {
		t.Errorf("second host wrote %q", got)
	}
	runs, _, err := summary.ScenarioRuns(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ms := []schema.Metric{{Name: "x", Files: "v-*.txt", Lines: true}}
	values, err := summary.Read(runs, ms)
	if err != nil {
		t.Fatal(err)
	}
	stats := summary.Summarize(values, ms)
	var got []string
	for _, s := range stats {
		got = append(got, fmt.Sprintf("%s:%g", s.Config, s.Mean))
	}
	if strings.Join(got, " ") != "1-quantity=1_x=10:10 2-quantity=1_x=20:20 3-quantity=2_x=10:10" {
		t.Errorf("summary per point: %v", got)
	}
}
