package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/e2c-dev/e2c/engine/experiment"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/schema"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"
)

func newValidate() *cobra.Command {
	var (
		appConf []string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "validate [SCENARIO_DIR]",
		Short: "Check a scenario and show its services, without touching a machine",
		Long: `Checks every file of the scenario — schema, host patterns, depends_on
groupings, templates, network parameters — and prints every problem with its
file:line:column. A valid scenario is summarised as tables of services and plays.`,
		Example: "  e2c validate examples/quickstart\n  e2c validate my-scenario --app-conf fast,slow --json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := dirArg(args, 0, "E2C_SCENARIO_DIR")
			if err != nil {
				return err
			}
			c, err := experiment.Check(experiment.Options{ScenarioDir: dir, ArtifactsDir: "ARTIFACTS_DIR", AppConfs: appConf}, "RUN_DIR")
			if asJSON {
				o := overview{Problems: problems(err)}
				if err == nil {
					o = overviewOf(c.Plan)
				}
				return errors.Join(writeJSON(cmd.OutOrStdout(), o), err)
			}
			if err != nil {
				return err
			}
			return overviewOf(c.Plan).render(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringSliceVar(&appConf, "app-conf", nil, "check under these workflow_env.yaml configurations (default: every one it defines)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the services, plays and links, or the problems, as JSON")
	return cmd
}

func newTable(w io.Writer) *tablewriter.Table {
	return tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
	)
}

// overview is what validate shows of a valid scenario's plan, or the
// problems of an invalid one.
type overview struct {
	Valid       bool         `json:"valid"`
	Problems    []problem    `json:"problems,omitempty"`
	Services    []serviceRow `json:"services"`
	Plays       []playRow    `json:"plays"`
	Links       []linkRow    `json:"links"`
	Hosts       int          `json:"hosts"`
	Keys        int          `json:"service_keys"`
	Constraints int          `json:"constraints"` // host-to-host, once the links are merged
}

// problem is one problem of a scenario, at its place when it has one.
type problem struct {
	Pos     *schema.Pos `json:"pos,omitempty"`
	Message string      `json:"message"`
}

// serviceRow is a service: its instance groups and service keys.
type serviceRow struct {
	Layer     string `json:"layer"`
	Service   string `json:"service"`
	Instances int    `json:"instances"`
	Hosts     int    `json:"hosts"`
	Keys      int    `json:"keys"`
	FirstKey  string `json:"first_key"`
	LastKey   string `json:"last_key"`
	last      string // the instance of LastKey
}

// playRow is a play of workflow.yaml, with the tasks of each phase.
type playRow struct {
	Play      int            `json:"play"` // from 1
	Hosts     string         `json:"hosts"`
	Matched   int            `json:"matched"`
	DependsOn []string       `json:"depends_on"`
	Phases    map[string]int `json:"phases"`
}

// linkRow is a link of network.yaml and the constraints it owns once merged.
type linkRow struct {
	Pos         string  `json:"pos"`
	Src         string  `json:"src"`
	SrcHosts    int     `json:"src_hosts"`
	Dst         string  `json:"dst"`
	DstHosts    int     `json:"dst_hosts"`
	Delay       string  `json:"delay,omitempty"`
	Rate        string  `json:"rate,omitempty"`
	Loss        float64 `json:"loss_percent,omitempty"`
	Symmetric   bool    `json:"symmetric"`
	Constraints int     `json:"constraints"`
}

// problems lists the problems err holds.
func problems(err error) []problem {
	var list []error
	var m *schema.Errors
	switch {
	case err == nil:
	case errors.As(err, &m):
		list = m.Unwrap()
	default:
		list = []error{err}
	}
	var out []problem
	for _, e := range list {
		if se, ok := e.(*schema.Error); ok && se.Pos != (schema.Pos{}) {
			out = append(out, problem{&se.Pos, se.Msg})
		} else {
			out = append(out, problem{Message: e.Error()})
		}
	}
	return out
}

func overviewOf(p *plan.Plan) overview {
	o := overview{Valid: true, Hosts: len(p.Hosts), Keys: len(p.Services), Constraints: len(p.Constraints),
		Services: []serviceRow{}, Plays: []playRow{}, Links: []linkRow{}}
	byService := map[string]int{}
	hostsOf := map[string]int{}
	for _, h := range p.Hosts {
		hostsOf[h.Instance]++
	}
	for _, s := range p.Services {
		parts := strings.SplitN(s.Key, ".", 4)
		id := parts[0] + "." + parts[1]
		i, ok := byService[id]
		if !ok {
			i = len(o.Services)
			byService[id] = i
			o.Services = append(o.Services, serviceRow{Layer: parts[0], Service: parts[1], FirstKey: s.Key})
		}
		r := &o.Services[i]
		if inst := strings.Join(parts[:3], "."); r.last != inst {
			r.last = inst
			r.Instances++
			r.Hosts += hostsOf[inst]
		}
		r.Keys++
		r.LastKey = s.Key
	}
	for _, pl := range p.Plays {
		r := playRow{Play: pl.Index + 1, Hosts: pl.Pattern, Matched: len(pl.Hosts), DependsOn: []string{}, Phases: map[string]int{}}
		for _, d := range pl.DependsOn {
			r.DependsOn = append(r.DependsOn, fmt.Sprintf("%s: %s of %d", d.Prefix, d.Grouping, len(d.Services)))
		}
		for _, ph := range schema.Phases {
			if runs := pl.Phases[ph]; len(runs) > 0 {
				r.Phases[string(ph)] = len(runs[0].Tasks)
			}
		}
		o.Plays = append(o.Plays, r)
	}
	owned := map[int]int{}
	for _, c := range p.Constraints {
		owned[c.Entry]++
	}
	for i, l := range p.Network {
		o.Links = append(o.Links, linkRow{Pos: l.Pos, Src: l.Src, SrcHosts: len(l.SrcHosts), Dst: l.Dst, DstHosts: len(l.DstHosts),
			Delay: l.Delay, Rate: l.Rate, Loss: l.Loss, Symmetric: l.Symmetric, Constraints: owned[i]})
	}
	return o
}

// render prints the services (one row per service), plays and links.
func (o overview) render(w io.Writer) error {
	t := newTable(w)
	t.Header("layer", "service", "instances", "hosts", "keys")
	for _, r := range o.Services {
		keys := r.FirstKey
		if r.Keys > 1 {
			keys = fmt.Sprintf("%s ... %s (%d)", r.FirstKey, r.LastKey, r.Keys)
		}
		if err := t.Append(r.Layer, r.Service, strconv.Itoa(r.Instances), strconv.Itoa(r.Hosts), keys); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	t = newTable(w)
	t.Header("play", "hosts", "matched", "depends_on", "phases")
	for _, pl := range o.Plays {
		var phases []string
		for _, ph := range schema.Phases {
			if n, ok := pl.Phases[string(ph)]; ok {
				phases = append(phases, fmt.Sprintf("%s(%d)", ph, n))
			}
		}
		if err := t.Append(strconv.Itoa(pl.Play), pl.Hosts, strconv.Itoa(pl.Matched), strings.Join(pl.DependsOn, ", "), strings.Join(phases, " ")); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	if len(o.Links) > 0 {
		t = newTable(w)
		t.Header("link", "src", "dst", "shape", "symmetric", "constraints")
		for _, l := range o.Links {
			shape := strings.Join(slices.DeleteFunc([]string{l.Delay, l.Rate, lossText(l.Loss)}, func(s string) bool { return s == "" }), " ")
			if err := t.Append(l.Pos, fmt.Sprintf("%s (%d)", l.Src, l.SrcHosts), fmt.Sprintf("%s (%d)", l.Dst, l.DstHosts),
				shape, strconv.FormatBool(l.Symmetric), strconv.Itoa(l.Constraints)); err != nil {
				return err
			}
		}
		if err := t.Render(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "valid: %d hosts, %d service keys, %d plays, %d network links (%d host-to-host constraints)\n",
		o.Hosts, o.Keys, len(o.Plays), len(o.Links), o.Constraints)
	return nil
}

func lossText(loss float64) string {
	if loss == 0 {
		return ""
	}
	return strconv.FormatFloat(loss, 'f', -1, 64) + "%"
}
