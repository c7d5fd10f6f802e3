package schema

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// timelineLayers has the services the timelines of these tests scale.
const timelineLayers = `environment: {local: {}}
layers:
- name: cloud
  services: [{name: Sink}]
- name: edge
  services: [{name: Producer, quantity: 2}]
`

// decodeTimeline decodes a timeline and checks its services against
// timelineLayers, as Load does.
func decodeTimeline(t *testing.T, text string) (*Timeline, error) {
	t.Helper()
	ls, err := DecodeLayersServices("ls.yaml", []byte(timelineLayers))
	if err != nil {
		t.Fatal(err)
	}
	var errs Errors
	tl, err := DecodeTimeline("x.yaml", []byte(text))
	errs.Add(err)
	errs.Add(tl.checkServices(ls))
	return tl, errs.Err()
}

// problems lists the text of each problem of err.
func problems(err error) []string {
	var m *Errors
	if !errors.As(err, &m) {
		return nil
	}
	var out []string
	for _, e := range m.Unwrap() {
		out = append(out, e.Error())
	}
	return out
}

func TestDecodeTimeline(t *testing.T) {
	tl, err := decodeTimeline(t, `# the quickstart's steps
- at: 10s
  name: more producers
  scale:
    Edge.Producer: 6
    cloud.sink: 0
- at: 1m30s
  network: {src: fog, dst: edge, rate: 5mbit, loss: 0%}
- at: 20s
  network: {src: edge, dst: fog, delay: 0ms, symmetric: true}
- at: 30s
  run:
    hosts: cloud.*
    tasks:
      - shell: echo hi
- at: 20s
  network: {src: cloud, dst: fog, delay: 5ms}
- at: 0
  scale: {edge.producer: 1}
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Changes) != 6 {
		t.Fatalf("%d changes, want 6 in file order", len(tl.Changes))
	}
	c := tl.Changes[0]
	if c.At != 10*time.Second || c.Name != "more producers" || c.Network != nil || c.Run != nil || len(c.Scale) != 2 {
		t.Errorf("change 0 = %+v", c)
	}
	want := []Scale{{Service: "Edge.Producer", Layer: "edge", Name: "producer", Quantity: 6},
		{Service: "cloud.sink", Layer: "cloud", Name: "sink", Quantity: 0}}
	for i, s := range c.Scale {
		if s.Service != want[i].Service || s.Layer != want[i].Layer || s.Name != want[i].Name || s.Quantity != want[i].Quantity {
			t.Errorf("scale %d = %+v, want %+v", i, s, want[i])
		}
	}
	if p, q := c.Scale[0].Pos, c.Scale[0].At("quantity"); p.String() != "x.yaml:5:5" || q.String() != "x.yaml:5:20" {
		t.Errorf("scale at %v, its quantity at %v; want x.yaml:5:5 and x.yaml:5:20", p, q)
	}
	rate := tl.Changes[1].Network
	if tl.Changes[1].At != 90*time.Second || rate.Src != "fog" || rate.Dst != "edge" || rate.Rate != 5_000_000 || rate.Loss != 0 ||
		!rate.Has("rate") || !rate.Has("loss") || rate.Has("delay") || rate.Has("symmetric") {
		t.Errorf("rate change = %+v", rate)
	}
	if p := rate.At("rate"); p.String() != "x.yaml:8:40" {
		t.Errorf("rate at %v, want x.yaml:8:40", p)
	}
	// A delay of 0 is a change here (the delay goes), not a missing constraint.
	if d := tl.Changes[2].Network; !d.Has("delay") || d.Delay != 0 || !d.Symmetric {
		t.Errorf("delay change = %+v", d)
	}
	r := tl.Changes[3].Run
	if r == nil || r.Hosts != "cloud.*" || len(r.Tasks) != 1 || r.Tasks[0].Module != "shell" || r.Tasks[0].Args["cmd"] != "echo hi" {
		t.Errorf("run = %+v", r)
	}
	if tl.Changes[5].At != 0 || tl.Changes[5].Scale[0].Quantity != 1 {
		t.Errorf("change 5 = %+v", tl.Changes[5])
	}
	if tl, err := DecodeTimeline("x.yaml", []byte("[]\n")); err != nil || len(tl.Changes) != 0 {
		t.Errorf("empty list: %+v, %v", tl, err)
	}
}

// TestTimelineErrors checks every problem of a timeline: the whole list of
// problems, each with its position.
func TestTimelineErrors(t *testing.T) {
	const run = "run: {hosts: a, tasks: [{shell: ls}]}"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"empty file", "", []string{`x.yaml:1:1: empty file, expected a list of changes such as "- at: 10s"`}},
		{"not a list", "at: 10s\n", []string{`x.yaml:1:1: timeline: found a mapping, expected a list of changes such as "- at: 10s"`}},
		{"entry not a mapping", "- 10s\n", []string{`x.yaml:1:3: timeline entry: found "10s", expected a mapping`}},
		{"unknown key", "- {at: 1s, sacle: {edge.producer: 2}}\n",
			[]string{`x.yaml:1:12: timeline entry: unknown key "sacle" (did you mean "scale"?); expected one of: at, name, scale, network, run`}},
		{"duplicate key", "- at: 1s\n  at: 2s\n  " + run + "\n", []string{`x.yaml:2:3: timeline entry: key "at" is already defined at line 1`}},
		{"at missing", "- " + run + "\n", []string{`x.yaml:1:3: timeline entry: missing required key "at"`}},
		{"at without unit", "- {at: 10, " + run + "}\n",
			[]string{`x.yaml:1:8: at: found 10, expected a duration with a unit: ms, s, m or h (such as "10s" or "1m30s")`}},
		{"at not a duration", "- {at: soon, " + run + "}\n",
			[]string{`x.yaml:1:8: at: found "soon", expected a duration with a unit: ms, s, m or h (such as "10s" or "1m30s")`}},
		{"at a list", "- {at: [1s], " + run + "}\n",
			[]string{`x.yaml:1:8: at: found a list, expected a duration with a unit: ms, s, m or h (such as "10s" or "1m30s")`}},
		{"at negative", "- {at: -5s, " + run + "}\n",
			[]string{`x.yaml:1:8: at: found "-5s", a time before the end of launch; expected 0 or more`}},
		{"no change", "- {at: 1s, name: idle}\n", []string{"x.yaml:1:3: timeline entry: no change; expected one of: scale, network, run"}},
		{"two changes", "- {at: 1s, scale: {edge.producer: 2}, " + run + "}\n",
			[]string{"x.yaml:1:39: timeline entry: scale and run are both given; an entry makes one change (write another entry with the same at)"}},

		{"scale not a mapping", "- {at: 1s, scale: [edge.producer]}\n",
			[]string{`x.yaml:1:19: scale: found a list, expected one or more "layer.service: quantity" such as "edge.producer: 6"`}},
		{"scale empty", "- {at: 1s, scale: {}}\n",
			[]string{`x.yaml:1:19: scale: found an empty mapping, expected one or more "layer.service: quantity" such as "edge.producer: 6"`}},
		{"scale no layer", "- {at: 1s, scale: {producer: 2}}\n",
			[]string{`x.yaml:1:20: scale: "producer" is not of the form layer.service (such as "edge.producer")`}},
		{"scale too many dots", "- {at: 1s, scale: {edge.producer.1: 2}}\n",
			[]string{`x.yaml:1:20: scale: "edge.producer.1" is not of the form layer.service (such as "edge.producer")`}},
		{"scale unknown service", "- {at: 1s, scale: {edge.prodcer: 2}}\n",
			[]string{`x.yaml:1:20: scale: "edge.prodcer" names no service of layers_services.yaml (did you mean "edge.Producer"?)`}},
		{"scale unknown layer", "- {at: 1s, scale: {fog.broker: 2}}\n",
			[]string{`x.yaml:1:20: scale: "fog.broker" names no service of layers_services.yaml`}},
		{"quantity float", "- {at: 1s, scale: {edge.producer: 2.5}}\n",
			[]string{"x.yaml:1:35: scale.edge.producer: found 2.5, expected a whole number"}},
		{"quantity text", "- {at: 1s, scale: {edge.producer: many}}\n",
			[]string{`x.yaml:1:35: scale.edge.producer: found "many", expected a whole number`}},
		{"quantity below zero", "- {at: 1s, scale: {edge.producer: -1}}\n",
			[]string{"x.yaml:1:35: scale.edge.producer: found -1, a scale below zero; expected a whole number from 0 to 10000"}},
		{"quantity far below zero", "- {at: 1s, scale: {edge.producer: '-99999999999999999999'}}\n",
			[]string{"x.yaml:1:35: scale.edge.producer: found -99999999999999999999, a scale below zero; expected a whole number from 0 to 10000"}},
		{"quantity above the limit", "- {at: 1s, scale: {edge.producer: 10001}}\n",
			[]string{"x.yaml:1:35: scale.edge.producer: found 10001, expected a whole number from 0 to 10000"}},
		{"one service twice", "- {at: 1s, scale: {edge.producer: 2}}\n- {at: 1000ms, scale: {cloud.sink: 2, EDGE.producer: 3}}\n",
			[]string{"x.yaml:2:39: scale: overlapping changes to one service: EDGE.producer at 1s is already scaled at line 1"}},

		{"network not a mapping", "- {at: 1s, network: fog}\n", []string{`x.yaml:1:21: network link: found "fog", expected a mapping`}},
		{"network src missing", "- {at: 1s, network: {dst: edge, rate: 5mbit}}\n", []string{`x.yaml:1:21: network link: missing required key "src"`}},
		{"network dst missing", "- {at: 1s, network: {src: fog, rate: 5mbit}}\n", []string{`x.yaml:1:21: network link: missing required key "dst"`}},
		{"network nothing to change", "- {at: 1s, network: {src: fog, dst: edge}}\n",
			[]string{"x.yaml:1:21: network link: nothing to change; expected at least one of: delay, rate, loss, symmetric"}},
		{"network typo", "- {at: 1s, network: {src: fog, dst: edge, rat: 5mbit}}\n",
			[]string{`x.yaml:1:43: network link: unknown key "rat" (did you mean "rate"?); expected one of: src, dst, delay, rate, loss, symmetric`}},
		{"network bad delay", "- {at: 1s, network: {src: fog, dst: edge, delay: 50}}\n",
			[]string{`x.yaml:1:50: network.delay: found "50", expected a delay with a unit: us, ms or s (such as "50ms"), at most one hour`}},
		{"network bytes rate", "- {at: 1s, network: {src: fog, dst: edge, rate: 10mbps}}\n",
			[]string{`x.yaml:1:49: network.rate: found "10mbps": tc reads "bps" as bytes per second; write bits, such as "8mbit" for 1 megabyte per second`}},
		{"network bad loss", "- {at: 1s, network: {src: fog, dst: edge, loss: 120%}}\n",
			[]string{`x.yaml:1:49: network.loss: found "120%", expected a percentage from 0% to 100% such as "2%"`}},
		{"network bad symmetric", "- {at: 1s, network: {src: fog, dst: edge, symmetric: maybe}}\n",
			[]string{`x.yaml:1:54: network.symmetric: found "maybe", expected true or false`}},
		{"one link twice", "- {at: 20s, network: {src: fog, dst: edge, rate: 5mbit}}\n- {at: 20s, network: {src: Fog, dst: edge, delay: 5ms}}\n",
			[]string{"x.yaml:2:22: network link: overlapping changes to one link: Fog -> edge at 20s is already changed at line 1"}},
		{"symmetric covers the reverse", "- {at: 20s, network: {src: fog, dst: edge, rate: 5mbit, symmetric: true}}\n" +
			"- {at: 20s, network: {src: edge, dst: fog, delay: 5ms}}\n",
			[]string{"x.yaml:2:22: network link: overlapping changes to one link: edge -> fog at 20s is already changed at line 1"}},
		{"reverse covers the symmetric", "- {at: 20s, network: {src: edge, dst: fog, delay: 5ms}}\n" +
			"- {at: 20s, network: {src: fog, dst: edge, rate: 5mbit, symmetric: true}}\n",
			[]string{"x.yaml:2:22: network link: overlapping changes to one link: edge -> fog at 20s is already changed at line 1"}},

		{"run not a mapping", "- {at: 1s, run: ls}\n", []string{`x.yaml:1:17: run: found "ls", expected a mapping`}},
		{"run hosts missing", "- {at: 1s, run: {tasks: [{shell: ls}]}}\n", []string{`x.yaml:1:17: run: missing required key "hosts"`}},
		{"run tasks missing", "- {at: 1s, run: {hosts: a}}\n", []string{`x.yaml:1:17: run: missing required key "tasks"`}},
		{"run tasks empty", "- {at: 1s, run: {hosts: a, tasks: []}}\n", []string{"x.yaml:1:35: run.tasks: found an empty list, expected a list of tasks"}},
		{"run tasks null", "- {at: 1s, run: {hosts: a, tasks: }}\n", []string{"x.yaml:1:35: run.tasks: found nothing, expected a list of tasks"}},
		{"run tasks not a list", "- {at: 1s, run: {hosts: a, tasks: {shell: ls}}}\n", []string{"x.yaml:1:35: run.tasks: found a mapping, expected a list of tasks"}},
		{"run task invalid", "- at: 1s\n  run:\n    hosts: a\n    tasks:\n    - shel: ls\n", []string{`x.yaml:5:7: task: unknown module or keyword "shel" (did you mean "shell"?)`}},
		{"run typo", "- {at: 1s, run: {host: a, tasks: [{shell: ls}]}}\n", []string{
			`x.yaml:1:17: run: missing required key "hosts"`,
			`x.yaml:1:18: run: unknown key "host" (did you mean "hosts"?); expected one of: hosts, tasks`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeTimeline(t, tt.yaml)
			got := problems(err)
			if len(got) != len(tt.want) {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for i, w := range tt.want {
				// The task decoder's message goes on with every module and keyword.
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("problem %d:\n%s\nwant:\n%s", i, got[i], w)
				}
			}
		})
	}
}

// TestTimelineSameAt: changes to one link or service at different times do
// not overlap, nor do changes to different links at one time.
func TestTimelineSameAt(t *testing.T) {
	_, err := decodeTimeline(t, `- {at: 20s, network: {src: fog, dst: edge, rate: 5mbit}}
- {at: 21s, network: {src: fog, dst: edge, rate: 1mbit}}
- {at: 20s, network: {src: edge, dst: fog, rate: 5mbit}}
- {at: 20s, network: {src: fog, dst: cloud, rate: 5mbit, symmetric: true}}
- {at: 20s, scale: {edge.producer: 2}}
- {at: 30s, scale: {edge.producer: 3}}
- {at: 20s, scale: {cloud.sink: 3}}
`)
	if err != nil {
		t.Error(err)
	}
}

// TestLinkRecordsItsKeys: a link knows which of its fields were written,
// in network.yaml as in a timeline.
func TestLinkRecordsItsKeys(t *testing.T) {
	n, err := DecodeNetwork("n.yaml", []byte("networks:\n- {src: a, dst: b, rate: 1gbit}\n"))
	if err != nil {
		t.Fatal(err)
	}
	l := n.Links[0]
	var has []string
	for _, k := range linkKeys {
		if l.Has(k) {
			has = append(has, k)
		}
	}
	if !slices.Equal(has, []string{"src", "dst", "rate"}) || l.At("rate").String() != "n.yaml:2:26" {
		t.Errorf("keys %v, rate at %v", has, l.At("rate"))
	}
}

func TestLoadTimeline(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(LayersServicesFile, timelineLayers)
	write(WorkflowFile, "- hosts: cloud.*\n  launch: [{shell: ls}]\n")
	sc, err := Load(dir)
	if err != nil || sc.Timeline != nil {
		t.Fatalf("without timeline.yaml: timeline %+v, %v", sc.Timeline, err)
	}

	const timeline = "- {at: 10s, scale: {edge.producer: 6}}\n"
	write(TimelineFile, timeline)
	sc, err = Load(dir)
	if err != nil || sc.Timeline == nil || len(sc.Timeline.Changes) != 1 || string(sc.Files[TimelineFile]) != timeline {
		t.Fatalf("timeline %+v, files %q, %v", sc.Timeline, sc.Files[TimelineFile], err)
	}

	write(TimelineFile, "- {at: 10s, scale: {edge.consumer: 6}}\n")
	_, err = Load(dir)
	want := filepath.Join(dir, TimelineFile) + `:1:21: scale: "edge.consumer" names no service of layers_services.yaml`
	if got := problems(err); len(got) != 1 || got[0] != want {
		t.Errorf("problems %q, want %q", got, want)
	}

	// A layers file with problems names no services to check against:
	// its problems are reported, not one per scaled service.
	write(LayersServicesFile, "environment: {local: {}}\nlayers: [{name: edge, services: [{name: producer, quantity: 0}]}]\n")
	if got := problems(func() error { _, err := Load(dir); return err }()); len(got) != 1 || !strings.Contains(got[0], "service.quantity") {
		t.Errorf("problems %q, want only the layers file's", got)
	}
}

func TestReconfigure(t *testing.T) {
	w, err := DecodeWorkflow("wf.yaml", []byte("- hosts: edge.*\n  launch: [{shell: run}]\n  reconfigure:\n  - shell: reload\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := w.Plays[0].Tasks[Reconfigure]; len(r) != 1 || r[0].Args["cmd"] != "reload" || slices.Contains(Phases, Reconfigure) {
		t.Errorf("reconfigure = %+v; Phases %v must not run it", r, Phases)
	}
	_, err = DecodeWorkflow("wf.yaml", []byte("- hosts: edge.*\n  reconfigre: [{shell: reload}]\n"))
	if err == nil || !strings.Contains(err.Error(), `wf.yaml:2:3: play: unknown key "reconfigre" (did you mean "reconfigure"?)`) {
		t.Errorf("err = %v", err)
	}
}

// TestLinkNotAMapping: an entry that is not a mapping is that one problem,
// in network.yaml as in a timeline, not also every key it lacks.
func TestLinkNotAMapping(t *testing.T) {
	_, err := DecodeNetwork("n.yaml", []byte("networks:\n- fog\n"))
	if got := problems(err); len(got) != 1 || got[0] != `n.yaml:2:3: network link: found "fog", expected a mapping` {
		t.Errorf("problems %q", got)
	}
}
