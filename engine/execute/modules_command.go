package execute

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
)

// shell runs shell (through sh, or executable) and command (its words,
// without a shell, as Ansible's command module does), with Ansible's
// chdir, creates, removes and stdin.
func (c *call) shell() (map[string]any, error) {
	cmd, err := commandLine(c.t, c.a)
	if err != nil {
		return nil, err
	}
	if res, skip, err := c.skipBy(cmd.dir, true); err != nil {
		return nil, err
	} else if skip {
		res["cmd"] = cmd.shown
		return res, nil
	}
	start := time.Now()
	res, err := c.stream(transport.Command{Script: cmd.script, Env: c.t.Environment, Dir: cmd.dir, Sudo: c.t.Become})
	end := time.Now()
	out := commandResult(res, c.a.boolean("strip_empty_ends", true))
	out["cmd"], out["start"], out["end"], out["delta"] = cmd.shown, pyTime(start), pyTime(end), pyDelta(end.Sub(start))
	if name, ok := notFound(res); ok {
		return notFoundResult(out, cmd.shown, name)
	}
	if err != nil {
		out["msg"] = "non-zero return code"
	}
	return out, err
}

// stream runs a command whose output goes to the log as it comes.
func (c *call) stream(cmd transport.Command) (transport.Result, error) {
	stdout := &hostLines{out: c.e.out, host: c.host}
	stderr := &hostLines{out: c.e.out, host: c.host}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	res, err := c.r.Run(c.ctx, cmd)
	stdout.flush()
	stderr.flush()
	return res, err
}

// command is what a shell or command task runs.
type command struct {
	script string
	dir    string
	shown  any // Ansible's cmd: the line of a shell, the words of a command
}

// commandLine is the script and working directory of a shell or command
// task. command runs its words without a shell, each expanded as Ansible
// 2.14 does ($VAR and ${VAR} of the environment, a leading ~ or ~user);
// a missing program is reported as Ansible's rc 2 (see notFound).
func commandLine(t *plan.Task, a args) (command, error) {
	c := command{script: a.str("cmd"), dir: t.Chdir, shown: a.str("cmd")}
	if d := a.str("chdir"); d != "" {
		c.dir = d
	}
	if t.Module == "command" {
		words := a.list("argv")
		if !a.has("argv") {
			var err error
			if words, err = splitWords(c.script); err != nil {
				return c, err
			}
		}
		if len(words) == 0 {
			return c, fmt.Errorf("command: no command given")
		}
		shown := make([]any, len(words))
		expanded := make([]string, len(words))
		for i, w := range words {
			shown[i], expanded[i] = w, expandWord(w)
		}
		c.shown = shown
		c.script = expandFuncs + "set -- " + strings.Join(expanded, " ") + "\n" +
			`command -v -- "$1" >/dev/null 2>&1 || { printf '` + notFoundMark + `%s\n' "$1" >&2; exit 127; }` + "\nexec \"$@\""
	} else if exe := a.str("executable"); exe != "" {
		c.script = "exec " + quote(exe) + " -c " + quote(c.script)
	}
	if a.has("stdin") {
		data := a.str("stdin")
		if a.boolean("stdin_add_newline", true) {
			data += "\n"
		}
		c.script = printBytes([]byte(data)) + " | {\n" + c.script + "\n}"
	}
	return c, nil
}

// notFoundMark starts the line by which a command task says its program
// was not found.
const notFoundMark = "e2c: program not found: "

// notFound tells whether a command task's program was not found.
func notFound(res transport.Result) (string, bool) {
	if res.Code != 127 {
		return "", false
	}
	return strings.CutPrefix(lastLine(res.Stderr), notFoundMark)
}

// notFoundResult is Ansible's result for a program that is not there:
// run_command's OSError, rc 2.
func notFoundResult(out map[string]any, cmd any, name string) (map[string]any, error) {
	if words, ok := cmd.([]any); ok {
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = fmt.Sprint(w)
			if strings.ContainsAny(quoted[i], " \t\n'\"\\$`|&;<>()*?[]#~=%") || quoted[i] == "" {
				quoted[i] = quote(quoted[i])
			}
		}
		cmd = strings.Join(quoted, " ")
	}
	for _, k := range []string{"start", "end", "delta"} {
		delete(out, k)
	}
	out["rc"], out["cmd"], out["changed"] = 2, cmd, false
	out["stdout"], out["stderr"], out["stdout_lines"], out["stderr_lines"] = "", "", []any{}, []any{}
	return failed(out, "[Errno 2] No such file or directory: b'%s'", name)
}

// expandFuncs expand a command's words as Python's os.path.expandvars and
// expanduser do: variables of the environment only (others stay as
// written), and a home from HOME or the user database.
const expandFuncs = `e2c_env() { if command -v printenv >/dev/null 2>&1; then printenv "$1" || printf %s "$2"; else eval "printf %s \"\${$1-\$2}\""; fi; }
e2c_home() {
  if [ -z "$1" ] && [ -n "${HOME+set}" ]; then h=$HOME
  else h=$(getent passwd "${1:-$(id -un)}" 2>/dev/null | cut -d: -f6); [ -n "$h" ] || { printf %s "$2"; return; }; fi
  h=${h%/}; printf %s "${h:-/}"
}
`

// expandWord writes w as a shell word that expands as Ansible 2.14
// expands a command's words: $NAME and ${NAME} (NAME of ASCII letters,
// digits and _) from the environment, then ~ or ~user at the start.
func expandWord(w string) string {
	var b strings.Builder
	lit := func(s string) {
		if s != "" {
			b.WriteString(quote(s))
		}
	}
	rest := w
	if user, after, slash := strings.Cut(strings.TrimPrefix(w, "~"), "/"); strings.HasPrefix(w, "~") && !strings.Contains(user, "$") {
		fmt.Fprintf(&b, `"$(e2c_home %s %s)"`, quote(user), quote("~"+user))
		rest = ""
		if slash {
			rest = "/" + after
		}
	}
	for rest != "" {
		i := strings.IndexByte(rest, '$')
		if i < 0 {
			lit(rest)
			break
		}
		lit(rest[:i])
		rest = rest[i:]
		name, n := varAt(rest)
		if name == "" {
			lit(rest[:max(n, 1)])
			rest = rest[max(n, 1):]
			continue
		}
		fmt.Fprintf(&b, `"$(e2c_env %s %s)"`, quote(name), quote(rest[:n]))
		rest = rest[n:]
	}
	if b.Len() == 0 {
		return "''"
	}
	return b.String()
}

// varAt reads the variable s starts with, "$NAME" or "${NAME}", as
// Python's expandvars matches it; n is 0 for a "$" that starts none.
func varAt(s string) (name string, n int) {
	if strings.HasPrefix(s, "${") {
		if j := strings.IndexByte(s, '}'); j >= 0 {
			return s[2:j], j + 1
		}
		return "", 0
	}
	j := 1
	for j < len(s) && (s[j] == '_' || 'a' <= s[j] && s[j] <= 'z' || 'A' <= s[j] && s[j] <= 'Z' || '0' <= s[j] && s[j] <= '9') {
		j++
	}
	if j == 1 {
		return "", 0
	}
	return s[1:j], j
}

// skipBy checks creates and removes on the host, as Ansible's command
// module does (glob patterns, relative to dir) or its script module (plain
// paths): it returns the result of a task that does not run.
func (c *call) skipBy(dir string, glob bool) (map[string]any, bool, error) {
	creates, removes := c.a.str("creates"), c.a.str("removes")
	if creates == "" && removes == "" {
		return nil, false, nil
	}
	test := `[ -e "$1" ] || [ -L "$1" ]`
	if glob {
		test = `IFS=; set -- $1; ` + test // the pattern's matches, or itself
	}
	script := fmt.Sprintf("e2c_exists() { %s; }\n", test)
	if creates != "" {
		script += fmt.Sprintf("e2c_exists %s && echo created\n", quote(creates))
	}
	if removes != "" {
		script += fmt.Sprintf("e2c_exists %s || echo removed\n", quote(removes))
	}
	res, err := c.r.Run(c.ctx, transport.Command{Script: script + "exit 0", Dir: dir, Env: c.t.Environment, Sudo: c.t.Become})
	if err != nil {
		return nil, false, hostError(res, err)
	}
	var skipped, msg, stdout string
	switch {
	case strings.Contains(res.Stdout, "created"):
		skipped = creates
		msg, stdout = fmt.Sprintf("Did not run command since '%s' exists", creates), "skipped, since "+creates+" exists"
		if !glob {
			msg = creates + " exists, matching creates option"
		}
	case strings.Contains(res.Stdout, "removed"):
		skipped = removes
		msg, stdout = fmt.Sprintf("Did not run command since '%s' does not exist", removes), "skipped, since "+removes+" does not exist"
		if !glob {
			msg = removes + " does not exist, matching removes option"
		}
	default:
		return nil, false, nil
	}
	c.e.logf(c.host, "skipped: %s", msg)
	if !glob {
		return map[string]any{"changed": false, "msg": msg, "skipped": true}, true, nil
	}
	return map[string]any{"changed": false, "msg": msg, "rc": 0, "stdout": stdout, "stderr": "",
		"stdout_lines": []any{stdout}, "stderr_lines": []any{}}, skipped != "", nil
}

// commandResult is what a command registers: stdout and stderr without
// their trailing newlines (strip), and their lines as Python's splitlines
// gives them.
func commandResult(res transport.Result, strip bool) map[string]any {
	stdout, stderr := res.Stdout, res.Stderr
	if strip {
		stdout, stderr = strings.TrimRight(stdout, "\r\n"), strings.TrimRight(stderr, "\r\n")
	}
	return map[string]any{"rc": res.Code, "stdout": stdout, "stderr": stderr,
		"stdout_lines": splitLines(stdout), "stderr_lines": splitLines(stderr), "changed": true, "msg": ""}
}

// splitLines splits s as Python's str.splitlines: at \n, \r, \r\n, \v,
// \f, \x1c, \x1d, \x1e, U+0085, U+2028 and U+2029, with no empty last
// line for a trailing separator.
func splitLines(s string) []any {
	out := []any{}
	for len(s) > 0 {
		i, n := lineEnd(s)
		out = append(out, s[:i])
		s = s[i+n:]
	}
	return out
}

// lineEnd returns where the first line of s ends and the length of its
// separator (0 for the last line without one).
func lineEnd(s string) (int, int) {
	for i, r := range s {
		switch r {
		case '\r':
			if strings.HasPrefix(s[i:], "\r\n") {
				return i, 2
			}
			return i, 1
		case '\n', '\v', '\f', '\x1c', '\x1d', '\x1e', '\u0085', '\u2028', '\u2029':
			return i, len(string(r))
		}
	}
	return len(s), 0
}

// pyTime and pyDelta write times as Python's str() of datetime and
// timedelta, as Ansible registers start, end and delta.
func pyTime(t time.Time) string { return t.Format("2006-01-02 15:04:05.000000") }

func pyDelta(d time.Duration) string {
	us := d.Microseconds()
	return fmt.Sprintf("%d:%02d:%02d.%06d", us/3_600_000_000, us/60_000_000%60, us/1_000_000%60, us%1_000_000)
}

// raw runs its command line as it is, through the host's sh (or
// executable): stdout and stderr are registered as they came.
func (c *call) raw() (map[string]any, error) {
	script := c.a.str("cmd")
	if exe := c.a.str("executable"); exe != "" {
		script = "exec " + quote(exe) + " -c " + quote(script)
	}
	res, err := c.stream(transport.Command{Script: script, Env: c.t.Environment, Sudo: c.t.Become})
	return rawResult(res, err)
}

// rawResult is what raw and script register: the output as it came.
func rawResult(res transport.Result, err error) (map[string]any, error) {
	if ee, ok := err.(*transport.ExitError); err != nil && (!ok || ee.Code < 0) {
		return nil, err
	}
	out := commandResult(res, false)
	delete(out, "msg")
	if err != nil {
		out["msg"] = "non-zero return code"
	}
	return out, err
}

// script copies a local script (the first word of its line, inside
// ARTIFACTS_DIR) to the host and runs it there with the rest of the line
// as its arguments, through the host's sh, as Ansible does.
func (c *call) script() (map[string]any, error) {
	line := strings.TrimSpace(c.a.str("cmd"))
	words, err := splitWords(line)
	if err != nil {
		return nil, fmt.Errorf("script: %w", err)
	}
	src, err := c.e.plan.Source("script", words[0])
	if err != nil {
		return nil, fmt.Errorf("script: %w", err)
	}
	if st, err := os.Stat(src); err != nil || !st.Mode().IsRegular() {
		return failed(nil, "Could not find or access '%s'", words[0])
	}
	dir := c.a.str("chdir")
	if dir != "" && !strings.HasPrefix(dir, "/") {
		return failed(nil, "chdir %s must be an absolute path for a Unix-aware remote node", dir)
	}
	if res, skip, err := c.skipBy("", false); skip || err != nil {
		return res, err
	}
	tmp := path.Join(".e2c", "tmp", fmt.Sprintf("script-%d-%d", time.Now().UnixNano(), jobSeq.Add(1)))
	remote := path.Join(tmp, filepath.Base(src))
	if _, err := c.r.Put(c.ctx, src, remote, 0o700); err != nil {
		return nil, fmt.Errorf("script: copying %s: %w", words[0], err)
	}
	// The line as written, the script's path replaced: the arguments keep
	// their quotes for the shell.
	args := strings.TrimSpace(strings.TrimPrefix(line, lineWord(line)))
	run := `"$E2C_SCRIPT"`
	if exe := c.a.str("executable"); exe != "" {
		run = quote(exe) + " " + run
	}
	script := fmt.Sprintf("E2C_SCRIPT=$(cd %s && pwd)/%s || exit 1\n", quote(tmp), quote(filepath.Base(src)))
	if dir != "" {
		script += "cd -- " + quote(dir) + " || exit 1\n"
	}
	script += run + " " + args
	res, err := c.stream(transport.Command{Script: script, Env: c.t.Environment, Sudo: c.t.Become})
	if _, cerr := c.r.Run(c.ctx, transport.Command{Script: "rm -rf -- " + quote(tmp)}); cerr != nil && err == nil {
		c.e.logf(c.host, "script: removing %s: %v", tmp, cerr)
	}
	return rawResult(res, err)
}

// lineWord is the first word of line as written, quotes included.
func lineWord(line string) string {
	var quote byte
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '\'' || c == '"'):
			quote = c
		case quote == 0 && c == '\\':
			i++
		case quote == 0 && (c == ' ' || c == '\t'):
			return line[:i]
		}
	}
	return line
}
