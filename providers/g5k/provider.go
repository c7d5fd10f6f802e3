// Package g5k reserves Grid'5000 nodes: one OAR job per site (reused by
// name when one is already there), kadeploy when an image is asked for, and
// SSH through the access gateway from outside the platform.
package g5k

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
)

// Provider reserves on Grid'5000. Its zero value is the real platform.
type Provider struct {
	// Reach, when set, decides how a node is reached: the address the plan
	// gives it and the SSH endpoint. Tests point nodes at emulated hosts.
	Reach func(fqdn string, e transport.Endpoint) (address string, _ transport.Endpoint)
	// Polling: jobs from PollMin, backing off to PollMax; deployments
	// every DeployPoll. Zero: 3 s, 60 s, 10 s.
	PollMin, PollMax, DeployPoll time.Duration
	// DeployTries bounds the kadeploy attempts of a node (0: 3).
	DeployTries int
}

// Default is the registered provider.
var Default = &Provider{}

func init() { providers.Register("g5k", Default) }

// state is the Reservation's State: what Release needs.
type state struct {
	API   string     `json:"api"`
	Login string     `json:"login"`
	Jobs  []jobState `json:"jobs"`
}

type jobState struct {
	Site    string   `json:"site"`
	UID     int64    `json:"uid"`
	Created bool     `json:"created"` // e2c submitted it; a reused job is left to its owner
	Nodes   []string `json:"nodes"`
}

// demand is what one site must provide.
type demand struct {
	site    string
	servers []string       // explicit node FQDNs, in order
	cluster map[string]int // nodes per cluster
	order   []string       // clusters in configuration order
}

func (p *Provider) durations() (first, most, deploy time.Duration, tries int) {
	first, most, deploy, tries = p.PollMin, p.PollMax, p.DeployPoll, p.DeployTries
	if first <= 0 {
		first = 3 * time.Second
	}
	if most <= 0 {
		most = time.Minute
	}
	if deploy <= 0 {
		deploy = 10 * time.Second
	}
	if tries <= 0 {
		tries = 3
	}
	return
}

func (p *Provider) Reserve(ctx context.Context, req providers.Request) (*providers.Reservation, error) {
	out := req.Out
	if out == nil {
		out = io.Discard
	}
	cfg, err := parseConfig(req)
	if err != nil {
		return nil, err
	}
	in := inside()
	creds, err := loadCredentials(in)
	if err != nil {
		return nil, err
	}
	c, err := newClient(creds)
	if err != nil {
		return nil, err
	}
	login := creds.Username
	if login == "" {
		login = os.Getenv("USER")
	}
	sites, err := c.clusterSites(ctx)
	if err != nil {
		return nil, err
	}
	demands, err := plan2demands(cfg, req.Instances, sites)
	if err != nil {
		return nil, err
	}
	st := &state{API: creds.URI, Login: login}
	release := func() {
		if rerr := p.release(context.WithoutCancel(ctx), c, st, out); rerr != nil {
			fmt.Fprintf(out, "g5k: %v\n", rerr)
		}
	}
	// Reuse or submit one job per site; if one site fails, the jobs already
	// submitted are deleted.
	for _, d := range demands {
		js, err := p.reuseOrSubmit(ctx, c, cfg, login, d, out)
		if js.UID != 0 {
			st.Jobs = append(st.Jobs, js)
		}
		if err != nil {
			release()
			return nil, err
		}
	}
	if err := p.waitRunning(ctx, c, st, out); err != nil {
		release()
		return nil, err
	}
	for i, d := range demands {
		if err := checkNodes(d, st.Jobs[i]); err != nil {
			release()
			return nil, err
		}
	}
	nodes, err := assign(demands, st.Jobs, req.Instances, cfg, sites)
	if err != nil {
		release()
		return nil, err
	}
	user := login
	if cfg.EnvName != "" {
		if err := p.deploy(ctx, c, cfg, st, out); err != nil {
			release()
			return nil, err
		}
		user = "root"
	}
	res, err := p.hosts(ctx, cfg, req, nodes, user, login, in)
	if err != nil {
		release()
		return nil, err
	}
	res.State, err = json.Marshal(st)
	return res, err
}

// clusterSites maps every cluster to its site.
func (c *client) clusterSites(ctx context.Context) (map[string]string, error) {
	var ss collection[site]
	if _, err := c.call(ctx, http.MethodGet, "/sites", nil, &ss); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range ss.Items {
		var cs collection[cluster]
		if _, err := c.call(ctx, http.MethodGet, "/sites/"+url.PathEscape(s.UID)+"/clusters", nil, &cs); err != nil {
			return nil, err
		}
		for _, cl := range cs.Items {
			out[cl.UID] = s.UID
		}
	}
	return out, nil
}

// nodeSite gives the FQDN and site of a server named by FQDN or short uid.
func nodeSite(name string, sites map[string]string) (fqdn, site string, err error) {
	if _, rest, ok := strings.Cut(name, "."); ok {
		s, _, _ := strings.Cut(rest, ".")
		return name, s, nil
	}
	i := strings.LastIndex(name, "-")
	if i < 0 || sites[name[:i]] == "" {
		return "", "", fmt.Errorf("server %q: expected a node such as parasilo-3 or parasilo-3.rennes.grid5000.fr", name)
	}
	s := sites[name[:i]]
	return name + "." + s + ".grid5000.fr", s, nil
}

// plan2demands groups the instances' nodes per site, in order of first use.
func plan2demands(cfg config, instances []plan.Instance, sites map[string]string) ([]*demand, error) {
	bySite := map[string]*demand{}
	var order []*demand
	get := func(s string) *demand {
		if bySite[s] == nil {
			bySite[s] = &demand{site: s, cluster: map[string]int{}}
			order = append(order, bySite[s])
		}
		return bySite[s]
	}
	for _, in := range instances {
		svc := in.Service
		if len(svc.Servers) > 0 {
			if len(svc.Servers) != svc.Quantity {
				return nil, fmt.Errorf("service %s: %d servers for a quantity of %d", in.ID(), len(svc.Servers), svc.Quantity)
			}
			for _, s := range svc.Servers {
				fqdn, site, err := nodeSite(s, sites)
				if err != nil {
					return nil, err
				}
				d := get(site)
				if slices.Contains(d.servers, fqdn) {
					return nil, fmt.Errorf("server %s is asked for twice", fqdn)
				}
				d.servers = append(d.servers, fqdn)
			}
			continue
		}
		cl := svc.Cluster
		if cl == "" {
			cl = cfg.Cluster
		}
		if cl == "" {
			return nil, fmt.Errorf("service %s has no cluster: set cluster (for the service or in the g5k block) or servers", in.ID())
		}
		site, ok := sites[cl]
		if !ok {
			return nil, fmt.Errorf("service %s: no cluster %q on Grid'5000", in.ID(), cl)
		}
		d := get(site)
		if d.cluster[cl] == 0 {
			d.order = append(d.order, cl)
		}
		d.cluster[cl] += svc.Quantity
	}
	return order, nil
}

// resources is the OAR expression of a site's demand: explicit nodes
// first, then each cluster, then the walltime.
func resources(d *demand, walltime time.Duration) string {
	var parts []string
	if len(d.servers) > 0 {
		quoted := make([]string, len(d.servers))
		for i, s := range d.servers {
			quoted[i] = "'" + s + "'"
		}
		parts = append(parts, fmt.Sprintf("{network_address in (%s)}/nodes=%d", strings.Join(quoted, ", "), len(d.servers)))
	}
	for _, cl := range d.order {
		parts = append(parts, fmt.Sprintf("{cluster='%s'}/nodes=%d", cl, d.cluster[cl]))
	}
	secs := int64(walltime.Round(time.Second) / time.Second)
	return fmt.Sprintf("%s,walltime=%02d:%02d:%02d", strings.Join(parts, "+"), secs/3600, secs/60%60, secs%60)
}

// reuseOrSubmit reuses the user's pending or running job of the experiment's
// name on the site, or submits one.
func (p *Provider) reuseOrSubmit(ctx context.Context, c *client, cfg config, login string, d *demand, out io.Writer) (jobState, error) {
	q := url.Values{"name": {cfg.JobName}, "state": {"waiting,launching,running"}, "resources": {"yes"}}
	if login != "" {
		q.Set("user", login)
	}
	var jobs collection[job]
	base := "/sites/" + url.PathEscape(d.site) + "/jobs"
	if _, err := c.call(ctx, http.MethodGet, base+"?"+q.Encode(), nil, &jobs); err != nil {
		return jobState{}, fmt.Errorf("%s: listing jobs: %w", d.site, err)
	}
	switch len(jobs.Items) {
	case 0:
	case 1:
		j := jobs.Items[0]
		fmt.Fprintf(out, "g5k: %s: reusing job %d (%s, state %s)\n", d.site, j.UID, cfg.JobName, j.State)
		if cfg.EnvName != "" && !slices.Contains(j.Types, "deploy") {
			return jobState{}, fmt.Errorf("%s: job %d named %s has no deploy type, which env_name needs: delete it (oardel %d) or rename job_name", d.site, j.UID, cfg.JobName, j.UID)
		}
		return jobState{Site: d.site, UID: j.UID}, nil
	default:
		var ids []string
		for _, j := range jobs.Items {
			ids = append(ids, strconv.FormatInt(j.UID, 10))
		}
		return jobState{}, fmt.Errorf("%s: %d jobs named %s (%s): delete the extra ones or rename job_name", d.site, len(jobs.Items), cfg.JobName, strings.Join(ids, ", "))
	}
	body := jobRequest{Name: cfg.JobName, Resources: resources(d, cfg.Walltime), Types: cfg.Types, Queue: cfg.Queue,
		Project: cfg.Project, Reservation: cfg.Reservation}
	if body.Reservation == "" {
		body.Command = "sleep infinity"
	}
	var j job
	if _, err := c.call(ctx, http.MethodPost, base, body, &j); err != nil {
		err = fmt.Errorf("%s: submitting %s: %w", d.site, body.Resources, err)
		var ae *APIError
		if errors.As(err, &ae) {
			return jobState{}, err // refused: nothing was created
		}
		// The answer was lost (a timeout, Ctrl-C): the job may exist all
		// the same. Find it by name so that it is deleted with the others.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		var found collection[job]
		if _, lerr := c.call(lctx, http.MethodGet, base+"?"+q.Encode(), nil, &found); lerr == nil && len(found.Items) == 1 {
			return jobState{Site: d.site, UID: found.Items[0].UID, Created: true}, err
		}
		return jobState{}, err
	}
	fmt.Fprintf(out, "g5k: %s: submitted job %d: %s\n", d.site, j.UID, body.Resources)
	return jobState{Site: d.site, UID: j.UID, Created: true}, nil
}

// waitRunning polls the jobs, backing off, until all run; it says what
// they wait for. A job that ends is an error.
func (p *Provider) waitRunning(ctx context.Context, c *client, st *state, out io.Writer) error {
	first, most, _, _ := p.durations()
	wait := first
	last := map[int64]string{}
	for {
		pending := 0
		var soonest int64
		for i := range st.Jobs {
			js := &st.Jobs[i]
			var j job
			if _, err := c.call(ctx, http.MethodGet, fmt.Sprintf("/sites/%s/jobs/%d", url.PathEscape(js.Site), js.UID), nil, &j); err != nil {
				return fmt.Errorf("%s: job %d: %w", js.Site, js.UID, err)
			}
			if j.State != last[j.UID] {
				line := fmt.Sprintf("g5k: %s: job %d %s", js.Site, j.UID, j.State)
				if j.State == "waiting" && j.ScheduledAt > 0 {
					line += ", scheduled to start at " + time.Unix(j.ScheduledAt, 0).Format(time.DateTime)
				}
				if j.State == "hold" {
					line += " (held: it needs attention, oarresume resumes it)"
				}
				fmt.Fprintln(out, line)
				last[j.UID] = j.State
			}
			switch j.State {
			case "running":
				js.Nodes = j.AssignedNodes
				continue
			case "error", "terminated":
				msg := ""
				if j.Message != "" {
					msg = ": " + j.Message
				}
				return fmt.Errorf("%s: job %d ended in state %s before running%s", js.Site, j.UID, j.State, msg)
			}
			pending++
			if j.ScheduledAt > 0 && (soonest == 0 || j.ScheduledAt < soonest) {
				soonest = j.ScheduledAt
			}
		}
		if pending == 0 {
			return nil
		}
		sleep := wait
		if soonest > 0 {
			// Far ahead: sleep until shortly before the predicted start.
			if until := time.Until(time.Unix(soonest, 0)) - 5*time.Second; until > sleep {
				sleep = until
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(sleep):
		}
		wait = min(most, wait*3/2)
	}
}

// checkNodes makes sure a job has what the site's demand needs: a reused
// job may have been made for another configuration.
func checkNodes(d *demand, js jobState) error {
	var missing []string
	for _, s := range d.servers {
		if !slices.Contains(js.Nodes, s) {
			missing = append(missing, s)
		}
	}
	for _, cl := range d.order {
		have := 0
		for _, n := range js.Nodes {
			if clusterOf(n) == cl && !slices.Contains(d.servers, n) {
				have++
			}
		}
		if have < d.cluster[cl] {
			missing = append(missing, fmt.Sprintf("%d %s nodes (has %d)", d.cluster[cl], cl, have))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: job %d lacks %s: delete it (oardel %d) or rename job_name to submit a new one", d.site, js.UID, strings.Join(missing, ", "), js.UID)
	}
	return nil
}

// clusterOf is the cluster of a node FQDN: parasilo-3.rennes... is parasilo.
func clusterOf(fqdn string) string {
	short, _, _ := strings.Cut(fqdn, ".")
	if i := strings.LastIndex(short, "-"); i > 0 {
		return short[:i]
	}
	return short
}

// nodeLess orders nodes by cluster, then by number: parasilo-2 before
// parasilo-10.
func nodeCompare(a, b string) int {
	if c := strings.Compare(clusterOf(a), clusterOf(b)); c != 0 {
		return c
	}
	num := func(s string) int {
		short, _, _ := strings.Cut(s, ".")
		n, _ := strconv.Atoi(short[strings.LastIndex(short, "-")+1:])
		return n
	}
	if c := num(a) - num(b); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// assign maps nodes to instances deterministically: explicit servers
// first, then each cluster's remaining nodes sorted, handed out in
// instance order.
func assign(demands []*demand, jobs []jobState, instances []plan.Instance, cfg config, sites map[string]string) ([][]string, error) {
	free := map[string][]string{} // cluster -> nodes not taken by servers
	for i, d := range demands {
		nodes := slices.Clone(jobs[i].Nodes)
		slices.SortFunc(nodes, nodeCompare)
		for _, n := range nodes {
			if !slices.Contains(d.servers, n) {
				free[clusterOf(n)] = append(free[clusterOf(n)], n)
			}
		}
	}
	out := make([][]string, len(instances))
	for i, in := range instances {
		svc := in.Service
		if len(svc.Servers) > 0 {
			for _, s := range svc.Servers {
				fqdn, _, err := nodeSite(s, sites)
				if err != nil {
					return nil, err
				}
				out[i] = append(out[i], fqdn)
			}
			continue
		}
		cl := svc.Cluster
		if cl == "" {
			cl = cfg.Cluster
		}
		if len(free[cl]) < svc.Quantity {
			return nil, fmt.Errorf("service %s: %d %s nodes left for %d", in.ID(), len(free[cl]), cl, svc.Quantity)
		}
		out[i], free[cl] = free[cl][:svc.Quantity], free[cl][svc.Quantity:]
	}
	return out, nil
}

// deploy installs env_name on every node with kadeploy, one deployment per
// site, and retries the nodes that failed (a terminated deployment can still
// hold failed nodes) a bounded number of times.
func (p *Provider) deploy(ctx context.Context, c *client, cfg config, st *state, out io.Writer) error {
	pub, _, err := cfg.publicKey()
	if err != nil {
		return err
	}
	_, _, poll, tries := p.durations()
	errs := make([]error, len(st.Jobs))
	var wg sync.WaitGroup
	for i, js := range st.Jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			todo := slices.Clone(js.Nodes)
			var why map[string]string
			var err error
			for try := 1; try <= tries && len(todo) > 0; try++ {
				fmt.Fprintf(out, "g5k: %s: deploying %s on %d nodes (attempt %d of %d)\n", js.Site, cfg.EnvName, len(todo), try, tries)
				todo, why, err = p.deployOnce(ctx, c, js.Site, todo, cfg.EnvName, pub, poll)
				if err != nil {
					errs[i] = err
					return
				}
			}
			if len(todo) > 0 {
				var lines []string
				for _, n := range todo {
					lines = append(lines, n+": "+why[n])
				}
				errs[i] = fmt.Errorf("%s: kadeploy failed %d times on %d nodes: %s", js.Site, tries, len(todo), strings.Join(lines, "; "))
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// deployOnce runs one deployment and returns the nodes that failed, with why.
func (p *Provider) deployOnce(ctx context.Context, c *client, site string, nodes []string, env, key string, poll time.Duration) ([]string, map[string]string, error) {
	base := "/sites/" + url.PathEscape(site) + "/deployments"
	var d deployment
	if _, err := c.call(ctx, http.MethodPost, base, deploymentRequest{Nodes: nodes, Environment: env, Key: key}, &d); err != nil {
		return nil, nil, fmt.Errorf("%s: kadeploy: %w", site, err)
	}
	for d.Status == "processing" || d.Status == "waiting" {
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(poll):
		}
		if _, err := c.call(ctx, http.MethodGet, base+"/"+url.PathEscape(d.UID), nil, &d); err != nil {
			return nil, nil, fmt.Errorf("%s: deployment %s: %w", site, d.UID, err)
		}
	}
	if d.Status == "canceled" {
		return nil, nil, fmt.Errorf("%s: deployment %s was canceled", site, d.UID)
	}
	var failed []string
	why := map[string]string{}
	for _, n := range nodes {
		r, ok := d.Result[n]
		if ok && r.State == "OK" {
			continue
		}
		failed = append(failed, n)
		switch {
		case r.Error != "":
			why[n] = r.Error
		case d.Output != "":
			why[n] = d.Output
		default:
			why[n] = "deployment " + d.Status
		}
	}
	return failed, why, nil
}

// hosts connects to every node (through the gateway from outside), reads
// its addresses and returns the reservation's hosts.
func (p *Provider) hosts(ctx context.Context, cfg config, req providers.Request, nodes [][]string, user, login string, in bool) (*providers.Reservation, error) {
	_, private, _ := cfg.publicKey()
	known := filepath.Join(req.StateDir, "known_hosts")
	if err := os.MkdirAll(req.StateDir, 0o700); err != nil {
		return nil, err
	}
	if cfg.EnvName != "" {
		// Deployed nodes are new systems: their host keys are learnt anew.
		os.Remove(known)
	}
	var jump *transport.Endpoint
	if cfg.Gateway == "always" || cfg.Gateway == "auto" && !in {
		jump = &transport.Endpoint{Host: Gateway, User: login}
	}
	retries, wait := 0, time.Duration(0)
	if cfg.EnvName != "" {
		_, _, wait, _ = p.durations()
		retries = 6
	}
	names := plan.Synthetic(req.Instances)
	res := &providers.Reservation{Provider: "g5k", Hosts: make([][]providers.Host, len(nodes))}
	pool := transport.NewPool(transport.PoolOptions{})
	defer pool.Close()
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, 0)
	sem := make(chan struct{}, 16)
	for i, ns := range nodes {
		res.Hosts[i] = make([]providers.Host, len(ns))
		for k, fqdn := range ns {
			// Host keys are learnt into a file of the experiment's own.
			ep := transport.Endpoint{Host: fqdn, User: user, Jump: jump, HostKeys: transport.AcceptNew, KnownHosts: known}
			if private != "" {
				ep.KeyFiles = []string{private}
			}
			addr := fqdn
			if p.Reach != nil {
				addr, ep = p.Reach(fqdn, ep)
			}
			m := plan.Machine{Name: names[i][k].Name, Address: addr}
			if cfg.IPv6 {
				short, rest, _ := strings.Cut(fqdn, ".")
				m.IPv6Name = short + "-ipv6." + rest
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				v4, v6, err := addresses(ctx, pool, ep, retries, wait)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", fqdn, err))
					return
				}
				m.Address4, m.Address6 = v4, v6
				e := ep
				res.Hosts[i][k] = providers.Host{Machine: m, SSH: &e}
			}()
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return res, nil
}

// addresses reads a node's first global IPv4 and IPv6 addresses. A node
// just deployed may take SSH connections before its keys are in place:
// connecting is then tried again, every wait, up to retries times.
func addresses(ctx context.Context, pool *transport.Pool, ep transport.Endpoint, retries int, wait time.Duration) (v4, v6 string, err error) {
	var r transport.Runner
	for try := 0; ; try++ {
		if r, err = pool.Runner(ctx, ep); err == nil || try >= retries {
			break
		}
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-time.After(wait):
		}
	}
	if err != nil {
		return "", "", err
	}
	res, err := r.Run(ctx, transport.Command{Script: "hostname -I 2>/dev/null || ip -o addr show scope global | awk '{print $4}' | cut -d/ -f1"})
	if err != nil {
		return "", "", err
	}
	for _, f := range strings.Fields(res.Stdout) {
		switch {
		case v4 == "" && !strings.Contains(f, ":"):
			v4 = f
		case v6 == "" && strings.Contains(f, ":") && !strings.HasPrefix(f, "fe80"):
			v6 = f
		}
	}
	return v4, v6, nil
}

func (p *Provider) Release(ctx context.Context, r *providers.Reservation, out io.Writer) error {
	var st state
	if err := json.Unmarshal(r.State, &st); err != nil {
		return fmt.Errorf("the reservation's state: %w", err)
	}
	creds, err := loadCredentials(inside())
	if err != nil {
		return err
	}
	creds.URI = st.API
	c, err := newClient(creds)
	if err != nil {
		return err
	}
	return p.release(ctx, c, &st, io.Discard)
}

// release deletes the jobs e2c created; one already finished or gone is
// released already. Reused jobs are their owner's to end.
func (p *Provider) release(ctx context.Context, c *client, st *state, out io.Writer) error {
	var errs []error
	for _, js := range st.Jobs {
		if !js.Created {
			fmt.Fprintf(out, "g5k: %s: job %d was not submitted by e2c: left running (oardel %d ends it)\n", js.Site, js.UID, js.UID)
			continue
		}
		_, err := c.call(ctx, http.MethodDelete, fmt.Sprintf("/sites/%s/jobs/%d", url.PathEscape(js.Site), js.UID), nil, nil)
		var ae *APIError
		if errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusBadRequest && strings.Contains(ae.Body, "already killed")) {
			err = nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: deleting job %d: %w", js.Site, js.UID, err))
			continue
		}
		fmt.Fprintf(out, "g5k: %s: job %d deleted\n", js.Site, js.UID)
	}
	return errors.Join(errs...)
}
