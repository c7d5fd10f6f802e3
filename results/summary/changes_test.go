package summary

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// at is a change made at Unix second sec.
func at(sec float64, asked string) *results.Change {
	return &results.Change{Kind: "scale", Asked: asked, Start: time.Unix(0, int64(sec*1e9)), Status: results.Succeeded}
}

// A change is placed at its start on the time column's clock less the
// run's first value's time, and only within the values' time.
func TestSeriesWithChanges(t *testing.T) {
	tput := schema.Metric{Name: "tput", Files: "t.csv", Column: "records", TimeColumn: "unix_second"}
	for _, tt := range []struct {
		name    string
		csv     string
		m       schema.Metric
		changes []*results.Change
		want    string // the marks: x asked
	}{
		{"unix seconds", "unix_second,records\n1764740000,1\n1764740030,2\n", tput,
			[]*results.Change{at(1764740010, "a"), at(1764740020, "b")}, "[10 a] [20 b]"},
		{"fractional seconds", "unix_second,records\n1764740000.25,1\n1764740030.75,2\n", tput,
			[]*results.Change{at(1764740010.5, "a")}, "[10.25 a]"},
		{"at the first and the last value", "unix_second,records\n1764740000,1\n1764740030,2\n", tput,
			[]*results.Change{at(1764740000, "first"), at(1764740030, "last")}, "[0 first] [30 last]"},
		{"before the first value, after the last", "unix_second,records\n1764740000,1\n1764740030,2\n", tput,
			[]*results.Change{at(1764739999, "before"), at(1764740031, "after"), at(1764740015, "in")}, "[15 in]"},
		{"a clock of milliseconds", "unix_second,records\n1764740000000,1\n1764740030000,2\n", tput,
			[]*results.Change{at(1764740010, "a")}, ""},
		{"seconds since a process started", "unix_second,records\n0,1\n30,2\n", tput,
			[]*results.Change{at(1764740010, "a")}, ""},
		{"no time column: value positions", "records\n1\n2\n3\n", schema.Metric{Name: "tput", Files: "t.csv", Column: "records"},
			[]*results.Change{at(1, "a")}, ""},
		{"no changes", "unix_second,records\n1764740000,1\n1764740030,2\n", tput, nil, ""},
	} {
		dir := t.TempDir()
		write(t, dir, "t.csv", tt.csv)
		pts, marks, err := SeriesWithChanges(Run{ID: "r", Dir: dir, Changes: tt.changes}, tt.m)
		if err != nil || len(pts) == 0 {
			t.Errorf("%s: %v, %v", tt.name, pts, err)
			continue
		}
		got := ""
		for _, mk := range marks {
			got += fmt.Sprintf(" [%g %s]", mk.X, mk.Change.Asked)
		}
		if len(got) > 0 {
			got = got[1:]
		}
		if got != tt.want {
			t.Errorf("%s: marks %q, want %q", tt.name, got, tt.want)
		}
	}
}

// Scenario reads each kept run folder's timeline, for every app_conf of
// it, and Write lists the changes once per run folder in ChangesFile, in
// short (not per host); a run without timeline.json has none, and without
// any no file is written.
func TestScenarioChanges(t *testing.T) {
	root := t.TempDir()
	changed, plain := filepath.Join(root, "1"), filepath.Join(root, "2")
	for _, d := range []string{changed, plain} {
		write(t, d, "a/v.txt", "1\n")
		write(t, d, "b/v.txt", "2\n")
	}
	c := at(1764740010, "edge.producer=6")
	c.Diff, c.Hosts = []string{"+ edge.producer.5"}, []results.ChangeHost{{Host: "10.0.0.5", Did: "added"}}
	if err := results.WriteJSON(changed, results.TimelineFile, results.Timeline{Version: results.TimelineVersion, Changes: []*results.Change{c}}); err != nil {
		t.Fatal(err)
	}
	metrics := []schema.Metric{{Name: "v", Files: "v.txt", Lines: true}}
	var runs []Run
	for _, d := range []string{changed, plain} {
		for _, conf := range []string{"a", "b"} {
			runs = append(runs, Run{ID: filepath.Base(d), Config: conf, Dir: filepath.Join(d, conf)})
		}
	}
	recs := []*results.Record{record(changed, results.Succeeded), record(plain, results.Succeeded)}
	s, err := Scenario(root, runs, recs, metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Runs {
		want := map[string]int{"1": 1, "2": 0}[r.ID]
		if len(r.Changes) != want || want == 1 && r.Changes[0].Asked != c.Asked {
			t.Errorf("run %s (%s): changes %v", r.ID, r.Config, r.Changes)
		}
	}
	out, err := Write(root, s, time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(out, ChangesFile))
	if err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Run     string
		Changes []map[string]any
	}
	if err := json.Unmarshal(data, &got); err != nil || len(got) != 1 || got[0].Run != "1" || len(got[0].Changes) != 1 ||
		got[0].Changes[0]["kind"] != "scale" || got[0].Changes[0]["asked"] != "edge.producer=6" ||
		got[0].Changes[0]["hosts"] != nil || got[0].Changes[0]["diff"] != nil {
		t.Errorf("%s: %s (%v)", ChangesFile, data, err)
	}

	s, err = Scenario(root, runs[2:], recs, metrics)
	if err != nil {
		t.Fatal(err)
	}
	out, err = Write(root, s, time.Date(2026, 12, 3, 6, 0, 1, 0, time.UTC))
	if _, statErr := os.Stat(filepath.Join(out, ChangesFile)); err != nil || statErr == nil {
		t.Errorf("no changes: %v, %s written (%v)", err, ChangesFile, statErr)
	}

	// A timeline that cannot be read is an error naming it.
	write(t, plain, results.TimelineFile, "{")
	if _, err := Scenario(root, runs, recs, metrics); err == nil || !strings.Contains(err.Error(), filepath.Join(plain, results.TimelineFile)) {
		t.Errorf("a broken timeline: %v", err)
	}
}
