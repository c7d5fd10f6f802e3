package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// TimelineFile is a run's changes to the running experiment, timed
// (timeline.yaml) and manual (e2c apply, e2c scale), in the order made.
const TimelineFile = "timeline.json"

// TimelineVersion is the version of the timeline.json format.
const TimelineVersion = 1

// Timeline is timeline.json.
type Timeline struct {
	Version int       `json:"version"`
	Changes []*Change `json:"changes"`
}

// Change is one change made to a running experiment.
type Change struct {
	// Source is what asked for it: the timeline entry's position
	// (timeline.yaml:4:3) or the command (e2c apply, e2c scale).
	Source string `json:"source"`
	Kind   string `json:"kind"`  // scale, network, run or apply
	Asked  string `json:"asked"` // what was asked, in one line
	// Planned is when a timed change was due: its offset from the end of
	// launch, in seconds, and that time. Manual changes have neither.
	Planned   *float64   `json:"planned,omitempty"`
	PlannedAt *time.Time `json:"planned_at,omitempty"`
	Start     time.Time  `json:"start"`
	End       *time.Time `json:"end,omitempty"`
	Status    Status     `json:"status"`
	// Diff is the difference the change made, one line each: + added,
	// - removed, ~ changed (with what changed).
	Diff  []string     `json:"diff,omitempty"`
	Hosts []ChangeHost `json:"hosts,omitempty"` // what was done per host
	// Steps are the change's steps (finalize of the hosts removed,
	// resize, services, network, prepare, launch, reconfigure), each with
	// its start and end.
	Steps []*Step `json:"steps,omitempty"`
	Error string  `json:"error,omitempty"`
}

// ChangeHost is what a change did on one host.
type ChangeHost struct {
	Host  string `json:"host"`
	Did   string `json:"did"` // added, removed, network, reconfigured, ran, needs reconfigure
	Error string `json:"error,omitempty"`
}

// Late is how long after its planned time a timed change started (0 for
// a manual one).
func (c *Change) Late() time.Duration {
	if c.PlannedAt == nil {
		return 0
	}
	return c.Start.Sub(*c.PlannedAt)
}

// ReadTimeline reads a run's timeline.json; a run without changes has an
// empty one.
func ReadTimeline(dir string) (*Timeline, error) {
	t := &Timeline{Version: TimelineVersion}
	data, err := os.ReadFile(filepath.Join(dir, TimelineFile))
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, t); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, TimelineFile), err)
	}
	return t, nil
}

// TimelineWriter keeps a run's timeline.json up to date as changes begin
// and end, so that a crash mid-change leaves it known. It may be used by
// several goroutines.
type TimelineWriter struct {
	dir string
	mu  sync.Mutex
	t   *Timeline
}

// OpenTimeline opens dir's timeline, adding to the changes it holds.
func OpenTimeline(dir string) (*TimelineWriter, error) {
	t, err := ReadTimeline(dir)
	if err != nil {
		return nil, err
	}
	return &TimelineWriter{dir: dir, t: t}, nil
}

// Begin records c as running and saves.
func (w *TimelineWriter) Begin(c *Change) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	c.Status = Running
	if c.Start.IsZero() {
		c.Start = time.Now()
	}
	w.t.Changes = append(w.t.Changes, c)
	return WriteJSON(w.dir, TimelineFile, w.t)
}

// Update changes c (begun) under the writer's lock and saves.
func (w *TimelineWriter) Update(c *Change, f func(*Change)) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(c)
	return WriteJSON(w.dir, TimelineFile, w.t)
}

// End closes c with status (err's text, if any) and saves.
func (w *TimelineWriter) End(c *Change, status Status, err error) error {
	return w.Update(c, func(c *Change) {
		end := time.Now()
		c.End, c.Status = &end, status
		if err != nil {
			c.Error = err.Error()
		}
	})
}

// Changes returns a copy of the list of changes recorded.
func (w *TimelineWriter) Changes() []*Change {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*Change(nil), w.t.Changes...)
}
