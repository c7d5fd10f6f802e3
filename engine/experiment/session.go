// Package experiment runs the whole lifecycle of an experiment: reserve
// hosts, deploy services, prepare, then for each application configuration
// launch, wait and finalize — repeated, each run into its own result folder,
// and finalized even when interrupted so that nothing already produced is
// lost.
package experiment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/servicedef"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/providers/builtin"
	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// Options are what the user chose for an experiment.
type Options struct {
	ScenarioDir string
	// ArtifactsDir is what tasks copy to the hosts; "" for the step
	// commands after layers-services, which take the current run's.
	ArtifactsDir string
	Repeat       int           // extra runs: Repeat+1 runs in all
	Duration     time.Duration // the wait between launch and finalize
	AppConfs     []string      // workflow_env.yaml configurations, in turn
	Forks        int
	Out          io.Writer // the terminal (io.Discard when quiet)
	JSON         bool      // log lines as JSON objects
	Version      string
	// FinalizeTimeout bounds the finalize of an interrupted run.
	FinalizeTimeout time.Duration
	// KeepNetwork leaves the network emulation on the hosts after each run
	// (e2c destroy --network removes it).
	KeepNetwork bool
	// SkipNetworkCheck applies network.yaml without measuring it.
	SkipNetworkCheck bool
	// Agent finds the e2c binary for linux/<goarch> copied to the hosts:
	// the agent that runs their commands, measures the network and samples
	// them; nil: DefaultAgent.
	Agent func(goarch string) (string, error)
	// NoAgent runs every command in an SSH session of its own, as plain
	// OpenSSH would, instead of through the agent (e2c --no-agent).
	NoAgent bool
	// Testbed, when set, runs every service on this testbed with its
	// default settings, whatever layers_services.yaml says: the emulated
	// twin of a Grid'5000 scenario on one machine (netns, local).
	Testbed string
	// Network is how much of network.yaml is applied: NetworkFull (""),
	// NetworkRatesOnly or NetworkOff.
	Network string
	// Providers are the testbeds' providers; nil: builtin.Set().
	Providers providers.Set
}

// Hosts says what Deploy does with the hosts once its runs are over.
type Hosts int

const (
	// ReleaseIfInterrupted keeps them for inspection, unless interrupted.
	ReleaseIfInterrupted Hosts = iota
	Release                    // e2c deploy --destroy
	Keep                       // e2c deploy --keep: even when interrupted
)

// series is what reproduce asks of a deploy beyond the user's options.
type series struct {
	only       *int   // run this run (0-based, of Repeat+1) alone, with its own index
	reproduces string // the run folder a reproduction runs again
}

// Deploy reserves the hosts and runs the experiment Repeat+1 times. It
// returns the run folders written, and an error if any run failed or was
// interrupted.
func (x *Session) Deploy(ctx context.Context, after Hosts) ([]string, error) {
	return x.deploy(ctx, after, series{})
}

func (x *Session) deploy(ctx context.Context, after Hosts, sr series) ([]string, error) {
	o := x.o
	if err := x.needArtifacts(); err != nil {
		return nil, err
	}
	x.st.Scale = nil // a deploy runs the scenario as written
	if err := x.load(); err != nil {
		return nil, err
	}
	if err := checkTimeline(x.sc.Timeline, o.Duration); err != nil {
		return nil, err
	}
	x.warnBackgroundWithoutWait()
	reserve, err := x.reserveStep(ctx)
	if err != nil {
		return nil, err
	}
	var runs []string
	var errs []error
	interrupted := false
	first := 0
	if sr.only != nil {
		first = *sr.only
	}
	for r := first; r <= o.Repeat && !interrupted && (sr.only == nil || r == *sr.only); r++ {
		if x.changed { // by the last run's timeline: this one starts from the scenario as written
			if _, err := x.reserve(ctx, false); err != nil {
				errs = append(errs, fmt.Errorf("run %d of %d: reserve: %w", r+1, o.Repeat+1, err))
				break
			}
			x.changed = false
			var unknown []string
			for h := range x.hosts {
				if _, ok := x.facts[h]; !ok {
					unknown = append(unknown, h)
				}
			}
			x.learnFacts(ctx, unknown)
		}
		dir, err := x.runOnce(ctx, r, func(rec *results.Record) {
			rec.Reproduces = sr.reproduces
			if r == first { // the reservation was made for the first run
				rec.Steps = append(rec.Steps, reserve)
			}
		})
		if dir != "" {
			runs = append(runs, dir)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("run %d of %d: %w", r+1, o.Repeat+1, err))
			interrupted = ctx.Err() != nil
		}
	}
	if after == Release || (interrupted && after != Keep) {
		if err := x.release(context.WithoutCancel(ctx)); err != nil {
			errs = append(errs, err)
		}
	} else {
		fmt.Fprintf(o.Out, "hosts kept for inspection; release them with: e2c destroy %s\n", o.ScenarioDir)
	}
	return runs, errors.Join(errs...)
}

// reserveStep gets the hosts and learns what they are. It returns the
// reserve step, for the record of the run that follows.
func (x *Session) reserveStep(ctx context.Context) (*results.Step, error) {
	s := &results.Step{Name: "reserve", Start: time.Now()}
	note, err := x.reserve(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("reserve: %w", err)
	}
	end := time.Now()
	s.End, s.Status, s.Note = &end, results.Succeeded, note
	x.learnFacts(ctx, slices.Sorted(maps.Keys(x.hosts)))
	return s, nil
}

// normalize makes the folders absolute and fills defaults.
func (o *Options) normalize() error {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.FinalizeTimeout == 0 {
		o.FinalizeTimeout = 5 * time.Minute
	}
	if o.Providers == nil {
		o.Providers = builtin.Set()
	}
	var err error
	if o.ScenarioDir, err = filepath.Abs(o.ScenarioDir); err != nil {
		return err
	}
	if o.ArtifactsDir != "" {
		if o.ArtifactsDir, err = filepath.Abs(o.ArtifactsDir); err != nil {
			return err
		}
	}
	if o.Forks < 0 {
		return fmt.Errorf("forks %d: expected at least 1", o.Forks)
	}
	return checkNetworkMode(o.Network) // before the scenario is read: a mistake on the command line
}

func checkNetworkMode(mode string) error {
	if !slices.Contains(networkModes, mode) {
		return fmt.Errorf("--network %q: expected %s, %s or %s", mode, NetworkFull, NetworkRatesOnly, NetworkOff)
	}
	return nil
}

// needArtifacts checks the artifacts folder a new run reads, and says so
// when it holds nothing: a wrong path is more likely than a scenario that
// needs no file.
func (x *Session) needArtifacts() error {
	dir := x.o.ArtifactsDir
	if st, err := os.Stat(dir); dir == "" || err != nil || !st.IsDir() {
		return fmt.Errorf("artifacts folder %s: not found (it holds what tasks copy to the hosts)", dir)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) == 0 {
		fmt.Fprintf(x.o.Out, "warning: the artifacts folder %s is empty\n", dir)
	}
	return nil
}

// Open opens the experiment of o.ScenarioDir: it takes the scenario's lock
// (held until Close, so that no other e2c process works on it meanwhile),
// marks crashed the runs whose e2c process died, and reads the saved
// state. The scenario files are read by the first method that needs them.
func Open(o Options) (*Session, error) {
	if err := o.normalize(); err != nil {
		return nil, err
	}
	unlock, err := Lock(o.ScenarioDir)
	if err != nil {
		return nil, err
	}
	if err := markCrashed(o.ScenarioDir, o.Out); err != nil {
		fmt.Fprintf(o.Out, "warning: marking crashed runs: %v\n", err)
	}
	st, err := LoadState(o.ScenarioDir)
	if err != nil {
		unlock()
		return nil, err
	}
	return &Session{o: o, st: st, unlock: unlock, pool: transport.NewPool(o.poolOptions())}, nil
}

// poolOptions start the agent on every host reached over SSH, unless
// NoAgent.
func (o Options) poolOptions() transport.PoolOptions {
	if o.NoAgent {
		return transport.PoolOptions{}
	}
	return transport.PoolOptions{Agent: o.agent()}
}

// load reads and checks the scenario, once, before anything is reserved.
func (x *Session) load() error {
	if x.sc != nil {
		return nil
	}
	o := x.o
	o.AppConfs = confs(o.AppConfs) // what the runs plan under: "" when none is given
	c, err := Check(o, "RUN_DIR")
	if err != nil {
		return err
	}
	x.sc, x.defs, x.network = c.Scenario, c.Defs, c.Network
	if len(x.st.Scale) > 0 { // e2c scale's, for the step commands that follow it
		x.sc = edited(x.sc, x.st.Scale, nil)
	}
	return nil
}

// overrideTestbed puts every service on testbed name (deploy --testbed):
// with the scenario's block of that testbed if it has one, else with its
// defaults. The services' cluster and servers hints name machines of the
// scenario's own testbeds, so they are dropped.
func overrideTestbed(ls *schema.LayersServices, name string, set providers.Set) error {
	if _, err := set.Get(name); err != nil {
		return fmt.Errorf("--testbed: %w", err)
	}
	env := &ls.Environment
	tb := schema.Testbed{Name: name}
	if kept := env.Testbed(name); kept != nil {
		tb = *kept
	}
	env.Testbeds, env.Cluster = []schema.Testbed{tb}, ""
	for i := range ls.Layers {
		for j := range ls.Layers[i].Services {
			s := &ls.Layers[i].Services[j]
			s.Environment, s.Cluster, s.Servers = "", "", nil
		}
	}
	return nil
}

// Close ends the session: its connections and its lock.
func (x *Session) Close() {
	x.pool.Close()
	x.unlock()
}

func confs(list []string) []string {
	if len(list) == 0 {
		return []string{""}
	}
	return list
}

func (o Options) planOptions(repeat int, runDir, conf string) plan.Options {
	return plan.Options{ScenarioDir: o.ScenarioDir, ArtifactsDir: o.ArtifactsDir, RunDir: runDir,
		Repeat: repeat, RepeatCount: o.Repeat + 1, AppConf: conf}
}

// Session is an experiment opened by Open: the lifecycle's steps are its
// methods. It is used by one goroutine at a time.
type Session struct {
	o        Options
	sc       *schema.Scenario
	defs     servicedef.Registry
	st       *State
	pool     *transport.Pool
	unlock   func()
	machines [][]plan.Machine
	hosts    map[string]providers.Host
	testbeds map[string]string // host -> testbed

	facts   map[string]results.Facts // by host, learnt once per deploy
	hashes  artifactHashes           // the artifacts', kept across the runs of a deploy
	network *results.NetworkLimit    // what --network left out of network.yaml
	changed bool                     // a change has made the hosts differ from the scenario as written

	mu    sync.Mutex
	local map[string]transport.Runner
}

// reserve gets hosts for every instance from its testbed's provider,
// reusing a reservation kept from an earlier deploy when it fits; with
// keptOnly it only reuses.
func (x *Session) reserve(ctx context.Context, keptOnly bool) (string, error) {
	instances := plan.Expand(x.sc.LayersServices)
	byTestbed := map[string][]int{}
	var order []string
	for i, in := range instances {
		if byTestbed[in.Testbed] == nil {
			order = append(order, in.Testbed)
		}
		byTestbed[in.Testbed] = append(byTestbed[in.Testbed], i)
	}
	x.machines = make([][]plan.Machine, len(instances))
	x.hosts, x.testbeds = map[string]providers.Host{}, map[string]string{}
	note := ""
	for _, testbed := range order {
		p, err := x.o.Providers.Get(testbed)
		if err != nil {
			return "", err
		}
		var want []plan.Instance
		for _, i := range byTestbed[testbed] {
			want = append(want, instances[i])
		}
		r := x.st.Reservations[testbed]
		if r != nil && r.Incomplete {
			// A reserve that died (a crash, a second Ctrl-C) journaled
			// what it was creating: free that before anything else.
			fmt.Fprintf(x.o.Out, "reserve: releasing what an interrupted %s reservation left\n", testbed)
			if err := x.forget(ctx, p, testbed, r); err != nil {
				return "", err
			}
			r = nil
		}
		if keptOnly && (r == nil || !fits(r, want)) {
			return "", fmt.Errorf("no kept %s hosts fit this scenario: run e2c layers-services first", testbed)
		}
		if v, ok := p.(providers.Verifier); ok && r != nil && fits(r, want) {
			if err := v.Verify(ctx, r, x.need()); err != nil {
				if !errors.Is(err, providers.ErrCannotServe) {
					return "", fmt.Errorf("the kept %s hosts: %w", testbed, err)
				}
				if keptOnly {
					return "", fmt.Errorf("the kept %s hosts cannot serve: %w; run e2c layers-services again", testbed, err)
				}
				fmt.Fprintf(x.o.Out, "reserve: the kept %s reservation cannot be reused: %v; releasing it\n", testbed, err)
				if err := x.forget(ctx, p, testbed, r); err != nil {
					return "", err
				}
				r = nil
			}
		}
		if r != nil && !fits(r, want) && x.changed {
			resized, err := x.resizeKept(ctx, p, testbed, r, want)
			if err != nil {
				return "", fmt.Errorf("resizing the kept %s hosts: %w", testbed, err)
			}
			if resized {
				note += fmt.Sprintf("%s: resized the kept reservation; ", testbed)
			}
		}
		if r != nil && fits(r, want) {
			note += fmt.Sprintf("%s: reused the kept reservation; ", testbed)
			fmt.Fprintf(x.o.Out, "reserve: reusing the %s hosts kept by an earlier deploy\n", testbed)
		} else {
			if r != nil {
				fmt.Fprintf(x.o.Out, "reserve: the kept %s reservation does not fit this scenario; releasing it\n", testbed)
				if err := x.forget(ctx, p, testbed, r); err != nil {
					return "", err
				}
			}
			fmt.Fprintf(x.o.Out, "reserve: %d instances on %s\n", len(want), testbed)
			journal := func(state json.RawMessage) error {
				x.st.Reservations[testbed] = &providers.Reservation{Provider: testbed, State: state, Incomplete: true}
				return x.st.Save(x.o.ScenarioDir)
			}
			r, err = p.Reserve(ctx, x.request(x.sc, testbed, want, journal))
			if err != nil {
				// What was journaled stays in the state: Reserve freed what
				// it created, and a release of nothing is harmless.
				return "", fmt.Errorf("%s: %w", testbed, err)
			}
			note += fmt.Sprintf("%s: reserved; ", testbed)
		}
		x.st.Reservations[testbed] = r
		if err := x.st.Save(x.o.ScenarioDir); err != nil {
			return "", err
		}
		for j, i := range byTestbed[testbed] {
			for _, h := range r.Hosts[j] {
				x.machines[i] = append(x.machines[i], h.Machine)
				x.hosts[h.Name] = h
				x.testbeds[h.Name] = testbed
			}
		}
	}
	return note, nil
}

// resizeKept gives the reservation that a change of this deploy's last run
// resized (a timeline's) the hosts it lacks for the scenario as written, and
// releases those it has too many, so that the next run starts from the
// scenario on the hosts it keeps. A reservation kept by an earlier deploy
// that does not fit is replaced instead: its settings may have been edited.
// It reports whether it did; a reservation it cannot resize is left to be
// replaced.
func (x *Session) resizeKept(ctx context.Context, p providers.Provider, testbed string, r *providers.Reservation, want []plan.Instance) (bool, error) {
	rz, ok := p.(providers.Resizer)
	if !ok || r.Incomplete {
		return false, nil
	}
	applied, err := readApplied(x.o.ScenarioDir)
	if err != nil {
		return false, nil // kept by an e2c before changes could be made
	}
	names, removed := placement(applied, want)
	keep := make([][]providers.Host, len(want))
	for i, hs := range names {
		for _, name := range hs {
			h, ok := hostOf(r, name)
			if !ok {
				return false, nil // the plan is not of this reservation
			}
			keep[i] = append(keep[i], h)
		}
	}
	removed = slices.DeleteFunc(removed, func(h string) bool { _, ok := hostOf(r, h); return !ok })
	fmt.Fprintf(x.o.Out, "reserve: resizing the kept %s hosts to the scenario as written (%d removed)\n", testbed, len(removed))
	if failed := x.quiesce(ctx, removed, x.o.Out); len(failed) > 0 {
		fmt.Fprintf(x.o.Out, "warning: on the hosts removed: %v\n", failed)
	}
	err = rz.Resize(ctx, r, x.request(x.sc, testbed, want, x.journalInto(r)), keep)
	return true, errors.Join(err, x.st.Save(x.o.ScenarioDir))
}

// request is what the provider of testbed is asked for instances of sc;
// journal saves its record.
func (x *Session) request(sc *schema.Scenario, testbed string, instances []plan.Instance, journal func(json.RawMessage) error) providers.Request {
	env := sc.LayersServices.Environment
	return providers.Request{Experiment: jobName(env, x.o.ScenarioDir),
		StateDir: filepath.Join(stateDir(x.o.ScenarioDir), testbed), Settings: env.Testbed(testbed), Instances: instances,
		Walltime: env.Walltime, Cluster: env.Cluster, Out: x.o.Out, Journal: journal}
}

// journalInto saves a provider's record of what it is changing into the
// kept reservation r.
func (x *Session) journalInto(r *providers.Reservation) func(json.RawMessage) error {
	return func(state json.RawMessage) error {
		r.State = state
		return x.st.Save(x.o.ScenarioDir)
	}
}

// forget stops the background jobs of a kept reservation's hosts, which
// may outlive it (static hosts, a reused g5k job), then releases it and
// removes it from the state, its jobs with it.
func (x *Session) forget(ctx context.Context, p providers.Provider, testbed string, r *providers.Reservation) error {
	mine := func(h string) bool { _, ok := hostOf(r, h); return ok }
	jobs := x.st.jobsOn(mine)
	if _, err := x.st.stopJobs(ctx, x.o.ScenarioDir, connectTo(x.pool, r), jobs); err != nil {
		fmt.Fprintf(x.o.Out, "warning: %v; forgotten with the %s reservation\n", err, testbed)
	}
	x.st.jobs().Drop(jobs)
	if err := removeContainers(ctx, x.st, x.o.ScenarioDir, x.pool, x.o.Out, r); err != nil {
		fmt.Fprintf(x.o.Out, "warning: %v; forgotten with the %s reservation\n", err, testbed)
	}
	removeBlobs(ctx, x.st, connectTo(x.pool, r), mine, x.o.Out)
	if err := p.Release(ctx, r, x.o.Out); err != nil {
		return fmt.Errorf("releasing the kept %s reservation: %w", testbed, err)
	}
	delete(x.st.Reservations, testbed)
	return x.st.Save(x.o.ScenarioDir)
}

// need is how long the runs of a deploy wait at least: a kept reservation
// that ends sooner cannot serve them.
func (x *Session) need() time.Duration {
	return x.o.Duration * time.Duration((x.o.Repeat+1)*len(confs(x.o.AppConfs)))
}

// jobName is the scenario's job_name, or a name derived from the scenario's
// folder and this machine, which no other scenario shares: a fixed default
// (E2Clab's "E2Clab") makes two scenarios find, and take, one another's job.
func jobName(env schema.Environment, scenarioDir string) string {
	if env.JobName != "" {
		return env.JobName
	}
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte(host + "\x00" + scenarioDir))
	base := strings.Map(func(r rune) rune {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_') {
			return r
		}
		return '_'
	}, filepath.Base(scenarioDir))
	if len(base) > 32 {
		base = base[:32]
	}
	return "e2c-" + base + "-" + hex.EncodeToString(sum[:4])
}

// fits reports whether a kept reservation has exactly the machines wanted.
func fits(r *providers.Reservation, want []plan.Instance) bool {
	if r.Incomplete || len(r.Hosts) != len(want) {
		return false
	}
	for i, in := range want {
		if len(r.Hosts[i]) != in.Service.Quantity {
			return false
		}
	}
	return true
}

// release stops the background jobs still recorded, then frees every
// reservation and forgets it.
func (x *Session) release(ctx context.Context) error {
	stopAllJobs(ctx, x.st, x.o.ScenarioDir, stateConnect(x.st, x.pool), x.o.Out)
	removeAllContainers(ctx, x.st, x.o.ScenarioDir, x.pool, x.o.Out)
	removeBlobs(ctx, x.st, stateConnect(x.st, x.pool), nil, x.o.Out)
	return release(ctx, x.st, x.o.ScenarioDir, x.o.Out, x.o.Providers)
}

// release frees every reservation of st and forgets it, and the background
// jobs with it once their hosts are all released.
func release(ctx context.Context, st *State, scenario string, out io.Writer, set providers.Set) error {
	var errs []error
	for testbed, r := range st.Reservations {
		p, err := set.Get(testbed)
		if err == nil {
			err = p.Release(ctx, r, out)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("release %s: %w", testbed, err))
			continue
		}
		delete(st.Reservations, testbed)
		fmt.Fprintf(out, "released the %s hosts\n", testbed)
	}
	if len(st.Reservations) == 0 && st.Memory != nil {
		st.Memory.Jobs = nil
	}
	if len(st.Reservations) == 0 {
		st.Containers, st.Blobs = nil, nil // their hosts are gone, or out of reach
	}
	errs = append(errs, st.Save(scenario))
	return errors.Join(errs...)
}

// Destroy stops the background jobs recorded, removes the network
// emulation and releases the hosts a deploy of the scenario kept, or what
// a reserve that died had started to create.
func (x *Session) Destroy(ctx context.Context) error {
	st, scenario, out := x.st, x.o.ScenarioDir, x.o.Out
	if len(st.Reservations) == 0 && len(st.Network) == 0 && len(st.jobs()) == 0 && len(st.Containers) == 0 && len(st.Blobs) == 0 {
		fmt.Fprintln(out, "nothing to release")
		return nil
	}
	// A release half done is worse than a slow one: it is not cancelled.
	ctx = context.WithoutCancel(ctx)
	connect := stateConnect(st, x.pool)
	stopAllJobs(ctx, st, scenario, connect, out)
	removeAllContainers(ctx, st, scenario, x.pool, out)
	removeBlobs(ctx, st, connect, nil, out)
	if err := resetNetwork(ctx, st, scenario, connect, out); err != nil {
		fmt.Fprintf(out, "network: %v\nnetwork: releasing the hosts anyway; rules stay on those of them that outlive their reservation (static hosts)\n", err)
		st.Network = nil // the hosts are released: nothing left to reset through them
	}
	return release(ctx, st, scenario, out, x.o.Providers)
}

// connect returns the transport of a host: this machine in the host's
// working area, or SSH through the pool.
func (x *Session) connect(ctx context.Context, name string) (transport.Runner, error) {
	h, ok := x.hosts[name]
	if !ok {
		return nil, fmt.Errorf("no host %s in the reservation", name)
	}
	if h.SSH != nil {
		return x.pool.Runner(ctx, *h.SSH)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.local == nil {
		x.local = map[string]transport.Runner{}
	}
	if r, ok := x.local[name]; ok {
		return r, nil
	}
	r := transport.NewLocal(h.WorkDir)
	x.local[name] = r
	return r, nil
}
