package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/e2c-dev/e2c/engine/ordered"
	"github.com/e2c-dev/e2c/engine/tmpl"
	"github.com/e2c-dev/e2c/schema"
)

// scope is what templates on one host can read, in Ansible's order: the
// loop item's variables, then e2c's variables for the host, the
// variables of the task, its blocks and the play (templates rendered when
// first read, which may read one another), then those shared by every
// host of the phase. Templates get only the variables they read, which
// keeps rendering for thousands of hosts cheap.
type scope struct {
	b      *builder
	phase  schema.Phase
	common map[string]any
	host   HostVar
	name   string         // inventory_hostname
	item   map[string]any // item (or loop_var) and index_var
	// defs are the play's vars, overridden by the blocks' and the task's,
	// as written; pos says where each is.
	defs     map[string]any
	pos      map[string]schema.Pos
	rendered map[string]any
	reading  []string // the defs being rendered, to catch one reading itself
}

func (s *scope) get(name string) (any, bool) {
	if v, ok := s.item[name]; ok {
		return v, true
	}
	if name == "inventory_hostname" {
		return s.name, true
	}
	if v, ok := s.host[name]; ok {
		return v, true
	}
	if raw, ok := s.defs[name]; ok {
		if v, done := s.rendered[name]; done {
			return v, true
		}
		if i := slices.Index(s.reading, name); i >= 0 {
			cycle := strings.Join(append(slices.Clone(s.reading[i:]), name), " -> ")
			s.b.problem(s.pos[name], fmt.Sprintf("vars: %s reads itself (%s)", name, cycle), s.name)
			s.rendered[name] = nil
			return nil, true
		}
		s.reading = append(s.reading, name)
		v := s.b.render(raw, s.pos[name], s)
		s.reading = s.reading[:len(s.reading)-1]
		s.rendered[name] = v
		return v, true
	}
	v, ok := s.common[name]
	return v, ok
}

// with returns a scope of the same host for a task's own vars and loop
// item; its vars are rendered again there, as they may read them.
func (s *scope) with(c *context, item map[string]any) *scope {
	if len(c.vars) == 0 && item == nil {
		return s
	}
	defs, pos := s.defs, s.pos
	if len(c.vars) > 0 {
		defs, pos = map[string]any{}, map[string]schema.Pos{}
		maps.Copy(defs, s.defs)
		maps.Copy(pos, s.pos)
		maps.Copy(defs, c.vars)
		maps.Copy(pos, c.varsPos)
	}
	return &scope{b: s.b, phase: s.phase, common: s.common, host: s.host, name: s.name, item: item,
		defs: defs, pos: pos, rendered: map[string]any{}}
}

// all returns every variable of the scope, to explain an undefined one
// (vars not rendered yet as written).
func (s *scope) all() map[string]any {
	vars := maps.Clone(s.common)
	maps.Copy(vars, s.defs)
	maps.Copy(vars, s.rendered)
	maps.Copy(vars, s.host)
	vars["inventory_hostname"] = s.name
	maps.Copy(vars, s.item)
	return vars
}

// context is what a task inherits from its blocks and play: Ansible's
// keywords written higher up, unless the task writes its own.
type context struct {
	when         []string
	vars         map[string]any // the blocks' and the task's, not the play's
	varsPos      map[string]schema.Pos
	environment  map[string]any
	become       bool
	becomeUser   string
	ignoreErrors bool
	noLog        bool
}

func playContext(p *schema.Play) *context {
	return &context{environment: p.Environment, become: p.Become, becomeUser: p.BecomeUser}
}

// under returns the context of t, a task or block below c.
func (c *context) under(t *schema.Task) *context {
	n := *c
	n.when = append(slices.Clip(c.when), t.When...)
	if len(t.Vars) > 0 {
		n.vars, n.varsPos = maps.Clone(c.vars), maps.Clone(c.varsPos)
		if n.vars == nil {
			n.vars, n.varsPos = map[string]any{}, map[string]schema.Pos{}
		}
		for k, v := range t.Vars {
			n.vars[k], n.varsPos[k] = v, t.At("vars."+k)
		}
	}
	if len(t.Environment) > 0 {
		n.environment = maps.Clone(c.environment)
		if n.environment == nil {
			n.environment = map[string]any{}
		}
		maps.Copy(n.environment, t.Environment)
	}
	if t.Has("become") {
		n.become = t.Become
	}
	if t.Has("become_user") {
		n.becomeUser = t.BecomeUser
	}
	if t.Has("ignore_errors") {
		n.ignoreErrors = t.IgnoreErrors
	}
	if t.Has("no_log") {
		n.noLog = t.NoLog
	}
	return &n
}

// renderTasks renders a list of tasks (a phase's, or a block's) for one
// host. index numbers the tasks of the phase as written, blocks included.
func (b *builder) renderTasks(tasks []schema.Task, sc *scope, c *context, index *int) []*Task {
	out := make([]*Task, 0, len(tasks))
	for i := range tasks {
		t := &tasks[i]
		n := *index
		*index++
		if t.IsBlock() {
			bc := c.under(t)
			name, _ := b.render(t.Name, t.At("name"), sc.with(bc, nil)).(string)
			out = append(out, &Task{Index: n, Pos: t.Pos.String(), Name: name,
				Block:  b.renderTasks(t.Block, sc, bc, index),
				Rescue: b.renderTasks(t.Rescue, sc, bc, index),
				Always: b.renderTasks(t.Always, sc, bc, index)})
			continue
		}
		if t.Module == "" {
			continue // reported by the schema
		}
		out = append(out, b.renderTask(n, t, sc, c.under(t)))
	}
	return out
}

// renderTask renders one task: as written if it reads what tasks register
// (it is rendered when it runs), else once, or once per loop item.
func (b *builder) renderTask(i int, t *schema.Task, sc *scope, c *context) *Task {
	rt := &Task{Index: i, Pos: t.Pos.String(), Module: t.Module, Written: t.Args, Async: t.Async, Poll: t.Poll,
		When: c.when, FailedWhen: t.FailedWhen, ChangedWhen: t.ChangedWhen, IgnoreErrors: c.ignoreErrors,
		Register: t.Register, Become: c.become, RunOnce: t.RunOnce, NoLog: c.noLog, Vars: c.vars}
	if c.become {
		rt.BecomeUser = c.becomeUser
	}
	if len(t.Until) > 0 {
		rt.Until, rt.Retries, rt.Delay = t.Until, t.Retries, t.Delay
	}
	if t.Loop != nil {
		rt.Loop, rt.LoopWith = t.Loop, t.LoopWith
		if lc := t.LoopControl; lc != (schema.LoopControl{}) {
			rt.LoopControl = &LoopControl{Var: lc.Var, IndexVar: lc.IndexVar, Label: lc.Label, Pause: lc.Pause}
		}
	}
	ts := sc.with(c, nil)
	if b.readsRuntime(t, c, ts) {
		rt.Deferred = true
		rt.Name, rt.Args, rt.Chdir, rt.DelegateTo = t.Name, t.Args, t.Chdir, t.DelegateTo
		rt.Environment = environment(c.environment, func(v any) any { return v })
		return rt
	}
	if t.Loop == nil {
		b.renderFields(rt, t, c, ts)
		return rt
	}
	rt.Name = t.Name
	rt.Items = []*Task{}
	for n, item := range b.loopItems(t, ts) {
		it := *rt
		it.Loop, it.LoopWith, it.LoopControl, it.Items, it.Item = nil, "", nil, nil, item
		is := sc.with(c, rt.ItemVars(item, n))
		b.renderFields(&it, t, c, is)
		if t.LoopControl.Label != "" {
			it.Label = pyText(b.render(t.LoopControl.Label, t.At("loop_control"), is))
		}
		rt.Items = append(rt.Items, &it)
	}
	return rt
}

// renderFields renders the fields of t into rt, unless its conditions
// are false here: it is skipped then, and left as written (Ansible renders
// nothing of a task whose when is false).
func (b *builder) renderFields(rt *Task, t *schema.Task, c *context, vars *scope) {
	if !b.holds(c.when, t.At("when"), vars) {
		rt.Skipped = true
		rt.Name, rt.Args, rt.Chdir, rt.DelegateTo = t.Name, t.Args, t.Chdir, t.DelegateTo
		return
	}
	rt.Name, _ = b.render(t.Name, t.At("name"), vars).(string)
	rt.Args = make(map[string]any, len(t.Args))
	for k, v := range t.Args {
		rt.Args[k] = b.render(v, t.At("args."+k), vars)
	}
	rt.Chdir, _ = b.render(t.Chdir, t.At("chdir"), vars).(string)
	rt.Environment = environment(c.environment, func(v any) any { return b.render(v, t.At("environment"), vars) })
	if t.DelegateTo != "" {
		to, _ := b.render(t.DelegateTo, t.At("delegate_to"), vars).(string)
		var err error
		if rt.DelegateTo, err = b.plan.Delegate(to); err != nil {
			b.problem(t.At("delegate_to"), "delegate_to: "+err.Error(), vars.name)
		}
	}
	b.checkPaths(t, rt, vars)
}

// holds evaluates conditions now: none reads what tasks register, or the
// task would be deferred. One that cannot be evaluated is reported, and
// the task rendered as if it held.
func (b *builder) holds(conds []string, pos schema.Pos, vars *scope) bool {
	ok := true
	for _, c := range conds {
		v := b.renderParsed(b.parseText("{{ "+c+" }}"), pos, vars)
		ok = ok && (v == nil || tmpl.Truthy(v))
	}
	return ok
}

// environment renders a task's environment variables as text, as Ansible
// passes them (yes is "True", 0644 "420").
func environment(env map[string]any, render func(any) any) map[string]string {
	if env == nil {
		return nil
	}
	out := make(map[string]string, len(env))
	for k, v := range env {
		if s, ok := v.(string); ok && !tmpl.Has(s) {
			out[k] = s
			continue
		}
		out[k] = pyText(render(v))
	}
	return out
}

// loopItems evaluates a task's loop now.
func (b *builder) loopItems(t *schema.Task, vars *scope) []any {
	v := b.render(t.Loop, t.At(loopKey(t.LoopWith)), vars)
	if v == nil {
		return nil // the template failed, reported
	}
	items, err := LoopList(t.LoopWith, v)
	if err != nil {
		b.problem(t.At(loopKey(t.LoopWith)), err.Error(), vars.name)
	}
	return items
}

func loopKey(with string) string {
	if with == "" {
		return "loop"
	}
	return "with_" + with
}

// checkSyntax parses every template of t and of the tasks of a block, so
// that syntax errors are found even in tasks that are not rendered now
// (deferred, or on no host).
func (b *builder) checkSyntax(t *schema.Task) {
	for _, list := range [][]schema.Task{t.Block, t.Rescue, t.Always} {
		for i := range list {
			b.checkSyntax(&list[i])
		}
	}
	fields := []struct {
		value any
		key   string
	}{{t.Name, "name"}, {t.Chdir, "chdir"}, {t.Loop, loopKey(t.LoopWith)}, {t.Environment, "environment"},
		{conditions(t.When), "when"}, {conditions(t.Until), "until"}, {conditions(t.FailedWhen), "failed_when"},
		{conditions(t.ChangedWhen), "changed_when"}, {t.DelegateTo, "delegate_to"}, {t.LoopControl.Label, "loop_control"}}
	for k, v := range t.Args {
		fields = append(fields, struct {
			value any
			key   string
		}{v, "args." + k})
	}
	for k, v := range t.Vars {
		fields = append(fields, struct {
			value any
			key   string
		}{v, "vars." + k})
	}
	for _, f := range fields {
		walkStrings(f.value, func(s string) {
			if p := b.parse(s); p.err != nil {
				b.problem(t.At(f.key), "template: "+p.err.Error(), "")
			}
		})
	}
}

// readsRuntime reports whether a template t renders before it runs reads
// a variable that exists only at run time (what tasks register, and what
// a rescue sees), directly or through the vars it reads. until,
// failed_when and changed_when are evaluated when the task runs anyway.
func (b *builder) readsRuntime(t *schema.Task, c *context, vars *scope) bool {
	found := false
	walkStrings([]any{t.Name, t.Args, t.Chdir, t.Loop, c.environment, conditions(c.when), t.DelegateTo, t.LoopControl.Label}, func(s string) {
		found = found || b.reachesRuntime(b.parse(s).roots, vars, map[string]bool{})
	})
	return found
}

// reachesRuntime reports whether any of roots is a run-time variable, or
// a var of vars whose templates read one, directly or not.
func (b *builder) reachesRuntime(roots []string, vars *scope, seen map[string]bool) bool {
	for _, r := range roots {
		if b.runtime[r] {
			return true
		}
		def, ok := vars.defs[r]
		if _, item := vars.item[r]; !ok || item || seen[r] {
			continue
		}
		seen[r] = true
		found := false
		walkStrings(def, func(s string) { found = found || b.reachesRuntime(b.parse(s).roots, vars, seen) })
		if found {
			return true
		}
	}
	return false
}

// conditions writes when conditions as the templates they are evaluated as.
func conditions(when []string) []any {
	out := make([]any, len(when))
	for i, c := range when {
		out[i] = "{{ " + c + " }}"
	}
	return out
}

func root(path string) string {
	for i, c := range path {
		if c == '.' || c == '[' {
			return path[:i]
		}
	}
	return path
}

// render renders every string inside v. A string that is exactly one
// expression keeps the expression's type (a loop's list, a port number).
// Problems are recorded against pos and host; the failed value becomes nil.
func (b *builder) render(v any, pos schema.Pos, vars *scope) any {
	out, _ := mapStrings(v, func(s string) (any, error) { return b.renderString(s, pos, vars), nil })
	return out
}

func (b *builder) renderString(s string, pos schema.Pos, vars *scope) any {
	if !tmpl.Has(s) {
		return s
	}
	return b.renderParsed(b.parse(s), pos, vars)
}

func (b *builder) renderParsed(p parsed, pos schema.Pos, vars *scope) any {
	if p.err != nil {
		b.problem(pos, "template: "+p.err.Error(), "")
		return nil
	}
	ctx := make(map[string]any, len(p.roots))
	for _, r := range p.roots {
		if v, ok := vars.get(r); ok {
			ctx[r] = v
		}
	}
	out, err := p.t.Value(ctx)
	if err == nil {
		return out
	}
	if undefined(err) == nil {
		b.problem(pos, "template: "+err.Error(), vars.name)
		return nil
	}
	b.reportUndefined(p.t, pos, "", vars)
	return nil
}

// reportUndefined reports the variables t reads that vars lacks, with hints
// among every variable of vars.
func (b *builder) reportUndefined(t *tmpl.Template, pos schema.Pos, prefix string, vars *scope) {
	_, err := t.Value(vars.all())
	for _, u := range undefined(err) {
		r := root(u.Name)
		if b.broken[r] {
			continue
		}
		msg := prefix + u.Error()
		if step := once[vars.phase]; step != "" && (r == "app_conf" || strings.HasPrefix(r, "env_")) {
			msg += fmt.Sprintf(": %s runs once for every configuration, so app_conf and env_* are not set there (use them in launch or finalize)", step)
		}
		b.problem(pos, msg, vars.name)
	}
}

// mapStrings returns a copy of v, plain data from YAML, with f applied to
// every string inside it; a map of strings becomes a map of values.
func mapStrings(v any, f func(string) (any, error)) (any, error) {
	switch x := v.(type) {
	case string:
		return f(x)
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, s := range x {
			r, err := f(s)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := mapStrings(e, f)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case *ordered.Map:
		out := ordered.New(x.Len())
		for _, k := range x.Keys() {
			e, _ := x.Get(k)
			r, err := mapStrings(e, f)
			if err != nil {
				return nil, err
			}
			out.Set(k, r)
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := mapStrings(e, f)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// undefined lists the undefined variables an error of tmpl reports.
func undefined(err error) []*tmpl.UndefinedError {
	if u, ok := err.(*tmpl.UndefinedError); ok {
		return []*tmpl.UndefinedError{u}
	}
	var out []*tmpl.UndefinedError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, undefined(e)...)
		}
	}
	return out
}

// tmplKey is a template's text and whether it is a task's field or a
// variable's value (as opposed to a condition or a template file), which
// Ansible reads with other escapes and types (tmpl.ParseField).
type tmplKey struct {
	text  string
	field bool
}

// parse compiles a field's template once per distinct text. Its roots are
// the variables it reads, those it may read undefined (Optional) too, so
// that they are passed in when they are defined.
func (b *builder) parse(s string) parsed { return b.parseAs(tmplKey{s, true}) }

// parseText compiles a condition or a template file.
func (b *builder) parseText(s string) parsed { return b.parseAs(tmplKey{s, false}) }

func (b *builder) parseAs(k tmplKey) parsed {
	p, ok := b.templates[k]
	if !ok {
		p = parseTemplate(k)
		b.templates[k] = p
	}
	return p
}

func parseTemplate(k tmplKey) parsed {
	var p parsed
	if k.field {
		p.t, p.err = tmpl.ParseField(k.text)
	} else {
		p.t, p.err = tmpl.Parse(k.text)
	}
	if p.t != nil {
		for _, ref := range slices.Concat(p.t.Refs(), p.t.Optional()) {
			if r := root(ref); !slices.Contains(p.roots, r) {
				p.roots = append(p.roots, r)
			}
		}
	}
	return p
}

func (b *builder) problem(pos schema.Pos, msg, host string) {
	k := problem{pos, msg}
	hosts, seen := b.problems[k]
	if host != "" && (len(hosts) == 0 || hosts[len(hosts)-1] != host) { // a loop hits one host many times
		hosts = append(hosts, host)
	}
	if !seen || host != "" {
		b.problems[k] = hosts
	}
}

// walkStrings calls f on every string inside v.
func walkStrings(v any, f func(string)) {
	switch x := v.(type) {
	case string:
		if tmpl.Has(x) {
			f(x)
		}
	case map[string]string:
		for _, s := range x {
			walkStrings(s, f)
		}
	case map[string]any:
		for _, e := range x {
			walkStrings(e, f)
		}
	case *ordered.Map:
		for _, k := range x.Keys() {
			e, _ := x.Get(k)
			walkStrings(e, f)
		}
	case []any:
		for _, e := range x {
			walkStrings(e, f)
		}
	}
}
