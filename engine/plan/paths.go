package plan

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/e2c-dev/e2c/engine/ordered"
	"github.com/e2c-dev/e2c/engine/tmpl"
	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// The folders of this machine that tasks may read from and write to:
// copy and template send only what ARTIFACTS_DIR holds (templates may
// also live in SCENARIO_DIR), so that artifacts.sha256 records everything a
// run sent, and fetch writes only into the run folder (and, where
// working_dir points there, ARTIFACTS_DIR). A scenario from elsewhere can
// then neither read this machine's files nor write over them.

// Source returns the file on this machine that a copy or template task
// reads: src, relative to ARTIFACTS_DIR unless absolute. It is refused
// unless it lies inside ARTIFACTS_DIR (or SCENARIO_DIR for a template),
// links resolved, and for a folder every link below it too. A file that
// does not exist yet passes: a task may make it, and it is checked again
// when the task runs.
func (p *Plan) Source(module, src string) (string, error) {
	path := p.local(src)
	roots := []folder{{"ARTIFACTS_DIR", p.Artifacts}}
	if module == "template" {
		roots = append(roots, folder{"SCENARIO_DIR", p.Scenario})
	}
	if _, ok := within(roots, path); !ok {
		return "", fmt.Errorf("src %q is outside %s: %s", src, names(roots), sourceRule)
	}
	real, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return path, nil
	}
	if err != nil {
		return "", err
	}
	for i, r := range roots {
		if dir, err := filepath.EvalSymlinks(r.dir); err == nil {
			roots[i].dir = dir
		}
	}
	if _, ok := within(roots, real); !ok {
		return "", fmt.Errorf("src %q is a link to %s, outside %s: %s", src, real, names(roots), sourceRule)
	}
	err = filepath.WalkDir(real, func(entry string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return err
		}
		target, err := filepath.EvalSymlinks(entry)
		if err != nil {
			return nil // a dangling link: the copy itself reports it
		}
		if _, ok := within(roots, target); !ok {
			rel, _ := filepath.Rel(real, entry)
			return fmt.Errorf("src %q: %s is a link to %s, outside %s: %s", src, filepath.Join(src, rel), target, names(roots), sourceRule)
		}
		return nil
	})
	return path, err
}

const sourceRule = "tasks send only the experiment's own files, which the run's artifacts.sha256 records"

// FetchPath returns where a fetch task of phase stores a file: rel (which
// cannot climb out) inside dest, relative to ARTIFACTS_DIR unless absolute.
// It is refused unless it lies inside the run folder (or ARTIFACTS_DIR
// before finalize, where working_dir points there), through no link.
func (p *Plan) FetchPath(phase schema.Phase, dest, rel string) (string, error) {
	local, err := results.Path(p.local(dest), rel)
	if err != nil {
		return "", err
	}
	root, err := p.fetchRoot(phase, local)
	if err != nil {
		return "", err
	}
	inRoot, _ := filepath.Rel(root, local)
	return results.Path(root, inRoot)
}

// fetchRoot returns the folder of this machine that holds path, where a
// fetch task writes, or an error saying where fetched files may go.
func (p *Plan) fetchRoot(phase schema.Phase, path string) (string, error) {
	roots := []folder{{"the run folder", p.Run}}
	if phase != schema.Finalize {
		roots = append(roots, folder{"ARTIFACTS_DIR", p.Artifacts})
	}
	i, ok := within(roots, p.local(path))
	if !ok {
		return "", fmt.Errorf("%q is outside %s: fetched files land in the run folder (write dest under {{ working_dir }})", path, names(roots))
	}
	return roots[i].dir, nil
}

// local resolves a path of this machine: relative ones are relative to
// ARTIFACTS_DIR, as in E2Clab, unless they start with one of the plan's
// folders given relative (as e2c validate gives placeholders: working_dir
// is RUN_DIR in finalize there).
func (p *Plan) local(path string) string {
	path = filepath.Clean(path)
	if filepath.IsAbs(path) || p.Artifacts == "" {
		return path
	}
	for _, d := range []string{p.Artifacts, p.Run, p.Scenario} {
		if d != "" && !filepath.IsAbs(d) && inside(d, path) {
			return path
		}
	}
	return filepath.Join(p.Artifacts, path)
}

// folder is a folder of this machine with the name users know it by.
type folder struct{ name, dir string }

// within returns the first of roots that holds path, lexically.
func within(roots []folder, path string) (int, bool) {
	for i, r := range roots {
		if r.dir != "" && inside(r.dir, path) {
			return i, true
		}
	}
	return 0, false
}

// inside reports whether path is dir or below it, once both are absolute
// and clean ("a/../.." is outside a).
func inside(dir, path string) bool {
	d, err1 := filepath.Abs(dir)
	f, err2 := filepath.Abs(path)
	rel, err := filepath.Rel(d, f)
	return err1 == nil && err2 == nil && err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// names lists roots as "ARTIFACTS_DIR (/data/art) and SCENARIO_DIR (...)",
// leaving out a path that is only the placeholder of e2c validate.
func names(roots []folder) string {
	var out []string
	for _, r := range roots {
		s := r.name
		if r.dir != "" && r.dir != r.name {
			s += " (" + r.dir + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, " and ")
}

// file is a controller file a task reads, as checked at validate.
type file struct {
	path string
	err  error
	text *parsed // a template's, once read and parsed
}

// checkPaths checks, on stand-in hosts, what the paths of a rendered task
// can be checked for before anything runs: where copy and template read,
// what a template file holds, and where fetch writes.
func (b *builder) checkPaths(t *schema.Task, rt *Task, vars *scope) {
	switch rt.Module {
	case "copy", "template":
		src, ok := rt.Args["src"].(string)
		if !ok || src == "" {
			return // reported by render or the schema
		}
		f := b.file(rt.Module, src)
		if f.err != nil {
			b.problem(t.At("args.src"), rt.Module+": "+f.err.Error(), vars.name)
		} else if f.text != nil {
			b.checkTemplateFile(f, t, vars)
		}
	case "fetch":
		dest, ok := rt.Args["dest"].(string)
		if !ok || dest == "" {
			return
		}
		if _, err := b.plan.fetchRoot(vars.phase, dest); err != nil {
			b.problem(t.At("args.dest"), "fetch: dest "+err.Error(), vars.name)
		}
	}
}

// file checks the src of a copy or template task once, and reads and
// parses a template that exists already.
func (b *builder) file(module, src string) file {
	key := module + "\x00" + src
	f, ok := b.files[key]
	if ok {
		return f
	}
	f.path, f.err = b.plan.Source(module, src)
	if f.err == nil && module == "template" {
		if data, err := os.ReadFile(f.path); err == nil {
			p := b.parseText(string(data))
			f.text = &p
		}
	}
	b.files[key] = f
	return f
}

// checkTemplateFile reports a template file's syntax errors at its own
// line and column, and the variables it reads that are not defined on the
// host, as for templates written in the workflow. It is rendered only where
// a variable seems missing, which keeps validate fast for thousands of
// hosts; other render errors are the task's when it runs, as is a file that
// reads what a task registers.
func (b *builder) checkTemplateFile(f file, t *schema.Task, vars *scope) {
	if err := f.text.err; err != nil {
		pos, msg := schema.Pos{File: f.path}, err.Error()
		if te, ok := err.(*tmpl.Error); ok {
			pos.Line, pos.Col, msg = te.Line, te.Col, te.Msg
		}
		b.problem(pos, fmt.Sprintf("template: %s (the template of the task at %s)", msg, t.At("args.src")), "")
		return
	}
	if b.reachesRuntime(f.text.roots, vars, map[string]bool{}) {
		return
	}
	missing := false
	for _, ref := range f.text.t.Refs() {
		missing = missing || !defined(ref, vars)
	}
	if missing {
		b.reportUndefined(f.text.t, t.At("args.src"), "template "+f.path+": ", vars)
	}
}

// defined reports whether ref, a path as Template.Refs lists it
// ("kafka.url", "hosts.0"), names a value in vars. A path it cannot follow
// counts as missing: the template is then rendered to be sure.
func defined(ref string, vars *scope) bool {
	parts := strings.Split(ref, ".")
	cur, ok := vars.get(parts[0])
	for _, p := range parts[1:] {
		switch c := cur.(type) {
		case map[string]any:
			cur, ok = c[p]
		case *ordered.Map:
			cur, ok = c.Get(p)
		case []any:
			i, err := strconv.Atoi(p)
			ok = err == nil && i >= 0 && i < len(c)
			if ok {
				cur = c[i]
			}
		default:
			ok = false
		}
		if !ok {
			break
		}
	}
	return ok
}

// ScenarioFiles lists the files of SCENARIO_DIR, outside ARTIFACTS_DIR,
// that the plan's template tasks read (relative to SCENARIO_DIR, sorted):
// the artifacts manifest does not record them, so a run keeps a copy
// with the scenario's own files. Deferred tasks' sources are only known
// when they run, and are not listed.
func (p *Plan) ScenarioFiles() []string {
	seen := map[string]bool{}
	for _, pl := range p.Plays {
		for _, runs := range pl.Phases {
			for _, r := range runs {
				Walk(r.Tasks, func(t *Task) {
					src, ok := t.Args["src"].(string)
					if t.Module != "template" || t.Deferred || !ok {
						return
					}
					path := p.local(src)
					if !inside(p.Scenario, path) || p.Artifacts != "" && inside(p.Artifacts, path) {
						return
					}
					if rel, err := filepath.Rel(p.Scenario, path); err == nil {
						seen[filepath.ToSlash(rel)] = true
					}
				})
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}
