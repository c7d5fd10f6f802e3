package execute

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/schema"
)

// hostRun is one host running the tasks of a play's phase, with
// Ansible's semantics: blocks with rescue and always, loops that run
// every item before failing, until and retries, failed_when and
// changed_when, delegate_to and run_once.
type hostRun struct {
	e      *Executor
	phase  schema.Phase
	play   *plan.Play
	host   string
	r      transport.Runner
	res    *HostResult
	once   *onceTasks
	next   func()         // a task starts, for progress
	rescue map[string]any // ansible_failed_task and _result, in a rescue and its always
}

// tasks runs tasks in order, up to the first failure not ignored.
func (h *hostRun) tasks(ctx context.Context, tasks []*plan.Task) error {
	for _, t := range tasks {
		var err error
		if t.IsBlock() {
			err = h.block(ctx, t)
		} else {
			err = h.task(ctx, t)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// block runs a block's tasks; if one fails its rescue, which forgives the
// failure when it succeeds; then its always in any case.
func (h *hostRun) block(ctx context.Context, b *plan.Task) error {
	err := h.tasks(ctx, b.Block)
	var te *TaskError
	if len(b.Rescue) > 0 && errors.As(err, &te) && !IsCancel(err) {
		saved := h.rescue
		defer func() { h.rescue = saved }()
		h.rescue = map[string]any{"ansible_failed_task": failedTask(te.Task), "ansible_failed_result": failedResult(te)}
		err = h.tasks(ctx, b.Rescue)
	}
	if len(b.Always) > 0 && !IsCancel(err) {
		if aerr := h.tasks(ctx, b.Always); aerr != nil {
			err = aerr
		}
	}
	return err
}

// failedTask is what a rescue sees of the task that failed.
func failedTask(t *plan.Task) map[string]any {
	return map[string]any{"name": t.Name, "action": t.Module}
}

func failedResult(te *TaskError) map[string]any {
	if te.Task.NoLog {
		return map[string]any{"censored": censored, "failed": true}
	}
	if te.Result == nil {
		return map[string]any{"failed": true, "msg": te.Err.Error()}
	}
	return te.Result
}

const censored = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"

// task runs one task (on one host of the play if run_once), registers its
// result and fails unless it ignores errors.
func (h *hostRun) task(ctx context.Context, t *plan.Task) error {
	var (
		result map[string]any
		failed *plan.Task
		err    error
	)
	if t.RunOnce {
		result, failed, err = h.once.run(ctx, h, t)
	} else {
		result, failed, err = h.run(ctx, t)
	}
	if t.Register != "" && result != nil {
		h.e.mu.Lock()
		if h.e.registered[h.host] == nil {
			h.e.registered[h.host] = map[string]any{}
		}
		h.e.registered[h.host][t.Register] = result
		h.e.mu.Unlock()
	}
	switch {
	case err == nil:
		return nil
	case t.IgnoreErrors && !IsCancel(err):
		h.e.logf(h.host, "failed, ignored: %v", hidden(t, err))
		return nil
	}
	return &TaskError{Host: h.host, Phase: h.phase, Task: failed, Err: err, Result: result}
}

// run runs a task, or each item of a looped one: every item runs even
// when one fails, as in Ansible. It returns what the task registers, the
// task (or item) that failed first and its error.
func (h *hostRun) run(ctx context.Context, t *plan.Task) (map[string]any, *plan.Task, error) {
	if t.Loop == nil {
		return h.item(ctx, t, t, nil)
	}
	items := t.Items
	if t.Deferred {
		values, err := h.scope(t, nil).Items(t)
		if err != nil {
			return map[string]any{"failed": true, "msg": err.Error(), "changed": false}, t, err
		}
		items = make([]*plan.Task, len(values))
		for i, v := range values {
			it := *t
			it.Item = v
			items[i] = &it
		}
	}
	if len(items) == 0 {
		return map[string]any{"changed": false, "skipped": true, "skipped_reason": "No items in the list", "results": []any{}}, nil, nil
	}
	var (
		results            = make([]any, 0, len(items))
		changed, anyFailed = false, false
		skipped            = true
		firstFailed        *plan.Task
		firstErr           error
	)
	loopVar, index := t.LoopVar(), ""
	if t.LoopControl != nil {
		index = t.LoopControl.IndexVar
	}
	for i, it := range items {
		if i > 0 && t.LoopControl != nil && t.LoopControl.Pause > 0 {
			if err := sleep(ctx, time.Duration(t.LoopControl.Pause*float64(time.Second))); err != nil {
				return nil, it, err
			}
		}
		vars := t.ItemVars(it.Item, i)
		res, failed, err := h.item(ctx, t, it, vars)
		if IsCancel(err) {
			return nil, failed, err
		}
		res[loopVar], res["ansible_loop_var"] = it.Item, loopVar
		if index != "" {
			res[index], res["ansible_index_var"] = i, index
		}
		results = append(results, res)
		changed = changed || res["changed"] == true
		skipped = skipped && res["skipped"] == true
		if err != nil {
			anyFailed = true
			if firstErr == nil {
				firstFailed, firstErr = failed, err
			}
		}
	}
	summary := map[string]any{"results": results, "changed": changed, "skipped": skipped, "msg": "All items completed"}
	switch {
	case anyFailed:
		summary["failed"], summary["msg"] = true, "One or more items failed"
	case skipped:
		summary["msg"] = "All items skipped"
	}
	return summary, firstFailed, firstErr
}

// scope is what the templates of t (item: its loop item's variables) read.
func (h *hostRun) scope(t *plan.Task, item map[string]any) *plan.Scope {
	h.e.mu.Lock()
	registered := maps.Clone(h.e.registered[h.host])
	h.e.mu.Unlock()
	return h.e.plan.Scope(h.play, h.phase, h.host, t, registered, h.rescue, item)
}

// item runs a task, or one item of a looped task t: its conditions, then
// (rendered now if it is deferred) its module on its host, until it holds.
func (h *hostRun) item(ctx context.Context, t, it *plan.Task, vars map[string]any) (map[string]any, *plan.Task, error) {
	if err := ctx.Err(); err != nil {
		return nil, it, err
	}
	sc := h.scope(t, vars)
	ok, err := sc.Holds(it.When)
	if err != nil {
		return map[string]any{"failed": true, "msg": err.Error(), "changed": false}, it, err
	}
	if !ok {
		h.res.Skipped++
		return map[string]any{"changed": false, "skipped": true, "skip_reason": "Conditional result was False"}, it, nil
	}
	rt, err := h.e.plan.Render(it, sc)
	if err != nil {
		return map[string]any{"failed": true, "msg": err.Error(), "changed": false}, it, err
	}
	if t.Deferred && t.LoopControl != nil && t.LoopControl.Label != "" {
		rt.Label, _ = sc.Text(t.LoopControl.Label)
	}
	h.res.Tasks++
	h.next()
	h.e.logf(h.host, "TASK %s", describe(rt))
	r := h.r
	if rt.DelegateTo != "" {
		if r, err = h.e.runner(ctx, rt.DelegateTo); err != nil {
			err = fmt.Errorf("delegate_to %s: %w", rt.DelegateTo, err)
			return map[string]any{"failed": true, "msg": err.Error(), "changed": false, "unreachable": true}, rt, err
		}
		h.e.logf(h.host, "delegated to %s", rt.DelegateTo)
	}
	out, err := h.attempts(ctx, r, rt, sc)
	return out, rt, err
}

// attempts runs the module of t, again while its until does not hold (as
// ansible-core 2.14: retries more, delay seconds apart), applying its
// changed_when and failed_when to every result.
func (h *hostRun) attempts(ctx context.Context, r transport.Runner, t *plan.Task, sc *plan.Scope) (map[string]any, error) {
	tries := 1
	if len(t.Until) > 0 && t.Retries > 0 {
		tries = t.Retries + 1
	}
	for attempt := 1; ; attempt++ {
		out, err := h.module(ctx, r, t, sc)
		if IsCancel(err) {
			return out, err
		}
		if len(t.Until) > 0 {
			out["attempts"] = attempt
		}
		if t.Register != "" {
			sc.Set(t.Register, out)
		}
		err = judge(t, sc, out, err)
		if tries == 1 {
			return out, err
		}
		done, uerr := sc.Holds(t.Until)
		switch {
		case uerr != nil:
			out["failed"] = true
			return out, fmt.Errorf("until: %w", uerr)
		case done:
			return out, err
		case attempt == tries:
			out["attempts"], out["failed"] = tries-1, true // as Ansible counts them
			if err == nil {
				err = fmt.Errorf("until (%s) does not hold after %d attempts", strings.Join(t.Until, " and "), tries)
			}
			return out, err
		}
		h.e.logf(h.host, "FAILED - RETRYING: %s (%d retries left)", describe(t), tries-attempt)
		if err := sleep(ctx, time.Duration(t.Delay)*time.Second); err != nil {
			return out, err
		}
	}
}

// judge applies changed_when and failed_when to a result, and returns the
// task's error: the module's, unless failed_when decides.
func judge(t *plan.Task, sc *plan.Scope, out map[string]any, err error) error {
	if out["skipped"] == true {
		return err
	}
	if len(t.ChangedWhen) > 0 {
		changed, cerr := sc.Holds(t.ChangedWhen)
		if cerr != nil {
			out["failed"], out["changed_when_result"] = true, cerr.Error()
			return fmt.Errorf("changed_when: %w", cerr)
		}
		out["changed"] = changed
	}
	if len(t.FailedWhen) > 0 {
		failed, ferr := sc.Holds(t.FailedWhen)
		if ferr != nil {
			out["failed"], out["failed_when_result"] = true, ferr.Error()
			return fmt.Errorf("failed_when: %w", ferr)
		}
		out["failed"], out["failed_when_result"] = failed, failed
		if !failed {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("failed_when (%s) holds", strings.Join(t.FailedWhen, " or "))
		}
	}
	return err
}

// module runs t's module once on r and returns its result, with failed
// and changed always set. A no_log task's output reaches no log.
func (h *hostRun) module(ctx context.Context, r transport.Runner, t *plan.Task, sc *plan.Scope) (map[string]any, error) {
	e := h.e
	if t.NoLog {
		quiet := *e
		quiet.out = &lockedWriter{w: io.Discard}
		e = &quiet
	}
	if t.BecomeUser != "" {
		r = becomeUser{r, t.BecomeUser}
	}
	out, err := e.module(ctx, r, h.host, h.phase, t, sc)
	if out == nil {
		out = map[string]any{}
	}
	if facts, ok := out["ansible_facts"].(map[string]any); ok && err == nil {
		h.e.mu.Lock()
		if h.e.registered[h.host] == nil {
			h.e.registered[h.host] = map[string]any{}
		}
		maps.Copy(h.e.registered[h.host], facts)
		h.e.mu.Unlock()
	}
	if _, ok := out["failed"]; !ok || err != nil {
		out["failed"] = err != nil
	}
	if _, ok := out["changed"]; !ok {
		out["changed"] = false
	}
	if _, ok := out["msg"]; !ok && err != nil {
		out["msg"] = err.Error()
	}
	return out, err
}

// becomeUser runs commands as another user (become_user), through sudo.
type becomeUser struct {
	transport.Runner
	user string
}

func (b becomeUser) Run(ctx context.Context, c transport.Command) (transport.Result, error) {
	if c.Sudo {
		c.User = b.user
	}
	return b.Runner.Run(ctx, c)
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// runner returns the transport of a host a task is delegated to: a host of
// the plan, or this machine (in the folder "localhost" of the run).
func (e *Executor) runner(ctx context.Context, host string) (transport.Runner, error) {
	if host != plan.Localhost {
		return e.connect(ctx, host)
	}
	if e.plan.Run == "" {
		return nil, errors.New("this machine has no folder for the task: the run has none")
	}
	dir := filepath.Join(e.plan.Run, plan.Localhost)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.local == nil {
		e.local = map[string]transport.Runner{}
	}
	if e.local[dir] == nil {
		e.local[dir] = transport.NewLocal(dir)
	}
	return e.local[dir], nil
}

// onceTasks are the run_once tasks of a play. As in Ansible, each runs on
// the first host of the play still running (the same host every run, for
// reproducibility), and every host of the play takes its result.
type onceTasks struct {
	mu    sync.Mutex
	cond  *sync.Cond
	hosts []string // the hosts still running the play, in play order
	tasks map[string]*onceTask
}

type onceTask struct {
	host   string
	done   bool
	result map[string]any
	err    error
}

func newOnceTasks(hosts []string) *onceTasks {
	o := &onceTasks{hosts: hosts, tasks: map[string]*onceTask{}}
	o.cond = sync.NewCond(&o.mu)
	return o
}

// leave says host runs no more of the play: the run_once tasks it has not
// begun fall to the next host.
func (o *onceTasks) leave(host string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.hosts = slices.DeleteFunc(o.hosts, func(h string) bool { return h == host })
	o.cond.Broadcast()
}

func (o *onceTasks) run(ctx context.Context, h *hostRun, t *plan.Task) (map[string]any, *plan.Task, error) {
	stop := context.AfterFunc(ctx, func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.cond.Broadcast()
	})
	defer stop()
	o.mu.Lock()
	for {
		ot := o.tasks[t.Pos]
		switch {
		case ot == nil && len(o.hosts) > 0 && o.hosts[0] == h.host:
			ot = &onceTask{host: h.host}
			o.tasks[t.Pos] = ot
			o.mu.Unlock()
			result, failed, err := h.run(ctx, t)
			o.mu.Lock()
			ot.result, ot.err, ot.done = result, err, true
			o.cond.Broadcast()
			o.mu.Unlock()
			return result, failed, err
		case ot != nil && ot.done:
			o.mu.Unlock()
			h.e.logf(h.host, "TASK %s: run once, on %s", describe(t), ot.host)
			if ot.err != nil {
				return ot.result, t, fmt.Errorf("run once on %s: %w", ot.host, ot.err)
			}
			return ot.result, nil, nil
		case ctx.Err() != nil:
			o.mu.Unlock()
			return nil, t, ctx.Err()
		}
		o.cond.Wait()
	}
}
