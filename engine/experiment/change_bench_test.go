package experiment

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/providers/netns"
	"github.com/e2c-dev/e2c/results"
)

// BenchmarkScale measures, on emulated hosts, the time from a scale event
// (e2c scale on a kept experiment) to the new instances' launch, and from
// a scale back down to the removed instances' results being fetched, with
// 4 and 32 instances added to 2 and removed again. Run with: go test -run
// '^$' -bench Scale -benchtime 1x ./engine/experiment (root).
func BenchmarkScale(b *testing.B) {
	if err := netns.Preflight(); err != nil {
		b.Skip(err)
	}
	for _, n := range []int{4, 32} {
		b.Run(fmt.Sprintf("added=%d", n), func(b *testing.B) {
			for range b.N {
				up, down := scaleOnce(b, n)
				b.ReportMetric(up, "s-to-launch")
				b.ReportMetric(down, "s-to-fetched")
			}
		})
	}
}

// scaleOnce scales 2 edge nodes up by n and down again; it returns the
// seconds from each change's start to the new hosts' launch, and to the
// end of the removed hosts' finalize.
func scaleOnce(b *testing.B, n int) (up, down float64) {
	root := b.TempDir()
	dir, artifacts := filepath.Join(root, "scenario"), filepath.Join(root, "artifacts")
	writeTestFiles(b, map[string]string{
		filepath.Join(dir, "layers_services.yaml"): `environment:
  job_name: e2c-bench-scale
  netns: {subnet: 10.241.8.0/24}
layers:
- name: fog
  services: [{name: gw}]
- name: edge
  services: [{name: node, quantity: 2}]
`,
		filepath.Join(dir, "workflow.yaml"): `
- hosts: edge.node.*
  depends_on: {service_selector: "fog.gw.*", grouping: round_robin, prefix: gw}
  prepare:
  - copy: {src: "{{ artifacts_dir }}/data.txt", dest: /opt/data.txt}
  launch:
  - shell: exec sleep 600
    async: 600
    poll: 0
  - shell: echo "{{ gw.__address__ }}" > /opt/sent.txt
  finalize:
  - fetch: {src: /opt/sent.txt, dest: "{{ working_dir }}/r/"}
`,
		filepath.Join(artifacts, "data.txt"): strings.Repeat("x", 1<<20),
	})
	b.Cleanup(func() { destroy(context.Background(), dir, &strings.Builder{}) })
	ctx := context.Background()
	var out strings.Builder
	runs, err := deploy(ctx, Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: &out}, Keep)
	if err != nil {
		b.Fatalf("deploy: %v\n%s", err, out.String())
	}
	b.ResetTimer()
	for _, q := range []int{2 + n, 2} {
		if _, err := apply(ctx, dir, &out, Edit{Scale: map[string]int{"edge.node": q}}); err != nil {
			b.Fatalf("scale edge.node=%d: %v\n%s", q, err, out.String())
		}
	}
	b.StopTimer()
	tl, err := results.ReadTimeline(runs[0])
	if err != nil || len(tl.Changes) != 2 {
		b.Fatalf("timeline.json: %v %+v", err, tl)
	}
	since := func(c *results.Change, step string, end bool) float64 {
		for _, s := range c.Steps {
			if s.Name == step && s.End != nil {
				if end {
					return s.End.Sub(c.Start).Seconds()
				}
				return s.Start.Sub(c.Start).Seconds()
			}
		}
		b.Fatalf("change %s has no %s step: %+v", c.Asked, step, c.Steps)
		return 0
	}
	return since(tl.Changes[0], "launch", false), since(tl.Changes[1], "remove", true)
}
