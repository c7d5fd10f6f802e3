package ansiblediff

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/execute"
	"github.com/e2c-dev/e2c/engine/plan"
)

func jsonValue(t *testing.T, text string) any {
	t.Helper()
	var v any
	if err := decodeJSON([]byte(text), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestNormalise: what legitimately differs goes, in a result and in its
// loop items, and nothing else: not in set_fact values, not in items.
func TestNormalise(t *testing.T) {
	for _, tc := range []struct {
		name       string
		in, want   string
		registered bool
	}{
		{"timings and arguments", `{"rc": 0, "start": "s", "end": "e", "delta": "d", "cmd": ["echo"], "invocation": {}, "warnings": ["w"], "stdout": "x"}`,
			`{"rc": 0, "stdout": "x"}`, true},
		{"loop items, but not their items", `{"changed": true, "results": [{"item": {"start": 1}, "delta": "d", "invocation": {}, "rc": 1}]}`,
			`{"changed": true, "results": [{"item": {"start": 1}, "rc": 1}]}`, true},
		{"stat's times and place", `{"stat": {"exists": true, "mtime": 1.5, "inode": 3, "mode": "0644"}}`,
			`{"stat": {"exists": true, "mode": "0644"}}`, true},
		{"a job's id and file", `{"ansible_job_id": "j1.2", "results_file": "/root/.ansible_async/j1.2", "started": 1}`,
			`{"ansible_job_id": "<ansible_job_id>", "results_file": "<results_file>", "started": 1}`, true},
		{"paths of each tool", `{"dest": "/w/fetched/h/x", "src": "/root/.ansible/tmp/ansible-tmp-1.2-3/source"}`,
			`{"dest": "<working_dir>/fetched/h/x", "src": "<ansible tmp>/source"}`, true},
		{"set_fact values are the user's", `{"start": 1, "cmd": "x", "in": "/w/y"}`,
			`{"start": 1, "cmd": "x", "in": "<working_dir>/y"}`, false},
		{"deeper keys are data", `{"json": {"start": 1}}`, `{"json": {"start": 1}}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := normalise(jsonValue(t, tc.in), "/w", tc.registered)
			if want := jsonValue(t, tc.want); !reflect.DeepEqual(got, want) {
				t.Errorf("got %s, want %s", render(got), render(want))
			}
		})
	}
}

func TestDiffValues(t *testing.T) {
	for _, tc := range []struct {
		name, a, b string
		want       []string
	}{
		{"same", `{"x": [1, {"y": "z"}]}`, `{"x": [1, {"y": "z"}]}`, nil},
		{"a leaf", `{"x": {"y": 1}}`, `{"x": {"y": 2}}`, []string{"r.x.y: ansible 1, e2c 2"}},
		{"missing and extra keys", `{"a": 1}`, `{"b": "<x>"}`, []string{"r.a: ansible 1, e2c missing", `r.b: ansible missing, e2c "<x>"`}},
		{"1 and 1.0 differ", `[1]`, `[1.0]`, []string{"r.0: ansible 1, e2c 1.0"}},
		{"a type", `{"x": true}`, `{"x": "true"}`, []string{`r.x: ansible true, e2c "true"`}},
		{"lists of other lengths whole", `[1, 2]`, `[1]`, []string{"r: ansible [1,2], e2c [1]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := diffValues("r", jsonValue(t, tc.a), jsonValue(t, tc.b), true, true)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if got := diffValues("r", nil, 1.0, false, true); !slices.Equal(got, []string{"r: ansible missing, e2c 1"}) {
		t.Errorf("a value one tool lacks: %q", got)
	}
}

// TestPick: the paths a case compares, into mappings and lists.
func TestPick(t *testing.T) {
	root := jsonValue(t, `{"r": {"results": [{"rc": 2}], "stat": {"exists": false}}}`).(map[string]any)
	for path, want := range map[string]string{"r.results.0.rc": "2", "r.stat.exists": "false", "r.results.1.rc": "", "r.rc": "", "r.results.x": ""} {
		v, ok := pick(root, path)
		if got := render(v); ok != (want != "") || ok && got != want {
			t.Errorf("%s: %s %v, want %s", path, got, ok, want)
		}
	}
}

// TestSnapshot reads contents, modes, links and folders, and diffTrees
// says what differs path by path.
func TestSnapshot(t *testing.T) {
	dirs := [2]string{t.TempDir(), t.TempDir()}
	for i, d := range dirs {
		os.MkdirAll(filepath.Join(d, "sub", "empty"), 0o755)
		os.WriteFile(filepath.Join(d, "sub", "f"), []byte("same"), 0o644)
		os.WriteFile(filepath.Join(d, "mode"), []byte("x"), []os.FileMode{0o644, 0o755}[i])
		os.WriteFile(filepath.Join(d, "text"), []byte([]string{"a\n", "b\n"}[i]), 0o644)
		os.Symlink([]string{"f", "g"}[i], filepath.Join(d, "link"))
		os.WriteFile(filepath.Join(d, "skipped"), []byte(fmt.Sprint(i)), 0o644)
	}
	os.WriteFile(filepath.Join(dirs[1], "extra"), nil, 0o600)
	os.Chmod(filepath.Join(dirs[1], "mode"), 0o755) // whatever the umask
	var trees [2]tree
	for i, d := range dirs {
		var err error
		if trees[i], err = snapshot(d, "skipped"); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		`w:extra: ansible missing, e2c file 0600 ""`,
		"w:link: ansible link 0777 -> f, e2c link 0777 -> g",
		`w:mode: ansible file 0644 "x", e2c file 0755 "x"`,
		`w:text: ansible file 0644 "a\n", e2c file 0644 "b\n"`,
	}
	if got := diffTrees("w:", trees[0], trees[1]); !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if trees[0]["sub/empty"].kind != "dir" {
		t.Errorf("an empty folder: %+v", trees[0]["sub/empty"])
	}
	if _, err := snapshot(filepath.Join(dirs[0], "nothing")); err == nil {
		t.Error("a missing folder is an empty tree: both tools would compare as same")
	}
}

// TestE2CFailures reads which task failed each host from e2c's own error
// text (execute.TaskError), one failure or several, and maps positions to
// the case file's lines.
func TestE2CFailures(t *testing.T) {
	c := &Case{Name: "c", playLine: 10}
	fail := func(host string, line int) error {
		return &execute.TaskError{Host: host, Phase: "launch", Err: errors.New("exit status 1: boom"),
			Task: &plan.Task{Index: 1, Name: "a name, with a comma (and parens)", Pos: fmt.Sprintf("/s/workflow.yaml:%d:5", line)}}
	}
	one := fmt.Errorf("launch: %w", fail(Hosts[1], 5))
	both := fmt.Errorf("launch: 2 failures:\n  %v\n  %v", fail(Hosts[0], 4), fail(Hosts[1], 6))
	for _, tc := range []struct {
		name  string
		err   error
		lines [2]int // 0: ok
	}{
		{"one host", one, [2]int{0, 12}},
		{"both", both, [2]int{11, 13}},
		{"with another step's error", errors.Join(one, errors.New("finalize: x")), [2]int{0, 12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &result{hosts: map[string]*hostResult{Hosts[0]: {}, Hosts[1]: {}}}
			c.e2cFailures(tc.err.Error(), res)
			for i, h := range Hosts {
				r := res.hosts[h]
				if r.failed != (tc.lines[i] != 0) || r.line != tc.lines[i] || r.failed && r.msg != "exit status 1: boom" {
					t.Errorf("%s: %+v, want line %d", h, r, tc.lines[i])
				}
			}
		})
	}
	res := &result{hosts: map[string]*hostResult{Hosts[0]: {}, Hosts[1]: {}}}
	c.e2cFailures("launch: /s/workflow.yaml:7:3: undefined variable x", res)
	if h := res.hosts[Hosts[0]]; !h.failed || h.line != 0 || h.msg != "launch: c.yml:14:1: undefined variable x" {
		t.Errorf("an error of no host's task fails every host with it: %+v", h)
	}
}

// TestCompare: every kind of difference is said; two equal results have
// none.
func TestCompare(t *testing.T) {
	c := &Case{Secret: "pw", registers: []string{"r"}}
	mk := func(line int, file, out string, rc any) *result {
		r := &result{work: tree{}, output: out, hosts: map[string]*hostResult{}}
		for _, h := range Hosts {
			r.hosts[h] = &hostResult{failed: line > 0, line: line, msg: "why", files: tree{"f": {kind: "file", mode: 0o644, owner: "0:0", data: file}},
				vars: map[string]any{"r": map[string]any{"rc": rc, "delta": "x"}}}
		}
		return r
	}
	if d := c.compare(mk(0, "a", "", json.Number("0")), mk(0, "a", "", json.Number("0")), "/a", "/e"); len(d) != 0 {
		t.Errorf("the same results differ: %q", d)
	}
	d := c.compare(mk(0, "a", "", json.Number("0")), mk(3, "b", "the pw", json.Number("2")), "/a", "/e")
	for _, want := range []string{
		Hosts[0] + ": ansible ok, e2c failed at line 3 (why)",
		Hosts[1] + `:/opt/f: ansible file 0644 "a", e2c file 0644 "b"`,
		Hosts[0] + ": r.rc: ansible 0, e2c 2",
		"e2c prints the secret",
	} {
		if !slices.Contains(d, want) {
			t.Errorf("missing %q in\n%s", want, strings.Join(d, "\n"))
		}
	}
	if d := c.compare(mk(0, "a", "", 0), &result{refused: "2 problems:\n  c.yml:4:5: x\n  c.yml:6:5: y"}, "/a", "/e"); !slices.Equal(d, []string{"e2c refuses the case: c.yml:4:5: x; c.yml:6:5: y"}) {
		t.Errorf("a refusal: %q", d)
	}
	a, e := mk(2, "a", "", json.Number("0")), mk(3, "a", "", json.Number("0"))
	e.work = tree{"fetched/x": {kind: "file", mode: 0o644, owner: "0:0", data: "y"}}
	d = c.compare(a, e, "/a", "/e")
	for _, want := range []string{
		Hosts[0] + ": ansible failed at line 2 (why), e2c failed at line 3 (why)",
		`working folder: fetched/x: ansible missing, e2c file 0644 "y"`,
	} {
		if !slices.Contains(d, want) {
			t.Errorf("missing %q in\n%s", want, strings.Join(d, "\n"))
		}
	}
	c.Compare = []string{"r.missing"}
	if d := c.compare(mk(0, "a", "", json.Number("0")), mk(0, "a", "", json.Number("2")), "/a", "/e"); len(d) != 0 {
		t.Errorf("only the case's paths are compared: %q", d)
	}
}

// TestPrintTable: the count is of the cases that ran, and every case that
// differs or errs is listed by name.
func TestPrintTable(t *testing.T) {
	outs := []Outcome{
		{Case: &Case{Name: "same"}},
		{Case: &Case{Name: "diff"}, Differences: []string{"h: ansible ok, e2c failed"}},
		{Case: &Case{Name: "skip"}, Skip: "needs systemd"},
		{Case: &Case{Name: "broken"}, Err: errors.New("no lab")},
	}
	var b strings.Builder
	printTable(&b, outs, time.Second, 4)
	for _, want := range []string{
		"1 of 3 cases give the same results (1 different, 1 errors; 1 skipped); 1s, 4 at a time\n",
		"differing: diff, broken\n",
		"needs systemd",
		"error: no lab",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
}
