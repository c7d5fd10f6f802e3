// Package g5k reserves Grid'5000 nodes: one OAR job per site (reused by
// name when one is already there), kadeploy when an image is asked for, and
// SSH through the access gateway from outside the platform.
package g5k

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/fanout"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
)

// Provider reserves on Grid'5000. Its zero value is the real platform, as
// the user's credentials file names it.
//
// It is not a providers.Resizer: an OAR job's node set is fixed when the
// job starts, so nodes beyond what the scenario asked for at reserve time
// cannot be added to a running job (a second job would have its own
// walltime, start time and deployment).
type Provider struct {
	// Credentials is the credentials file ("": CredentialsFile()); tests
	// point it at a fake API (g5kfake.Server.Credentials).
	Credentials string
	// Records is the folder of the machine-wide record of holds ("": the
	// user's cache folder, as for providers.UpdateRecord).
	Records string
	// Reach, when set, decides how a node is reached: the address the plan
	// gives it and the SSH endpoint. Tests point nodes at emulated hosts.
	Reach func(fqdn string, e transport.Endpoint) (address string, _ transport.Endpoint)
	// SetupDocker, when set, is the path of g5k-setup-docker on the nodes
	// (default: /grid5000/code/bin/g5k-setup-docker); tests point it at a stand-in.
	SetupDocker string
	// Inside, when set, says whether e2c runs inside Grid'5000 (nil: this
	// machine's name ends in .grid5000.fr).
	Inside func() bool
	// Polling: jobs from PollMin, backing off to PollMax (a far predicted
	// start is slept toward, but polled again every 5 PollMax at least);
	// deployments every DeployPoll. Zero: 3 s, 60 s, 10 s.
	PollMin, PollMax, DeployPoll time.Duration
	// DeployTries bounds the kadeploy attempts of a node (0: 3).
	DeployTries int
	// RetryWait is the first wait before a GET or DELETE that failed is
	// sent again (0: 1 s).
	RetryWait time.Duration
	// Outage is how long the wait for the jobs bears an API that does not
	// answer (5xx, the network) before giving up (0: 15 minutes): a wait
	// of hours should outlast a restart of the API.
	Outage time.Duration
}

// state is the Reservation's State: what Release needs. Reserve journals
// it as it grows, so that an interrupted Reserve leaves it to Release.
type state struct {
	API    string     `json:"api"`
	Login  string     `json:"login"`
	Holder string     `json:"holder,omitempty"` // the scenario's StateDir, in the record of holds
	Jobs   []jobState `json:"jobs"`
}

type jobState struct {
	Site string `json:"site"`
	// UID is 0 while a submission has not answered: Release then looks for
	// the job by Name, Login and a submission since Since.
	UID     int64    `json:"uid"`
	Name    string   `json:"name,omitempty"`
	Since   int64    `json:"since,omitempty"` // Unix time just before the submission
	Created bool     `json:"created"`         // e2c submitted it; a reused job is left to its owner
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

// credentialsFile is where the provider reads its credentials.
func (p *Provider) credentialsFile() string { return cmp.Or(p.Credentials, CredentialsFile()) }

func (p *Provider) credentials() (credentials, error) {
	return loadCredentials(p.credentialsFile(), p.inside())
}

func (p *Provider) inside() bool {
	if p.Inside != nil {
		return p.Inside()
	}
	return inside()
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
	if cfg.JobName == "" {
		return nil, errors.New("no job name: set job_name")
	}
	if cfg.Reservation, err = cfg.reservationAt(time.Now()); err != nil {
		return nil, err
	}
	in := p.inside()
	creds, err := p.credentials()
	if err != nil {
		return nil, err
	}
	c, err := newClient(creds, p.RetryWait)
	if err != nil {
		return nil, err
	}
	login, err := p.loginOf(creds)
	if err != nil {
		return nil, err
	}
	sites, exotic, err := c.clusters(ctx)
	if err != nil {
		return nil, err
	}
	demands, err := plan2demands(cfg, req.Instances, sites)
	if err != nil {
		return nil, err
	}
	if err := checkExotic(cfg, demands, exotic); err != nil {
		return nil, err
	}
	st := &state{API: creds.URI, Login: login, Holder: req.StateDir}
	save := func() error { return req.Save(st) }
	release := func() {
		if rerr := p.release(context.WithoutCancel(ctx), c, st, out); rerr != nil {
			fmt.Fprintf(out, "g5k: %v\n", rerr)
		}
		if rerr := p.unclaim(st); rerr != nil {
			fmt.Fprintf(out, "g5k: %v\n", rerr)
		}
	}
	// Reuse or submit one job per site; if one site fails, the jobs already
	// submitted are deleted.
	for _, d := range demands {
		if err := p.reuseOrSubmit(ctx, c, cfg, st, d, save, out); err != nil {
			release()
			return nil, err
		}
	}
	if err := p.claim(st, cfg.EnvName != "", out); err != nil {
		release()
		return nil, err
	}
	if err := p.waitRunning(ctx, c, cfg, st, out); err != nil {
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
	if err == nil {
		err = save() // with the nodes
	}
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

// loginOf is who the API takes this caller for: the configured username
// (Basic auth); else, inside Grid'5000, the Unix account this process runs
// as, which the API's front proxy identifies a frontend's caller by
// (ident). It is never $USER, which may be unset, or anything. The API
// has no call that tells who the caller is.
func (p *Provider) loginOf(creds credentials) (string, error) {
	if creds.Username != "" {
		return creds.Username, nil
	}
	out, err := exec.Command("id", "-un").Output()
	if name := strings.TrimSpace(string(out)); err == nil && name != "" {
		return name, nil
	}
	return "", fmt.Errorf("cannot tell your Grid'5000 login (id -un: %v): write \"username: LOGIN\" in %s", err, p.credentialsFile())
}

// clusters maps every cluster to its site, and tells which clusters are
// exotic (their nodes only go to jobs of type exotic).
func (c *client) clusters(ctx context.Context) (sites map[string]string, exotic map[string]bool, err error) {
	var ss collection[site]
	if _, err := c.call(ctx, http.MethodGet, "/sites", nil, &ss); err != nil {
		return nil, nil, err
	}
	sites, exotic = map[string]string{}, map[string]bool{}
	for _, s := range ss.Items {
		var cs collection[cluster]
		if _, err := c.call(ctx, http.MethodGet, "/sites/"+url.PathEscape(s.UID)+"/clusters", nil, &cs); err != nil {
			return nil, nil, err
		}
		for _, cl := range cs.Items {
			sites[cl.UID], exotic[cl.UID] = s.UID, cl.Exotic
		}
	}
	return sites, exotic, nil
}

// checkExotic refuses nodes of exotic clusters without the exotic type:
// OAR would only answer that there are not enough resources.
func checkExotic(cfg config, demands []*demand, exotic map[string]bool) error {
	if slices.Contains(cfg.Types, "exotic") {
		return nil
	}
	var found []string
	add := func(cl string) {
		if exotic[cl] && !slices.Contains(found, cl) {
			found = append(found, cl)
		}
	}
	for _, d := range demands {
		for _, cl := range d.order {
			add(cl)
		}
		for _, s := range d.servers {
			add(clusterOf(s))
		}
	}
	if len(found) > 0 {
		return fmt.Errorf("cluster %s is exotic (so says the reference API): OAR gives its nodes only to jobs of type exotic; add job_type: [exotic] to the g5k block", strings.Join(found, ", "))
	}
	return nil
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
	type node struct {
		i, k int
		ep   transport.Endpoint
		m    plan.Machine
	}
	var todo []node
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
			todo = append(todo, node{i, k, ep, m})
		}
	}
	errs := fanout.Each(ctx, len(todo), 16, func(ctx context.Context, j int) error {
		n := todo[j]
		v4, v6, err := addresses(ctx, pool, n.ep, retries, wait)
		if err != nil {
			return fmt.Errorf("%s: %w", nodes[n.i][n.k], err)
		}
		n.m.Address4, n.m.Address6 = v4, v6
		res.Hosts[n.i][n.k] = providers.Host{Machine: n.m, SSH: &n.ep}
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
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
