package plan

import (
	"fmt"
	"maps"

	"github.com/e2c-dev/e2c/engine/tmpl"
)

// Vars returns every variable a task of play in phase sees on host, as the
// plan computed them; the executor adds what tasks register.
func (p *Plan) Vars(play *Play, phase, host string) map[string]any {
	vars := maps.Clone(p.ExtraVars[phase])
	maps.Copy(vars, play.HostVars[host])
	vars["inventory_hostname"] = host
	own := map[string]any{}
	for k, v := range play.Vars {
		if r, err := value(v, vars); err == nil { // checked when the plan was built
			own[k] = r
		}
	}
	maps.Copy(vars, own)
	return vars
}

// Render renders a deferred task with vars, one task per loop item. A task
// that is not deferred is returned as it is.
func Render(t *Task, vars map[string]any) ([]*Task, error) {
	if !t.Deferred {
		return []*Task{t}, nil
	}
	items := []any{nil}
	if t.Loop != nil {
		v, err := value(t.Loop, vars)
		if err != nil {
			return nil, fmt.Errorf("loop: %w", err)
		}
		list, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("loop: %v is not a list", v)
		}
		items = list
	}
	var out []*Task
	for _, item := range items {
		v := vars
		if t.Loop != nil {
			v = maps.Clone(vars)
			v["item"] = item
		}
		rt := *t
		rt.Deferred, rt.Loop = false, nil
		if t.Loop != nil {
			rt.Item = item
		}
		var err error
		if rt.Name, err = text(t.Name, v); err != nil {
			return nil, err
		}
		if rt.Chdir, err = text(t.Chdir, v); err != nil {
			return nil, err
		}
		args, err := value(t.Args, v)
		if err != nil {
			return nil, err
		}
		rt.Args, _ = args.(map[string]any)
		if t.Environment != nil {
			rt.Environment = map[string]string{}
			for k, s := range t.Environment {
				if rt.Environment[k], err = text(s, v); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, &rt)
	}
	return out, nil
}

// When evaluates a task's conditions, Jinja expressions as Ansible writes
// them (out.rc == 0); all must hold.
func When(conds []string, vars map[string]any) (bool, error) {
	for _, c := range conds {
		t, err := tmpl.Parse("{{ " + c + " }}")
		if err != nil {
			return false, fmt.Errorf("when %q: %w", c, err)
		}
		v, err := t.Value(vars)
		if err != nil {
			return false, fmt.Errorf("when %q: %w", c, err)
		}
		if !tmpl.Truthy(v) {
			return false, nil
		}
	}
	return true, nil
}

// value renders every string inside v, as the builder does at plan time.
func value(v any, vars map[string]any) (any, error) {
	return mapStrings(v, func(s string) (any, error) {
		if !tmpl.Has(s) {
			return s, nil
		}
		t, err := tmpl.Parse(s)
		if err != nil {
			return nil, err
		}
		return t.Value(vars)
	})
}

func text(s string, vars map[string]any) (string, error) {
	v, err := value(s, vars)
	if err != nil || v == nil {
		return "", err
	}
	if str, ok := v.(string); ok {
		return str, nil
	}
	return fmt.Sprint(v), nil
}
