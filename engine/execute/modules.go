package execute

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/tmpl"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// module runs one rendered task on a host and returns what register stores.
func (e *Executor) module(ctx context.Context, r transport.Runner, host, phase string, t *plan.Task, vars map[string]any) (map[string]any, error) {
	a := args(t.Args)
	if t.Async > 0 && (t.Module == "shell" || t.Module == "command") {
		return e.async(ctx, r, host, t, a)
	}
	switch t.Module {
	case "debug":
		return e.debug(host, a, vars)
	case "shell", "command":
		return e.shell(ctx, r, host, t, a)
	case "copy":
		return e.copy(ctx, r, a)
	case "fetch":
		return e.fetch(ctx, r, host, phase, a)
	case "template":
		return e.template(ctx, r, a, vars)
	case "wait_for":
		return e.waitFor(ctx, r, host, a)
	}
	return nil, fmt.Errorf("module %q is not supported", t.Module)
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

func (a args) boolean(k string, def bool) bool {
	switch v := a[k].(type) {
	case bool:
		return v
	case string:
		if b, ok := schema.ParseBool(v); ok {
			return b
		}
	}
	return def
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
// written 0644 has already been read as octal.
func (a args) mode() (fs.FileMode, error) {
	switch v := a["mode"].(type) {
	case nil:
		return 0, nil
	case int:
		return fs.FileMode(v), nil
	case string:
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil {
			return 0, fmt.Errorf("mode: %q is not an octal mode such as \"0644\"", v)
		}
		return fs.FileMode(m), nil
	}
	return 0, fmt.Errorf("mode: %v is not an octal mode such as \"0644\"", a["mode"])
}

func (e *Executor) debug(host string, a args, vars map[string]any) (map[string]any, error) {
	if name := a.str("var"); name != "" {
		t, err := tmpl.Parse("{{ " + name + " }}")
		if err != nil {
			return nil, err
		}
		v, err := t.Value(vars)
		if err != nil {
			return nil, err
		}
		data, _ := json.Marshal(v)
		e.logf(host, "%s = %s", name, data)
		return map[string]any{name: v, "changed": false}, nil
	}
	msg := a.str("msg")
	e.logf(host, "%s", msg)
	return map[string]any{"msg": msg, "changed": false}, nil
}

// shell runs shell (through sh) and command (the words of the line, no
// shell features, as Ansible's command module does).
func (e *Executor) shell(ctx context.Context, r transport.Runner, host string, t *plan.Task, a args) (map[string]any, error) {
	script, dir, err := commandLine(t, a)
	if err != nil {
		return nil, err
	}
	stdout := &hostLines{out: e.out, host: host}
	stderr := &hostLines{out: e.out, host: host}
	res, err := r.Run(ctx, transport.Command{Script: script, Env: t.Environment, Dir: dir, Sudo: t.Become, Stdout: stdout, Stderr: stderr})
	stdout.flush()
	stderr.flush()
	return commandResult(res), err
}

// commandLine is the script and working directory of a shell or command
// task: command runs the words of its line without a shell.
func commandLine(t *plan.Task, a args) (script, dir string, err error) {
	script = a.str("cmd")
	if t.Module == "command" {
		words, err := splitWords(script)
		if err != nil {
			return "", "", err
		}
		script = "exec " + quoteWords(words)
	}
	dir = t.Chdir
	if d := a.str("chdir"); d != "" {
		dir = d
	}
	return script, dir, nil
}

func commandResult(res transport.Result) map[string]any {
	return map[string]any{
		"rc": res.Code, "stdout": strings.TrimRight(res.Stdout, "\n"), "stderr": strings.TrimRight(res.Stderr, "\n"),
		"stdout_lines": lines(res.Stdout), "stderr_lines": lines(res.Stderr), "changed": true,
	}
}

func lines(s string) []any {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return []any{}
	}
	parts := strings.Split(s, "\n")
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out
}

// copy follows Ansible: a directory src ending in "/" copies its contents
// into dest; without the slash the directory itself goes under dest; a file
// goes to dest, or into it when dest ends in "/".
func (e *Executor) copy(ctx context.Context, r transport.Runner, a args) (map[string]any, error) {
	// Checked now, whatever validate found: files change, and a deferred
	// task's src is known only now.
	src, err := e.plan.Source("copy", a.str("src"))
	if err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	dest := a.str("dest")
	mode, err := a.mode()
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	target := dest
	switch {
	case st.IsDir() && !strings.HasSuffix(a.str("src"), "/"):
		target = path.Join(dest, filepath.Base(src))
	case !st.IsDir() && strings.HasSuffix(dest, "/"):
		target = path.Join(dest, filepath.Base(src))
	}
	stats, err := r.Put(ctx, src, target, mode)
	if err != nil {
		return nil, fmt.Errorf("copy %s to %s: %w", src, target, err)
	}
	return map[string]any{"dest": target, "changed": stats.Copied > 0, "copied": stats.Copied, "skipped": stats.Skipped}, nil
}

// fetch stores the remote src at dest/<host>/<src path>, or with flat at
// dest (or dest/<name of src> when dest ends in "/"). The remote path can
// never make the file land outside dest.
func (e *Executor) fetch(ctx context.Context, r transport.Runner, host, phase string, a args) (map[string]any, error) {
	src, dest := a.str("src"), a.str("dest")
	rel := host + "/" + strings.TrimPrefix(path.Clean("/"+src), "/")
	if a.boolean("flat", false) {
		rel = path.Base(src)
		if !strings.HasSuffix(dest, "/") {
			dest, rel = filepath.Dir(dest), filepath.Base(dest)
		}
	}
	local, err := e.plan.FetchPath(phase, dest, rel)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", src, err)
	}
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return nil, err
	}
	if err := r.Get(ctx, src, local); err != nil {
		if !a.boolean("fail_on_missing", true) {
			e.logf(host, "fetch %s: %v (fail_on_missing: no)", src, err)
			return map[string]any{"changed": false, "file": src, "missing": true}, nil
		}
		return nil, fmt.Errorf("fetch %s: %w", src, err)
	}
	if a.boolean("validate_checksum", true) {
		res, err := r.Run(ctx, transport.Command{Script: "sha256sum -- " + quote(src)})
		if err != nil {
			return nil, fmt.Errorf("fetch %s: checksum on the host: %w", src, err)
		}
		remote, _, _ := strings.Cut(res.Stdout, " ")
		if sum, err := results.FileSHA256(local); err != nil || sum != remote {
			return nil, fmt.Errorf("fetch %s: checksum differs after transfer (host %s, local %s)", src, remote, sum)
		}
	}
	return map[string]any{"changed": true, "dest": local}, nil
}

// template renders a controller file with the task's variables and puts
// the result at dest.
func (e *Executor) template(ctx context.Context, r transport.Runner, a args, vars map[string]any) (map[string]any, error) {
	src, err := e.plan.Source("template", a.str("src"))
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	t, err := tmpl.Parse(string(data))
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", src, err)
	}
	text, err := t.Render(vars)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", src, err)
	}
	tmp, err := os.CreateTemp("", "e2c-template-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(text); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	mode, err := a.mode()
	if err != nil {
		return nil, err
	}
	if mode == 0 {
		mode = 0o644
	}
	if _, err := r.Put(ctx, tmp.Name(), a.str("dest"), mode); err != nil {
		return nil, fmt.Errorf("template to %s: %w", a.str("dest"), err)
	}
	return map[string]any{"changed": true, "dest": a.str("dest")}, nil
}

// waitFor waits on the host for a port to accept (or stop accepting)
// connections, or a path to appear (or disappear).
func (e *Executor) waitFor(ctx context.Context, r transport.Runner, host string, a args) (map[string]any, error) {
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
	res, err := r.Run(ctx, transport.Command{Script: script})
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
