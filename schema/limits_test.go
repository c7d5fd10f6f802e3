package schema

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bomb anchors a 1 MB string and refers to it 729 times through three
// levels of nine aliases: few values, but 729 MB once expanded.
func bomb() string {
	nine := func(a string) string { return "[" + strings.TrimSuffix(strings.Repeat("*"+a+",", 9), ",") + "]" }
	return "- hosts: all\n  vars:\n    a: &a \"" + strings.Repeat("x", 1<<20) + "\"\n" +
		"    b: &b " + nine("a") + "\n    c: &c " + nine("b") + "\n    d: " + nine("c") + "\n" +
		"  launch: [{debug: {msg: hi}}]\n"
}

// TestLimits checks that each limit names itself and the cause, and that a
// file over a limit gives that one problem, not a cascade.
func TestLimits(t *testing.T) {
	manyTasks := func(n int) string {
		var b strings.Builder
		b.WriteString("- hosts: all\n  launch:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - {name: 'task %d', shell: 'echo %d', ignore_errors: yes}\n", i, i)
		}
		return b.String()
	}
	tests := []struct {
		name, yaml string
		want       string
	}{
		{"alias bytes", bomb(), "x.yaml:5:18: aliases expand the file to more than 32 MB of text (*b here repeats 9.4 MB)"},
		{"written values", "- hosts: all\n  vars: {x: [" + strings.Repeat("1,", 1_000_001) + "1]}\n",
			"x.yaml:2:1999998: the file holds more than 1000000 values; e2c reads at most that many"},
		{"file size", manyTasks(200_000), "x.yaml: the file is 13.4 MB; a scenario file may be at most 10 MB"},
		{"alias cycle", "- hosts: all\n  vars: &v {self: *v}\n", `x.yaml:2:19: alias *v is inside the value its anchor &v names (line 2)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeWorkflow("x.yaml", []byte(tt.yaml))
			var m *Errors
			if !errors.As(err, &m) || len(m.Unwrap()) != 1 || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%.2000v\nwant exactly one problem containing:\n%s", err, tt.want)
			}
		})
	}
}

// TestLoadTooBig checks that Load refuses a file over the size limit
// without reading it whole.
func TestLoadTooBig(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, LayersServicesFile), []byte("environment: {g5k: }\nlayers: [{name: a, services: [{name: s}]}]\n"), 0o644)
	f, err := os.Create(filepath.Join(dir, WorkflowFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(5 << 30); err != nil { // sparse: 5 GB that take no disk
		t.Skipf("cannot make a sparse file here: %v", err)
	}
	f.Close()
	_, err = Load(dir)
	if err == nil || !strings.Contains(err.Error(), "workflow.yaml: the file is 5368.7 MB; a scenario file may be at most 10 MB") {
		t.Fatalf("err = %v", err)
	}
}

// TestErrorsText checks that the text of a long report shows the first
// problems and counts the rest, while every problem stays available.
func TestErrorsText(t *testing.T) {
	var errs Errors
	for i := range 250 {
		errs.At(Pos{File: "w.yaml", Line: i + 1, Col: 1}, "problem %d", i)
	}
	err := errs.Err()
	var m *Errors
	if !errors.As(err, &m) || len(m.Unwrap()) != 250 {
		t.Fatalf("want 250 problems kept, got %v", err)
	}
	text := err.Error()
	lines := strings.Split(text, "\n")
	if lines[0] != "250 problems:" || len(lines) != 102 || lines[100] != "  w.yaml:100:1: problem 99" ||
		lines[101] != "  ... and 150 more problems" {
		t.Errorf("text has %d lines: first %q, last two %q", len(lines), lines[0], lines[len(lines)-2:])
	}
}

// TestErrorsUnwrap: the list is the standard library's kind of multiple
// error: found by errors.As inside an errors.Join, its problems found by
// errors.Is and errors.As, and a list added to a list is flattened.
func TestErrorsUnwrap(t *testing.T) {
	gone := errors.New("gone")
	var inner Errors
	inner.At(Pos{File: "a.yaml", Line: 2}, "second")
	inner.Add(fmt.Errorf("host: %w", gone))
	var errs Errors
	errs.At(Pos{File: "a.yaml", Line: 1}, "first")
	errs.Add(inner.Err())
	err := errors.Join(errors.New("deploy"), errs.Err())
	var m *Errors
	if !errors.As(err, &m) || len(m.Unwrap()) != 3 {
		t.Fatalf("errors.As found %v in %v", m, err)
	}
	var pe *Error
	if !errors.Is(err, gone) || !errors.As(err, &pe) || pe.Msg != "first" {
		t.Errorf("errors.Is(gone) %v, errors.As(*Error) %v", errors.Is(err, gone), pe)
	}
	if want := "3 problems:\n  host: gone\n  a.yaml:1: first\n  a.yaml:2: second"; m.Error() != want {
		t.Errorf("text %q, want %q", m.Error(), want)
	}
}
