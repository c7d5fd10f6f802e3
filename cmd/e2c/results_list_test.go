package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestResultsListsReproductions reproduces a run, and that reproduction in
// turn, for real: e2c results lists both, each with the run it reproduces
// and the folder it is in.
func TestResultsListsReproductions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	artifacts := t.TempDir()
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "layers_services.yaml"), []byte("environment:\n  job_name: l\n  local: {}\nlayers:\n- name: edge\n  services: [{name: node}]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte("- hosts: all\n  launch: [{shell: 'true'}]\n"), 0o644)
	if out, err := run(t, "deploy", dir, artifacts, "--destroy"); err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	first, _ := filepath.Glob(filepath.Join(dir, "2*"))
	if len(first) != 1 {
		t.Fatalf("run folders: %v", first)
	}
	results := regexp.MustCompile(`results: (\S+)`)
	out, err := run(t, "reproduce", first[0])
	if err != nil || results.FindStringSubmatch(out) == nil {
		t.Fatalf("reproduce: %v\n%s", err, out)
	}
	second := results.FindStringSubmatch(out)[1]
	out, err = run(t, "reproduce", second)
	if err != nil || results.FindStringSubmatch(out) == nil {
		t.Fatalf("reproduce the reproduction: %v\n%s", err, out)
	}
	third := results.FindStringSubmatch(out)[1]

	out, err = run(t, "results", dir)
	if err != nil {
		t.Fatal(err)
	}
	rel := func(p string) string { r, _ := filepath.Rel(dir, p); return r }
	for _, want := range []struct{ run, status string }{
		{rel(first[0]), "succeeded"},
		{rel(second), "succeeded (reproduces " + filepath.Base(first[0]) + ")"},
		{rel(third), "succeeded (reproduces " + filepath.Base(second) + ")"},
	} {
		row := regexp.MustCompile(`│ ` + regexp.QuoteMeta(want.run) + ` +│ ` + regexp.QuoteMeta(want.status) + ` +│`)
		if !row.MatchString(out) {
			t.Errorf("results lacks the row of %s, %s:\n%s", want.run, want.status, out)
		}
	}
	if !strings.HasPrefix(rel(third), "reproduce-"+filepath.Base(first[0])+"-1/reproduce-"+filepath.Base(second)+"-1/") {
		t.Errorf("the second reproduction is in %s", rel(third))
	}
}
