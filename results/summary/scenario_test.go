package summary

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// TestScenario: the runs of folders that did not succeed are left out and
// named, the others summarised; a metric some runs lack names them.
func TestScenario(t *testing.T) {
	root := t.TempDir()
	ok1, failed, ok2 := filepath.Join(root, "1"), filepath.Join(root, "2"), filepath.Join(root, "3")
	write(t, ok1, "a/v.txt", "1\n")
	write(t, failed, "a/v.txt", "1000\n")
	write(t, ok2, "a/v.txt", "3\n")
	write(t, ok2, "b/v.txt", "5\n")
	write(t, ok2, "b/w.txt", "\n")
	metrics := []schema.Metric{{Name: "v", Files: "v.txt", Lines: true}, {Name: "w", Files: "w.txt", Lines: true}}
	runs := []Run{
		{ID: "1", Config: "a", Dir: filepath.Join(ok1, "a")},
		{ID: "2", Config: "a", Dir: filepath.Join(failed, "a")},
		{ID: "3", Config: "a", Dir: filepath.Join(ok2, "a")},
		{ID: "3", Config: "b", Dir: filepath.Join(ok2, "b")},
	}
	folders := []*results.Record{record(ok1, results.Succeeded), record(failed, results.Failed), record(ok2, results.Succeeded)}
	s, err := Scenario(root, runs, folders, metrics)
	if err != nil {
		t.Fatal(err)
	}
	if s.Folders != 3 || len(s.Runs) != 3 || !slices.Equal(s.Left, folders[1:2]) {
		t.Errorf("folders %d, runs %v, left %v", s.Folders, s.Runs, s.Left)
	}
	if len(s.Stats) != 2 || s.Stats[0].Config != "a" || s.Stats[0].Runs != 2 || s.Stats[0].Mean != 2 || s.Stats[1].Config != "b" || s.Stats[1].Mean != 5 {
		t.Errorf("stats: %+v", s.Stats)
	}
	want := Missing{Metric: metrics[1], NoFile: []string{"1 (a)", "3 (a)"}, NoValue: []string{"3 (b)"}, All: true}
	if len(s.Missing) != 1 || s.Missing[0].Metric.Name != want.Metric.Name || !slices.Equal(s.Missing[0].NoFile, want.NoFile) ||
		!slices.Equal(s.Missing[0].NoValue, want.NoValue) || !s.Missing[0].All {
		t.Errorf("missing: %+v, want %+v", s.Missing, want)
	}

	for _, tt := range []struct {
		name    string
		runs    []Run
		folders []*results.Record
		want    string
	}{
		{"no runs", nil, folders, "no runs in " + root + " yet: nothing to summarize"},
		{"one that failed", runs[1:2], folders, "none of its 1 run succeeded"},
		{"a run in no folder", []Run{{ID: "x", Dir: filepath.Join(root, "x")}}, folders, "is in no run folder of " + root},
	} {
		if _, err := Scenario(root, tt.runs, tt.folders, metrics); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	both := []Run{runs[1], {ID: "1", Config: "a", Dir: filepath.Join(ok1, "a")}}
	if _, err := Scenario(root, both, []*results.Record{folders[1], record(ok1, results.Crashed)}, metrics); err == nil || !strings.Contains(err.Error(), "none of its 2 runs succeeded") {
		t.Errorf("two that did not succeed: %v", err)
	}
}

// TestCompare: the scenario files, artifacts and metric means of two runs.
func TestCompare(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	write(t, a, "scenario/workflow.yaml", "same\n")
	write(t, b, "scenario/workflow.yaml", "same\n")
	write(t, a, "scenario/network.yaml", "a\n")
	write(t, b, "scenario/network.yaml", "bb\n")
	metrics := "metrics:\n- {name: v, files: v.txt, lines: true, unit: ms}\n"
	write(t, a, "scenario/metrics.yaml", metrics)
	write(t, a, "artifacts.sha256", "# artifacts: x\n"+strings.Repeat("0", 64)+"  x/f\n")
	write(t, a, "low/v.txt", "2\n")
	write(t, b, "low/v.txt", "3\n")
	write(t, b, "high/v.txt", "9\n")
	c, err := Compare(Side{a, []string{"low"}}, Side{b, []string{"low", "high"}})
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []FileDiff{
		{Path: "metrics.yaml", Size: [2]int64{int64(len(metrics)), -1}},
		{Path: "network.yaml", Size: [2]int64{2, 3}},
		{Path: "workflow.yaml", Size: [2]int64{5, 5}, Same: true},
	}
	if !slices.Equal(c.Files, wantFiles) {
		t.Errorf("files: %+v, want %+v", c.Files, wantFiles)
	}
	if len(c.Artifacts) != 1 || !strings.Contains(c.Artifacts[0], "f") {
		t.Errorf("artifacts: %v", c.Artifacts)
	}
	if len(c.Metrics) != 2 || c.NoMetrics {
		t.Fatalf("metrics: %+v", c.Metrics)
	}
	high, low := c.Metrics[0], c.Metrics[1]
	if high.Config != "high" || high.Means[0] != nil || *high.Means[1] != 9 || high.Percent != nil {
		t.Errorf("high: %+v", high)
	}
	if low.Config != "low" || low.Unit != "ms" || *low.Means[0] != 2 || *low.Means[1] != 3 || *low.Percent != 50 {
		t.Errorf("low: %+v", low)
	}
	if c, err := Compare(Side{Dir: b}, Side{Dir: a}); err != nil || !c.NoMetrics || c.Metrics != nil {
		t.Errorf("no metrics.yaml in the first run: %+v, %v", c, err)
	}
}

// record is the record of a run in dir that ended with status.
func record(dir string, status results.Status) *results.Record {
	r := results.NewRecord(dir)
	r.Status = status
	return r
}
