package plot

import (
	"errors"

	"github.com/e2c-dev/e2c/results/summary"
)

// MaxLines bounds the runs drawn in one plot over time: past a dozen lines
// nobody can tell them apart.
const MaxLines = 12

// Figures draws, into dir, each metric of s per configuration and over
// time (its first MaxLines runs). It returns the files written and, for
// each figure it could not draw for want of data, why (ErrTooShort).
func Figures(dir string, s *summary.Summary) (files []string, skipped []error, err error) {
	for _, m := range s.Metrics {
		more, err := PerConfig(s.Stats, m.Name, dir, m.Name+"-per-config")
		if err != nil {
			continue // a metric no run has
		}
		files = append(files, more...)
		var series []Series
		for _, r := range s.Runs[:min(len(s.Runs), MaxLines)] {
			pts, marks, err := summary.SeriesWithChanges(r, m)
			if err != nil {
				return files, skipped, err
			}
			if len(pts) > 0 {
				series = append(series, Series{Run: r.ID, Config: r.Config, Points: pts, Marks: marks, Unplaced: len(r.Changes) - len(marks)})
			}
		}
		more, err = OverTime(series, m.Name, m.Unit, m.TimeColumn != "", dir, m.Name+"-over-time")
		if errors.Is(err, ErrTooShort) {
			skipped = append(skipped, err)
			continue
		}
		if err != nil {
			return files, skipped, err
		}
		files = append(files, more...)
	}
	return files, skipped, nil
}
