// Package plan computes what an experiment will do without touching a
// machine: which service instance lands on which host, what every
// depends_on resolves to, and every task rendered for every host and phase.
//
// A plan is deterministic: the same scenario and machines give the same
// plan, byte for byte, once encoded.
package plan

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/e2c-dev/e2c/engine/netem"
	"github.com/e2c-dev/e2c/engine/pattern"
	"github.com/e2c-dev/e2c/engine/servicedef"
	"github.com/e2c-dev/e2c/engine/tmpl"
	"github.com/e2c-dev/e2c/schema"
)

// Version is the version of the plan.json format.
const Version = 2

// Plan is the whole deployment plan of one run.
type Plan struct {
	Version   int    `json:"version"`
	Scenario  string `json:"scenario"`
	Artifacts string `json:"artifacts"`
	Run       string `json:"run,omitempty"` // the run folder, where fetch writes
	Repeat    int    `json:"current_repeat"`
	AppConf   string `json:"app_conf,omitempty"`
	// ExtraVars are the variables e2c sets for every host, by phase.
	ExtraVars map[schema.Phase]map[string]any `json:"extra_vars"`
	Hosts     []*Host                         `json:"hosts"`
	Services  []*Service                      `json:"services"`
	Plays     []*Play                         `json:"plays"`
	Network   []*Link                         `json:"network"`
	// Constraints are the network links merged into directed shapes
	// between hosts: what the network step applies.
	Constraints []netem.Constraint `json:"constraints"`

	inv *inventory // where delegate_to finds hosts
}

// Play is a play of workflow.yaml resolved to hosts, with each host's
// variables and rendered tasks.
type Play struct {
	Index     int                     `json:"index"` // 0-based, file order
	Name      string                  `json:"name,omitempty"`
	Pattern   string                  `json:"hosts_pattern"`
	Pos       string                  `json:"pos"`
	Hosts     []string                `json:"hosts"`
	DependsOn []*Dependency           `json:"depends_on,omitempty"`
	Vars      map[string]any          `json:"vars,omitempty"` // the play's own vars
	HostVars  map[string]HostVar      `json:"host_vars"`
	Phases    map[schema.Phase][]*Run `json:"phases"`
}

// Dependency is a depends_on entry and the service keys its selector matched.
type Dependency struct {
	Prefix    string   `json:"prefix"`
	Grouping  string   `json:"grouping"`
	ArrayInfo string   `json:"array_info,omitempty"`
	Selector  string   `json:"service_selector"`
	Services  []string `json:"services"`
}

// HostVar is what e2c sets for one host of a play: _self, self_container and
// the depends_on prefixes.
type HostVar map[string]any

// Run is a phase's tasks on one host.
type Run struct {
	Host  string  `json:"host"`
	Tasks []*Task `json:"tasks"`
}

// Task is one task rendered for one host; a looped task holds one per
// item, and a block the tasks of its block, rescue and always.
type Task struct {
	Index   int            `json:"index"` // position in the play's phase, blocks and their tasks counted in written order
	Pos     string         `json:"pos"`
	Name    string         `json:"name,omitempty"`
	Module  string         `json:"module,omitempty"` // "" for a block
	Args    map[string]any `json:"args,omitempty"`
	Written map[string]any `json:"-"` // the args as written, unrendered: progress lines and errors show these, never a secret templated in
	Item    any            `json:"item,omitempty"`
	Label   string         `json:"label,omitempty"` // loop_control's label, rendered for the item: shown in place of it
	// Loop is the loop as written (LoopWith: "items", "dict", "sequence"
	// for with_<name>); Items the task rendered for each item, none until
	// it runs for a deferred task.
	Loop        any          `json:"loop,omitempty"`
	LoopWith    string       `json:"loop_with,omitempty"`
	LoopControl *LoopControl `json:"loop_control,omitempty"`
	Items       []*Task      `json:"items,omitempty"`
	Async       int          `json:"async,omitempty"`
	Poll        int          `json:"poll,omitempty"`
	// When holds the task's conditions after its blocks'. Skipped: they
	// are false already, and the task was left as written.
	When         []string          `json:"when,omitempty"`
	Skipped      bool              `json:"skipped,omitempty"`
	Until        []string          `json:"until,omitempty"`
	Retries      int               `json:"retries,omitempty"` // with until: attempts after the first
	Delay        int               `json:"delay,omitempty"`   // with until: seconds between attempts
	FailedWhen   []string          `json:"failed_when,omitempty"`
	ChangedWhen  []string          `json:"changed_when,omitempty"`
	IgnoreErrors bool              `json:"ignore_errors,omitempty"`
	Register     string            `json:"register,omitempty"`
	Environment  map[string]string `json:"environment,omitempty"`
	Vars         map[string]any    `json:"vars,omitempty"` // the task's and its blocks' vars, as written
	Become       bool              `json:"become,omitempty"`
	BecomeUser   string            `json:"become_user,omitempty"`
	DelegateTo   string            `json:"delegate_to,omitempty"` // a host of the plan, or Localhost
	RunOnce      bool              `json:"run_once,omitempty"`
	NoLog        bool              `json:"no_log,omitempty"`
	Chdir        string            `json:"chdir,omitempty"`
	// Deferred tasks read a variable registered by an earlier task: they are
	// rendered when they run, and hold their templates as written here.
	Deferred bool `json:"deferred,omitempty"`
	// A block's tasks.
	Block  []*Task `json:"block,omitempty"`
	Rescue []*Task `json:"rescue,omitempty"`
	Always []*Task `json:"always,omitempty"`
}

// Walk calls f on every task of tasks that runs a module: a looped task
// and each of its items, and the tasks of blocks.
func Walk(tasks []*Task, f func(*Task)) {
	for _, t := range tasks {
		if t.IsBlock() {
			Walk(t.Block, f)
			Walk(t.Rescue, f)
			Walk(t.Always, f)
			continue
		}
		f(t)
		Walk(t.Items, f)
	}
}

// LoopControl is a task's loop_control.
type LoopControl struct {
	Var      string  `json:"loop_var,omitempty"`
	IndexVar string  `json:"index_var,omitempty"`
	Label    string  `json:"label,omitempty"`
	Pause    float64 `json:"pause,omitempty"`
}

// IsBlock reports whether t is a block.
func (t *Task) IsBlock() bool { return t.Module == "" }

// LoopVar is the name the loop item has: item, or loop_control's loop_var.
func (t *Task) LoopVar() string {
	if t.LoopControl != nil && t.LoopControl.Var != "" {
		return t.LoopControl.Var
	}
	return "item"
}

// ItemVars are the variables a looped task sets for its item at index i.
func (t *Task) ItemVars(item any, i int) map[string]any {
	vars := map[string]any{t.LoopVar(): item}
	if t.LoopControl != nil && t.LoopControl.IndexVar != "" {
		vars[t.LoopControl.IndexVar] = i
	}
	return vars
}

// Link is a network.yaml entry resolved to hosts.
type Link struct {
	Pos       string   `json:"pos"`
	Src       string   `json:"src"`
	Dst       string   `json:"dst"`
	SrcHosts  []string `json:"src_hosts"`
	DstHosts  []string `json:"dst_hosts"`
	Delay     string   `json:"delay,omitempty"`
	Rate      string   `json:"rate,omitempty"`
	Loss      float64  `json:"loss,omitempty"`
	Symmetric bool     `json:"symmetric"`
}

// Options are the run's own values that templates read.
type Options struct {
	ScenarioDir  string
	ArtifactsDir string
	RunDir       string // working_dir in finalize
	Repeat       int    // current_repeat, 0-based
	RepeatCount  int    // number of runs
	AppConf      string // the workflow_env.yaml configuration, if any
}

// builder holds the state of one Build.
type builder struct {
	sc        *schema.Scenario
	opt       Options
	plan      *Plan // its folders, for the paths tasks use
	inv       *inventory
	errs      *schema.Errors
	templates map[tmplKey]parsed   // parsed once per distinct text and kind
	files     map[string]file      // controller files tasks read, checked once per module and src
	problems  map[problem][]string // template problems and the hosts they hit, reported once
	runtime   map[string]bool      // names that exist only when tasks run (register): templates reading them are deferred
	// broken holds the depends_on prefixes of the current play whose entry
	// is in error: templates reading them would only repeat that error.
	broken map[string]bool
}

type parsed struct {
	t     *tmpl.Template
	roots []string // the variables it reads
	err   error
}

// problem is a template error at a position.
type problem struct {
	pos schema.Pos
	msg string
}

// Build computes the plan of sc on machines, which holds for each instance
// of Expand(sc.LayersServices) the machines reserved for it. Every problem
// found is returned at once, each at its position in the scenario.
func Build(sc *schema.Scenario, defs servicedef.Registry, machines [][]Machine, opt Options) (*Plan, error) {
	var errs schema.Errors
	b := &builder{sc: sc, opt: opt, errs: &errs, templates: map[tmplKey]parsed{}, files: map[string]file{},
		problems: map[problem][]string{}}
	instances := Expand(sc.LayersServices)
	deploy := deployPlays(instances, defs)
	b.runtime = runtimeNames(append(workflowPlays(sc.Workflow), deploy...), &errs)
	if len(machines) != len(instances) {
		return nil, fmt.Errorf("plan: %d machine lists for %d service instances", len(machines), len(instances))
	}
	b.inv = register(instances, machines, defs, &errs)
	p := &Plan{Version: Version, Scenario: opt.ScenarioDir, Artifacts: opt.ArtifactsDir, Run: opt.RunDir, Repeat: opt.Repeat,
		AppConf: opt.AppConf, Hosts: b.inv.hosts, Services: b.inv.services, inv: b.inv}
	b.plan = p
	b.containers(instances, defs)
	if opt.AppConf != "" {
		if _, ok := sc.WorkflowEnv[opt.AppConf]; !ok {
			errs.At(schema.Pos{File: filepath.Join(sc.Dir, schema.WorkflowEnvFile)}, "app_conf %q is not defined in workflow_env.yaml", opt.AppConf)
		}
	}
	p.ExtraVars = map[schema.Phase]map[string]any{}
	for _, phase := range allPhases {
		p.ExtraVars[phase] = b.phaseVars(phase)
	}
	for i := range sc.Workflow.Plays {
		p.Plays = append(p.Plays, b.play(i, &sc.Workflow.Plays[i]))
	}
	for _, sp := range deploy {
		p.Plays = append(p.Plays, b.play(len(p.Plays), sp))
	}
	var entries []netem.Entry
	for _, l := range sc.Network.Links {
		link := b.link(l)
		p.Network = append(p.Network, link)
		entries = append(entries, netem.Entry{Pos: link.Pos, Src: l.Src, Dst: l.Dst, SrcHosts: link.SrcHosts, DstHosts: link.DstHosts,
			Delay: l.Delay, Rate: uint64(l.Rate), Loss: l.Loss, Symmetric: l.Symmetric})
	}
	var conflicts []error
	p.Constraints, conflicts = netem.Merge(entries)
	for _, err := range conflicts {
		ce := err.(*netem.ConflictError)
		errs.At(sc.Network.Links[ce.Entries[1]].Pos, "network link: %s", ce.Msg())
	}
	b.reportProblems()
	return p, errs.Err()
}

// selectServices returns the services a pattern selects, in key order; a
// pattern that selects nothing is an error at its position.
func (b *builder) selectServices(text string, at schema.Pos, what string) []*Service {
	p := b.pattern(text, at, what)
	if p == nil {
		return nil
	}
	idx := p.Select(b.inv.index)
	if len(idx) == 0 {
		b.noMatch(p, b.inv.index, at, what)
		return nil
	}
	out := make([]*Service, len(idx))
	for i, j := range idx {
		out[i] = b.inv.services[j]
	}
	return out
}

// selectHosts returns the hosts a pattern selects, in key order, and for
// each the first of its services the pattern selects (nil if none does: the
// host was selected through names of several of its services).
func (b *builder) selectHosts(text string, at schema.Pos, what string) (hosts []int, self []*Service) {
	p := b.pattern(text, at, what)
	if p == nil {
		return nil, nil
	}
	hosts = p.Select(b.inv.hostIndex)
	if len(hosts) == 0 {
		b.noMatch(p, b.inv.hostIndex, at, what)
		return nil, nil
	}
	first := map[int]*Service{}
	for _, j := range p.Select(b.inv.index) {
		if s := b.inv.services[j]; first[s.host] == nil {
			first[s.host] = s
		}
	}
	self = make([]*Service, len(hosts))
	for i, h := range hosts {
		self[i] = first[h]
	}
	return hosts, self
}

func (b *builder) pattern(text string, at schema.Pos, what string) *pattern.Pattern {
	p, err := pattern.Parse(text)
	if err != nil {
		b.errs.At(at, "%s: %v", what, err)
	}
	return p
}

func (b *builder) noMatch(p *pattern.Pattern, ix *pattern.Index, at schema.Pos, what string) {
	kind := "service"
	if ix == b.inv.hostIndex {
		kind = "host"
	}
	hint := p.Hint(ix)
	if hint == "" && kind == "service" {
		// No typo, but parts that select different services of the same
		// hosts, such as a Kafka host's leader and zookeeper.
		if hosts := p.Select(b.inv.hostIndex); len(hosts) > 0 {
			hint = fmt.Sprintf("as a host pattern it selects %s, but no one service is in every part of it: service_selector picks services, not hosts",
				strings.Join(b.names(hosts[:min(len(hosts), 3)]), ", "))
			if len(hosts) > 3 {
				hint += fmt.Sprintf(" (and %d more hosts)", len(hosts)-3)
			}
		}
	}
	if hint != "" {
		hint = "; " + hint
	}
	b.errs.At(at, "%s: %q matches no %s%s", what, p.String(), kind, hint)
}

func (b *builder) link(l schema.Link) *Link {
	out := &Link{Pos: l.Pos.String(), Src: l.Src, Dst: l.Dst, Loss: l.Loss, Symmetric: l.Symmetric}
	if l.Delay > 0 {
		out.Delay = l.Delay.String()
	}
	if l.Rate > 0 {
		out.Rate = l.Rate.String()
	}
	src, _ := b.selectHosts(l.Src, l.At("src"), "networks.src")
	dst, _ := b.selectHosts(l.Dst, l.At("dst"), "networks.dst")
	out.SrcHosts, out.DstHosts = b.names(src), b.names(dst)
	return out
}

// Addresses lists every address of each host.
func (p *Plan) Addresses() map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for _, h := range p.Hosts {
		for _, s := range []string{h.Address4, h.Address6, h.Address} {
			if a, err := netip.ParseAddr(s); err == nil && !slices.Contains(out[h.Name], a.Unmap()) {
				out[h.Name] = append(out[h.Name], a.Unmap())
			}
		}
	}
	return out
}

func (b *builder) names(hosts []int) []string {
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = b.inv.hosts[h].Name
	}
	return out
}

// play resolves one play: its hosts, their variables, and every phase's
// tasks rendered for every host.
func (b *builder) play(index int, sp *schema.Play) *Play {
	p := &Play{Index: index, Name: sp.Name, Pattern: sp.Hosts, Pos: sp.Pos.String(), Vars: sp.Vars,
		HostVars: map[string]HostVar{}, Phases: map[schema.Phase][]*Run{}}
	if sp.Hosts == "" {
		return p
	}
	for _, phase := range allPhases {
		for i := range sp.Tasks[phase] {
			b.checkSyntax(&sp.Tasks[phase][i])
			b.checkVarNames(&sp.Tasks[phase][i])
		}
	}
	pos := map[string]schema.Pos{}
	for k := range sp.Vars {
		if reserved[k] {
			b.errs.At(sp.At("vars."+k), "vars: %q would hide the variable e2c sets under that name", k)
		}
		pos[k] = sp.At("vars." + k)
	}
	b.broken = map[string]bool{}
	hosts, self := b.selectHosts(sp.Hosts, sp.At("hosts"), "hosts")
	p.Hosts = b.names(hosts)
	deps := b.dependsVars(p, sp, hosts)
	for i, h := range hosts {
		hv := HostVar(deps[i])
		if self[i] != nil {
			hv["_self"] = self[i].Info
			if c, ok := self[i].Info["container"]; ok {
				hv["self_container"] = c
			}
		}
		p.HostVars[b.inv.hosts[h].Name] = hv
	}
	for _, phase := range allPhases {
		tasks := sp.Tasks[phase]
		if len(tasks) == 0 {
			continue
		}
		common := b.phaseVars(phase)
		runs := make([]*Run, len(hosts))
		for i, h := range hosts {
			host := b.inv.hosts[h]
			sc := &scope{b: b, phase: phase, common: common, host: p.HostVars[host.Name], name: host.Name,
				defs: sp.Vars, pos: pos, rendered: map[string]any{}}
			index := 0
			runs[i] = &Run{Host: host.Name, Tasks: b.renderTasks(tasks, sc, playContext(sp), &index)}
		}
		p.Phases[phase] = runs
	}
	return p
}

// checkVarNames refuses task and block vars and loop variables that would
// hide e2c's own variables.
func (b *builder) checkVarNames(t *schema.Task) {
	for k := range t.Vars {
		if reserved[k] {
			b.errs.At(t.At("vars."+k), "vars: %q would hide the variable e2c sets under that name", k)
		}
	}
	for _, v := range []string{t.LoopControl.Var, t.LoopControl.IndexVar} {
		if reserved[v] && v != "item" {
			b.errs.At(t.At("loop_control"), "loop_control: %q would hide the variable e2c sets under that name", v)
		}
	}
	for _, list := range [][]schema.Task{t.Block, t.Rescue, t.Always} {
		for i := range list {
			b.checkVarNames(&list[i])
		}
	}
}

// allPhases are the services step's deploy, the workflow's phases and the
// task lists a change to a running experiment runs (reconfigure).
var allPhases = slices.Concat([]schema.Phase{schema.Deploy}, schema.Phases, []schema.Phase{schema.Reconfigure})

// deployPlays makes a play of every service definition with deploy tasks
// that the scenario uses: its tasks, on every host of the service.
func deployPlays(instances []Instance, defs servicedef.Registry) []*schema.Play {
	var out []*schema.Play
	seen := map[string]bool{}
	for _, in := range instances {
		def := defs[in.Name]
		if def == nil || len(def.Deploy) == 0 || seen[in.Name] {
			continue
		}
		seen[in.Name] = true
		out = append(out, &schema.Play{Node: def.Node, Name: "deploy " + in.Name, Hosts: in.Name,
			Tasks: map[schema.Phase][]schema.Task{schema.Deploy: def.Deploy}})
	}
	return out
}

// once names the steps that run once for every configuration, so that
// app_conf and env_* are not theirs (as in E2Clab, where prepare has no
// app_conf).
var once = map[schema.Phase]string{schema.Deploy: "the services step", schema.Prepare: "prepare"}

// phaseVars are the variables e2c sets for every host in a phase.
func (b *builder) phaseVars(phase schema.Phase) map[string]any {
	v := map[string]any{}
	v["scenario_dir"] = b.opt.ScenarioDir
	v["artifacts_dir"] = b.opt.ArtifactsDir
	v["working_dir"] = b.opt.ArtifactsDir
	if phase == schema.Finalize {
		v["working_dir"] = b.opt.RunDir
		if b.opt.AppConf != "" {
			v["working_dir"] = filepath.Join(b.opt.RunDir, b.opt.AppConf)
		}
	}
	v["current_repeat"] = b.opt.Repeat
	v["repeat_count"] = b.opt.RepeatCount
	if b.opt.AppConf != "" && once[phase] == "" {
		v["app_conf"] = b.opt.AppConf
		for k, x := range b.sc.WorkflowEnv[b.opt.AppConf].Values {
			v["env_"+k] = x
		}
	}
	return v
}

// reportProblems turns template problems into one message each, naming
// the hosts they hit rather than repeating it for each of 320 producers.
func (b *builder) reportProblems() {
	keys := make([]problem, 0, len(b.problems))
	for k := range b.problems {
		keys = append(keys, k)
	}
	for _, k := range keys {
		msg := k.msg
		if hosts := b.problems[k]; len(hosts) == 1 {
			msg += " (on host " + hosts[0] + ")"
		} else if len(hosts) > 1 {
			msg += fmt.Sprintf(" (on %d hosts: %s", len(hosts), strings.Join(hosts[:min(len(hosts), 3)], ", "))
			if len(hosts) > 3 {
				msg += ", ..."
			}
			msg += ")"
		}
		b.errs.Add(&schema.Error{Pos: k.pos, Msg: msg})
	}
}

// Runtime variables besides what tasks register: the failed task and its
// result, which a rescue reads.
var rescueVars = []string{"ansible_failed_task", "ansible_failed_result"}

func workflowPlays(w *schema.Workflow) []*schema.Play {
	out := make([]*schema.Play, len(w.Plays))
	for i := range w.Plays {
		out[i] = &w.Plays[i]
	}
	return out
}

// runtimeNames collects the variables that exist only at run time: those
// tasks register or set_fact sets anywhere (in blocks too), and the
// rescue's.
func runtimeNames(plays []*schema.Play, errs *schema.Errors) map[string]bool {
	names := map[string]bool{}
	for _, v := range rescueVars {
		names[v] = true
	}
	var walk func(tasks []schema.Task)
	walk = func(tasks []schema.Task) {
		for i := range tasks {
			t := &tasks[i]
			walk(t.Block)
			walk(t.Rescue)
			walk(t.Always)
			for _, name := range t.Sets() {
				if reserved[name] {
					key, what := "args."+name, "set_fact"
					if name == t.Register {
						key, what = "register", "register"
					}
					errs.At(t.At(key), "%s: %q would hide the variable e2c sets under that name", what, name)
				}
				names[name] = true
			}
		}
	}
	for _, p := range plays {
		for _, phase := range allPhases {
			walk(p.Tasks[phase])
		}
	}
	return names
}

// Only returns a copy of p that runs on hosts alone: its plays keep the
// runs of those hosts, its constraints those they send, and its hosts'
// containers are theirs alone. Hosts, services and every host's variables
// stay whole, so that templates of the hosts kept still see every service.
// A change to a running experiment runs its steps on what it touches this
// way.
func (p *Plan) Only(hosts []string) *Plan {
	keep := func(h string) bool { return slices.Contains(hosts, h) }
	q := *p
	q.Plays = make([]*Play, len(p.Plays))
	for i, pl := range p.Plays {
		c := *pl
		c.Hosts = slices.DeleteFunc(slices.Clone(pl.Hosts), func(h string) bool { return !keep(h) })
		c.Phases = map[schema.Phase][]*Run{}
		for ph, runs := range pl.Phases {
			if kept := slices.DeleteFunc(slices.Clone(runs), func(r *Run) bool { return !keep(r.Host) }); len(kept) > 0 {
				c.Phases[ph] = kept
			}
		}
		q.Plays[i] = &c
	}
	q.Constraints = slices.DeleteFunc(slices.Clone(p.Constraints), func(c netem.Constraint) bool { return !keep(c.Src) })
	q.Hosts = make([]*Host, len(p.Hosts))
	for i, h := range p.Hosts {
		c := *h
		if !keep(h.Name) {
			c.Containers = nil
		}
		q.Hosts[i] = &c
	}
	return &q
}
