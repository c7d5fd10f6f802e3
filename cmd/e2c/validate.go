package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/e2c-dev/e2c/engine/experiment"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/servicedef"
	"github.com/e2c-dev/e2c/schema"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"
)

func newValidate() *cobra.Command {
	var appConf []string
	cmd := &cobra.Command{
		Use:   "validate SCENARIO_DIR",
		Short: "Check a scenario and show its services, without touching a machine",
		Long: `Checks every file of the scenario — schema, host patterns, depends_on
groupings, templates, network parameters — and prints every problem with its
file:line:column. A valid scenario is summarised as tables of services and plays.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := dirArg(args, 0, "E2C_SCENARIO_DIR")
			if err != nil {
				return err
			}
			p, err := dryPlans(dir, plan.Options{ScenarioDir: dir, ArtifactsDir: "ARTIFACTS_DIR", RunDir: "RUN_DIR", RepeatCount: 1}, appConf, experiment.Options{})
			if err != nil {
				return err
			}
			return summarize(cmd.OutOrStdout(), p)
		},
	}
	cmd.Flags().StringSliceVar(&appConf, "app-conf", nil, "check under these workflow_env.yaml configurations (default: every one it defines)")
	return cmd
}

// dryPlans checks a scenario under every application configuration asked
// for, or every one workflow_env.yaml defines, and returns the plan of the
// first.
func dryPlans(dir string, opt plan.Options, confs []string, o experiment.Options) (*plan.Plan, error) {
	if len(confs) == 0 {
		if sc, err := schema.Load(dir); err == nil {
			confs = slices.Sorted(maps.Keys(sc.WorkflowEnv))
		}
	}
	if len(confs) == 0 {
		return dryPlan(dir, opt, o)
	}
	var first *plan.Plan
	var errs schema.Errors
	for _, c := range confs {
		opt.AppConf = c
		p, err := dryPlan(dir, opt, o)
		errs.Add(err)
		if first == nil {
			first = p
		}
	}
	return first, errs.Err()
}

// dryPlan loads a scenario and plans it on synthetic machines, which is
// how every check that needs hosts runs before anything is reserved. Problems
// of both stages are reported together; the plan is only attempted on a
// sound layers_services.yaml, since every pattern is resolved against it.
func dryPlan(dir string, opt plan.Options, o experiment.Options) (*plan.Plan, error) {
	sc, loadErr := schema.Load(dir)
	var errs schema.Errors
	errs.Add(loadErr)
	if inFile(loadErr, filepath.Join(dir, schema.LayersServicesFile)) {
		return nil, errs.Err()
	}
	_, err := experiment.Check(sc, o.Testbed, o.Network)
	errs.Add(err)
	p, err := plan.Build(sc, servicedef.New(sc.ServiceDefs), plan.Synthetic(plan.Expand(sc.LayersServices)), opt)
	errs.Add(err)
	if errs.Len() > 0 {
		return nil, errs.Err()
	}
	return p, nil
}

// inFile reports whether err holds a problem in file.
func inFile(err error, file string) bool {
	var m *schema.Errors
	if !errors.As(err, &m) {
		return false
	}
	for _, e := range m.Unwrap() {
		if se, ok := e.(*schema.Error); ok && se.Pos.File == file {
			return true
		}
	}
	return false
}

func newTable(w io.Writer) *tablewriter.Table {
	return tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
	)
}

// summarize prints the services (one row per instance group) and plays.
func summarize(w io.Writer, p *plan.Plan) error {
	type row struct {
		layer, service string
		instances      []string
		hosts, keys    int
		firstKey, last string
	}
	var rows []*row
	byService := map[string]*row{}
	hostsOf := map[string]int{}
	for _, h := range p.Hosts {
		hostsOf[h.Instance]++
	}
	for _, s := range p.Services {
		parts := strings.SplitN(s.Key, ".", 4)
		id := parts[0] + "." + parts[1]
		r := byService[id]
		if r == nil {
			r = &row{layer: parts[0], service: parts[1], firstKey: s.Key}
			byService[id] = r
			rows = append(rows, r)
		}
		inst := strings.Join(parts[:3], ".")
		if len(r.instances) == 0 || r.instances[len(r.instances)-1] != inst {
			r.instances = append(r.instances, inst)
			r.hosts += hostsOf[inst]
		}
		r.keys++
		r.last = s.Key
	}
	t := newTable(w)
	t.Header("layer", "service", "instances", "hosts", "keys")
	for _, r := range rows {
		keys := r.firstKey
		if r.keys > 1 {
			keys = fmt.Sprintf("%s ... %s (%d)", r.firstKey, r.last, r.keys)
		}
		if err := t.Append(r.layer, r.service, strconv.Itoa(len(r.instances)), strconv.Itoa(r.hosts), keys); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	t = newTable(w)
	t.Header("play", "hosts", "matched", "depends_on", "phases")
	for _, pl := range p.Plays {
		var phases []string
		for _, ph := range schema.Phases {
			if runs := pl.Phases[ph]; len(runs) > 0 {
				phases = append(phases, fmt.Sprintf("%s(%d)", ph, len(runs[0].Tasks)))
			}
		}
		if err := t.Append(strconv.Itoa(pl.Index+1), pl.Pattern, strconv.Itoa(len(pl.Hosts)), dependsSummary(pl), strings.Join(phases, " ")); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	if len(p.Network) > 0 {
		// What each link becomes once merged: the constraints it owns.
		owned := map[int]int{}
		for _, c := range p.Constraints {
			owned[c.Entry]++
		}
		t = newTable(w)
		t.Header("link", "src", "dst", "shape", "symmetric", "constraints")
		for i, l := range p.Network {
			shape := strings.Join(slices.DeleteFunc([]string{l.Delay, l.Rate, lossText(l.Loss)}, func(s string) bool { return s == "" }), " ")
			if err := t.Append(l.Pos, fmt.Sprintf("%s (%d)", l.Src, len(l.SrcHosts)), fmt.Sprintf("%s (%d)", l.Dst, len(l.DstHosts)),
				shape, strconv.FormatBool(l.Symmetric), strconv.Itoa(owned[i])); err != nil {
				return err
			}
		}
		if err := t.Render(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "valid: %d hosts, %d service keys, %d plays, %d network links (%d host-to-host constraints)\n",
		len(p.Hosts), len(p.Services), len(p.Plays), len(p.Network), len(p.Constraints))
	return nil
}

func lossText(loss float64) string {
	if loss == 0 {
		return ""
	}
	return strconv.FormatFloat(loss, 'f', -1, 64) + "%"
}

func dependsSummary(pl *plan.Play) string {
	var parts []string
	for _, d := range pl.DependsOn {
		parts = append(parts, fmt.Sprintf("%s: %s of %d", d.Prefix, d.Grouping, len(d.Services)))
	}
	return strings.Join(parts, ", ")
}
