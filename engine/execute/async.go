package execute

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/e2c-dev/e2c/engine/fanout"
	"github.com/e2c-dev/e2c/engine/transport"
)

var jobSeq atomic.Int64

// NewJobFolder returns a new background job's folder, relative to the
// host's default directory (a local host's working area, the home of an
// SSH user).
func NewJobFolder() string {
	return fmt.Sprintf(".e2c/jobs/%d-%d", time.Now().UnixNano(), jobSeq.Add(1))
}

// async starts a command as a background job, as Ansible's async does:
// killed with its whole process group after t.Async seconds. With poll 0
// it returns at once; otherwise it checks every poll seconds until the
// command ends. The job's folder is its ansible_job_id; its rc file,
// written when it ends, is its results_file.
func (c *call) async() (map[string]any, error) {
	t, host := c.t, c.host
	cmd, err := commandLine(t, c.a)
	if err != nil {
		return nil, err
	}
	// Known before it starts, so that no crash can hide it.
	job := NewJobFolder()
	if c.e.opt.JobStarting != nil {
		if err := c.e.opt.JobStarting(host, job); err != nil {
			return nil, fmt.Errorf("recording the background job: %w", err)
		}
	}
	c.e.mu.Lock()
	c.e.jobs[host] = append(c.e.jobs[host], job)
	c.e.mu.Unlock()
	start := time.Now()
	dirOnHost, err := StartJob(c.ctx, c.r, job, transport.Command{Script: cmd.script, Dir: cmd.dir, Env: t.Environment, Sudo: t.Become}, t.Async)
	if err != nil {
		return nil, err
	}
	c.e.logf(host, "started in the background (killed after %ds): %s", t.Async, dirOnHost)
	ids := map[string]any{"ansible_job_id": dirOnHost, "results_file": dirOnHost + "/rc", "started": 1}
	if t.Poll == 0 {
		ids["finished"], ids["changed"], ids["failed"] = 0, true, 0 // as Ansible's async_wrapper writes them
		return ids, nil
	}
	deadline := time.Now().Add(time.Duration(t.Async)*time.Second + 10*time.Second)
	for {
		select {
		case <-c.ctx.Done():
			return nil, c.ctx.Err()
		case <-time.After(time.Duration(t.Poll) * time.Second):
		}
		res, err := c.r.Run(c.ctx, transport.Command{Script: fmt.Sprintf(`d=%s; [ -f "$d/rc" ] || exit 3; cat "$d/rc"; cat "$d/out"; cat "$d/err" >&2`, quote(dirOnHost)), Sudo: t.Become})
		if code := exitCode(err); code == 3 {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("still running after async %ds", t.Async)
			}
			continue
		} else if err != nil {
			return nil, err
		}
		end := time.Now()
		rcLine, out, _ := strings.Cut(res.Stdout, "\n")
		res.Stdout = out
		fmt.Sscan(rcLine, &res.Code)
		for _, l := range splitLines(strings.TrimRight(out, "\r\n")) {
			c.e.logf(host, "%s", l)
		}
		result := commandResult(res, c.a.boolean("strip_empty_ends", true))
		maps.Copy(result, ids)
		result["finished"], result["cmd"] = 1, cmd.shown
		result["start"], result["end"], result["delta"] = pyTime(start), pyTime(end), pyDelta(end.Sub(start))
		if name, ok := notFound(res); ok {
			return notFoundResult(result, cmd.shown, name)
		}
		if res.Code != 0 {
			result["msg"] = "non-zero return code"
			return result, fmt.Errorf("exit status %d: %s", res.Code, lastLine(res.Stderr))
		}
		return result, nil
	}
}

// StartJob starts c.Script detached on r, in c.Dir, as the background job
// of folder (relative to the host's default directory, see NewJobFolder):
// in its own process group, its output and exit status in the folder.
// With limit > 0 a watchdog kills the whole group after limit seconds; the
// watchdog's own sleep is killed with it when the command ends first, so
// nothing lingers. It returns the job's absolute folder on the host.
func StartJob(ctx context.Context, r transport.Runner, folder string, c transport.Command, limit int) (string, error) {
	cd := ""
	if c.Dir != "" {
		cd = "cd " + quote(c.Dir) + " || exit 1"
	}
	// The leader's arguments (e2c-job, then the folder) are how StopJobs
	// tells it from a process that got its pid after a reboot. Its pid is
	// written once its watchdog runs, and StartJob returns once it is
	// written: StopJobs right after StartJob finds the whole group.
	start := fmt.Sprintf(`mkdir -p %s && d=$(cd %s && pwd) || exit 1
%s
setsid sh -c '
  trap "" HUP; trap ": killed" TERM   # outlive the group kill to record the status
  w=
  if [ "$3" -gt 0 ]; then
    ( trap "kill \$s 2>/dev/null; exit 0" TERM; sleep "$3" & s=$!; wait $s
      trap "" TERM; kill -TERM -$$; sleep 5; kill -KILL -$$ ) >/dev/null 2>&1 &
    w=$!
  fi
  echo $$ > "$1/pid"
  sh -c "$2" > "$1/out" 2> "$1/err" < /dev/null
  echo $? > "$1/rc.tmp" && mv "$1/rc.tmp" "$1/rc"
  [ -z "$w" ] || kill $w 2>/dev/null
' e2c-job "$d" %s %d > /dev/null 2>&1 < /dev/null &
i=0
until [ -s "$d/pid" ]; do
  [ $i -lt 200 ] || { echo "the job wrote no pid within 10 s (is setsid installed?)" >&2; exit 1; }
  sleep 0.05; i=$((i+1))
done
echo "$d"`, quote(folder), quote(folder), cd, quote(c.Script), limit)
	res, err := r.Run(ctx, transport.Command{Script: start, Env: c.Env, Sudo: c.Sudo})
	if err != nil {
		return "", fmt.Errorf("start in the background: %w", err)
	}
	return strings.TrimSpace(res.Stdout), nil
}

// StopJobs kills every background job the executor started that is still
// running, so an interrupted run leaves nothing behind on its hosts. It
// keeps those it could not stop, with their hosts' error.
func (e *Executor) StopJobs(ctx context.Context) error {
	e.mu.Lock()
	jobs := e.jobs.Clone()
	e.mu.Unlock()
	stopped, err := StopJobs(ctx, e.connect, jobs)
	e.mu.Lock()
	e.jobs.Drop(stopped)
	e.mu.Unlock()
	return err
}

// StopJobs stops the background jobs listed per host that are still
// running: jobs an earlier e2c process recorded and may not have stopped.
// It returns those that are now stopped or had ended; the error names the
// others: jobs of hosts it could not reach, or that are still running.
func StopJobs(ctx context.Context, connect transport.Connector, jobs Jobs) (stopped Jobs, err error) {
	var hosts []string
	var left [][]string // the jobs of each host not stopped: all, until it is reached
	for _, h := range slices.Sorted(maps.Keys(jobs)) {
		if len(jobs[h]) > 0 {
			hosts, left = append(hosts, h), append(left, jobs[h])
		}
	}
	errs := fanout.Each(ctx, len(hosts), 32, func(ctx context.Context, i int) error {
		var err error
		left[i], err = stopOn(ctx, connect, hosts[i], jobs[hosts[i]])
		return err
	})
	stopped = Jobs{}
	var problems []string
	for i, h := range hosts {
		if errs[i] != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", h, errs[i]))
		}
		if done := slices.DeleteFunc(slices.Clone(jobs[h]), func(d string) bool { return slices.Contains(left[i], d) }); len(done) > 0 {
			stopped[h] = done
		}
	}
	if len(problems) > 0 {
		return stopped, fmt.Errorf("stopping background jobs: %s", strings.Join(problems, "; "))
	}
	return stopped, nil
}

// stopOn stops the jobs dirs of host and returns those it could not stop.
func stopOn(ctx context.Context, connect transport.Connector, host string, dirs []string) ([]string, error) {
	r, err := connect(ctx, host)
	if err != nil {
		return dirs, err
	}
	left, err := runStop(ctx, r, dirs, false)
	if err != nil {
		return dirs, err
	}
	if denied := left["denied"]; len(denied) > 0 {
		// Jobs of become tasks run as root: the login user may not
		// signal them, sudo may.
		again, err := runStop(ctx, r, denied, true)
		if err != nil {
			return append(left["running"], denied...), fmt.Errorf("jobs of another user (become), not stopped: %w", err)
		}
		left["running"] = append(left["running"], again["running"]...)
		left["denied"] = again["denied"]
	}
	var problems []string
	if still := left["running"]; len(still) > 0 {
		problems = append(problems, "still running after TERM and KILL: "+strings.Join(still, ", "))
	}
	if denied := left["denied"]; len(denied) > 0 {
		problems = append(problems, "not permitted, even with sudo: "+strings.Join(denied, ", "))
	}
	if len(problems) > 0 {
		return append(left["running"], left["denied"]...), fmt.Errorf("not stopped: %s", strings.Join(problems, "; "))
	}
	return nil, nil
}

// runStop runs stopScript on dirs and returns the jobs it could not stop,
// by what it printed ("denied", "running").
func runStop(ctx context.Context, r transport.Runner, dirs []string, sudo bool) (map[string][]string, error) {
	args := make([]string, len(dirs))
	for i, d := range dirs {
		args[i] = quote(d)
	}
	res, err := r.Run(ctx, transport.Command{Script: "set -- " + strings.Join(args, " ") + "\n" + stopScript, Sudo: sudo})
	if err != nil {
		return nil, err
	}
	left := map[string][]string{}
	for _, l := range strings.Split(res.Stdout, "\n") {
		if what, dir, ok := strings.Cut(l, " "); ok {
			left[what] = append(left[what], dir)
		}
	}
	return left, nil
}

// stopScript stops the jobs whose folders are its arguments: TERM to the
// group, and KILL to what is left 5 s later. It prints "denied FOLDER" for
// a job it may not signal and "running FOLDER" for one that outlived both.
// A job with an exit status has ended; so has one whose pid is no longer
// its leader's (a process started after a reboot may have it): the
// leader's arguments are e2c-job, then the job's absolute folder.
const stopScript = `nl='
'
ours() {
  c=$(tr '\0' '\n' 2>/dev/null < "/proc/$1/cmdline") || return 1
  case "$nl$c$nl" in *"${nl}e2c-job${nl}$2${nl}"*) return 0 ;; esac
  return 1
}
stop() {
  [ -f "$1/pid" ] && ! [ -f "$1/rc" ] || return 0
  p=$(cat "$1/pid") && a=$(cd "$1" && pwd) || { echo "denied $1"; return 0; }
  for s in TERM KILL; do
    ours "$p" "$a" || return 0
    kill -$s -"$p" 2>/dev/null || { ! ours "$p" "$a" || echo "denied $1"; return 0; }
    i=0
    while [ $i -lt 50 ] && ours "$p" "$a"; do sleep 0.1; i=$((i+1)); done
  done
  ! ours "$p" "$a" || echo "running $1"
}
for d; do stop "$d"; done
`

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
