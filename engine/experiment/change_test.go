package experiment

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// apply is e2c apply (or scale, with e.Scale) on a kept experiment.
func apply(ctx context.Context, scenario string, out *strings.Builder, e Edit) ([]string, error) {
	var lines []string
	err := stepCommand(ctx, scenario, out, "", func(x *Session) error {
		d, err := x.Apply(ctx, e)
		if d != nil {
			lines = d.Lines()
		}
		return err
	})
	return lines, err
}

// scaledWorkflow has edge nodes that fetch their results in finalize, and
// a fog gateway whose tasks count the nodes (asarray): a change of their
// number changes its rendered tasks, which its reconfigure redoes.
const scaledWorkflow = `
- hosts: edge.node.*
  depends_on: {service_selector: "fog.gw.*", grouping: round_robin, prefix: gw}
  prepare:
  - shell: echo {{ inventory_hostname }} > /opt/id
  launch:
  - shell: echo launched >> /opt/id
  finalize:
  - fetch: {src: /opt/id, dest: "{{ working_dir }}/r/"}
- hosts: fog.gw.*
  depends_on: {service_selector: "edge.node.*", grouping: asarray, prefix: nodes}
  launch:
  - shell: echo {{ nodes | length }} > /opt/count
  reconfigure:
  - shell: echo {{ nodes | length }} > /opt/count
  finalize:
  - fetch: {src: /opt/count, dest: "{{ working_dir }}/r/"}
`

// TestApplyScale scales the edge nodes of a kept experiment on emulated
// hosts down from 4 to 2 and up to 3: the removed hosts run finalize (their
// results in the run folder) and are released, the new one is prepared
// and launched, the gateway's reconfigure counts the nodes again, and
// timeline.json records both changes, host by host. An unchanged scale
// then opens no connection to any host.
func TestApplyScale(t *testing.T) {
	dir, artifacts := scenario(t, "10.241.1.0/24", `layers:
- name: fog
  services: [{name: gw}]
- name: edge
  services: [{name: node, quantity: 4}]
`, scaledWorkflow)
	ctx := context.Background()
	var out strings.Builder
	runs, err := deploy(ctx, Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: &out}, Keep)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	run := runs[0]
	if got := readFile(t, filepath.Join(run, "r", "fog-gw-1-1", "opt", "count")); got != "4\n" {
		t.Fatalf("the gateway counted %q nodes", got)
	}

	lines, err := apply(ctx, dir, &out, Edit{Scale: map[string]int{"edge.node": 2}, DryRun: true})
	if err != nil || !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "- host edge-node-1-4") }) {
		t.Fatalf("scale --dry-run: %v\n%s", err, strings.Join(lines, "\n"))
	}
	if st, _ := LoadState(dir); len(st.Reservations["netns"].Hosts[1]) != 4 {
		t.Fatal("the dry run changed the reservation")
	}
	os.RemoveAll(filepath.Join(run, "r")) // what the deploy's finalize fetched

	out.Reset()
	if _, err := apply(ctx, dir, &out, Edit{Scale: map[string]int{"edge.node": 2}}); err != nil {
		t.Fatalf("scale edge.node=2: %v\n%s", err, out.String())
	}
	for _, h := range []string{"edge-node-1-3", "edge-node-1-4"} {
		if got := readFile(t, filepath.Join(run, "r", h, "opt", "id")); got != h+"\nlaunched\n" {
			t.Errorf("the removed %s's results: %q", h, got)
		}
	}
	if _, err := os.Stat(filepath.Join(run, "r", "edge-node-1-1")); err == nil {
		t.Error("a kept host was finalized")
	}
	st, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(st.Reservations["netns"].Hosts[1]); n != 2 {
		t.Errorf("the reservation holds %d edge nodes after scale edge.node=2", n)
	}

	out.Reset()
	if _, err := apply(ctx, dir, &out, Edit{Scale: map[string]int{"edge.node": 3}}); err != nil {
		t.Fatalf("scale edge.node=3: %v\n%s", err, out.String())
	}
	st, _ = LoadState(dir)
	added := st.Reservations["netns"].Hosts[1][2].Name
	if slices.Contains([]string{"edge-node-1-1", "edge-node-1-2", "edge-node-1-3", "edge-node-1-4"}, added) {
		t.Errorf("the new host took the name %s of a host the experiment had", added)
	}

	// Nothing changed: nothing is run, and no host is even connected to.
	out.Reset()
	var conns int
	err = stepCommand(ctx, dir, &out, "", func(x *Session) error {
		d, err := x.Apply(ctx, Edit{Scale: map[string]int{"edge.node": 3}})
		if err == nil && !d.Empty() {
			t.Errorf("the same scale again: %v", d.Lines())
		}
		conns = sshConnections(t, "10.241.1.")
		return err
	})
	if err != nil || conns != 0 || !strings.Contains(out.String(), "nothing to change") {
		t.Errorf("unchanged scale: %v, %d SSH connections open\n%s", err, conns, out.String())
	}

	// The step commands go on with the quantities scale set.
	out.Reset()
	if err := finalize(ctx, dir, "", false, &out); err != nil {
		t.Fatalf("finalize after scale: %v\n%s", err, out.String())
	}
	if got := readFile(t, filepath.Join(run, "r", "fog-gw-1-1", "opt", "count")); got != "3\n" {
		t.Errorf("after reconfigure the gateway counted %q nodes", got)
	}
	if got := readFile(t, filepath.Join(run, "r", added, "opt", "id")); got != added+"\nlaunched\n" {
		t.Errorf("the new host %s was not prepared and launched: %q", added, got)
	}

	tl, err := results.ReadTimeline(run)
	if err != nil || len(tl.Changes) != 2 {
		t.Fatalf("timeline.json: %v, %+v", err, tl)
	}
	did := func(c *results.Change) []string {
		var out []string
		for _, h := range c.Hosts {
			out = append(out, h.Did+" "+h.Host+h.Error)
		}
		slices.Sort(out)
		return out
	}
	want := [][]string{
		{"reconfigured fog-gw-1-1", "removed edge-node-1-3", "removed edge-node-1-4"},
		{"added " + added, "reconfigured fog-gw-1-1"},
	}
	for i, c := range tl.Changes {
		if c.Source != "e2c scale" || c.Status != results.Succeeded || c.End == nil || len(c.Diff) == 0 || !slices.Equal(did(c), want[i]) {
			t.Errorf("change %d: %s %s %v, did %v, want %v", i, c.Source, c.Status, c.Diff, did(c), want[i])
		}
	}
}

// sshConnections counts this machine's open SSH connections to addresses
// starting with prefix.
func sshConnections(t *testing.T, prefix string) int {
	t.Helper()
	out, err := exec.Command("ss", "-Htn", "state", "established", "( dport = :22 )").Output()
	if err != nil {
		t.Skipf("ss: %v", err)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 4 && strings.HasPrefix(f[3], prefix) {
			n++
		}
	}
	return n
}

// TestApplyRefused: what cannot be changed is refused before anything is.
func TestApplyRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"below zero", []string{"edge.node=-1"}, "below zero"},
		{"no quantity", []string{"edge.node"}, "expected layer.service=N"},
		{"not a number", []string{"edge.node=many"}, "not a whole number"},
		{"no layer", []string{"node=2"}, "expected layer.service=N"},
	} {
		if _, err := ParseScale(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	ls := &schema.LayersServices{Layers: []schema.Layer{{Name: "Edge", Services: []schema.Service{{Name: "node"}}}}}
	if err := checkScale(ls, map[string]int{"edge.nod": 2}); err == nil || !strings.Contains(err.Error(), `"edge.node"`) {
		t.Errorf("an unknown service: %v", err)
	}
	if err := checkScale(ls, map[string]int{"edge.node": 2}); err != nil {
		t.Errorf("a known service: %v", err)
	}

	dir := t.TempDir()
	var out strings.Builder
	if _, err := apply(context.Background(), dir, &out, Edit{Scale: map[string]int{"edge.node": 2}}); err == nil || !strings.Contains(err.Error(), "no kept experiment") {
		t.Errorf("scale with no kept experiment: %v", err)
	}
}

// TestEdited: a copy of the scenario with quantities and links changed,
// the scenario itself untouched.
func TestEdited(t *testing.T) {
	dir := t.TempDir()
	writeTestFiles(t, map[string]string{
		filepath.Join(dir, schema.LayersServicesFile): `environment: {local: {}}
layers:
- name: edge
  services: [{name: node, quantity: 2, repeat: 1}]
- name: fog
  services: [{name: gw}]
`,
		filepath.Join(dir, schema.NetworkFile):  "networks:\n- {src: edge, dst: fog, delay: 10ms, rate: 10mbit}\n",
		filepath.Join(dir, schema.WorkflowFile): "- hosts: all\n  prepare: [{shell: 'true'}]\n",
	})
	sc, err := schema.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	change, err := schema.DecodeTimeline("timeline.yaml", []byte("- at: 1s\n  network: {src: edge, dst: fog, rate: 1mbit}\n- at: 2s\n  network: {src: fog, dst: cloud, loss: 1%}\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := edited(sc, map[string]int{"edge.node": 5}, []schema.Link{*change.Changes[0].Network, *change.Changes[1].Network})
	if q := c.LayersServices.Layers[0].Services[0].Quantity; q != 5 {
		t.Errorf("edited quantity %d", q)
	}
	if q := sc.LayersServices.Layers[0].Services[0].Quantity; q != 2 {
		t.Errorf("the scenario's own quantity became %d", q)
	}
	if l := c.Network.Links[0]; l.Rate != schema.Rate(1e6) || l.Delay.Milliseconds() != 10 {
		t.Errorf("edited link: rate %s delay %s (the delay is kept, the rate set)", l.Rate, l.Delay)
	}
	if len(c.Network.Links) != 2 || c.Network.Links[1].Loss != 1 || len(sc.Network.Links) != 1 || sc.Network.Links[0].Rate != schema.Rate(1e7) {
		t.Errorf("links: edited %+v, scenario %+v", c.Network.Links, sc.Network.Links)
	}
}

// TestCheckTimeline: validate plans a timeline's changes as the run will
// make them, and a deploy refuses one past its wait, each at the entry.
func TestCheckTimeline(t *testing.T) {
	dir := t.TempDir()
	writeTestFiles(t, map[string]string{
		filepath.Join(dir, schema.LayersServicesFile): `environment:
  local: {}
  static: {hosts: [{address: 10.0.0.1}, {address: 10.0.0.2}]}
layers:
- name: edge
  services: [{name: node, environment: static}]
`,
		filepath.Join(dir, schema.WorkflowFile): "- hosts: edge.*\n  launch: [{shell: 'true'}]\n",
		filepath.Join(dir, schema.TimelineFile): `- at: 5s
  run: {hosts: cloud.*, tasks: [{shell: 'true'}]}
- at: 20s
  scale: {edge.node: 3}
`,
	})
	_, err := Check(Options{ScenarioDir: dir}, "RUN_DIR")
	tl := filepath.Join(dir, schema.TimelineFile)
	for _, want := range []string{tl + ":1:3: timeline: after this change at 5s the scenario cannot be planned: ", tl + ":3:3: timeline: after this change at 20s: "} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate: %v\nwant %q", err, want)
		}
	}
	sc, lerr := schema.Load(dir)
	if lerr != nil {
		t.Fatal(lerr)
	}
	if err := checkTimeline(sc.Timeline, 10*time.Second); err == nil || !strings.Contains(err.Error(), tl+":3:7: timeline: at 20s is not within the run's wait (--duration 10s)") {
		t.Errorf("a change past the wait: %v", err)
	}
	if err := checkTimeline(sc.Timeline, time.Minute); err != nil {
		t.Errorf("within the wait: %v", err)
	}
}

// TestHandToRun scales the edge nodes of a deploy during its run's wait:
// e2c scale, refused the scenario's lock, hands the change to the deploy,
// which makes it and answers with the difference; the run's finalize then
// has the new host.
func TestHandToRun(t *testing.T) {
	dir, artifacts := scenario(t, "10.241.3.0/24", `layers:
- name: fog
  services: [{name: gw}]
- name: edge
  services: [{name: node, quantity: 2}]
`, scaledWorkflow)
	ctx := context.Background()
	if _, err := HandToRun(ctx, Options{ScenarioDir: dir}, Edit{Scale: map[string]int{"edge.node": 3}}); err == nil || !strings.Contains(err.Error(), "not waiting") {
		t.Errorf("handed with no run waiting: %v", err)
	}
	var out strings.Builder
	done := make(chan error, 1)
	var runs []string
	go func() {
		var err error
		runs, err = deploy(ctx, Options{ScenarioDir: dir, ArtifactsDir: artifacts, Duration: 8 * time.Second, Out: &syncBuilder{b: &out}}, Release)
		done <- err
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := LoadState(dir)
		if err == nil && st.LastRun != "" && waiting(st.LastRun) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run never waited")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := Open(Options{ScenarioDir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("open during the deploy: %v", err)
	}
	var answer strings.Builder
	lines, err := HandToRun(ctx, Options{ScenarioDir: dir, Out: &answer}, Edit{Scale: map[string]int{"edge.node": 3}})
	if err != nil || !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "+ host ") }) {
		t.Errorf("handed scale: %v\n%s", err, answer.String())
	}
	if err := <-done; err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	ids, _ := filepath.Glob(filepath.Join(runs[0], "r", "edge-node-*", "opt", "id"))
	if got := readFile(t, filepath.Join(runs[0], "r", "fog-gw-1-1", "opt", "count")); len(ids) != 3 || got != "3\n" {
		t.Errorf("finalize fetched %d nodes' results, the gateway counted %q", len(ids), got)
	}
	tl, err := results.ReadTimeline(runs[0])
	if err != nil || len(tl.Changes) != 1 || tl.Changes[0].Source != "e2c scale (during the wait)" || tl.Changes[0].Status != results.Succeeded {
		t.Errorf("timeline.json: %v %+v", err, tl)
	}
}

// syncBuilder is a strings.Builder written by several goroutines.
type syncBuilder struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// TestApplyPartialFailure: a change that fails on one host leaves the
// others changed, and timeline.json says which host failed and why.
func TestApplyPartialFailure(t *testing.T) {
	dir, artifacts := t.TempDir(), t.TempDir()
	writeTestFiles(t, map[string]string{
		filepath.Join(dir, schema.LayersServicesFile): "environment: {local: {}}\nlayers:\n- name: edge\n  services: [{name: node}]\n",
		filepath.Join(dir, schema.WorkflowFile): `
- hosts: all
  launch:
  - shell: test "{{ inventory_hostname }}" != edge-node-1-3 && echo launched > out.txt
  finalize:
  - fetch: {src: out.txt, dest: "{{ working_dir }}/r/"}
`,
		filepath.Join(artifacts, "a.txt"): "a",
	})
	t.Cleanup(func() { destroy(context.Background(), dir, &strings.Builder{}) })
	ctx := context.Background()
	var out strings.Builder
	runs, err := deploy(ctx, Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: &out}, Keep)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	if _, err := apply(ctx, dir, &out, Edit{Scale: map[string]int{"edge.node": 3}}); err == nil || !strings.Contains(err.Error(), "edge-node-1-3") {
		t.Errorf("scale with a host failing: %v", err)
	}
	tl, err := results.ReadTimeline(runs[0])
	if err != nil || len(tl.Changes) != 1 {
		t.Fatalf("timeline.json: %v %+v", err, tl)
	}
	c := tl.Changes[0]
	errs := map[string]string{}
	for _, h := range c.Hosts {
		errs[h.Did+" "+h.Host] = h.Error
	}
	if c.Status != results.Failed || len(errs) != 2 || errs["added edge-node-1-2"] != "" || !strings.Contains(errs["added edge-node-1-3"], "launch") {
		t.Errorf("change: %s, hosts %v", c.Status, errs)
	}
	st, _ := LoadState(dir)
	if n := len(st.Reservations["local"].Hosts[0]); n != 3 {
		t.Errorf("the reservation holds %d nodes; the failed host stays, for finalize and destroy", n)
	}
}
