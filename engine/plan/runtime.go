package plan

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/e2c-dev/e2c/engine/ordered"
	"github.com/e2c-dev/e2c/engine/pattern"
	"github.com/e2c-dev/e2c/engine/tmpl"
	"github.com/e2c-dev/e2c/schema"
)

// Scope is what a task's templates read on one host when it runs: values
// (e2c's variables, the host's, what tasks registered, the loop item) and
// definitions (the play's vars, under the blocks' and the task's), which
// are rendered when read, as Ansible does: one may read another, never
// itself. Values win over definitions, as registered variables and loop
// items win over vars in Ansible.
type Scope struct {
	values  map[string]any
	defs    map[string]any
	done    map[string]any
	failed  map[string]error
	reading []string
}

// Scope returns the scope of task t (nil: none of its own) of play in
// phase on host; each of values (what tasks registered, the loop item)
// wins over those before it.
func (p *Plan) Scope(play *Play, phase schema.Phase, host string, t *Task, values ...map[string]any) *Scope {
	s := &Scope{values: maps.Clone(p.ExtraVars[phase]), defs: play.Vars}
	if s.values == nil {
		s.values = map[string]any{}
	}
	maps.Copy(s.values, play.HostVars[host])
	s.values["inventory_hostname"] = host
	for _, v := range values {
		maps.Copy(s.values, v)
	}
	if t != nil && len(t.Vars) > 0 {
		s.defs = maps.Clone(play.Vars)
		if s.defs == nil {
			s.defs = map[string]any{}
		}
		maps.Copy(s.defs, t.Vars)
	}
	s.reset()
	return s
}

func (s *Scope) reset() { s.done, s.failed = map[string]any{}, map[string]error{} }

// Set gives name a value (a task's result, which its until, failed_when
// and changed_when read).
func (s *Scope) Set(name string, v any) {
	s.values[name] = v
	s.reset() // vars may read it
}

// VarError is a variable of vars that could not be rendered.
type VarError struct {
	Name string
	Err  error
}

func (e *VarError) Error() string { return fmt.Sprintf("vars: %s: %v", e.Name, e.Err) }
func (e *VarError) Unwrap() error { return e.Err }

// Get returns the value of name, rendering a definition the first time.
func (s *Scope) Get(name string) (any, bool, error) {
	if v, ok := s.values[name]; ok {
		return v, true, nil
	}
	raw, ok := s.defs[name]
	if !ok {
		return nil, false, nil
	}
	if v, ok := s.done[name]; ok {
		return v, true, nil
	}
	if err, ok := s.failed[name]; ok {
		return nil, true, err
	}
	if i := slices.Index(s.reading, name); i >= 0 {
		return nil, true, &VarError{name, fmt.Errorf("reads itself (%s)", strings.Join(append(slices.Clone(s.reading[i:]), name), " -> "))}
	}
	s.reading = append(s.reading, name)
	v, err := s.Value(raw)
	s.reading = s.reading[:len(s.reading)-1]
	if err != nil {
		var ve *VarError
		if !errors.As(err, &ve) {
			err = &VarError{name, err}
		}
		s.failed[name] = err
		return nil, true, err
	}
	s.done[name] = v
	return v, true, nil
}

// Value renders every string inside v, as the builder does at plan time.
func (s *Scope) Value(v any) (any, error) {
	return mapStrings(v, func(text string) (any, error) { return s.render(tmplKey{text, true}) })
}

func (s *Scope) render(k tmplKey) (any, error) {
	if !tmpl.Has(k.text) {
		return k.text, nil
	}
	p := cachedParse(k)
	if p.err != nil {
		return nil, p.err
	}
	ctx := make(map[string]any, len(p.roots))
	for _, r := range p.roots {
		v, ok, err := s.Get(r)
		if err != nil {
			return nil, err
		}
		if ok {
			ctx[r] = v
		}
	}
	return p.t.Value(ctx)
}

// Text renders s to text.
func (s *Scope) Text(text string) (string, error) {
	v, err := s.Value(text)
	if err != nil || v == nil {
		return "", err
	}
	return pyText(v), nil
}

// Holds evaluates conditions, Jinja expressions as Ansible writes them
// (out.rc == 0); all must hold.
func (s *Scope) Holds(conds []string) (bool, error) {
	for _, c := range conds {
		v, err := s.render(tmplKey{"{{ " + c + " }}", false})
		if err != nil {
			return false, fmt.Errorf("the condition %q: %w", c, err)
		}
		if !tmpl.Truthy(v) {
			return false, nil
		}
	}
	return true, nil
}

// Map returns every variable of the scope, for modules that read any
// (template, debug's var): vars that cannot be rendered are left out.
func (s *Scope) Map() map[string]any {
	out := maps.Clone(s.values)
	for k := range s.defs {
		if _, ok := out[k]; !ok {
			if v, _, err := s.Get(k); err == nil {
				out[k] = v
			}
		}
	}
	return out
}

// Items evaluates the loop of t to its items.
func (s *Scope) Items(t *Task) ([]any, error) {
	v, err := s.Value(t.Loop)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loopKey(t.LoopWith), err)
	}
	return LoopList(t.LoopWith, v)
}

// Render renders a deferred task for this scope (which holds its loop
// item, if any); a task that is not deferred is returned as it is.
func (p *Plan) Render(t *Task, s *Scope) (*Task, error) {
	if !t.Deferred {
		return t, nil
	}
	rt := *t
	rt.Deferred, rt.Loop, rt.LoopWith, rt.Items = false, nil, "", nil
	var err error
	if rt.Name, err = s.Text(t.Name); err != nil {
		return nil, fmt.Errorf("name: %w", err)
	}
	if rt.Chdir, err = s.Text(t.Chdir); err != nil {
		return nil, fmt.Errorf("chdir: %w", err)
	}
	args, err := s.Value(t.Args)
	if err != nil {
		return nil, err
	}
	rt.Args, _ = args.(map[string]any)
	if t.Environment != nil {
		rt.Environment = map[string]string{}
		for k, v := range t.Environment {
			if rt.Environment[k], err = s.Text(v); err != nil {
				return nil, fmt.Errorf("environment: %w", err)
			}
		}
	}
	if t.DelegateTo != "" {
		to, err := s.Text(t.DelegateTo)
		if err == nil {
			rt.DelegateTo, err = p.Delegate(to)
		}
		if err != nil {
			return nil, fmt.Errorf("delegate_to: %w", err)
		}
	}
	return &rt, nil
}

// LoopList turns the value of a task's loop into its items: loop takes a
// list; with_items flattens one level (Ansible's [[1, 2], 3] is 1, 2, 3)
// and takes a single value as one item; with_dict gives {key, value} of a
// mapping, by key; with_sequence Ansible's sequence of text.
func LoopList(with string, v any) ([]any, error) {
	switch with {
	case "":
		list, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("loop: %s is not a list", pyText(v))
		}
		return list, nil
	case "items":
		switch x := v.(type) {
		case []any:
			var out []any
			for _, e := range x {
				if l, ok := e.([]any); ok {
					out = append(out, l...)
				} else {
					out = append(out, e)
				}
			}
			return out, nil
		case map[string]any, *ordered.Map:
			return nil, fmt.Errorf("with_items: %s is a mapping, expected a list (use with_dict for its keys and values)", pyText(v))
		}
		return []any{v}, nil
	case "dict":
		out := []any{}
		switch m := v.(type) {
		case *ordered.Map:
			for _, k := range m.Keys() {
				e, _ := m.Get(k)
				out = append(out, map[string]any{"key": k, "value": e})
			}
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(m)) {
				out = append(out, map[string]any{"key": k, "value": m[k]})
			}
		default:
			return nil, fmt.Errorf("with_dict: %s is not a mapping", pyText(v))
		}
		return out, nil
	case "sequence":
		terms, ok := v.([]any)
		if !ok {
			terms = []any{v}
		}
		var out []any
		for _, term := range terms {
			s, ok := term.(string)
			if !ok {
				return nil, fmt.Errorf("with_sequence: %s is not text such as \"start=1 end=10\"", pyText(term))
			}
			items, err := schema.Sequence(s)
			if err != nil {
				return nil, fmt.Errorf("with_sequence: %w", err)
			}
			out = append(out, items...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown loop with_%s", with)
}

// Localhost is what delegate_to names this machine by.
const Localhost = "localhost"

// Delegate finds the host a delegate_to names: a host of the plan by name,
// Localhost (also 127.0.0.1, ::1) for this machine, a host by one of its
// addresses, or a host pattern (cloud.flink.*.job_manager) that selects
// exactly one host.
func (p *Plan) Delegate(to string) (string, error) {
	for _, h := range p.Hosts {
		if h.Name == to {
			return h.Name, nil
		}
	}
	switch to {
	case Localhost, "127.0.0.1", "::1":
		return Localhost, nil
	case "":
		return "", fmt.Errorf("no host given")
	}
	var found []string
	for _, h := range p.Hosts {
		if h.Address == to || h.Address4 == to || h.Address6 == to {
			found = append(found, h.Name)
		}
	}
	if len(found) == 0 && p.inv != nil {
		if pat, err := pattern.Parse(to); err == nil {
			for _, i := range pat.Select(p.inv.hostIndex) {
				found = append(found, p.inv.hosts[i].Name)
			}
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%q is no host of the experiment (a host's name, address or a pattern selecting one), nor localhost", to)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%q selects %d hosts (%s); it must name one", to, len(found), strings.Join(found[:min(3, len(found))], ", "))
}

// pyText is a value as Python's str() writes it, which is how Ansible
// turns a variable into text (True, 420, 1.0).
func pyText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	s, err := strTemplate.Render(map[string]any{"v": v})
	if err != nil {
		return fmt.Sprint(v)
	}
	return s
}

var strTemplate = func() *tmpl.Template {
	t, err := tmpl.Parse("{{ v }}")
	if err != nil {
		panic(err)
	}
	return t
}()

// The templates tasks render when they run, parsed once.
var runTemplates sync.Map // tmplKey -> parsed

func cachedParse(k tmplKey) parsed {
	if p, ok := runTemplates.Load(k); ok {
		return p.(parsed)
	}
	p := parseTemplate(k)
	runTemplates.Store(k, p)
	return p
}
