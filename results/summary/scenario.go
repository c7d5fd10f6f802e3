package summary

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// The folder and files Write writes in a scenario folder.
const (
	Dir      = "summaries" // SCENARIO_DIR/summaries/YYYYMMDD-HHMMSS/
	CSVFile  = "summary.csv"
	JSONFile = "summary.json"
)

// LoadMetrics reads the metrics dir/metrics.yaml declares. A missing file
// is an error that errors.Is(err, fs.ErrNotExist).
func LoadMetrics(dir string) ([]schema.Metric, error) {
	file := filepath.Join(dir, schema.MetricsFile)
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: declare the metrics first (see the README, \"Metrics and summaries\")", err)
	}
	return schema.DecodeMetrics(file, data)
}

// ScenarioRuns are the results folders of the named runs of a scenario
// (all of them, its sweep points' too, when none is named), one per run and
// app_conf, and the records of their run folders. The runs of a sweep's
// points are configurations of their own, named after the point (and the
// app_conf: point/conf).
func ScenarioRuns(scenario string, names []string) ([]Run, []*results.Record, error) {
	recs, points, err := results.AllRuns(scenario)
	if err != nil {
		return nil, nil, err
	}
	var out []Run
	for i, r := range recs {
		id := filepath.Base(r.Dir())
		if len(names) > 0 && !slices.ContainsFunc(names, func(n string) bool { return filepath.Base(n) == id }) {
			continue
		}
		conf := func(c string) string {
			if p := points[i]; p != "" && c != "" {
				return p + "/" + c
			} else if p != "" {
				return p
			}
			return c
		}
		if len(r.AppConfs) == 0 {
			out = append(out, Run{ID: id, Config: conf(""), Dir: r.Dir()})
		}
		for _, c := range r.AppConfs {
			out = append(out, Run{ID: id, Config: conf(c), Dir: filepath.Join(r.Dir(), c)})
		}
	}
	if len(names) > 0 && len(out) == 0 {
		return nil, nil, fmt.Errorf("none of %s is a run of %s", strings.Join(names, ", "), scenario)
	}
	return out, recs, nil
}

// Summary is what Scenario found in the runs of a scenario.
type Summary struct {
	Metrics []schema.Metric
	Stats   []Stats           // per metric and configuration, of the runs kept
	Runs    []Run             // the runs kept: those whose run folder succeeded
	Left    []*results.Record // the run folders left out, as their run did not succeed (their data may be partial)
	Folders int               // how many run folders the runs asked for are in
	Missing []Missing         // the metrics that some kept runs have no value of
}

// Missing is a metric that some of the runs kept gave no value of.
type Missing struct {
	Metric  schema.Metric
	NoFile  []string // the runs ("run", or "run (config)") in which no file matches the metric's files
	NoValue []string // the runs whose files hold no value of it
	All     bool     // no run kept gave a value of it
}

// Scenario summarises the metrics of runs (of the scenario in dir, each in
// the run folder of one of recs): the runs whose run did not succeed are
// left out, the others read, with the changes their run folder's timeline
// records, and summarised per configuration.
func Scenario(dir string, runs []Run, recs []*results.Record, metrics []schema.Metric) (*Summary, error) {
	s := &Summary{Metrics: metrics}
	byDir := map[string]*results.Record{}
	for _, r := range recs {
		byDir[r.Dir()] = r
	}
	seen := map[*results.Record]bool{}
	timelines := map[*results.Record]*results.Timeline{}
	for _, r := range runs {
		rec := byDir[r.Dir]
		if rec == nil {
			rec = byDir[filepath.Dir(r.Dir)] // <run>/<app_conf>
		}
		if rec == nil {
			return nil, fmt.Errorf("%s is in no run folder of %s", r.Dir, dir)
		}
		ok := rec.Status == results.Succeeded
		if !seen[rec] {
			seen[rec] = true
			s.Folders++
			if !ok {
				s.Left = append(s.Left, rec)
			}
		}
		if ok {
			if timelines[rec] == nil {
				t, err := results.ReadTimeline(rec.Dir())
				if err != nil {
					return s, err
				}
				timelines[rec] = t
			}
			r.Changes = timelines[rec].Changes
			s.Runs = append(s.Runs, r)
		}
	}
	switch {
	case s.Folders == 0:
		return s, fmt.Errorf("no runs in %s yet: nothing to summarize", dir)
	case len(s.Runs) == 0 && s.Folders == 1:
		return s, fmt.Errorf("%s: none of its 1 run succeeded: nothing to summarize", dir)
	case len(s.Runs) == 0:
		return s, fmt.Errorf("%s: none of its %d runs succeeded: nothing to summarize", dir, s.Folders)
	}
	values, err := Read(s.Runs, metrics)
	if err != nil {
		return s, err
	}
	s.Stats = Summarize(values, metrics)
	s.Missing = missing(metrics, Gaps(s.Runs, metrics, values), len(s.Runs))
	return s, nil
}

// missing groups the gaps per metric, in the order of metrics.
func missing(metrics []schema.Metric, gaps []Gap, runs int) []Missing {
	var out []Missing
	for _, m := range metrics {
		mm := Missing{Metric: m}
		for _, g := range gaps {
			if g.Metric != m.Name {
				continue
			}
			name := g.Run
			if g.Config != "" {
				name += " (" + g.Config + ")"
			}
			if g.Files == 0 {
				mm.NoFile = append(mm.NoFile, name)
			} else {
				mm.NoValue = append(mm.NoValue, name)
			}
		}
		if n := len(mm.NoFile) + len(mm.NoValue); n > 0 {
			mm.All = n == runs
			out = append(out, mm)
		}
	}
	return out
}

// Write writes the statistics as CSVFile and JSONFile, and the runs'
// changes, if any, as ChangesFile, into a new folder of scenario/Dir named
// after now, and returns that folder.
func Write(scenario string, s *Summary, now time.Time) (string, error) {
	if err := os.MkdirAll(filepath.Join(scenario, Dir), 0o755); err != nil {
		return "", err
	}
	out, err := results.NewRunDir(filepath.Join(scenario, Dir), now)
	if err != nil {
		return "", err
	}
	if err := results.WriteFile(out, CSVFile, func(w io.Writer) error { return WriteCSV(w, s.Stats) }); err != nil {
		return out, err
	}
	if err := results.WriteJSON(out, JSONFile, s.Stats); err != nil {
		return out, err
	}
	if changes := changesOf(s.Runs); len(changes) > 0 {
		return out, results.WriteJSON(out, ChangesFile, changes)
	}
	return out, nil
}
