// Package execute runs the phases of a plan on its hosts: plays in file
// order, the hosts of a play in parallel (each running its tasks in order),
// every failure kept per host and task without hiding the healthy hosts.
package execute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/tmpl"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/schema"
	"golang.org/x/sync/errgroup"
)

// Options tune an Executor.
type Options struct {
	Forks  int       // hosts of a play run at once; default 256
	Output io.Writer // every host's output, as "host | line"
	// Log, if set, takes every host's output instead of Output: a record
	// per line, with the host as its "host" attribute.
	Log *slog.Logger
	// Progress, if set, is called as hosts finish.
	Progress func(Progress)
	// Memory, if set, is what earlier executors of the run left: step
	// commands of separate e2c processes carry it in the saved state.
	Memory *Memory
	// JobStarting, if set, is called before a background job starts, with
	// the folder it will have on the host (relative to the host's default
	// directory), so that the job is known even if e2c dies while it runs
	// (StopJobs stops it later). Its error fails the task, unstarted.
	JobStarting func(host, job string) error
}

// Memory is what an executor keeps between phases: the values tasks
// registered and the background jobs they started, per host.
type Memory struct {
	Registered map[string]map[string]any `json:"registered,omitempty"`
	Jobs       Jobs                      `json:"jobs,omitempty"`
}

// UnmarshalJSON reads the registered values as the tasks left them:
// mappings in their saved order and whole numbers as int (encoding/json
// alone would sort the keys, and give float64: an rc of 0 would render as
// 0.0 in the next step).
func (m *Memory) UnmarshalJSON(data []byte) error {
	type memory Memory // without this method
	aux := struct {
		*memory
		Registered map[string]map[string]json.RawMessage `json:"registered"`
	}{memory: (*memory)(m)}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	m.Registered = nil
	if aux.Registered != nil {
		m.Registered = make(map[string]map[string]any, len(aux.Registered))
	}
	for h, vars := range aux.Registered {
		m.Registered[h] = make(map[string]any, len(vars))
		for k, raw := range vars {
			v, err := tmpl.FromJSON(string(raw))
			if err != nil {
				return fmt.Errorf("registered %s of %s: %w", k, h, err)
			}
			m.Registered[h][k] = v
		}
	}
	return nil
}

// Jobs are background jobs by host: their folders, relative to the host's
// default directory (absolute in states of earlier versions).
type Jobs map[string][]string

// Drop removes the jobs of done from j.
func (j Jobs) Drop(done Jobs) {
	for h, dirs := range done {
		if _, ok := j[h]; !ok {
			continue
		}
		if j[h] = slices.DeleteFunc(j[h], func(d string) bool { return slices.Contains(dirs, d) }); len(j[h]) == 0 {
			delete(j, h)
		}
	}
}

// Clone copies j, its lists too.
func (j Jobs) Clone() Jobs {
	c := Jobs{}
	for h, dirs := range j {
		c[h] = slices.Clone(dirs)
	}
	return c
}

// Progress is the state of a play while it runs.
type Progress struct {
	Phase               schema.Phase
	Play                string
	Done, Failed, Total int
	Slowest             string // a host still running, the one that started its current task earliest
}

// Executor runs a plan's phases, keeping between them what tasks register
// and the background jobs they started.
type Executor struct {
	plan    *plan.Plan
	connect transport.Connector
	opt     Options
	out     *lockedWriter

	*shared
}

// shared is what executors of one run share across configurations.
type shared struct {
	mu         sync.Mutex
	registered map[string]map[string]any   // host -> variable -> value (what tasks register, and set_fact)
	jobs       Jobs                        // to stop on interrupt
	local      map[string]transport.Runner // this machine, for delegate_to localhost, by folder
}

// New returns an Executor of p reaching hosts through connect.
func New(p *plan.Plan, connect transport.Connector, o Options) *Executor {
	if o.Forks <= 0 {
		o.Forks = 256
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	sh := &shared{registered: map[string]map[string]any{}, jobs: Jobs{}}
	if m := o.Memory; m != nil {
		// Copies: the caller may read its memory while this one changes.
		for h, r := range m.Registered {
			sh.registered[h] = maps.Clone(r)
		}
		sh.jobs = m.Jobs.Clone()
	}
	return &Executor{plan: p, connect: connect, opt: o, out: &lockedWriter{w: o.Output, log: o.Log}, shared: sh}
}

// WithPlan returns an executor of p (the same experiment under another
// application configuration) that shares what this one's tasks registered
// and the background jobs they started.
func (e *Executor) WithPlan(p *plan.Plan) *Executor {
	return &Executor{plan: p, connect: e.connect, opt: e.opt, out: e.out, shared: e.shared}
}

// Memory returns what the executor keeps between phases, to be saved.
func (e *Executor) Memory() *Memory {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := &Memory{Registered: map[string]map[string]any{}, Jobs: e.jobs.Clone()}
	for h, r := range e.registered {
		m.Registered[h] = maps.Clone(r)
	}
	return m
}

// HostResult is how one host fared in one play.
type HostResult struct {
	Host    string
	Tasks   int // tasks run, loop items counted
	Skipped int // by when
	Err     error
	Took    time.Duration
}

// PlayReport is one play of one phase.
type PlayReport struct {
	Phase   schema.Phase
	Play    int // 0-based
	Pattern string
	Hosts   []HostResult // in play order
	Took    time.Duration
}

// Failed counts the hosts that failed.
func (r PlayReport) Failed() int {
	n := 0
	for _, h := range r.Hosts {
		if h.Err != nil {
			n++
		}
	}
	return n
}

// Phase runs one phase: its plays in file order. A failing host stops its
// own task list; the others go on, and later plays still run on every host
// that has not failed in this phase. The error lists every failure, host by
// host in play order.
func (e *Executor) Phase(ctx context.Context, phase schema.Phase) ([]PlayReport, error) {
	var reports []PlayReport
	var errs failures
	failed := map[string]bool{}
	for _, play := range e.plan.Plays {
		runs := play.Phases[phase]
		if len(runs) == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("%s: play %d (%s) not started: %w", phase, play.Index+1, play.Pattern, err))
			break
		}
		rep := e.play(ctx, phase, play, runs, failed)
		for _, h := range rep.Hosts {
			if h.Err != nil {
				failed[h.Host] = true
				errs = append(errs, h.Err)
			}
		}
		reports = append(reports, rep)
	}
	if len(errs) == 0 {
		return reports, nil
	}
	return reports, errs
}

// failures are a phase's failures, one line each. Like errors.Join's,
// errors.Is and errors.As look into each of them.
type failures []error

func (list failures) Unwrap() []error { return list }

func (list failures) Error() string {
	lines := make([]string, len(list))
	for i, err := range list {
		lines[i] = err.Error()
	}
	if len(list) == 1 {
		return lines[0]
	}
	return fmt.Sprintf("%d failures:\n  %s", len(list), strings.Join(lines, "\n  "))
}

func (e *Executor) play(ctx context.Context, phase schema.Phase, play *plan.Play, runs []*plan.Run, failed map[string]bool) PlayReport {
	start := time.Now()
	rep := PlayReport{Phase: phase, Play: play.Index, Pattern: play.Pattern, Hosts: make([]HostResult, len(runs))}
	var (
		mu       sync.Mutex
		done     int
		nfail    int
		started  = map[string]time.Time{}
		progress = func() {
			if e.opt.Progress == nil {
				return
			}
			slowest, at := "", time.Time{}
			for h, t := range started {
				if slowest == "" || t.Before(at) || (t.Equal(at) && h < slowest) {
					slowest, at = h, t
				}
			}
			e.opt.Progress(Progress{Phase: phase, Play: play.Pattern, Done: done, Failed: nfail, Total: len(runs), Slowest: slowest})
		}
	)
	var g errgroup.Group
	g.SetLimit(e.opt.Forks)
	var active []string
	for _, run := range runs {
		if !failed[run.Host] {
			active = append(active, run.Host)
		}
	}
	once := newOnceTasks(active)
	for i, run := range runs {
		if failed[run.Host] {
			rep.Hosts[i] = HostResult{Host: run.Host, Err: fmt.Errorf("%s: skipped: failed earlier in %s", run.Host, phase)}
			continue
		}
		g.Go(func() error {
			defer once.leave(run.Host)
			mu.Lock()
			started[run.Host] = time.Now()
			mu.Unlock()
			res := e.host(ctx, phase, play, run, once, func() {
				mu.Lock()
				started[run.Host] = time.Now()
				mu.Unlock()
			})
			mu.Lock()
			delete(started, run.Host)
			done++
			if res.Err != nil {
				nfail++
			}
			progress()
			mu.Unlock()
			rep.Hosts[i] = res
			return nil
		})
	}
	_ = g.Wait()
	rep.Took = time.Since(start)
	return rep
}

// host runs a play's tasks on one host, in order.
func (e *Executor) host(ctx context.Context, phase schema.Phase, play *plan.Play, run *plan.Run, once *onceTasks, nextTask func()) HostResult {
	start := time.Now()
	res := HostResult{Host: run.Host}
	defer func() { res.Took = time.Since(start) }()
	r, err := e.connect(ctx, run.Host)
	if err != nil {
		err = fmt.Errorf("unreachable: %w", err)
		if t := firstTask(run.Tasks); t != nil {
			res.Err = &TaskError{Host: run.Host, Phase: phase, Task: t, Err: err} // the task it was about to run
		} else {
			res.Err = fmt.Errorf("%s: %w", run.Host, err)
		}
		return res
	}
	h := &hostRun{e: e, phase: phase, play: play, host: run.Host, r: r, res: &res, once: once, next: nextTask}
	if err := h.tasks(ctx, run.Tasks); err != nil {
		res.Err = err
	}
	return res
}

func firstTask(tasks []*plan.Task) *plan.Task {
	var first *plan.Task
	plan.Walk(tasks, func(t *plan.Task) {
		if first == nil {
			first = t
		}
	})
	return first
}

// TaskError is a task that failed on a host.
type TaskError struct {
	Host   string
	Phase  schema.Phase
	Task   *plan.Task
	Err    error
	Result map[string]any // what the task registers, which a rescue reads as ansible_failed_result
}

func (e *TaskError) Error() string {
	return fmt.Sprintf("%s: %s task %d (%s, %s): %v", e.Host, e.Phase, e.Task.Index+1, describe(e.Task), e.Task.Pos, hidden(e.Task, e.Err))
}

func (e *TaskError) Unwrap() error { return e.Err }

// describe names a task in progress lines and errors: its name, else its
// module and what it works on (a shell task's command line, shortened),
// and its loop item (or label). A no_log task shows neither what it works
// on nor its item.
func describe(t *plan.Task) string {
	s := t.Name
	switch {
	case s != "":
	case t.IsBlock():
		s = "block"
	case t.NoLog:
		s = t.Module
	default:
		s = t.Module
		if what := subject(t); what != "" {
			s += ": " + what
		}
	}
	switch {
	case t.NoLog:
	case t.Label != "":
		s += " [item=" + t.Label + "]"
	case t.Item != nil:
		s += fmt.Sprintf(" [item=%v]", t.Item)
	}
	return s
}

// hidden is err, or for a no_log task a mention that it is hidden: the
// module's errors may quote its output or arguments.
func hidden(t *plan.Task, err error) error {
	if t.NoLog && !IsCancel(err) {
		return errors.New("the error is hidden (no_log: true)")
	}
	return err
}

// subject is what an unnamed task works on, as written (a secret
// templated in is not shown), on one line of at most maxSubject
// characters.
func subject(t *plan.Task) string {
	a := args(t.Written)
	if t.Written == nil { // a plan read back from JSON
		a = args(t.Args)
	}
	var s string
	switch t.Module {
	case "shell", "command":
		s = a.str("cmd")
	case "copy", "template", "fetch":
		s = a.str("src") + " to " + a.str("dest")
	case "wait_for":
		s = "path " + a.str("path")
		if a.str("path") == "" {
			s = "port " + a.str("port")
		}
	}
	var lines []string // a script's lines, as one line of shell
	for _, l := range strings.Split(s, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			lines = append(lines, l)
		}
	}
	s = strings.Join(lines, "; ")
	if r := []rune(s); len(r) > maxSubject {
		s = string(r[:maxSubject-3]) + "..."
	}
	return s
}

const maxSubject = 60

// IsCancel reports whether err comes from cancellation rather than a task.
func IsCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
