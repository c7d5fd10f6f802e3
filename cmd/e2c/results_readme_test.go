package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeMetricsExample runs the quickstart once, for real, with the
// metrics the README's example declares: every one of them has data.
func TestReadmeMetricsExample(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the quickstart builds its application with go, not found")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)[strings.Index(string(readme), "### Metrics and summaries"):]
	block := regexp.MustCompile("(?s)```yaml\n(metrics:.*?)```").FindStringSubmatch(section)
	if block == nil {
		t.Fatal("no metrics example in the README's \"Metrics and summaries\"")
	}
	dir := t.TempDir() // the quickstart's files, not its run folders
	for _, f := range []string{"layers_services.yaml", "network.yaml", "workflow.yaml", "services", "artifacts"} {
		if out, err := exec.Command("cp", "-r", filepath.Join("../../examples/quickstart", f), dir).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
	}
	os.WriteFile(filepath.Join(dir, "metrics.yaml"), []byte(block[1]), 0o644)
	if out, err := run(t, "deploy", dir, filepath.Join(dir, "artifacts"), "--duration", "3", "--destroy", "-q"); err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	out, err := run(t, "results", "summarize", dir)
	if err != nil || strings.Contains(out, "no data") {
		t.Fatalf("summarize: %v\n%s", err, out)
	}
	for _, m := range regexp.MustCompile(`(?m)^- name: (\S+)`).FindAllStringSubmatch(block[1], -1) {
		if !regexp.MustCompile(`│ ` + m[1] + ` .*│ -      │ 1 │`).MatchString(out) {
			t.Errorf("no value of %s:\n%s", m[1], out)
		}
	}
}
