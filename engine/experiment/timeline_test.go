package experiment

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/providers/netns"
	"github.com/e2c-dev/e2c/results"
)

// TestTimelineQuickstart runs the quickstart pipeline on emulated hosts
// with a timeline: 2 producers become 6 at t=6 s, the edge→fog rate drops
// at t=14 s, and 3 producers are left at t=20 s; twice. The sink's
// throughput shows the steps, the removed producers' results are in the
// run folder, timeline.json is complete, and the second run starts again
// from 2 producers. The application is built once, here, rather than on
// every host as the quickstart does: a new producer's prepare would
// otherwise be a cold Go build, longer than the steps.
func TestTimelineQuickstart(t *testing.T) {
	if err := netns.Preflight(); err != nil {
		t.Skip(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		if goBin = "/usr/local/go/bin/go"; !fileExists(goBin) {
			t.Skip("the quickstart's application is built with go, not found")
		}
	}
	dir := copyTree(t, "../../examples/quickstart")
	for name, text := range map[string]string{
		"layers_services.yaml": `environment:
  job_name: quickstart-timeline
  netns: {subnet: 10.241.2.0/24}
layers:
- name: cloud
  services: [{name: sink}]
- name: fog
  services: [{name: gateway}]
- name: edge
  services: [{name: producer, quantity: 2}]
`,
		"timeline.yaml": `- at: 6s
  name: more producers
  scale: {edge.producer: 6}
- at: 14s
  network: {src: edge, dst: fog, rate: 16kbit}
- at: 20s
  scale: {edge.producer: 3}
`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command(goBin, "build", "-o", filepath.Join(dir, "artifacts", "quickstart-bin"), ".")
	build.Dir = filepath.Join(dir, "artifacts", "app")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	wf := filepath.Join(dir, "workflow.yaml")
	data := strings.Replace(readFile(t, wf), `PATH="$PATH:/usr/local/go/bin:/usr/lib/go/bin" go build -o ../quickstart .`, "install -m 755 ../quickstart-bin ../quickstart", 1) // copy leaves artifacts 0644
	if err := os.WriteFile(wf, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	mode := NetworkFull
	if !kernelHasNetem(t) {
		mode = NetworkRatesOnly
	}
	t.Cleanup(func() { destroy(context.Background(), dir, &strings.Builder{}) })
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: filepath.Join(dir, "artifacts"), Network: mode,
		Repeat: 1, Duration: 24 * time.Second, Agent: testAgent, SkipNetworkCheck: true, Out: &out}, Release)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	defer func() {
		if t.Failed() {
			t.Log(out.String())
		}
	}()
	for i, run := range runs {
		tl, err := results.ReadTimeline(run)
		if err != nil || len(tl.Changes) != 3 {
			t.Fatalf("run %d: timeline.json: %v %+v", i, err, tl)
		}
		count := func(c *results.Change, did string) int {
			n := 0
			for _, h := range c.Hosts {
				if h.Did == did && h.Error == "" {
					n++
				}
			}
			return n
		}
		for j, want := range []struct {
			kind    string
			planned float64
			did     string
			hosts   int
		}{{"scale", 6, "added", 4}, {"network", 14, "network", 7}, {"scale", 20, "removed", 3}} {
			c := tl.Changes[j]
			if c.Kind != want.kind || c.Status != results.Succeeded || c.Planned == nil || *c.Planned != want.planned || c.End == nil || count(c, want.did) != want.hosts {
				t.Errorf("run %d change %d: %s %s planned %v, %d %s (want %d): %+v", i, j, c.Kind, c.Status, c.Planned, count(c, want.did), want.did, want.hosts, c)
			}
			if late := c.Late(); late < 0 || late > 5*time.Second {
				t.Errorf("run %d change %d started %s after its planned time", i, j, late)
			}
		}
		sent, _ := filepath.Glob(filepath.Join(run, "experiment-results", "producers", "*", "sent.csv"))
		if len(sent) != 6 {
			t.Errorf("run %d: the results of %d producers, want 6 (3 removed, 3 at the end): %v", i, len(sent), sent)
		}
		rec, err := readRecord(run)
		if err != nil {
			t.Fatal(err)
		}
		var wait time.Time
		for _, s := range rec.Steps {
			if s.Name == "wait" {
				wait = s.Start
			}
		}
		perSecond := readThroughput(t, filepath.Join(run, "experiment-results", "sink", "throughput.csv"))
		mean := func(from, to int) float64 {
			sum := 0
			for s := from; s < to; s++ {
				sum += perSecond[wait.Unix()+int64(s)]
			}
			return float64(sum) / float64(to-from)
		}
		// The whole seconds between one change's end and the next one's
		// start: the 4 producers added need a few seconds to start here
		// (services, network, prepare, launch), which -race slows.
		between := func(done, next *results.Change) (int, int) {
			return int(done.End.Sub(wait).Seconds()) + 1, int(next.Start.Sub(wait).Seconds())
		}
		scaled, limiting, removing := tl.Changes[0], tl.Changes[1], tl.Changes[2]
		from6, to6 := between(scaled, limiting)
		fromLimited, toLimited := between(limiting, removing)
		if to6-from6 < 2 || toLimited-fromLimited < 2 {
			t.Fatalf("run %d: the changes left less than 2 s between them: 6 producers in [%d, %d), limited in [%d, %d)", i, from6, to6, fromLimited, toLimited)
		}
		two, six, limited := mean(1, int(scaled.Start.Sub(wait).Seconds())), mean(from6, to6), mean(fromLimited, toLimited)
		t.Logf("run %d: records per second: %.0f with 2 producers, %.0f with 6 (seconds %d to %d), %.0f with the rate limited (%d to %d)",
			i, two, six, from6, to6, limited, fromLimited, toLimited)
		if six < 2*two || limited > six/2 {
			t.Errorf("run %d: the sink's throughput does not show the steps: %.0f, %.0f, %.0f records/s", i, two, six, limited)
		}
	}
}

func fileExists(name string) bool { _, err := os.Stat(name); return err == nil }

// readThroughput reads the quickstart sink's records per second, by unix
// second.
func readThroughput(t *testing.T, name string) map[int64]int {
	t.Helper()
	out := map[int64]int{}
	for i, line := range strings.Split(strings.TrimSpace(readFile(t, name)), "\n") {
		f := strings.Split(line, ",")
		if i == 0 || len(f) != 2 {
			continue
		}
		sec, err1 := strconv.ParseInt(f[0], 10, 64)
		n, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: line %q", name, line)
		}
		out[sec] = n
	}
	return out
}

// TestTimelineLocal plays a timeline of every kind on the local provider:
// nodes scaled from 1 to 3, a task list on every node, and back to 2. The
// hosts added are sampled like the others, the one removed has its samples
// and results fetched when it goes, and the task list ran on all three.
func TestTimelineLocal(t *testing.T) {
	dir, artifacts := localScenario(t)
	writeTestFiles(t, map[string]string{
		filepath.Join(dir, "layers_services.yaml"): `environment:
  job_name: timeline-local
  local: {}
monitoring: {type: dstat, interval: 1}
layers:
- name: edge
  services: [{name: node, roles: [monitoring]}]
`,
		filepath.Join(dir, "workflow.yaml"): `- hosts: edge.*
  launch: [{shell: "echo launched > out.txt"}]
  finalize:
  - fetch: {src: "{{ item }}", dest: "{{ working_dir }}/r/"}
    loop: [out.txt, ran.txt]
`,
		filepath.Join(dir, "timeline.yaml"): `- at: 1s
  scale: {edge.node: 3}
- at: 2s
  run: {hosts: edge.node.*, tasks: [{shell: "echo {{ inventory_hostname }} > ran.txt"}]}
- at: 4s
  scale: {edge.node: 2}
`,
	})
	t.Cleanup(func() { destroy(context.Background(), dir, &strings.Builder{}) })
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Duration: 6 * time.Second, Agent: testAgent, Out: &out}, Release)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	for _, h := range []string{"edge-node-1-1", "edge-node-1-2", "edge-node-1-3"} {
		if got := readFile(t, filepath.Join(runs[0], "r", h, "ran.txt")); got != h+"\n" {
			t.Errorf("%s: the timed task list wrote %q", h, got)
		}
		if got := readFile(t, filepath.Join(runs[0], "r", h, "out.txt")); got != "launched\n" {
			t.Errorf("%s: launch wrote %q", h, got)
		}
		if data := readFile(t, filepath.Join(runs[0], "monitoring-data", h+".csv")); strings.Count(data, "\n") < 2 {
			t.Errorf("%s: monitoring data:\n%s", h, data)
		}
	}
	tl, err := results.ReadTimeline(runs[0])
	if err != nil || len(tl.Changes) != 3 {
		t.Fatalf("timeline.json: %v %+v\n%s", err, tl, out.String())
	}
	for i, want := range []string{"scale", "run", "scale"} {
		if c := tl.Changes[i]; c.Kind != want || c.Status != results.Succeeded {
			t.Errorf("change %d: %s %s %s", i, c.Kind, c.Status, c.Error)
		}
	}
	if ran := tl.Changes[1].Hosts; len(ran) != 3 || ran[0].Did != "ran" {
		t.Errorf("the task list's hosts: %+v", ran)
	}
}
