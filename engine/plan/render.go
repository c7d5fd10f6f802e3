package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/e2c-dev/e2c/engine/tmpl"
	"github.com/e2c-dev/e2c/schema"
)

// scope is what templates on one host can read: the loop item, then e2c's
// variables for the host, the play's vars, then those shared by every host
// of the phase. Templates get only the variables they read, which keeps
// rendering for thousands of hosts cheap.
type scope struct {
	b       *builder
	phase   schema.Phase
	common  map[string]any
	host    HostVar
	name    string // inventory_hostname
	item    any
	hasItem bool
	// The play's vars, rendered when first read: a var no task of the
	// phase reads (env_* in prepare) is no error there.
	vars     map[string]any
	varsPos  schema.Pos
	rendered map[string]any
}

func (s *scope) get(name string) (any, bool) {
	switch {
	case name == "item" && s.hasItem:
		return s.item, true
	case name == "inventory_hostname":
		return s.name, true
	}
	if v, ok := s.host[name]; ok {
		return v, true
	}
	if raw, ok := s.vars[name]; ok {
		v, done := s.rendered[name]
		if !done {
			// Play vars may read e2c's variables and the host's, not each other.
			own := &scope{b: s.b, phase: s.phase, common: s.common, host: s.host, name: s.name}
			v = s.b.render(raw, s.varsPos, own)
			s.rendered[name] = v
		}
		return v, true
	}
	v, ok := s.common[name]
	return v, ok
}

// all returns every variable of the scope, to explain an undefined one
// (play vars not rendered yet as written).
func (s *scope) all() map[string]any {
	vars := maps.Clone(s.common)
	maps.Copy(vars, s.vars)
	maps.Copy(vars, s.rendered)
	maps.Copy(vars, s.host)
	vars["inventory_hostname"] = s.name
	if s.hasItem {
		vars["item"] = s.item
	}
	return vars
}

// renderTasks renders a phase's tasks for one host; a loop gives one task
// per item.
func (b *builder) renderTasks(tasks []schema.Task, sc *scope, play *schema.Play) []*Task {
	var out []*Task
	for i := range tasks {
		t := withPlay(&tasks[i], play)
		if t.Module == "" {
			continue // reported by the schema
		}
		if b.readsRegistered(t) {
			out = append(out, deferred(i, t))
			continue
		}
		items := []any{nil}
		if t.Loop != nil {
			items = b.loopItems(t, sc)
		}
		for _, item := range items {
			sc.item, sc.hasItem = item, t.Loop != nil
			out = append(out, b.renderTask(i, t, item, sc))
		}
		sc.item, sc.hasItem = nil, false
	}
	return out
}

func (b *builder) renderTask(i int, t *schema.Task, item any, vars *scope) *Task {
	rt := &Task{Index: i, Pos: t.Pos.String(), Module: t.Module, Item: item, Async: t.Async, Poll: t.Poll,
		When: t.When, IgnoreErrors: t.IgnoreErrors, Register: t.Register, Become: t.Become, Written: t.Args}
	rt.Name, _ = b.render(t.Name, t.At("name"), vars).(string)
	rt.Args = make(map[string]any, len(t.Args))
	for k, v := range t.Args {
		rt.Args[k] = b.render(v, t.At("args."+k), vars)
	}
	for _, c := range t.When { // checked now, evaluated when the task runs
		b.render("{{ "+c+" }}", t.At("when"), vars)
	}
	rt.Chdir, _ = b.render(t.Chdir, t.At("chdir"), vars).(string)
	if t.Environment != nil {
		rt.Environment = map[string]string{}
		for k, x := range t.Environment {
			rt.Environment[k] = fmt.Sprint(b.render(x, t.At("environment"), vars))
		}
	}
	b.checkPaths(t, rt, vars)
	return rt
}

// withPlay returns t with the play's become and environment applied; the
// task's own environment wins for a variable both set.
func withPlay(t *schema.Task, play *schema.Play) *schema.Task {
	if !play.Become && len(play.Environment) == 0 {
		return t
	}
	c := *t
	c.Become = t.Become || play.Become
	if len(play.Environment) > 0 {
		c.Environment = maps.Clone(play.Environment)
		maps.Copy(c.Environment, t.Environment)
	}
	return &c
}

// deferred keeps a task as written, to be rendered when it runs.
func deferred(i int, t *schema.Task) *Task {
	return &Task{Index: i, Pos: t.Pos.String(), Module: t.Module, Async: t.Async, Poll: t.Poll,
		When: t.When, IgnoreErrors: t.IgnoreErrors, Register: t.Register, Become: t.Become,
		Name: t.Name, Args: t.Args, Written: t.Args, Environment: t.Environment, Chdir: t.Chdir, Loop: t.Loop, Deferred: true}
}

// loopItems evaluates a task's loop: a list (whose strings may be
// templates) or a template giving a list, such as "{{ range(1, 41)|list }}".
func (b *builder) loopItems(t *schema.Task, vars *scope) []any {
	v := b.render(t.Loop, t.At("loop"), vars)
	if v == nil {
		return nil // the template failed, reported
	}
	list, ok := v.([]any)
	if !ok {
		b.problem(t.At("loop"), fmt.Sprintf("loop: %v is not a list", v), vars.name)
		return nil
	}
	return list
}

// checkSyntax parses every template of t, so that syntax errors are found
// even in tasks that are not rendered now (deferred, or on no host).
func (b *builder) checkSyntax(t *schema.Task) {
	fields := []struct {
		value any
		key   string
	}{{t.Name, "name"}, {t.Chdir, "chdir"}, {t.Loop, "loop"}, {t.Environment, "environment"}, {conditions(t.When), "when"}}
	for k, v := range t.Args {
		fields = append(fields, struct {
			value any
			key   string
		}{v, "args." + k})
	}
	for _, f := range fields {
		walkStrings(f.value, func(s string) {
			if p := b.parse(s); p.err != nil {
				b.problem(t.At(f.key), "template: "+p.err.Error(), "")
			}
		})
	}
}

// readsRegistered reports whether any template of t reads a variable a
// task registers, under default or a defined test too.
func (b *builder) readsRegistered(t *schema.Task) bool {
	if len(b.registered) == 0 {
		return false
	}
	found := false
	walkStrings([]any{t.Name, t.Args, t.Chdir, t.Loop, t.Environment, conditions(t.When)}, func(s string) {
		if p := b.parse(s); p.t != nil {
			for _, r := range p.roots {
				found = found || b.registered[r]
			}
		}
	})
	return found
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
	p := b.parse(s)
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

// parse compiles a template once per distinct text. Its roots are the
// variables it reads, those it may read undefined (Optional) too, so that
// they are passed in when they are defined.
func (b *builder) parse(s string) parsed {
	p, ok := b.templates[s]
	if !ok {
		p.t, p.err = tmpl.Parse(s)
		if p.t != nil {
			for _, ref := range append(p.t.Refs(), p.t.Optional()...) {
				if r := root(ref); !slices.Contains(p.roots, r) {
					p.roots = append(p.roots, r)
				}
			}
		}
		b.templates[s] = p
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
	case []any:
		for _, e := range x {
			walkStrings(e, f)
		}
	}
}
