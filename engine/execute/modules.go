package execute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/ordered"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/tmpl"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/schema"
)

// call is one module call: a rendered task on one host.
type call struct {
	e     *Executor
	ctx   context.Context
	r     transport.Runner
	host  string
	phase schema.Phase
	t     *plan.Task
	a     args
	scope *plan.Scope    // the variables of the task, lazily rendered
	vars  map[string]any // all of them, for modules that read any
}

// moduleFuncs run the modules of schema's table.
var moduleFuncs = map[string]func(*call) (map[string]any, error){
	"debug":       (*call).debug,
	"shell":       (*call).shell,
	"command":     (*call).shell,
	"raw":         (*call).raw,
	"script":      (*call).script,
	"copy":        (*call).copy,
	"template":    (*call).template,
	"fetch":       (*call).fetch,
	"wait_for":    (*call).waitFor,
	"file":        (*call).file,
	"stat":        (*call).stat,
	"lineinfile":  (*call).lineinfile,
	"blockinfile": (*call).blockinfile,
	"set_fact":    (*call).setFact,
	"assert":      (*call).assert,
	"fail":        (*call).fail,
	"get_url":     (*call).getURL,
	"uri":         (*call).uri,
	"unarchive":   (*call).unarchive,
	"synchronize": (*call).synchronize,
	"apt":         (*call).apt,
	"package":     (*call).pkg,
	"systemd":     (*call).systemd,
	"service":     (*call).service,
	"user":        (*call).user,
}

// module runs one rendered task on a host and returns what register stores.
func (e *Executor) module(ctx context.Context, r transport.Runner, host string, phase schema.Phase, t *plan.Task, sc *plan.Scope) (map[string]any, error) {
	c := &call{e: e, ctx: ctx, r: r, host: host, phase: phase, t: t, a: args(t.Args), scope: sc, vars: sc.Map()}
	if t.Async > 0 {
		if t.Module != "shell" && t.Module != "command" {
			return nil, fmt.Errorf("async: e2c runs shell and command tasks in the background, not %s", t.Module)
		}
		return c.async()
	}
	run, ok := moduleFuncs[t.Module]
	if !ok {
		return nil, fmt.Errorf("module %q is not supported", t.Module)
	}
	return run(c)
}

// failed returns the result of a module that failed, with Ansible's msg,
// and the error saying it.
func failed(result map[string]any, format string, a ...any) (map[string]any, error) {
	msg := fmt.Sprintf(format, a...)
	if result == nil {
		result = map[string]any{}
	}
	result["msg"] = msg
	if _, ok := result["changed"]; !ok {
		result["changed"] = false
	}
	return result, errors.New(msg)
}

// args reads module arguments with Ansible's loose typing.
type args map[string]any

func (a args) str(k string) string {
	switch v := a[k].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// mapping reads a mapping argument, as written (an *ordered.Map) or built
// in Go; it is nil if the argument is not one.
func (a args) mapping(k string) map[string]any {
	switch v := a[k].(type) {
	case map[string]any:
		return v
	case *ordered.Map:
		m := make(map[string]any, v.Len())
		for _, key := range v.Keys() {
			m[key], _ = v.Get(key)
		}
		return m
	}
	return nil
}

func (a args) has(k string) bool { _, ok := a[k]; return ok && a[k] != nil }

func (a args) boolean(k string, def bool) bool {
	if b, ok := schema.ModuleBool(a[k]); ok {
		return b
	}
	return def
}

// list reads a list argument: a list, or a string of comma-separated items.
func (a args) list(k string) []string {
	var out []string
	switch v := a[k].(type) {
	case nil:
	case []any:
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
	default:
		for _, x := range strings.Split(fmt.Sprint(v), ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

func (a args) seconds(k string, def time.Duration) (time.Duration, error) {
	s := a.str(k)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: %q is not a number of seconds", k, s)
	}
	return time.Duration(n * float64(time.Second)), nil
}

// mode reads a file mode written as Ansible does ("0644"); a YAML number
// written 0644 has already been read as octal. ok is false for a
// symbolic mode ("u+x"), which chmod on the host applies.
func (a args) mode() (m fs.FileMode, ok bool, err error) {
	switch v := a["mode"].(type) {
	case nil:
		return 0, true, nil
	case int:
		return fs.FileMode(v), true, nil
	case string:
		if v == "preserve" {
			return transport.SourceMode, true, nil
		}
		if strings.Trim(v, "01234567") != "" {
			return 0, false, nil
		}
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil {
			return 0, false, fmt.Errorf("mode: %q is not an octal mode such as \"0644\"", v)
		}
		return fs.FileMode(m), true, nil
	}
	return 0, false, fmt.Errorf("mode: %v is not an octal mode such as \"0644\"", a["mode"])
}

// debug prints a message, or a variable as JSON ("VARIABLE IS NOT
// DEFINED!" for one that is not, as in Ansible).
func (c *call) debug() (map[string]any, error) {
	if name := c.a.str("var"); name != "" {
		t, err := tmpl.Parse("{{ " + name + " }}")
		if err != nil {
			return nil, err
		}
		v, err := t.Value(c.vars)
		var undef *tmpl.UndefinedError
		if errors.As(err, &undef) {
			v, err = "VARIABLE IS NOT DEFINED!", nil
		}
		if err != nil {
			return nil, err
		}
		data, _ := json.Marshal(v)
		c.e.logf(c.host, "%s = %s", name, data)
		return map[string]any{name: v, "changed": false}, nil
	}
	msg := c.a["msg"]
	if msg == nil {
		msg = "Hello world!"
	}
	if s, ok := msg.(string); ok {
		c.e.logf(c.host, "%s", s)
	} else {
		data, _ := json.Marshal(msg)
		c.e.logf(c.host, "%s", data)
	}
	return map[string]any{"msg": msg, "changed": false}, nil
}

// waitFor waits on the host for a port to accept (or stop accepting)
// connections, or a path to appear (or disappear).
func (c *call) waitFor() (map[string]any, error) {
	a := c.a
	timeout, err := a.seconds("timeout", 300*time.Second)
	if err != nil {
		return nil, err
	}
	delay, err := a.seconds("delay", 0)
	if err != nil {
		return nil, err
	}
	state := a.str("state")
	var check string
	switch {
	case a.str("path") != "":
		check = "test -e " + quote(a.str("path"))
		if state == "" {
			state = "present"
		}
	default:
		target := a.str("host")
		if target == "" {
			target = "127.0.0.1"
		}
		if _, err := strconv.Atoi(a.str("port")); err != nil {
			return nil, fmt.Errorf("wait_for: port %q is not a number", a.str("port"))
		}
		check = portCheck(target, a.str("port"))
		if state == "" {
			state = "started"
		}
	}
	want := "0"
	switch state {
	case "started", "present":
	case "stopped", "absent":
		want = "1"
	default:
		return nil, fmt.Errorf("wait_for: state %q, expected started, stopped, present or absent", state)
	}
	script := fmt.Sprintf(`sleep %.1f
end=$(( $(date +%%s) + %d ))
while :; do
  if %s; then r=0; else r=1; fi
  [ "$r" = %s ] && exit 0
  [ "$(date +%%s)" -ge "$end" ] && { echo "timed out after %s" >&2; exit 1; }
  sleep 0.2
done`, delay.Seconds(), int(timeout.Seconds()), check, want, timeout)
	start := time.Now()
	res, err := c.r.Run(c.ctx, transport.Command{Script: script})
	if err != nil {
		return nil, fmt.Errorf("wait_for %s: %w", strings.TrimSpace(res.Stderr), err)
	}
	return map[string]any{"changed": false, "elapsed": time.Since(start).Seconds()}, nil
}

// portCheck tests a TCP port with whatever the host has: bash's /dev/tcp,
// nc, or (for this host) ss.
func portCheck(host, port string) string {
	h, p := quote(host), quote(port)
	return fmt.Sprintf(`{ if command -v bash >/dev/null 2>&1; then bash -c 'exec 3<>/dev/tcp/'%s'/'%s 2>/dev/null;`+
		` elif command -v nc >/dev/null 2>&1; then nc -z %s %s 2>/dev/null;`+
		` else ss -Htln 2>/dev/null | grep -q ":"%s" "; fi; }`, h, p, h, p, p)
}
