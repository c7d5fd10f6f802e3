package summary

import (
	"time"

	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// ChangesFile is the changes made to the runs summarised, beside
// JSONFile, written only when there are some.
const ChangesFile = "changes.json"

// Mark is a change placed on the x of a run's series over time.
type Mark struct {
	X      float64 // seconds since the run's first value
	Change *results.Change
}

// SeriesWithChanges is Series of r's values of m, and r's changes placed
// on the same x: a change's start on the time column's clock (Unix
// seconds, as metrics.yaml's time_column holds) less the first value's
// time. A change is placed only within the values' time, from the first
// to the last: one made before or after has no place on the figure, and
// neither has any when the time column is another clock (seconds since a
// process started, milliseconds), which puts them far outside. Without a
// time column x is a value's position, no clock: no change is placed.
func SeriesWithChanges(r Run, m schema.Metric) ([]Point, []Mark, error) {
	pts, x0, err := series(r.Dir, m)
	if err != nil || len(pts) == 0 || m.TimeColumn == "" {
		return pts, nil, err
	}
	_, span := xRange(pts)
	var marks []Mark
	for _, c := range r.Changes {
		if x := unixSeconds(c.Start) - x0; x >= 0 && x <= span {
			marks = append(marks, Mark{X: x, Change: c})
		}
	}
	return pts, marks, nil
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// runChanges are one run folder's changes, as ChangesFile lists them:
// what and when, not what each host did (its timeline.json has that).
type runChanges struct {
	Run     string            `json:"run"`
	Changes []*results.Change `json:"changes"`
}

// changesOf lists the changes of each run folder of runs that has some,
// once however many app_confs it ran.
func changesOf(runs []Run) []runChanges {
	var out []runChanges
	seen := map[string]bool{}
	for _, r := range runs {
		if len(r.Changes) == 0 || seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		rc := runChanges{Run: r.ID}
		for _, c := range r.Changes {
			short := *c
			short.Diff, short.Hosts = nil, nil
			rc.Changes = append(rc.Changes, &short)
		}
		out = append(out, rc)
	}
	return out
}
