package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/e2c-dev/e2c/engine/containers"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/services"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/results"
)

// startContainers starts the plan's containers (the first half of the
// services step), records them in run.json and the hosts that have them in
// the state, for destroy. It returns how many the plan has.
func (x *Session) startContainers(ctx context.Context, p *plan.Plan, rec *recorder, out io.Writer) (int, error) {
	n := 0
	for _, h := range p.Hosts {
		n += len(h.Containers)
		if len(h.Containers) > 0 {
			if x.st.Containers == nil {
				x.st.Containers = map[string]string{}
			}
			x.st.Containers[h.Name] = jobName(x.sc.LayersServices.Environment, x.o.ScenarioDir)
		}
	}
	if n == 0 {
		return 0, nil
	}
	// Written before anything starts: a crash leaves destroy knowing where.
	if err := x.st.Save(x.o.ScenarioDir); err != nil {
		return n, err
	}
	fmt.Fprintf(out, "services: %d containers\n", n)
	if err := x.provideDocker(ctx, p, out); err != nil {
		return n, err
	}
	recs, err := services.Start(ctx, p, reachIn(x.pool, slices.Collect(maps.Values(x.st.Reservations))...),
		services.Options{Experiment: jobName(x.sc.LayersServices.Environment, x.o.ScenarioDir), Forks: x.o.Forks, Out: out, Relay: x.relay(out)})
	rec.update(func(r *results.Record) {
		// A change adds the containers of its new hosts to the run's.
		r.Containers = slices.DeleteFunc(r.Containers, func(c results.Container) bool {
			return slices.ContainsFunc(recs, func(n results.Container) bool { return n.Host == c.Host && n.Name == c.Name })
		})
		r.Containers = append(r.Containers, recs...)
	})
	return n, err
}

// provideDocker asks the providers that can to give the hosts of p that
// run containers a Docker Engine, and saves what they changed in their
// reservations (the hosts' sockets, the daemons started).
func (x *Session) provideDocker(ctx context.Context, p *plan.Plan, out io.Writer) error {
	need := map[string][]string{} // testbed → hosts
	for _, h := range p.Hosts {
		if len(h.Containers) > 0 {
			need[x.testbeds[h.Name]] = append(need[x.testbeds[h.Name]], h.Name)
		}
	}
	var errs []error
	for _, testbed := range slices.Sorted(maps.Keys(need)) {
		pr, err := x.o.Providers.Get(testbed)
		if err != nil {
			return err
		}
		d, ok := pr.(providers.DockerProvider)
		r := x.st.Reservations[testbed]
		if !ok || r == nil {
			continue
		}
		if err := d.ProvideDocker(ctx, r, need[testbed], x.sc.LayersServices.Environment.Testbed(testbed), out); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", testbed, err))
		}
		for _, hs := range r.Hosts {
			for _, h := range hs {
				if _, ok := x.hosts[h.Name]; ok {
					x.hosts[h.Name] = h
				}
			}
		}
	}
	// Saved even after an error: what was started is released by destroy.
	errs = append(errs, x.st.Save(x.o.ScenarioDir))
	return errors.Join(errs...)
}

// fetchContainerLogs writes the log of each container of the run on hosts
// (nil: every host the run still has) into its folder, within logsTimeout (it runs after Ctrl-C too, when a stuck
// daemon must not hold e2c); a failure is said, not returned: the run's
// results stand.
func (x *Session) fetchContainerLogs(ctx context.Context, rec *recorder, hosts []string, out io.Writer) {
	rec.mu.Lock()
	recs, dir := slices.Clone(rec.rec.Containers), rec.rec.Dir()
	rec.mu.Unlock()
	recs = slices.DeleteFunc(recs, func(c results.Container) bool {
		_, held := x.hosts[c.Host]
		return !held || hosts != nil && !slices.Contains(hosts, c.Host)
	})
	if len(recs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, logsTimeout)
	defer cancel()
	err := services.Logs(ctx, recs, reachIn(x.pool, slices.Collect(maps.Values(x.st.Reservations))...), dir)
	if err != nil {
		fmt.Fprintf(out, "warning: container logs: %v\n", err)
	}
}

// logsTimeout bounds the fetch of a run's container logs.
const logsTimeout = 2 * time.Minute

// removeContainers removes the containers e2c labelled on the hosts of rs
// that the state names, and forgets the hosts whose containers are gone.
func removeContainers(ctx context.Context, st *State, scenario string, pool *transport.Pool, out io.Writer, rs ...*providers.Reservation) error {
	reach := reachIn(pool, rs...)
	var errs []error
	for _, host := range slices.Sorted(maps.Keys(st.Containers)) {
		if !slices.ContainsFunc(rs, func(r *providers.Reservation) bool { _, ok := hostOf(r, host); return ok }) {
			continue
		}
		n, err := services.Remove(ctx, []string{host}, reach, st.Containers[host])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(out, "services: removed %d containers on %s\n", n, host)
		delete(st.Containers, host)
	}
	errs = append(errs, st.Save(scenario))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing containers: %w", err)
	}
	return nil
}

// removeAllContainers removes the containers of every kept reservation's
// hosts; a failure is said, since the hosts are released anyway.
func removeAllContainers(ctx context.Context, st *State, scenario string, pool *transport.Pool, out io.Writer) {
	if len(st.Containers) == 0 {
		return
	}
	if err := removeContainers(ctx, st, scenario, pool, out, slices.Collect(maps.Values(st.Reservations))...); err != nil {
		fmt.Fprintf(out, "warning: %v\n", err)
	}
}

// reachIn reaches the Docker Engine of the hosts of reservations rs.
func reachIn(pool *transport.Pool, rs ...*providers.Reservation) services.Reach {
	return func(name string) (containers.Dialer, string, error) {
		for _, r := range rs {
			if h, ok := hostOf(r, name); ok {
				if h.SSH == nil {
					return nil, "", fmt.Errorf("containers need a host reached over SSH; %s is this machine", name)
				}
				return containers.PoolDialer(pool, *h.SSH), h.DockerSocket, nil
			}
		}
		return nil, "", fmt.Errorf("no host %s in the saved reservations", name)
	}
}
