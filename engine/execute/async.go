package execute

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
)

var jobSeq atomic.Int64

// async starts a command detached on the host, in its own process group,
// with a watchdog that kills the whole group after t.Async seconds, as
// Ansible's async does. The watchdog's own sleep is killed with it when the
// command ends first, so nothing lingers. With poll 0 it returns at once; otherwise it checks
// every poll seconds until the command ends.
func (e *Executor) async(ctx context.Context, r transport.Runner, host string, t *plan.Task, a args) (map[string]any, error) {
	script, dir, err := commandLine(t, a)
	if err != nil {
		return nil, err
	}
	// The job folder is in the host's default directory (a local host's
	// working area, the home of an SSH user), whatever the task's chdir.
	job := fmt.Sprintf(".e2c/jobs/%d-%d", time.Now().UnixNano(), jobSeq.Add(1))
	if e.opt.JobStarting != nil {
		if err := e.opt.JobStarting(host, job); err != nil {
			return nil, fmt.Errorf("recording the background job: %w", err)
		}
	}
	cd := ""
	if dir != "" {
		cd = "cd " + quote(dir) + " || exit 1"
	}
	start := fmt.Sprintf(`mkdir -p %s && d=$(cd %s && pwd) || exit 1
%s
setsid sh -c '
  trap "" HUP; trap ": killed" TERM   # outlive the group kill to record the status
  echo $$ > "$1/pid"
  ( trap "kill \$s 2>/dev/null; exit 0" TERM; sleep %d & s=$!; wait $s
    trap "" TERM; kill -TERM -$$; sleep 5; kill -KILL -$$ ) >/dev/null 2>&1 &
  w=$!
  sh -c "$2" > "$1/out" 2> "$1/err" < /dev/null
  echo $? > "$1/rc.tmp" && mv "$1/rc.tmp" "$1/rc"
  kill $w 2>/dev/null
' e2c-job "$d" %s > /dev/null 2>&1 < /dev/null &
echo "$d"`, job, job, cd, t.Async, quote(script))
	res, err := r.Run(ctx, transport.Command{Script: start, Env: t.Environment, Sudo: t.Become})
	if err != nil {
		return nil, fmt.Errorf("start in the background: %w", err)
	}
	dirOnHost := strings.TrimSpace(res.Stdout)
	e.mu.Lock()
	e.jobs[host] = append(e.jobs[host], dirOnHost)
	e.mu.Unlock()
	e.logf(host, "started in the background (killed after %ds): %s", t.Async, dirOnHost)
	if t.Poll == 0 {
		return map[string]any{"started": true, "finished": false, "ansible_job_id": dirOnHost, "changed": true}, nil
	}
	deadline := time.Now().Add(time.Duration(t.Async)*time.Second + 10*time.Second)
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(t.Poll) * time.Second):
		}
		res, err := r.Run(ctx, transport.Command{Script: fmt.Sprintf(`d=%s; [ -f "$d/rc" ] || exit 3; cat "$d/rc"; cat "$d/out"; cat "$d/err" >&2`, quote(dirOnHost))})
		if code := exitCode(err); code == 3 {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("still running after async %ds", t.Async)
			}
			continue
		} else if err != nil {
			return nil, err
		}
		rcLine, out, _ := strings.Cut(res.Stdout, "\n")
		res.Stdout = out
		fmt.Sscan(rcLine, &res.Code)
		for _, l := range lines(out) {
			e.logf(host, "%s", l)
		}
		result := commandResult(res)
		if res.Code != 0 {
			return result, fmt.Errorf("exit status %d: %s", res.Code, lastLine(res.Stderr))
		}
		return result, nil
	}
}

// StopJobs kills every background job the executor started that is still
// running, so an interrupted run leaves nothing behind on its hosts.
func (e *Executor) StopJobs(ctx context.Context) error {
	e.mu.Lock()
	jobs := e.jobs
	e.jobs = map[string][]string{}
	e.mu.Unlock()
	return StopJobs(ctx, e.connect, jobs)
}

// StopJobs kills the process groups of the background jobs listed per
// host (their folders, absolute or relative to the host's default
// directory) that are still running: jobs an earlier e2c process recorded
// and may not have stopped.
func StopJobs(ctx context.Context, connect Connector, jobs map[string][]string) error {
	var errs []string
	for host, dirs := range jobs {
		if len(dirs) == 0 {
			continue
		}
		r, err := connect(ctx, host)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", host, err))
			continue
		}
		var script strings.Builder
		for _, d := range dirs {
			fmt.Fprintf(&script, "d=%s; [ -f \"$d/pid\" ] && ! [ -f \"$d/rc\" ] && kill -TERM -\"$(cat \"$d/pid\")\" 2>/dev/null\n", quote(d))
		}
		script.WriteString("true\n")
		if _, err := r.Run(ctx, transport.Command{Script: script.String()}); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", host, err))
		}
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return fmt.Errorf("stopping background jobs: %s", strings.Join(errs, "; "))
	}
	return nil
}

func exitCode(err error) int {
	if ee, ok := err.(*transport.ExitError); ok {
		return ee.Code
	}
	return 0
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
