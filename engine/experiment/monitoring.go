package experiment

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

	"github.com/e2c-dev/e2c/engine/arch"
	"github.com/e2c-dev/e2c/engine/execute"
	"github.com/e2c-dev/e2c/engine/fanout"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/probe"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// monitoring samples the hosts with the monitoring role (monitoring:
// {type: dstat}) from the first launch of a run to its last finalize, across
// every app_conf, into monitoring-data/<host>.csv: with dstat where the
// host has it, else with e2c's own sampler of /proc (the agent).
type monitoring struct {
	hosts  []string
	remote string   // the CSV on the hosts, relative to the login folder
	stats  []string // the groups of columns (probe.MonitorStats)
	tool   map[string]string
	job    map[string]string // the sampler's background job, by host
}

// jobs are the samplers' background jobs.
func (m *monitoring) jobs() execute.Jobs {
	jobs := execute.Jobs{}
	if m != nil {
		for h, j := range m.job {
			jobs[h] = []string{j}
		}
	}
	return jobs
}

// take removes hosts from m, and returns their samplers (nil: none), to
// be stopped before the hosts go.
func (m *monitoring) take(hosts []string) *monitoring {
	if m == nil {
		return nil
	}
	out := &monitoring{remote: m.remote, stats: m.stats, tool: map[string]string{}, job: map[string]string{}}
	for _, h := range hosts {
		if t, ok := m.tool[h]; ok {
			out.tool[h], out.job[h] = t, m.job[h]
			out.hosts = append(out.hosts, h)
			delete(m.tool, h)
			delete(m.job, h)
		}
	}
	m.hosts = slices.DeleteFunc(m.hosts, func(h string) bool { return slices.Contains(hosts, h) })
	if len(out.hosts) == 0 {
		return nil
	}
	return out
}

// monitorStats are the groups of columns the monitoring block asks for:
// its dstat options, as E2Clab passes them to dstat, or e2c's default.
func monitorStats(m *schema.Monitoring) ([]string, error) {
	if !m.Has("options") {
		return probe.DefaultStats, nil
	}
	return probe.MonitorStats(m.Options)
}

// checkMonitoring refuses, at its position, dstat options e2c's own
// sampler (which stands in where dstat is missing) cannot honour.
func checkMonitoring(m *schema.Monitoring) error {
	if m == nil {
		return nil
	}
	if _, err := monitorStats(m); err != nil {
		return schema.Errorf(m.At("options"), "monitoring.options: %v", err)
	}
	return nil
}

func (x *Session) startMonitoring(ctx context.Context, p *plan.Plan, dir string, out io.Writer) (*monitoring, string) {
	m := x.sc.LayersServices.Monitoring
	if m == nil {
		return nil, ""
	}
	stats, _ := monitorStats(m) // checked when the scenario was loaded
	mon := &monitoring{remote: ".cache/e2c/monitor-" + filepath.Base(dir) + ".csv", stats: stats, tool: map[string]string{}, job: map[string]string{}}
	for _, h := range p.Hosts {
		if slices.Contains(h.Groups, "monitoring") {
			mon.hosts = append(mon.hosts, h.Name)
		}
	}
	if len(mon.hosts) == 0 {
		return nil, "monitoring: no host has the monitoring role"
	}
	errs := x.startSamplers(ctx, mon, mon.hosts, m.Interval)
	var failed []string
	for _, h := range slices.Sorted(maps.Keys(errs)) {
		failed = append(failed, fmt.Sprintf("%s (%v)", h, errs[h]))
	}
	note := fmt.Sprintf("monitoring %d hosts every %ds (%s)", len(mon.tool), m.Interval, strings.Join(mon.stats, ", "))
	if len(failed) > 0 {
		note += "; not started on " + strings.Join(failed, ", ")
		fmt.Fprintf(out, "monitoring: warning: not started on %s\n", strings.Join(failed, ", "))
	}
	return mon, note
}

// startSamplers starts the samplers of hosts, and returns the error of
// each host where that failed.
func (x *Session) startSamplers(ctx context.Context, mon *monitoring, hosts []string, interval int) map[string]error {
	var mu sync.Mutex
	return x.eachHost(ctx, hosts, func(ctx context.Context, h string, r transport.Runner) error {
		tool, job, err := x.startSampler(ctx, h, r, mon, interval)
		mu.Lock()
		defer mu.Unlock()
		if job != "" { // recorded: stopped, or forgotten if it never ran
			mon.job[h] = job
		}
		if err == nil {
			mon.tool[h] = tool
		}
		return err
	})
}

// sampleAdded samples, from now on, the hosts of p that a change added
// and that have the monitoring role, when the run samples its hosts.
func (r *run) sampleAdded(ctx context.Context, p *plan.Plan, added []string) map[string]error {
	m := r.x.sc.LayersServices.Monitoring
	if r.mon == nil || m == nil {
		return nil
	}
	var hosts []string
	for _, h := range p.Hosts {
		if slices.Contains(added, h.Name) && slices.Contains(h.Groups, "monitoring") {
			hosts = append(hosts, h.Name)
		}
	}
	r.mon.hosts = append(r.mon.hosts, hosts...)
	return r.x.startSamplers(ctx, r.mon, hosts, m.Interval)
}

// startSampler starts dstat, or the agent, as a background job, recorded
// in the state first like the tasks' (so that e2c destroy, or the next
// run, stops it after a crash). It returns the tool and the job, once
// recorded.
func (x *Session) startSampler(ctx context.Context, host string, r transport.Runner, mon *monitoring, interval int) (tool, job string, err error) {
	res, err := r.Run(ctx, transport.Command{Script: fmt.Sprintf("mkdir -p .cache/e2c && rm -f %s && { command -v dstat >/dev/null 2>&1 && echo dstat || echo e2c; }", mon.remote)})
	if err != nil {
		return "", "", err
	}
	tool = strings.TrimSpace(res.Stdout)
	cmd := fmt.Sprintf("exec dstat %s --output %s %d >/dev/null", probe.DstatFlags(mon.stats), mon.remote, interval)
	if tool != "dstat" {
		local, err := x.o.agent()(arch.Of(x.facts[host].Arch))
		var path string
		if err == nil {
			path, err = probe.Install(ctx, r, local)
		}
		if err != nil {
			return "", "", err
		}
		cmd = transport.AgentCommand(path, "monitor", "--interval", fmt.Sprintf("%ds", interval), "--stats", strings.Join(mon.stats, ","), "--out", mon.remote)
	}
	job = execute.NewJobFolder()
	if err := x.st.addJob(x.o.ScenarioDir, host, job); err != nil {
		return "", "", fmt.Errorf("recording the sampler: %w", err)
	}
	// No time limit: it samples until stopMonitoring, however long the
	// launches and finalizes take.
	_, err = execute.StartJob(ctx, r, job, transport.Command{Script: cmd}, 0)
	return tool, job, err
}

// stopMonitoring ends the samplers and fetches their files; a host whose
// file cannot be fetched is named, the others' files are kept. A sampler
// that cannot be stopped stays recorded, for e2c destroy.
func (x *Session) stopMonitoring(ctx context.Context, mon *monitoring, dir string) error {
	if mon == nil {
		return nil
	}
	// The samplers end on TERM, their last line written.
	_, stopErr := x.st.stopJobs(ctx, x.o.ScenarioDir, x.connect, mon.jobs())
	errs := x.eachHost(ctx, slices.Sorted(maps.Keys(mon.tool)), func(ctx context.Context, h string, r transport.Runner) error {
		local, err := results.Path(dir, "monitoring-data/"+h+".csv")
		if err == nil {
			err = r.Get(ctx, mon.remote, local)
		}
		return err
	})
	if len(errs) > 0 {
		var lines []string
		for _, h := range slices.Sorted(maps.Keys(errs)) {
			lines = append(lines, fmt.Sprintf("%s: %v", h, errs[h]))
		}
		stopErr = errors.Join(stopErr, fmt.Errorf("monitoring data not fetched from %s", strings.Join(lines, "; ")))
	}
	return stopErr
}

// eachHost runs f on hosts in parallel (at most 32 at once) and returns
// the error of each host that had one.
func (x *Session) eachHost(ctx context.Context, hosts []string, f func(context.Context, string, transport.Runner) error) map[string]error {
	errs := fanout.Each(ctx, len(hosts), 32, func(ctx context.Context, i int) error {
		r, err := x.connect(ctx, hosts[i])
		if err != nil {
			return err
		}
		return f(ctx, hosts[i], r)
	})
	failed := map[string]error{}
	for i, err := range errs {
		if err != nil {
			failed[hosts[i]] = err
		}
	}
	return failed
}
