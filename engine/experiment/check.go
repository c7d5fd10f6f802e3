package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/e2c-dev/e2c/engine/netem"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/servicedef"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/providers/builtin"
	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// Checked is a scenario read, checked and planned on stand-in hosts.
type Checked struct {
	Scenario *schema.Scenario // with --testbed and --network applied
	Defs     servicedef.Registry
	Network  *results.NetworkLimit // what --network left out; nil when network.yaml is applied whole
	Plan     *plan.Plan            // under the first configuration checked
}

// Check reads the scenario of o and plans it on stand-in hosts (one per
// machine each service instance needs, named after its key), which is how
// every check that needs hosts runs before anything is reserved: e2c
// validate, deploy --dry-run and every deploy. It plans under each of
// o.AppConfs, or when none is given under each configuration
// workflow_env.yaml defines (or none). Problems of every stage and
// configuration are reported together; the plan is only attempted on a
// sound layers_services.yaml, since every pattern is resolved against it.
// runDir is the run folder the plan names.
func Check(o Options, runDir string) (*Checked, error) {
	if err := checkNetworkMode(o.Network); err != nil {
		return nil, err
	}
	set := o.Providers
	if set == nil {
		set = builtin.Set()
	}
	sc, err := schema.Load(o.ScenarioDir)
	var errs schema.Errors
	errs.Add(err)
	if sc == nil || inFile(err, filepath.Join(o.ScenarioDir, schema.LayersServicesFile)) {
		return nil, errs.Err()
	}
	c := &Checked{Scenario: sc, Defs: servicedef.New(sc.ServiceDefs)}
	if o.Testbed != "" {
		if err := overrideTestbed(sc.LayersServices, o.Testbed, set); err != nil {
			return nil, err
		}
	}
	errs.Add(checkMonitoring(sc.LayersServices.Monitoring))
	errs.Add(set.Check(sc.LayersServices.Environment, plan.Expand(sc.LayersServices)))
	c.Network = limitNetwork(sc.Network, o.Network)
	checked := o.AppConfs
	if len(checked) == 0 {
		checked = confs(slices.Sorted(maps.Keys(sc.WorkflowEnv)))
	}
	hosts := plan.Synthetic(plan.Expand(sc.LayersServices))
	for _, conf := range checked {
		p, err := plan.Build(sc, c.Defs, hosts, o.planOptions(0, runDir, conf))
		errs.Add(err)
		if c.Plan == nil {
			c.Plan = p
		}
	}
	if errs.Len() == 0 {
		errs.Add(checkTimed(sc, c.Defs, set, o.planOptions(0, runDir, confs(checked)[0])))
	}
	if errs.Len() > 0 {
		return nil, errs.Err()
	}
	return c, nil
}

// checkTimed plans the changes of the scenario's timeline on stand-in
// hosts, in time order, as the run will make them: whether the provider
// can give what a scale asks, the links a network change leaves, and the
// pattern and templates of a task list.
func checkTimed(sc *schema.Scenario, defs servicedef.Registry, set providers.Set, opt plan.Options) error {
	if sc.Timeline == nil {
		return nil
	}
	var errs schema.Errors
	var made edits
	for _, c := range inTimeOrder(sc.Timeline) {
		made.add(c)
		e := edited(sc, made.scale, made.links)
		if c.Run != nil {
			e = withTasks(e, c.Run)
		}
		instances := plan.Expand(e.LayersServices)
		if err := set.Check(e.LayersServices.Environment, instances); err != nil {
			if len(c.Scale) > 0 { // the first change past what the testbed gives
				errs.At(c.Pos, "timeline: after this change at %s: %v", c.At, err)
			}
			continue
		}
		if _, err := plan.Build(e, defs, plan.Synthetic(instances), opt); err != nil {
			errs.At(c.Pos, "timeline: after this change at %s the scenario cannot be planned: %v", c.At, err)
		}
	}
	return errs.Err()
}

// inFile reports whether err holds a problem in file.
func inFile(err error, file string) bool {
	var m *schema.Errors
	if !errors.As(err, &m) {
		return false
	}
	return slices.ContainsFunc(m.Unwrap(), func(e error) bool {
		se, ok := e.(*schema.Error)
		return ok && se.Pos.File == file
	})
}

// DryRun checks the scenario of o as a deploy would and writes the plan of
// its first run into a new run folder: plan.json (with every host's tc
// batch, DEV standing for the device, which only the host knows),
// layers_services-validate.yaml and workflow-validate.out, every task
// rendered and nothing executed. A scenario with problems leaves no
// folder.
func DryRun(o Options) (dir string, c *Checked, err error) {
	if err := o.normalize(); err != nil {
		return "", nil, err
	}
	// working_dir in finalize is the run folder, whose name is only known
	// once it exists: create it, and remove it (still empty) on a problem.
	dir, err = results.NewRunDir(o.ScenarioDir, time.Now())
	if err != nil {
		return "", nil, err
	}
	c, err = Check(o, dir)
	var tc []*netem.Rules
	if err == nil {
		tc, err = netem.Build(c.Plan.Constraints, c.Plan.Addresses(), func(string, netip.Addr) string { return "DEV" })
	}
	if err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	p := c.Plan
	planWithTC := func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(struct {
			*plan.Plan
			TC []*netem.Rules `json:"tc,omitempty"` // the dry run's alone: the network step builds them on the hosts
		}{p, tc})
	}
	for name, write := range map[string]func(io.Writer) error{
		results.PlanFile:           planWithTC,
		results.LayersServicesFile: p.WriteLayersServices,
		results.WorkflowFile: func(w io.Writer) error {
			return p.WriteWorkflow(w, "", func(int) string { return "dry run: nothing executed" })
		},
	} {
		if err := results.WriteFile(dir, name, write); err != nil {
			return dir, c, fmt.Errorf("dry run: %w", err)
		}
	}
	return dir, c, nil
}
