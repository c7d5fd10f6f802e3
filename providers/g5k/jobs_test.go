package g5k

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/providers/g5k/g5kfake"
	"github.com/e2c-dev/e2c/schema"
)

// syncBuffer is an output read while Reserve writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// eventually waits up to 10 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// after runs then in the background once cond holds; it stops looking when
// the test ends, and the test waits for it.
func after(t *testing.T, cond func() bool, then func()) {
	ended, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for !cond() {
			select {
			case <-ended:
				return
			case <-time.After(time.Millisecond):
			}
		}
		then()
	}()
	t.Cleanup(func() { close(ended); <-done })
}

// A background wait whose condition never holds ends with its test.
func TestAfterEndsWithTheTest(t *testing.T) {
	t.Parallel()
	before := runtime.NumGoroutine()
	t.Run("failing before its condition", func(t *testing.T) {
		after(t, func() bool { return false }, func() { t.Error("then ran") })
	})
	// The subtest's own goroutine may take a moment to exit.
	eventually(t, "the goroutines of the subtest to end", func() bool { return runtime.NumGoroutine() <= before })
}

// answered says whether the fake has answered a request of that method
// and path prefix.
func answered(s *api, method, path string) func() bool {
	return func() bool { return s.Count(method, path) > 0 }
}

// reserveAsync runs Reserve until the test cancels it, and returns its
// error; the test waits for it to return.
func reserveAsync(t *testing.T, p *Provider, req providers.Request) (cancel func() error) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		_, err = p.Reserve(ctx, req)
	}()
	t.Cleanup(func() { stop(); <-done })
	return func() error { stop(); <-done; return err }
}

func fakeJob(s *api, uid int64) g5kfake.Job {
	for _, j := range s.Jobs() {
		if j.UID == uid {
			return j
		}
	}
	return g5kfake.Job{}
}

func ended(state string) bool {
	return state == "finishing" || state == "error" || state == "terminated"
}

// A Reserve that dies (a second Ctrl-C) leaves what it journaled: another
// process releases it from there, whether the job's uid was written or
// only the intent to submit it.
func TestJournalLetsAnotherProcessRelease(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		left int // the journaled states written before the end
	}{{"the job's uid journaled", 2}, {"only the intent journaled", 1}} {
		t.Run(tt.name, func(t *testing.T) {
			s := fake(t)
			p := s.fast()
			p.PollMin, p.PollMax = time.Hour, time.Hour // the wait is long: the process "dies" during it
			req := request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 1})
			var mu sync.Mutex
			var journal []json.RawMessage
			req.Journal = func(state json.RawMessage) error {
				mu.Lock()
				defer mu.Unlock()
				journal = append(journal, state)
				return nil
			}
			stop := reserveAsync(t, p, req)
			eventually(t, "the submission journaled", func() bool { mu.Lock(); defer mu.Unlock(); return len(journal) >= 2 })
			mu.Lock()
			left := journal[tt.left-1]
			mu.Unlock()
			var out strings.Builder
			if err := p.Release(context.Background(), &providers.Reservation{Provider: "g5k", State: left, Incomplete: true}, &out); err != nil {
				t.Fatal(err)
			}
			if j := fakeJob(s, 1); !ended(j.State) || !strings.Contains(out.String(), "g5k: rennes: job 1 deleted") {
				t.Errorf("job 1 %s after the release of the journal %s:\n%s", j.State, left, out.String())
			}
			if err := stop(); !errors.Is(err, context.Canceled) {
				t.Errorf("reserve: %v", err)
			}
		})
	}
}

// A submission answered 5xx (the front proxy's 504: the API behind it was
// too slow) may have made its job: it is found, journaled and deleted.
func TestLostSubmissionAnswer(t *testing.T) {
	t.Parallel()
	s := fake(t)
	s.LoseAnswer("POST", "/sites/rennes/jobs", http.StatusGatewayTimeout, "Gateway Time-out", 1)
	var out strings.Builder
	var journal []string
	req := request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 1})
	req.Out = &out
	req.Journal = func(state json.RawMessage) error { journal = append(journal, string(state)); return nil }
	if _, err := s.fast().Reserve(context.Background(), req); err == nil || !strings.Contains(err.Error(), "504 Gateway Timeout") {
		t.Fatalf("error: %v", err)
	}
	if j := fakeJob(s, 1); !ended(j.State) || !strings.Contains(out.String(), "g5k: rennes: job 1 deleted") {
		t.Errorf("the job made is %s:\n%s", j.State, out.String())
	}
	if last := journal[len(journal)-1]; !strings.Contains(last, `"uid":1,`) {
		t.Errorf("the job found was not journaled: %s", last)
	}
}

// The release of a journaled intent, days later, deletes only the job the
// submission may have made: the user's, of that name, submitted while it
// could be accepted, not reused.
func TestReleaseOfAnIntent(t *testing.T) {
	t.Parallel()
	s := fake(t)
	since := time.Now().Add(-72 * time.Hour)
	at := func(d time.Duration) int64 { return since.Add(d).Unix() }
	old := s.AddJob(g5kfake.Job{Site: "rennes", Name: "e2c-test", User: "alice", State: "running", SubmittedAt: at(-time.Hour)})
	bobs := s.AddJob(g5kfake.Job{Site: "rennes", Name: "e2c-test", User: "bob", State: "running", SubmittedAt: at(time.Second)})
	reused := s.AddJob(g5kfake.Job{Site: "rennes", Name: "e2c-test", User: "alice", State: "running", SubmittedAt: at(-time.Minute)})
	made := s.AddJob(g5kfake.Job{Site: "rennes", Name: "e2c-test", User: "alice", State: "waiting", SubmittedAt: at(time.Second)})
	// Another scenario of the same job_name submitted days after the intent.
	later := s.AddJob(g5kfake.Job{Site: "rennes", Name: "e2c-test", User: "alice", State: "running"})
	state := fmt.Sprintf(`{"api": %q, "login": "alice", "jobs": [{"site": "rennes", "uid": %d, "name": "e2c-test"},
		{"site": "rennes", "uid": 0, "name": "e2c-test", "since": %d, "created": true}]}`, s.URL, reused, since.Unix())
	var out strings.Builder
	if err := s.fast().Release(context.Background(), &providers.Reservation{Provider: "g5k", State: []byte(state), Incomplete: true}, &out); err != nil {
		t.Fatal(err)
	}
	for uid, want := range map[int64]string{old: "running", bobs: "running", reused: "running", made: "error", later: "running"} {
		if got := fakeJob(s, uid).State; got != want {
			t.Errorf("job %d %s, want %s", uid, got, want)
		}
	}
	if want := fmt.Sprintf("job %d was reused by name, not submitted by e2c: left running", reused); !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
}

// Inside Grid'5000 without credentials nor $USER, the login is the Unix
// account, which the API knows the caller by: another user's job of the
// same name is never reused, and the API's own word on who submitted is
// checked.
func TestLoginInside(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	for _, tt := range []struct {
		apiUser string // who the API takes the caller for
		want    string
	}{
		{me.Username, "parasilo-2.rennes.grid5000.fr"}, // the SSH failure of its own job's node
		{"alice", "the API took you for alice, not " + me.Username},
	} {
		t.Run(tt.apiUser, func(t *testing.T) {
			s := fakeWith(t, func(c *g5kfake.Config) { c.User, c.Password = tt.apiUser, "" })
			t.Setenv("USER", "")
			os.Unsetenv("USER")
			bobs := s.AddJob(g5kfake.Job{Site: "rennes", Name: "e2c-test", User: "bob", State: "running", Types: []string{"deploy"}})
			p := unreachable(s.as(""))
			p.Inside = func() bool { return true }
			var out strings.Builder
			req := request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 1})
			req.Out = &out
			_, err := p.Reserve(context.Background(), req)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error: %v, want %q\n%s", err, tt.want, out.String())
			}
			if strings.Contains(out.String(), "reusing") || fakeJob(s, bobs).State != "running" || s.Count("POST", "/sites/rennes/jobs") != 1 {
				t.Errorf("bob's job was taken:\n%s", out.String())
			}
			i := slices.IndexFunc(s.Requests(), func(r g5kfake.Request) bool { return r.Path == "/stable/sites/rennes/jobs" && r.Method == "GET" })
			if r := s.Requests()[i]; !strings.Contains(r.Query, "user="+me.Username) {
				t.Errorf("listing %+v", r)
			}
		})
	}
}

// Another user of the platform, bob, runs e2c with the same job name:
// alice submits her own job, and each deletes only their own.
func TestAnotherUser(t *testing.T) {
	t.Parallel()
	s := fakeWith(t, func(c *g5kfake.Config) { c.Users = map[string]string{"bob": "b0b"} })
	bob := s.as("username: bob\npassword: b0b\n")
	bob.PollMin, bob.PollMax = time.Hour, time.Hour
	stopBob := reserveAsync(t, bob, request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 1}))
	eventually(t, "bob's job", answered(s, "GET", "/sites/rennes/jobs/1"))

	var out strings.Builder
	req := request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 1})
	req.Out = &out
	if _, err := unreachable(s.fast()).Reserve(context.Background(), req); err == nil || !strings.Contains(err.Error(), "parasilo-2.rennes.grid5000.fr") {
		t.Fatalf("alice: %v\n%s", err, out.String())
	}
	if j := fakeJob(s, 2); j.User != "alice" || !ended(j.State) || strings.Contains(out.String(), "reusing") {
		t.Errorf("alice's job %+v:\n%s", j, out.String())
	}
	if j := fakeJob(s, 1); j.User != "bob" || j.State != "running" {
		t.Errorf("bob's job %+v", j)
	}
	if err := stopBob(); !errors.Is(err, context.Canceled) {
		t.Errorf("bob: %v", err)
	}
	if j := fakeJob(s, 1); !ended(j.State) {
		t.Errorf("bob's job %s after bob's Ctrl-C", j.State)
	}
}

// A job reused by name is never deployed anew while another scenario of
// this machine holds it; without env_name it is shared, and said so.
func TestJobHeldByAnotherScenario(t *testing.T) {
	t.Parallel()
	s := fake(t)
	uid := s.AddJob(g5kfake.Job{Site: "rennes", Name: "e2c-test", User: "alice", State: "running", Types: []string{"deploy"},
		AssignedNodes: []string{"parasilo-1.rennes.grid5000.fr"}})
	first := filepath.Join(t.TempDir(), "first")
	other := filepath.Join(first, ".e2c", "g5k")
	os.MkdirAll(other, 0o700)
	if err := s.fast().claim(&state{API: s.URL, Login: "alice", Holder: other, Jobs: []jobState{{Site: "rennes", UID: uid}}}, true, io.Discard); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "id.pub")
	os.WriteFile(key, []byte("ssh-ed25519 AAAA test\n"), 0o600)
	deploy := map[string]any{"cluster": "parasilo", "env_name": "debian11-big", "key_name": key}
	_, err := unreachable(s.fast()).Reserve(context.Background(), request(t, deploy, &schema.Service{Name: "a", Quantity: 1}))
	if want := fmt.Sprintf("rennes: job %d is in use by the scenario %s on this machine", uid, first); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error: %v, want %q", err, want)
	}
	if n := s.Count("POST", "/sites/rennes/deployments"); n != 0 {
		t.Errorf("%d deployments on nodes another scenario holds", n)
	}

	var out strings.Builder
	req := request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 1})
	req.Out = &out
	unreachable(s.fast()).Reserve(context.Background(), req)
	if want := fmt.Sprintf("job %d is also used by the scenario %s on this machine", uid, first); !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}

	// Once that scenario is gone, the job is its own again.
	os.RemoveAll(first)
	unreachable(s.fast()).Reserve(context.Background(), request(t, deploy, &schema.Service{Name: "a", Quantity: 1}))
	if n := s.Count("POST", "/sites/rennes/deployments"); n != 1 {
		t.Errorf("%d deployments once the other scenario is gone", n)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	s := fake(t)
	node := "parasilo-1.rennes.grid5000.fr"
	mine := s.AddJob(g5kfake.Job{Site: "rennes", Name: "e2c-test", User: "alice", State: "running", Walltime: 3600, AssignedNodes: []string{node}})
	killed := s.AddJob(g5kfake.Job{Site: "rennes", Name: "e2c-test", User: "alice", State: "running"})
	s.Kill(killed)
	bobs := s.AddJob(g5kfake.Job{Site: "rennes", Name: "e2c-test", User: "bob", State: "running"})
	for _, tt := range []struct {
		name string
		uid  int64
		node string
		need time.Duration
		want string // "" for fit
	}{
		{"fits", mine, node, 30 * time.Minute, ""},
		{"too little walltime left", mine, node, 55 * time.Minute, fmt.Sprintf("rennes: job %d ends at ", mine)},
		{"a node gone", mine, "parasilo-2.rennes.grid5000.fr", 0, "no longer holds parasilo-2.rennes.grid5000.fr"},
		{"deleted", killed, "", 0, "no longer running; OAR's events: FRAG_JOB_REQUEST"}, // finishing, then error
		{"unknown", 999, "", 0, "job 999 no longer exists"},
		{"someone else's", bobs, "", 0, fmt.Sprintf("job %d is bob's, not alice's", bobs)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			state := fmt.Sprintf(`{"api": %q, "login": "alice", "jobs": [{"site": "rennes", "uid": %d, "created": true, "nodes": [%q]}]}`, s.URL, tt.uid, tt.node)
			err := s.fast().Verify(context.Background(), &providers.Reservation{Provider: "g5k", State: []byte(state)}, tt.need)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, providers.ErrCannotServe)) {
				t.Errorf("got %v, want %q (cannot serve)", err, tt.want)
			}
		})
	}
	// An API that does not answer says nothing of the job: it is kept.
	s.FailNext("GET", fmt.Sprintf("/sites/rennes/jobs/%d", mine), http.StatusServiceUnavailable, "down for maintenance", 100)
	state := fmt.Sprintf(`{"api": %q, "login": "alice", "jobs": [{"site": "rennes", "uid": %d, "created": true, "nodes": [%q]}]}`, s.URL, mine, node)
	err := s.fast().Verify(context.Background(), &providers.Reservation{Provider: "g5k", State: []byte(state)}, 0)
	if err == nil || errors.Is(err, providers.ErrCannotServe) || !strings.Contains(err.Error(), "could not check the kept jobs") {
		t.Errorf("API down: %v, want an error that keeps the job", err)
	}
	// One job that cannot serve is enough, whatever the API leaves
	// unanswered about the others.
	state = fmt.Sprintf(`{"api": %q, "login": "alice", "jobs": [{"site": "rennes", "uid": %d, "created": true, "nodes": [%q]},
		{"site": "rennes", "uid": %d, "created": true}]}`, s.URL, mine, node, killed)
	err = s.fast().Verify(context.Background(), &providers.Reservation{Provider: "g5k", State: []byte(state)}, 0)
	if err == nil || !errors.Is(err, providers.ErrCannotServe) || !strings.Contains(err.Error(), "no longer running") || !strings.Contains(err.Error(), "down for maintenance") {
		t.Errorf("one job deleted, the other not told: %v, want cannot serve, with both", err)
	}
	var _ providers.Verifier = (*Provider)(nil)
}

// A far predicted start is slept toward, but polled again every 5 PollMax:
// a job deleted meanwhile is seen. Times show their zone.
func TestFarStartPolledAgain(t *testing.T) {
	t.Parallel()
	s := fake(t)
	start := time.Now().Add(time.Hour).Unix()
	uid := s.AddJob(g5kfake.Job{Site: "rennes", Name: "e2c-test", User: "alice", State: "waiting", ScheduledAt: start})
	// Once the first poll is answered (waiting), the job is deleted.
	after(t, answered(s, "GET", fmt.Sprintf("/sites/rennes/jobs/%d", uid)), func() { s.Kill(uid) })
	var out strings.Builder
	req := request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 1})
	req.Out = &out
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := s.fast().Reserve(ctx, req)
	if want := "ended in state error before running; OAR's events: FRAG_JOB_REQUEST: [oardel]"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error: %v, want %q", err, want)
	}
	if want := "scheduled to start at " + time.Unix(start, 0).Format("2006-01-02 15:04:05 MST"); !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
}

// OAR's uids are per site: two sites' jobs of one uid each show their
// state.
func TestOneUIDOnTwoSites(t *testing.T) {
	t.Parallel()
	s := fake(t)
	for _, node := range []string{"parasilo-1.rennes.grid5000.fr", "gros-1.nancy.grid5000.fr"} {
		site := strings.Split(node, ".")[1]
		s.AddJob(g5kfake.Job{UID: 7, Site: site, Name: "e2c-test", User: "alice", State: "running", AssignedNodes: []string{node}})
	}
	var out strings.Builder
	req := request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 1}, &schema.Service{Name: "b", Quantity: 1, Cluster: "gros"})
	req.Out = &out
	unreachable(s.fast()).Reserve(context.Background(), req)
	for _, want := range []string{"g5k: rennes: job 7 running\n", "g5k: nancy: job 7 running\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// The wait for a job bears an API that stops answering for a while (a
// restart of the API), and gives up after Outage.
func TestWaitOutlastsAnOutage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		outage time.Duration
		fails  int
		want   string // in the output, or the error when the wait gives up
	}{
		{"an outage passes", time.Minute, 20, "g5k: the API answers again after "},
		{"an outage too long", 30 * time.Millisecond, 100000, "the API has not answered for "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := fake(t)
			uid := s.AddJob(g5kfake.Job{Site: "rennes", Name: "e2c-test", User: "alice", State: "running", AssignedNodes: []string{"parasilo-1.rennes.grid5000.fr"}})
			s.FailNext("GET", fmt.Sprintf("/sites/rennes/jobs/%d", uid), http.StatusBadGateway, "", tt.fails)
			var out strings.Builder
			req := request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 1})
			req.Out = &out
			p := unreachable(s.fast())
			p.Outage = tt.outage
			_, err := p.Reserve(context.Background(), req)
			if !strings.Contains(out.String(), fmt.Sprintf("g5k: rennes: the API does not answer (GET /sites/rennes/jobs/%d: 502 Bad Gateway); still waiting for job %d\n", uid, uid)) {
				t.Errorf("output:\n%s", out.String())
			}
			if got := out.String() + fmt.Sprint(err); !strings.Contains(got, tt.want) {
				t.Errorf("got %s, want %q", got, tt.want)
			}
		})
	}
}

// Reservations are written in Paris time, as a date or a time today; e2c
// sends the API a full date and prints it in Paris time.
func TestReservation(t *testing.T) {
	t.Parallel()
	paris, _ := time.LoadLocation("Europe/Paris")
	soon := time.Now().In(paris).Add(3 * time.Minute).Truncate(time.Minute)
	tomorrow := time.Now().In(paris).AddDate(0, 0, 1)
	tomorrow = time.Date(tomorrow.Year(), tomorrow.Month(), tomorrow.Day(), 19, 0, 0, 0, paris)
	past := time.Now().In(paris).Add(-3 * time.Minute)
	for _, tt := range []struct {
		written string
		at      time.Time // zero: refused as past
	}{
		{tomorrow.Format("2006-01-02 15:04:05"), tomorrow},
		{tomorrow.Format("2006-01-02 15:04"), tomorrow},
		{soon.Format("15:04"), soon},
		{past.Format("15:04"), time.Time{}},
	} {
		t.Run(tt.written, func(t *testing.T) {
			if d := time.Now().In(paris); len(tt.written) == 5 && (soon.Day() != d.Day() || past.Day() != d.Day()) {
				t.Skip("too close to midnight in Paris for a time of day")
			}
			s := fake(t)
			out := &syncBuffer{}
			req := request(t, map[string]any{"cluster": "parasilo", "reservation": tt.written}, &schema.Service{Name: "a", Quantity: 1})
			req.Out = out
			if tt.at.IsZero() {
				_, err := s.fast().Reserve(context.Background(), req)
				if err == nil || !strings.Contains(err.Error(), "which has passed") || s.Count("POST", "") != 0 {
					t.Errorf("error: %v", err)
				}
				return
			}
			stop := reserveAsync(t, s.fast(), req)
			want := "scheduled to start at " + tt.at.Format("2006-01-02 15:04:05 MST")
			eventually(t, want, func() bool { return strings.Contains(out.String(), want) })
			stop()
			if got := s.Jobs()[0].Reservation; got != tt.at.Format(time.DateTime) {
				t.Errorf("reservation sent %q, want %q", got, tt.at.Format(time.DateTime))
			}
		})
	}
}

// Ctrl-C during kadeploy cancels the deployment.
func TestInterruptedDeploymentCanceled(t *testing.T) {
	t.Parallel()
	s := fakeWith(t, func(c *g5kfake.Config) { c.Deploying = time.Hour })
	key := filepath.Join(t.TempDir(), "id.pub")
	os.WriteFile(key, []byte("ssh-ed25519 AAAA test\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	after(t, answered(s, "GET", "/sites/rennes/deployments/"), cancel)
	var out strings.Builder
	req := request(t, map[string]any{"cluster": "parasilo", "env_name": "debian11-big", "key_name": key}, &schema.Service{Name: "a", Quantity: 1})
	req.Out = &out
	if _, err := s.fast().Reserve(ctx, req); !errors.Is(err, context.Canceled) {
		t.Fatalf("error: %v", err)
	}
	deps := s.Deployments()
	if len(deps) != 1 || deps[0].Status != "canceled" || !strings.Contains(out.String(), "deployment "+deps[0].UID+" canceled") {
		t.Errorf("deployments %+v\n%s", deps, out.String())
	}
}

// An exotic cluster needs the exotic type, as the reference API says:
// e2c says so before submitting.
func TestExoticCluster(t *testing.T) {
	t.Parallel()
	s := fakeWith(t, func(c *g5kfake.Config) {
		c.Clusters = append(c.Clusters, g5kfake.Cluster{Site: "nancy", Name: "grouille", Nodes: []string{"grouille-1"}, Exotic: true})
	})
	_, err := s.fast().Reserve(context.Background(), request(t, map[string]any{"cluster": "grouille"}, &schema.Service{Name: "a", Quantity: 1}))
	if err == nil || !strings.Contains(err.Error(), "cluster grouille is exotic") || !strings.Contains(err.Error(), "job_type: [exotic]") || s.Count("POST", "") != 0 {
		t.Fatalf("error: %v", err)
	}
	unreachable(s.fast()).Reserve(context.Background(), request(t, map[string]any{"cluster": "grouille", "job_type": []string{"exotic"}}, &schema.Service{Name: "a", Quantity: 1}))
	if j := s.Jobs(); len(j) != 1 || !slices.Equal(j[0].AssignedNodes, []string{"grouille-1.nancy.grid5000.fr"}) {
		t.Errorf("jobs %+v", j)
	}
	for _, r := range s.Requests() {
		if !strings.HasPrefix(r.UserAgent, "e2c/") {
			t.Errorf("User-Agent %q", r.UserAgent)
		}
	}
}

// OAR states the fake now imitates, and what e2c makes of them.
func TestJobStates(t *testing.T) {
	t.Parallel()
	t.Run("held, then resumed", func(t *testing.T) {
		s := fake(t)
		s.HoldNext("e2c-test")
		out := &syncBuffer{}
		after(t, func() bool {
			return strings.Contains(out.String(), "job 1 hold: held, it will not start until resumed (oarresume 1 on the rennes frontend")
		}, func() { s.Resume(1) })
		req := request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 1})
		req.Out = out
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := unreachable(s.fast()).Reserve(ctx, req); err == nil || !strings.Contains(err.Error(), "parasilo-1.rennes.grid5000.fr") {
			t.Fatalf("error: %v (want the SSH failure of the resumed job's node)\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), "job 1 running") {
			t.Errorf("output:\n%s", out.String())
		}
	})
	t.Run("finishing before error", func(t *testing.T) {
		s := fakeWith(t, func(c *g5kfake.Config) { c.Launching, c.Finishing = time.Hour, time.Hour })
		uid := s.AddJob(g5kfake.Job{Site: "rennes", Name: "e2c-test", User: "alice", State: "launching"})
		// Once the first poll is answered (launching), the job is deleted.
		after(t, answered(s, "GET", fmt.Sprintf("/sites/rennes/jobs/%d", uid)), func() { s.Kill(uid) })
		_, err := s.fast().Reserve(context.Background(), request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 1}))
		if want := fmt.Sprintf("job %d is ending (finishing) before running; OAR's events: FRAG_JOB_REQUEST", uid); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error: %v, want %q", err, want)
		}
	})
	t.Run("launching before error", func(t *testing.T) {
		s := fake(t)
		s.ErrorWhileLaunching("e2c-test")
		_, err := s.fast().Reserve(context.Background(), request(t, map[string]any{"cluster": "parasilo"}, &schema.Service{Name: "a", Quantity: 1}))
		if err == nil || !strings.Contains(err.Error(), "before running; OAR's events: PROLOGUE_ERROR: ") || strings.Contains(err.Error(), "FIFO") {
			t.Errorf("error: %v", err)
		}
	})
}

// Two sites deploy at once, and say so on the one output they share.
func TestDeployOnTwoSites(t *testing.T) {
	t.Parallel()
	s := fake(t)
	key := filepath.Join(t.TempDir(), "id.pub")
	os.WriteFile(key, []byte("ssh-ed25519 AAAA test\n"), 0o600)
	var out strings.Builder // not safe for concurrent use: -race tells
	req := request(t, map[string]any{"cluster": "parasilo", "env_name": "debian11-big", "key_name": key},
		&schema.Service{Name: "a", Quantity: 1}, &schema.Service{Name: "b", Quantity: 1, Cluster: "gros"})
	req.Out = &out
	unreachable(s.fast()).Reserve(context.Background(), req)
	for _, site := range []string{"rennes", "nancy"} {
		if want := "g5k: " + site + ": deploying debian11-big on 1 nodes"; !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if n := s.Count("POST", "/sites/nancy/deployments"); n != 1 {
		t.Errorf("%d deployments on nancy", n)
	}
}

// A terminated deployment may have failed on every node; an error one
// failed as a whole (its output says why).
func TestDeploymentFailures(t *testing.T) {
	t.Parallel()
	key := filepath.Join(t.TempDir(), "id.pub")
	os.WriteFile(key, []byte("ssh-ed25519 AAAA test\n"), 0o600)
	settings := map[string]any{"cluster": "parasilo", "env_name": "debian11-big", "key_name": key}
	t.Run("terminated, every node KO", func(t *testing.T) {
		s := fake(t)
		s.DeployKO("parasilo-1.rennes.grid5000.fr", 5)
		s.DeployKO("parasilo-2.rennes.grid5000.fr", 5)
		_, err := s.fast().Reserve(context.Background(), request(t, settings, &schema.Service{Name: "a", Quantity: 2}))
		if err == nil || !strings.Contains(err.Error(), "kadeploy failed 2 times on 2 nodes: parasilo-1.rennes.grid5000.fr: Node not reachable") {
			t.Fatalf("error: %v", err)
		}
		for _, d := range s.Deployments() {
			if d.Status != "terminated" {
				t.Errorf("deployment %s %s", d.UID, d.Status)
			}
		}
	})
	t.Run("error", func(t *testing.T) {
		s := fake(t)
		s.DeployError("Kadeploy error #2: the environment cannot be fetched")
		s.DeployError("Kadeploy error #2: the environment cannot be fetched")
		_, err := s.fast().Reserve(context.Background(), request(t, settings, &schema.Service{Name: "a", Quantity: 1}))
		if err == nil || !strings.Contains(err.Error(), "parasilo-1.rennes.grid5000.fr: Kadeploy error #2: the environment cannot be fetched") {
			t.Fatalf("error: %v", err)
		}
	})
}
