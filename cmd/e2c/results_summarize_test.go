package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSummarizeLeavesOutFailedRuns runs three runs for real, the second of
// which fails after writing an outlier, and declares metrics that some or
// all runs lack: the failed run is named and left out, every gap is named,
// and a metric without any data fails the command after the files of the
// others are written.
func TestSummarizeLeavesOutFailedRuns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	artifacts := t.TempDir()
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "layers_services.yaml"), []byte("environment:\n  job_name: f\n  local: {}\nlayers:\n- name: edge\n  services: [{name: node}]\n"), 0o644)
	// Run i writes v = i (run 1: 1000, then fails), x<i>.txt and an empty
	// blank.txt.
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte(`- hosts: all
  launch:
  - shell: "if [ {{ current_repeat }} = 1 ]; then echo 1000; else echo {{ current_repeat }}; fi > v.txt; echo 5 > x{{ current_repeat }}.txt; : > blank.txt"
  - shell: "test {{ current_repeat }} != 1"
  finalize:
  - fetch: {src: "{{ item }}", dest: "{{ working_dir }}/", flat: yes}
    loop: [v.txt, "x{{ current_repeat }}.txt", blank.txt]
`), 0o644)
	os.WriteFile(filepath.Join(dir, "metrics.yaml"), []byte(`metrics:
- {name: v, files: v.txt, lines: true}
- {name: late, files: x2.txt, lines: true}
- {name: sent, files: "producers/*/sent.csv", csv_column: sent}
- {name: blank, files: blank.txt, lines: true}
`), 0o644)
	if out, err := run(t, "deploy", dir, artifacts, "--repeat", "2", "--destroy"); err == nil || !strings.Contains(out, "failed") {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	runs, _ := filepath.Glob(filepath.Join(dir, "2*"))
	if len(runs) != 3 {
		t.Fatalf("run folders: %v", runs)
	}
	r0, r1, r2 := filepath.Base(runs[0]), filepath.Base(runs[1]), filepath.Base(runs[2])

	out, err := run(t, "results", "summarize", dir)
	for _, want := range []string{
		"left out, not succeeded (their data may be partial): " + r1 + " (failed)\n",
		// Runs 0 and 2: the failed run's 1000 is not in the mean.
		"│ v      │ -      │ 2 │ 1    │ 1      │ 1.414 │ 0   │ 2   │ [-11.71, 13.71] │",
		"│ late   │ -      │ 1 │ 5    │ 5      │ -     │ 5   │ 5   │ -               │",
		"metric late has no data in 1 run: no file matches x2.txt in " + r0 + "\n",
		"3 runs (1 failed, their data left out); wrote ",
		"and 8 figures\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summarize output lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{
		"metric sent has no data in any run: no file matches producers/*/sent.csv in " + r0 + ", " + r2,
		"metric blank has no data in any run: the files blank.txt hold no value in " + r0 + ", " + r2,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("summarize error %v lacks %q", err, want)
		}
	}
	csv, _ := filepath.Glob(filepath.Join(dir, "summaries", "*", "summary.csv"))
	if len(csv) != 1 {
		t.Fatalf("summary files: %v", csv)
	}
	if data, _ := os.ReadFile(csv[0]); !strings.Contains(string(data), "\nv,,,2,2,1,1,") || strings.Contains(string(data), "sent") {
		t.Errorf("summary.csv:\n%s", data)
	}

	// One run named: "1 run", and one that failed alone is nothing to
	// summarize.
	out, err = run(t, "results", "summarize", dir, runs[2])
	if !strings.Contains(out, "\n1 run; wrote ") || !strings.Contains(out, "and 8 figures\n") {
		t.Errorf("one run: %v\n%s", err, out)
	}
	if _, err := run(t, "results", "summarize", dir, runs[1]); err == nil || !strings.Contains(err.Error(), "none of its 1 run succeeded: nothing to summarize") {
		t.Errorf("a failed run alone: %v", err)
	}
}
