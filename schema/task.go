package schema

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/e2c-dev/e2c/schema/suggest"
	"gopkg.in/yaml.v3"
)

// Task is one task: a module with its arguments and Ansible's task
// keywords; or a block, which has no module but tasks of its own.
type Task struct {
	Node
	Name   string
	Module string
	// Args holds the module's arguments as plain data; the free-form text
	// of shell and command is under "cmd".
	Args map[string]any
	// A block runs its Block tasks, then Rescue's if one of them failed,
	// then Always's in any case. Its keywords apply to all of them.
	Block, Rescue, Always []Task
	// Loop is a list, or a template that renders to one; nil without loop.
	// LoopWith is "items", "dict" or "sequence" for with_<name>, whose
	// value Ansible turns into the list in its own way; "" for loop.
	Loop        any
	LoopWith    string
	LoopControl LoopControl
	Async       int // seconds; 0 runs in the foreground
	Poll        int
	When        []string // conditions that must all hold
	Until       []string // with until, the task is tried again until they hold
	Retries     int      // attempts after the first (Ansible's default 3)
	Delay       int      // seconds between attempts (Ansible's default 5)
	FailedWhen  []string
	ChangedWhen []string
	// IgnoreErrors, Become, BecomeUser and NoLog apply where written
	// (Has says so), and otherwise come from the block or play.
	IgnoreErrors bool
	Register     string
	Environment  map[string]any
	Vars         map[string]any
	Become       bool
	BecomeUser   string
	DelegateTo   string // a host of the plan or localhost (local_action)
	RunOnce      bool
	NoLog        bool
	Chdir        string
}

// IsBlock reports whether t is a block rather than a module's task.
func (t *Task) IsBlock() bool { return t.Has("block") }

// LoopControl is loop_control.
type LoopControl struct {
	Var      string  // the item's name, item by default
	IndexVar string  // names the item's index (0, 1, ...), if set
	Label    string  // shows an item, in place of its value
	Pause    float64 // seconds between items
}

var (
	taskKeys = []string{"name", "when", "loop", "with_items", "with_dict", "with_sequence", "loop_control", "register",
		"ignore_errors", "failed_when", "changed_when", "until", "retries", "delay", "async", "poll", "environment", "vars",
		"become", "become_user", "delegate_to", "local_action", "action", "run_once", "no_log", "args", "chdir"}
	blockKeys       = []string{"block", "rescue", "always", "name", "when", "ignore_errors", "environment", "vars", "become", "become_user", "no_log"}
	loopControlKeys = []string{"loop_var", "index_var", "label", "pause"}
)

const maxAsync = 366 * 24 * 3600 // a year, in seconds

func (d *decoder) tasks(n *yaml.Node, what string, depth int) []Task {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: found %s, expected a list of tasks", what, describe(n))
		return nil
	}
	if depth > maxDepth {
		d.errorf(n, "%s: blocks nested more than %d deep", what, maxDepth)
		return nil
	}
	out := make([]Task, 0, len(n.Content))
	for _, c := range n.Content {
		out = append(out, d.task(c, depth))
	}
	return out
}

func (d *decoder) task(n *yaml.Node, depth int) Task {
	fs, node := d.fields(n, "task", nil)
	t := Task{Node: node, Retries: 3, Delay: 5}
	if node.Has("block") {
		return d.block(t, fs, depth)
	}
	var calls []field
	var extra *yaml.Node // args:
	loopKey, unknown := "", false
	for _, f := range fs {
		key := "task." + f.key
		if d.common(&t, f) {
			continue
		}
		switch f.key {
		case "loop", "with_items", "with_dict", "with_sequence":
			if loopKey != "" {
				d.errorf(f.k, "task: %s and %s both give the loop; give one", loopKey, f.key)
				continue
			}
			loopKey = f.key
			d.loop(&t, f)
		case "loop_control":
			t.LoopControl = d.loopControl(f.v)
		case "async":
			t.Async = d.integer(f.v, key, 0, maxAsync)
		case "poll":
			t.Poll = d.integer(f.v, key, 0, maxAsync)
		case "until":
			t.Until = d.conditions(f.v, key)
		case "retries":
			t.Retries = d.integer(f.v, key, 0, 1_000_000)
		case "delay":
			t.Delay = d.integer(f.v, key, 0, maxAsync)
		case "failed_when":
			t.FailedWhen = d.conditions(f.v, key)
		case "changed_when":
			t.ChangedWhen = d.conditions(f.v, key)
		case "register":
			t.Register = d.varName(f.v, key)
		case "delegate_to":
			t.DelegateTo = d.str(f.v, key)
		case "run_once":
			t.RunOnce = d.boolean(f.v, key)
		case "args":
			extra = resolve(f.v)
		case "chdir":
			t.Chdir = d.str(f.v, key)
		case "rescue", "always":
			d.errorf(f.k, "task: %s belongs to a block; write it beside block:", f.key)
		default:
			if f.key == "local_action" || f.key == "action" || isModule(f.key) {
				calls = append(calls, f)
				continue
			}
			unknown = true
			d.errorf(f.k, "%s", unknownModule(f.key))
		}
	}
	if node.Has("async") && !node.Has("poll") {
		t.Poll = 15 // Ansible's default
	}
	switch {
	case len(calls) == 0 && unknown: // reported
	case len(calls) == 0:
		d.errs.At(node.Pos, "task: no module; expected one of: %s", strings.Join(ModuleNames(), ", "))
	case len(calls) > 1:
		d.errorf(calls[1].k, "task: %q and %q are both modules; a task runs one module", calls[0].key, calls[1].key)
	default:
		t.Module, t.Args = d.moduleCall(calls[0], extra, node)
		if calls[0].key == "local_action" {
			if node.Has("delegate_to") {
				d.errorf(calls[0].k, "task: local_action runs on this machine; it takes no delegate_to")
			}
			t.DelegateTo = "localhost"
		}
	}
	if t.Loop == nil && node.Has("loop_control") {
		d.errs.At(node.At("loop_control"), "task: loop_control without a loop")
	}
	if t.Async > 0 && t.DelegateTo != "" {
		d.errs.At(node.At("async"), "task: a background (async) task cannot be delegated: e2c stops background jobs on the host that started them")
	}
	return t
}

// common reads a keyword tasks and blocks share; false if f is none.
func (d *decoder) common(t *Task, f field) bool {
	key := "task." + f.key
	switch f.key {
	case "name":
		t.Name = d.str(f.v, key)
	case "when":
		t.When = d.conditions(f.v, key)
	case "become":
		t.Become = d.boolean(f.v, key)
	case "become_user":
		t.BecomeUser = d.userName(f.v, key)
	case "environment":
		t.Environment = d.envVars(f.v, key)
	case "vars":
		t.Vars = d.vars(f.v, key, t.Node)
	case "ignore_errors":
		t.IgnoreErrors = d.boolean(f.v, key)
	case "no_log":
		t.NoLog = d.boolean(f.v, key)
	default:
		return false
	}
	return true
}

func (d *decoder) block(t Task, fs []field, depth int) Task {
	for _, f := range fs {
		if d.common(&t, f) {
			continue
		}
		switch f.key {
		case "block":
			t.Block = d.tasks(f.v, "block", depth+1)
		case "rescue":
			t.Rescue = d.tasks(f.v, "rescue", depth+1)
		case "always":
			t.Always = d.tasks(f.v, "always", depth+1)
		default:
			if contains(taskKeys, f.key) || isModule(f.key) {
				d.errorf(f.k, "block: %q applies to a task, not to a block (e2c takes only %s on a block)", f.key, strings.Join(blockKeys, ", "))
				continue
			}
			d.errorf(f.k, "block: unknown key %q%s; expected one of: %s", f.key, suggest.Hint(f.key, blockKeys), strings.Join(blockKeys, ", "))
		}
	}
	return t
}

var userRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*[$]?$`)

// userName reads the name of a user of a host (become_user).
func (d *decoder) userName(n *yaml.Node, what string) string {
	s := d.str(n, what)
	if s != "" && !userRE.MatchString(s) {
		d.errorf(n, "%s: %q is not a user name (templates are not supported here)", what, s)
	}
	return s
}

// varName reads a variable name (register, loop_var).
func (d *decoder) varName(n *yaml.Node, what string) string {
	s := d.str(n, what)
	if s != "" && !identRE.MatchString(s) {
		d.errorf(n, "%s: %q is not a valid variable name", what, s)
	}
	return s
}

// conditions reads when, until, failed_when or changed_when: one
// condition or a list, each a Jinja expression. A YAML boolean or number
// stands for itself (changed_when: false, when: no).
func (d *decoder) conditions(n *yaml.Node, what string) []string {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	var out []string
	for _, c := range items {
		c = resolve(c)
		if c.Kind != yaml.ScalarNode {
			d.errorf(c, "%s: found %s, expected a condition such as \"out.rc == 0\"", what, describe(c))
			continue
		}
		switch v := d.scalar(c, what).(type) {
		case nil:
		case bool:
			out = append(out, map[bool]string{true: "True", false: "False"}[v])
		case string:
			out = append(out, v)
		default:
			out = append(out, fmt.Sprint(v))
		}
	}
	return out
}

// loop reads loop or a with_<name> lookup. Ansible's with_items takes a
// single value as one item; with_dict a mapping, kept in its written
// order as a list of {key, value}; with_sequence its argument text.
func (d *decoder) loop(t *Task, f field) {
	key := "task." + f.key
	v := resolve(f.v)
	t.Loop, t.LoopWith = d.value(v, key), strings.TrimPrefix(strings.TrimPrefix(f.key, "loop"), "with_")
	template := v.Kind == yaml.ScalarNode && strings.Contains(v.Value, "{{")
	switch f.key {
	case "loop":
		if _, ok := t.Loop.([]any); !ok && !template {
			d.errorf(v, "%s: found %s, expected a list or a template such as \"{{ range(1, 41)|list }}\"", key, describe(v))
		}
	case "with_items":
		if v.Kind == yaml.MappingNode {
			d.errorf(v, "%s: found a mapping, expected a list (Ansible would loop over its keys; use with_dict for keys and values)", key)
		}
	case "with_dict":
		switch {
		case v.Kind == yaml.MappingNode:
			pairs := []any{}
			fs, _ := d.fields(v, key, nil)
			for _, p := range fs {
				pairs = append(pairs, map[string]any{"key": p.key, "value": d.value(p.v, key+"."+p.key)})
			}
			t.Loop, t.LoopWith = pairs, "" // now a plain list, in the written order
		case !template:
			d.errorf(v, "%s: found %s, expected a mapping or a template giving one", key, describe(v))
		}
	case "with_sequence":
		s, ok := t.Loop.(string)
		if !ok {
			d.errorf(v, "%s: found %s, expected arguments such as \"start=1 end=10\" or \"1-10\"", key, describe(v))
		} else if !template {
			if _, err := Sequence(s); err != nil {
				d.errorf(v, "%s: %v", key, err)
			}
		}
	}
}

func (d *decoder) loopControl(n *yaml.Node) LoopControl {
	fs, _ := d.fields(n, "loop_control", loopControlKeys)
	var lc LoopControl
	for _, f := range fs {
		key := "loop_control." + f.key
		switch f.key {
		case "loop_var":
			lc.Var = d.varName(f.v, key)
		case "index_var":
			lc.IndexVar = d.varName(f.v, key)
		case "label":
			lc.Label = d.str(f.v, key)
		case "pause":
			ok := false
			switch p := d.scalar(resolve(f.v), key).(type) {
			case int:
				lc.Pause, ok = float64(p), true
			case float64:
				lc.Pause, ok = p, true
			}
			if !ok || lc.Pause < 0 || lc.Pause > maxAsync {
				d.errorf(f.v, "%s: found %s, expected a number of seconds", key, describe(f.v))
				lc.Pause = 0
			}
		}
	}
	return lc
}

func isModule(key string) bool {
	_, ok := modules[moduleName(key)]
	return ok
}

// moduleCall reads the module of a task and its arguments, in any of
// Ansible's forms: `module: {key: value}`, `module: key=value ...`, a
// command line for shell and command (with Ansible's chdir=... options
// taken out of it), `local_action: module key=value`, and `args:`
// (extra), which the module's own arguments override. Each argument's
// position is recorded in t as "args.<name>".
func (d *decoder) moduleCall(f field, extra *yaml.Node, t Node) (string, map[string]any) {
	name, v, kv := moduleName(f.key), resolve(f.v), ""
	hasKV := false
	if f.key == "local_action" || f.key == "action" {
		name, v, kv, hasKV = d.action(f)
		if name == "" {
			return "", nil
		}
	}
	spec, ok := modules[name]
	if !ok {
		d.errorf(f.v, "%s: unknown module %q%s; supported modules: %s", f.key, name, suggest.Hint(name, ModuleNames()), strings.Join(ModuleNames(), ", "))
		return "", nil
	}
	t.keys[name] = d.pos(f.v) // found by its canonical name too
	r := d.argReader(name, t)
	if extra != nil {
		if extra.Kind != yaml.MappingNode {
			d.errorf(extra, "args: found %s, expected a mapping of the module's arguments", describe(extra))
		} else {
			r.mapping(extra)
		}
	}
	switch {
	case v == nil: // local_action with its arguments as text only
	case v.Kind == yaml.MappingNode:
		r.mapping(v)
	case v.Kind == yaml.ScalarNode && !isNull(v):
		kv, hasKV = v.Value, true
	case isNull(v):
	default:
		form := "a mapping of arguments or key=value pairs"
		if spec.freeForm {
			form = "a command line or a mapping of arguments"
		}
		d.errorf(v, "%s: found %s, expected %s (%s)", name, describe(v), form, strings.Join(spec.args, ", "))
	}
	if hasKV {
		at := f.v
		if v != nil {
			at = v
		}
		r.text(kv, at)
	}
	r.check(t.At(name))
	return name, r.args
}

// action reads local_action (or action): "module key=value ..." or a
// mapping with module: and the arguments beside it.
func (d *decoder) action(f field) (name string, args *yaml.Node, kv string, hasKV bool) {
	v := resolve(f.v)
	text := v.Value
	if v.Kind == yaml.MappingNode {
		fs, node := d.fields(v, f.key, nil)
		for _, g := range fs {
			if g.key == "module" {
				text = d.str(g.v, f.key+".module")
			}
		}
		if !node.Has("module") {
			d.errorf(v, "%s: missing required key \"module\"", f.key)
			return "", nil, "", false
		}
		// The mapping without module: is the arguments.
		rest := &yaml.Node{Kind: yaml.MappingNode, Line: v.Line, Column: v.Column}
		for i := 0; i+1 < len(v.Content); i += 2 {
			if resolve(v.Content[i]).Value != "module" {
				rest.Content = append(rest.Content, v.Content[i], v.Content[i+1])
			}
		}
		args = rest
	} else if v.Kind != yaml.ScalarNode || isNull(v) {
		d.errorf(v, "%s: found %s, expected a module and its arguments, such as \"shell echo hi\"", f.key, describe(v))
		return "", nil, "", false
	}
	words, err := splitArgs(strings.TrimSpace(text))
	if err != nil || len(words) == 0 {
		d.errorf(v, "%s: expected a module and its arguments, such as \"shell echo hi\"", f.key)
		return "", nil, "", false
	}
	name = moduleName(strings.TrimSpace(words[0]))
	if len(words) > 1 {
		kv, hasKV = strings.Join(words[1:], " "), true
	}
	return name, args, kv, hasKV
}
