package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/e2c-dev/e2c/schema"
	"gopkg.in/yaml.v3"
)

// WriteJSON writes the plan as indented JSON (plan.json). encoding/json
// sorts map keys, so equal plans give equal bytes.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(p)
}

// WriteLayersServices writes layers_services-validate.yaml in E2Clab's
// shape: each layer mapped to a list of one-entry maps {key: [addresses]},
// so that users can write host patterns from what they see.
func (p *Plan) WriteLayersServices(w io.Writer) error {
	hostByName := map[string]*Host{}
	for _, h := range p.Hosts {
		hostByName[h.Name] = h
	}
	root := &yaml.Node{Kind: yaml.MappingNode}
	var layer *yaml.Node
	last := ""
	for _, s := range p.Services {
		name, _, _ := strings.Cut(s.Key, ".")
		if name != last {
			layer = &yaml.Node{Kind: yaml.SequenceNode}
			root.Content = append(root.Content, scalar(name), layer)
			last = name
		}
		addrs := &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{scalar(hostByName[s.Host].Address)}}
		layer.Content = append(layer.Content, &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{scalar(s.Key), addrs}})
	}
	fmt.Fprintln(w, "# Service keys and the hosts they run on. Write host patterns (hosts,")
	fmt.Fprintln(w, "# service_selector, src, dst) from the keys below, e.g. cloud.flink.*.job_manager.")
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return err
	}
	return enc.Close()
}

func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }

// WriteWorkflow writes workflow-validate.out: for each phase (or only
// phase, when given) and play, in running order, the variables, the hosts,
// each host's rendered tasks, and under RETURN what result says of the play.
func (p *Plan) WriteWorkflow(w io.Writer, phase schema.Phase, result func(play int) string) error {
	for _, ph := range allPhases {
		if phase != "" && ph != phase {
			continue
		}
		for _, play := range p.Plays {
			runs := play.Phases[ph]
			if len(runs) == 0 {
				continue
			}
			fmt.Fprintf(w, "---\nTASK: %s\n", strings.ToUpper(string(ph)))
			fmt.Fprintf(w, "PLAY: %d hosts: %s (%s)\n", play.Index+1, play.Pattern, play.Pos)
			fmt.Fprintf(w, "EXTRA_VARS: %s\n", oneLine(p.ExtraVars[ph]))
			fmt.Fprintf(w, "HOSTS: %s\n", strings.Join(play.Hosts, " "))
			for _, r := range runs {
				fmt.Fprintf(w, "  %s:\n", r.Host)
				writeTasks(w, r.Tasks, "    ")
			}
			if _, err := fmt.Fprintf(w, "RETURN: %s\n", result(play.Index)); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeTasks writes one line per task, per loop item, and a block's
// tasks indented below it.
func writeTasks(w io.Writer, tasks []*Task, indent string) {
	for _, t := range tasks {
		switch {
		case t.IsBlock():
			fmt.Fprintf(w, "%s- block: %s\n", indent, t.Name)
			writeTasks(w, t.Block, indent+"    ")
			for _, part := range []struct {
				name  string
				tasks []*Task
			}{{"rescue", t.Rescue}, {"always", t.Always}} {
				if len(part.tasks) > 0 {
					fmt.Fprintf(w, "%s  %s:\n", indent, part.name)
					writeTasks(w, part.tasks, indent+"    ")
				}
			}
		case t.Loop != nil && !t.Deferred:
			if len(t.Items) == 0 {
				fmt.Fprintf(w, "%s- %s: no items\n", indent, t.Module)
			}
			writeTasks(w, t.Items, indent)
		default:
			fmt.Fprintf(w, "%s- %s\n", indent, describeTask(t))
		}
	}
}

func describeTask(t *Task) string {
	var b strings.Builder
	if cmd, ok := t.Args["cmd"].(string); ok && len(t.Args) == 1 {
		fmt.Fprintf(&b, "%s: %s", t.Module, cmd)
	} else {
		fmt.Fprintf(&b, "%s: %s", t.Module, oneLine(t.Args))
	}
	if t.Item != nil {
		fmt.Fprintf(&b, "  [item=%v]", oneLine(t.Item))
	}
	if t.Async > 0 {
		fmt.Fprintf(&b, "  [async=%d poll=%d]", t.Async, t.Poll)
	}
	if t.DelegateTo != "" {
		fmt.Fprintf(&b, "  [delegate_to=%s]", t.DelegateTo)
	}
	if t.RunOnce {
		b.WriteString("  [run_once]")
	}
	if t.NoLog {
		b.WriteString("  [no_log]")
	}
	if len(t.Until) > 0 {
		fmt.Fprintf(&b, "  [until=%s retries=%d delay=%d]", strings.Join(t.Until, " and "), t.Retries, t.Delay)
	}
	if t.Skipped {
		b.WriteString("  [skipped: its when is false]")
	}
	if t.Deferred {
		b.WriteString("  [rendered at run time: reads a registered variable]")
	}
	return b.String()
}

func oneLine(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}

// WriteContainers writes what the services step starts: one line per
// container that is the same on several hosts (name, image, ports,
// readiness), with how many hosts and the first of them.
func (p *Plan) WriteContainers(w io.Writer) error {
	type group struct {
		line  string
		hosts []string
	}
	var groups []*group
	byLine := map[string]*group{}
	for _, h := range p.Hosts {
		for _, c := range h.Containers {
			line := c.Summary()
			g := byLine[line]
			if g == nil {
				g = &group{line: line}
				byLine[line] = g
				groups = append(groups, g)
			}
			g.hosts = append(g.hosts, h.Name)
		}
	}
	for _, g := range groups {
		hosts := strings.Join(g.hosts[:min(len(g.hosts), 3)], " ")
		if len(g.hosts) > 3 {
			hosts += fmt.Sprintf(" ... (%d hosts)", len(g.hosts))
		}
		if _, err := fmt.Fprintf(w, "  %s  on %s\n", g.line, hosts); err != nil {
			return err
		}
	}
	return nil
}

// Summary says in one line what a container is: its name, image (or
// archive), network, ports and readiness check.
func (c *Container) Summary() string {
	var b strings.Builder
	image := c.Image
	if image == "" {
		image = "archive " + c.Archive
	}
	fmt.Fprintf(&b, "%s: %s, network %s", c.Name, image, c.NetworkMode)
	if len(c.Ports) > 0 {
		ports := make([]string, len(c.Ports))
		for i, p := range c.Ports {
			ports[i] = fmt.Sprintf("%d/%s", p.Host, p.Protocol)
			if p.Host != p.Container {
				ports[i] = fmt.Sprintf("%d:%d/%s", p.Host, p.Container, p.Protocol)
			}
		}
		fmt.Fprintf(&b, ", ports %s", strings.Join(ports, " "))
	}
	switch r := c.Readiness; {
	case r.Port != 0:
		fmt.Fprintf(&b, ", ready when port %d answers within %s", r.Port, r.Timeout)
	case len(r.Command) > 0:
		fmt.Fprintf(&b, ", ready when %q exits 0 within %s", strings.Join(r.Command, " "), r.Timeout)
	default:
		fmt.Fprintf(&b, ", ready when running within %s", r.Timeout)
	}
	return b.String()
}
