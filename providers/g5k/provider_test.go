package g5k

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/providers/g5k/g5kfake"
	"github.com/e2c-dev/e2c/schema"
	"gopkg.in/yaml.v3"
)

// api is a fake API and the record of holds its providers share.
type api struct {
	*g5kfake.Server
	t       *testing.T
	records string
}

// fake starts the fake API with two sites.
func fake(t *testing.T) *api { return fakeWith(t, nil) }

// fakeWith is fake with its configuration changed by edit first.
func fakeWith(t *testing.T, edit func(*g5kfake.Config)) *api {
	t.Helper()
	cfg := g5kfake.Config{
		User: "alice", Password: "s3cret",
		Clusters: []g5kfake.Cluster{
			{Site: "rennes", Name: "parasilo", Nodes: []string{"parasilo-1", "parasilo-2", "parasilo-3", "parasilo-10"}},
			{Site: "nancy", Name: "gros", Nodes: []string{"gros-1", "gros-2"}},
		},
		Environments: []string{"debian11-x64-big"},
		Waiting:      30 * time.Millisecond, Launching: 10 * time.Millisecond, Deploying: 30 * time.Millisecond,
	}
	if edit != nil {
		edit(&cfg)
	}
	return &api{Server: g5kfake.New(t, cfg), t: t, records: t.TempDir()}
}

// as is a provider of the account given (the credentials file's lines,
// "" for none, as inside Grid'5000) that polls and retries quickly. Its
// nodes are never reached (Reach fails), so these tests end before SSH
// unless they expect to get there.
func (a *api) as(account string) *Provider {
	return &Provider{Credentials: a.Credentials(a.t, account), Records: a.records,
		PollMin: 5 * time.Millisecond, PollMax: 20 * time.Millisecond, DeployPoll: 5 * time.Millisecond, DeployTries: 2, RetryWait: time.Millisecond}
}

// fast is alice's provider.
func (a *api) fast() *Provider { return a.as("username: alice\npassword: s3cret\n") }

func request(t *testing.T, settings map[string]any, svcs ...*schema.Service) providers.Request {
	text, err := yaml.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	return providers.Request{Experiment: "e2c-test", StateDir: t.TempDir(), Walltime: time.Hour, Settings: testbed(t, string(text)), Instances: instances(svcs...)}
}

func TestSubmitRefusedOnOneSiteDeletesTheOthers(t *testing.T) {
	t.Parallel()
	s := fake(t)
	var out strings.Builder
	req := request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 2}, &schema.Service{Name: "b", Quantity: 1, Cluster: "gros"})
	req.Out = &out
	s.RefuseSubmit("There are not enough resources")
	// The first submission (rennes) is refused: nothing else is submitted.
	_, err := s.fast().Reserve(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "rennes: submitting {cluster='parasilo'}/nodes=2,walltime=01:00:00") || !strings.Contains(err.Error(), "There are not enough resources") {
		t.Fatalf("error: %v", err)
	}
	if n := s.Count("POST", "/stable/sites/nancy/jobs"); n != 0 {
		t.Errorf("%d submissions on nancy after rennes failed", n)
	}
	// Now rennes succeeds and nancy is refused: the rennes job is deleted.
	s.FailNext("POST", "/stable/sites/nancy/jobs", 400, "Request to http://oar/jobs failed with status 400: There are not enough resources", 1)
	_, err = s.fast().Reserve(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "nancy: submitting") {
		t.Fatalf("error: %v", err)
	}
	for _, j := range s.Jobs() {
		if j.Site == "rennes" && j.State != "error" {
			t.Errorf("rennes job %d left %s", j.UID, j.State)
		}
	}
	if n := s.Count("DELETE", "/stable/sites/rennes/jobs/"); n != 1 {
		t.Errorf("%d deletes of the rennes job", n)
	}
	if n := s.Count("POST", "/stable/sites/rennes/jobs"); n != 2 {
		t.Errorf("%d POSTs to rennes in two reservations: a POST must never be retried", n)
	}
}

func TestJobEndingInError(t *testing.T) {
	t.Parallel()
	s := fake(t)
	s.ErrorWhileWaiting("e2c-test")
	_, err := s.fast().Reserve(context.Background(), request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 1}))
	if err == nil || !strings.Contains(err.Error(), "ended in state error before running; OAR's events: SWITCH_INTO_ERROR_STATE: ") || strings.Contains(err.Error(), "FIFO") {
		t.Fatalf("error: %v (want OAR's events, not the scheduler's message)", err)
	}
}

func TestInterruptedWaitDeletesOnlyItsOwnJob(t *testing.T) {
	t.Parallel()
	s := fake(t)
	p := s.fast()
	p.PollMin, p.PollMax = time.Hour, time.Hour // the wait is long: only Ctrl-C ends it
	ctx, cancel := context.WithCancel(context.Background())
	// Once e2c polls its job, it is waiting for it.
	after(t, answered(s, "GET", "/stable/sites/rennes/jobs/"), cancel)
	_, err := p.Reserve(ctx, request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 1}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error: %v", err)
	}
	if n := s.Count("DELETE", "/stable/sites/rennes/jobs/"); n != 1 {
		t.Errorf("%d deletes after Ctrl-C, want the job e2c submitted deleted", n)
	}
}

func TestReusedJobTooSmall(t *testing.T) {
	t.Parallel()
	s := fake(t)
	s.AddJob(g5kfake.Job{Site: "rennes", Name: "e2c-test", User: "alice", State: "running", Types: []string{"deploy"}, Walltime: 3600,
		AssignedNodes: []string{"parasilo-1.rennes.grid5000.fr"}})
	var out strings.Builder
	req := request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 2})
	req.Out = &out
	_, err := s.fast().Reserve(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "lacks 2 parasilo nodes (has 1): delete it (oardel") {
		t.Fatalf("error: %v", err)
	}
	if !strings.Contains(out.String(), "rennes: reusing job") || s.Count("POST", "/stable/sites/rennes/jobs") != 0 {
		t.Errorf("no reuse:\n%s", out.String())
	}
	for _, j := range s.Jobs() {
		if j.State != "running" {
			t.Errorf("the reused job (not e2c's) was touched: %s", j.State)
		}
	}
}

func TestDeploymentKOAfterRetries(t *testing.T) {
	t.Parallel()
	s := fake(t)
	key := filepath.Join(t.TempDir(), "id.pub")
	os.WriteFile(key, []byte("ssh-ed25519 AAAA test\n"), 0o600)
	s.DeployKO("parasilo-2.rennes.grid5000.fr", 5)
	s.FailNext("GET", "/stable/sites", 503, "Service Unavailable", 1) // retried
	_, err := s.fast().Reserve(context.Background(), request(t, map[string]any{"cluster": "parasilo", "env_name": "debian11-big", "key_name": key},
		&schema.Service{Name: "a", Quantity: 2}))
	if err == nil || !strings.Contains(err.Error(), "kadeploy failed 2 times on 1 nodes: parasilo-2.rennes.grid5000.fr:") {
		t.Fatalf("error: %v", err)
	}
	if got := s.Count("POST", "/stable/sites/rennes/deployments"); got != 2 {
		t.Errorf("%d deployments, want 2 (the second for the KO node only)", got)
	}
	if got := s.DeployedKey("parasilo-1.rennes.grid5000.fr"); got != "ssh-ed25519 AAAA test" {
		t.Errorf("key sent: %q", got)
	}
	if n := s.Count("DELETE", "/stable/sites/rennes/jobs/"); n != 1 {
		t.Errorf("job not deleted after the failed deployment")
	}
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	s := fake(t)
	_, err := s.as("username: alice\npassword: wrong\n").Reserve(context.Background(), request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 1}))
	if err == nil || !strings.Contains(err.Error(), "401 Unauthorized") || !strings.Contains(err.Error(), "check username and password in ~/.python-grid5000.yaml") {
		t.Fatalf("error: %v", err)
	}
}

// Release of a saved reservation: e2c's jobs are deleted, a job already
// ended is released already, a reused job is left running, and said so.
func TestRelease(t *testing.T) {
	t.Parallel()
	s := fake(t)
	uid := s.AddJob(g5kfake.Job{Site: "rennes", Name: "e2c-test", User: "alice", State: "running", Walltime: 3600})
	done := s.AddJob(g5kfake.Job{Site: "rennes", Name: "old", User: "alice", State: "terminated", Walltime: 3600})
	reused := s.AddJob(g5kfake.Job{Site: "nancy", Name: "e2c-test", User: "alice", State: "running", Walltime: 3600})
	state := fmt.Sprintf(`{"api": %q, "login": "alice", "jobs": [{"site": "rennes", "uid": %d, "created": true}, {"site": "rennes", "uid": %d, "created": true},
		{"site": "nancy", "uid": %d}]}`, s.URL, uid, done, reused)
	var out strings.Builder
	if err := s.fast().Release(context.Background(), &providers.Reservation{Provider: "g5k", State: []byte(state)}, &out); err != nil {
		t.Fatal(err)
	}
	if n := s.Count("DELETE", "/stable/sites/rennes/jobs/"); n != 2 || s.Count("DELETE", "/stable/sites/nancy/") != 0 {
		t.Errorf("%d deletes", n)
	}
	if want := fmt.Sprintf("g5k: nancy: job %d was reused by name, not submitted by e2c: left running (oardel %d on the nancy frontend ends it)", reused, reused); !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
}

// unreachable makes every node fail at SSH, so that a test stops right
// after the API work.
func unreachable(p *Provider) *Provider {
	p.Reach = func(fqdn string, e transport.Endpoint) (string, transport.Endpoint) {
		return fqdn, transport.Endpoint{Host: "127.0.0.1", Port: 1, HostKeys: transport.Off}
	}
	return p
}

func TestReuseByName(t *testing.T) {
	t.Parallel()
	s := fake(t)
	uid := s.AddJob(g5kfake.Job{Site: "rennes", Name: "e2c-test", User: "alice", State: "running", Walltime: 3600,
		AssignedNodes: []string{"parasilo-2.rennes.grid5000.fr", "parasilo-3.rennes.grid5000.fr"}})
	var out strings.Builder
	req := request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 2})
	req.Out = &out
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := unreachable(s.fast()).Reserve(ctx, req)
	if err == nil || !strings.Contains(err.Error(), "parasilo-2.rennes.grid5000.fr") {
		t.Fatalf("error: %v (want the SSH failure of the reused nodes)", err)
	}
	if want := fmt.Sprintf("g5k: rennes: reusing job %d (e2c-test, state running)", uid); !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
	if !strings.Contains(out.String(), "not submitted by e2c: left running") || s.Count("POST", "/stable/sites/rennes/jobs") != 0 ||
		s.Count("DELETE", "") != 0 {
		t.Errorf("a reused job was submitted again or deleted:\n%s", out.String())
	}
	// Two jobs of that name: which one is meant cannot be told.
	s.AddJob(g5kfake.Job{Site: "rennes", Name: "e2c-test", User: "alice", State: "running", Walltime: 3600})
	if _, err := s.fast().Reserve(ctx, req); err == nil || !strings.Contains(err.Error(), "2 jobs named e2c-test") {
		t.Errorf("two jobs: %v", err)
	}
}

// The job poll backs off from PollMin to PollMax.
func TestPollBacksOff(t *testing.T) {
	t.Parallel()
	s2 := g5kfake.New(t, g5kfake.Config{User: "alice", Password: "s3cret", Waiting: 400 * time.Millisecond, Launching: -1})
	p := unreachable(&Provider{Credentials: s2.Credentials(t, "username: alice\npassword: s3cret\n"), Records: t.TempDir(),
		PollMin: 20 * time.Millisecond, PollMax: 60 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p.Reserve(ctx, request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 1}))
	var at []time.Time
	for _, r := range s2.Requests() {
		if r.Method == "GET" && strings.HasPrefix(r.Path, "/stable/sites/rennes/jobs/") {
			at = append(at, r.At)
		}
	}
	if len(at) < 4 {
		t.Fatalf("%d polls in 400 ms", len(at))
	}
	// The sleeps are 20, 30, 45, then 60 ms: load on the machine can only
	// lengthen a gap, so each gap is at least its sleep, and a poller that
	// does not back off fails from the second gap.
	want := []time.Duration{20, 30, 45, 60}
	for i := 1; i < len(at); i++ {
		sleep := want[min(i-1, len(want)-1)] * time.Millisecond
		if gap := at[i].Sub(at[i-1]); gap < sleep-2*time.Millisecond {
			t.Errorf("poll %d came %v after the one before, want at least %v", i, gap, sleep)
		}
	}
}
