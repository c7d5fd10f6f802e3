package g5kfake

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// client talks to the fake over TLS, trusting only its certificate.
type client struct {
	t          *testing.T
	s          *Server
	http       *http.Client
	user, pass string
}

type response struct {
	status int
	header http.Header
	body   string
}

// start runs a fake for user alice with a test clock.
func start(t *testing.T, cfg Config) (*Server, *clock, *client) {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	if cfg.Clock == nil {
		cfg.Clock = c.Now
	}
	s := New(t, cfg)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CertPool()}}
	t.Cleanup(tr.CloseIdleConnections)
	return s, c, &client{t: t, s: s, http: &http.Client{Transport: tr}, user: cfg.User, pass: cfg.Password}
}

func alice() Config { return Config{User: "alice"} }

// do sends a request to a path under the server's base URL; a non-nil body
// is sent as JSON (a string as it is).
func (c *client) do(method, path string, body any) response {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		data, ok := body.(string)
		if !ok {
			b, err := json.Marshal(body)
			if err != nil {
				c.t.Fatal(err)
			}
			data = string(b)
		}
		rd = strings.NewReader(data)
	}
	req, err := http.NewRequest(method, c.s.URL+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.pass != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

// want checks the status and decodes a JSON answer into out (when not nil).
func (c *client) want(r response, status int, out any) response {
	c.t.Helper()
	if r.status != status {
		c.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if out != nil {
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			c.t.Fatalf("Content-Type %q for JSON", ct)
		}
		if err := json.Unmarshal([]byte(r.body), out); err != nil {
			c.t.Fatalf("%v: %s", err, r.body)
		}
	}
	return r
}

// wantText checks an error answer: status, plain text and exact body.
func (c *client) wantText(r response, status int, text string) {
	c.t.Helper()
	if r.status != status || r.body != text {
		c.t.Fatalf("got %d %q, want %d %q", r.status, r.body, status, text)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		c.t.Fatalf("Content-Type %q for an error", ct)
	}
}

func (c *client) submit(site string, body any) (Job, response) {
	c.t.Helper()
	var j Job
	r := c.want(c.do("POST", "/sites/"+site+"/jobs", body), http.StatusCreated, &j)
	return j, r
}

func (c *client) job(site string, uid int64) Job {
	c.t.Helper()
	var j Job
	c.want(c.do("GET", fmt.Sprintf("/sites/%s/jobs/%d", site, uid), nil), http.StatusOK, &j)
	return j
}

// keys decodes a JSON object to see which keys are there.
func keys(t *testing.T, body string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return m
}

func req(resources string) map[string]any {
	return map[string]any{"name": "e2c", "resources": resources, "command": "sleep infinity", "types": []string{"deploy"}}
}

func TestJobLifecycle(t *testing.T) {
	s, clk, c := start(t, alice())
	j, r := c.submit("rennes", req("{cluster='parasilo'}/nodes=2,walltime=1:00:00"))
	if want := s.URL + "/sites/rennes/jobs/1"; r.header.Get("Location") != want || !strings.HasPrefix(want, "https://") {
		t.Errorf("Location %q, want %q", r.header.Get("Location"), want)
	}
	raw := keys(t, r.body)
	for k, v := range map[string]string{"state": `"waiting"`, "assigned_nodes": `[]`, "resources_by_type": `{}`, "started_at": `0`, "walltime": `3600`, "user": `"alice"`, "types": `["deploy"]`} {
		if string(raw[k]) != v {
			t.Errorf("%s = %s, want %s", k, raw[k], v)
		}
	}
	for _, k := range []string{"stopped_at", "message", "project"} {
		if _, ok := raw[k]; ok {
			t.Errorf("null key %s is there: %s", k, r.body)
		}
	}
	submitted := clk.Now().Unix()
	if j.UID != 1 || j.SubmittedAt != submitted || j.ScheduledAt != clk.Now().Add(200*time.Millisecond).Unix() {
		t.Errorf("job %+v", j)
	}
	if len(j.Links) != 2 || j.Links[0] != (Link{Rel: "self", Href: "/stable/sites/rennes/jobs/1", Type: itemType}) || j.Links[1].Href != "/stable/sites/rennes" {
		t.Errorf("links %+v", j.Links)
	}

	steps := []struct {
		after time.Duration
		state string
		nodes []string
	}{
		{199 * time.Millisecond, "waiting", []string{}},
		{time.Millisecond, "launching", []string{"parasilo-1.rennes.grid5000.fr", "parasilo-2.rennes.grid5000.fr"}},
		{100 * time.Millisecond, "running", []string{"parasilo-1.rennes.grid5000.fr", "parasilo-2.rennes.grid5000.fr"}},
		{time.Hour - 100*time.Millisecond - time.Millisecond, "running", nil},
		{time.Millisecond, "finishing", []string{"parasilo-1.rennes.grid5000.fr", "parasilo-2.rennes.grid5000.fr"}},
		{50 * time.Millisecond, "terminated", nil},
	}
	for _, st := range steps {
		clk.Add(st.after)
		got := c.job("rennes", j.UID)
		if got.State != st.state || st.nodes != nil && !slices.Equal(got.AssignedNodes, st.nodes) {
			t.Fatalf("after %v: %s %v, want %s %v", st.after, got.State, got.AssignedNodes, st.state, st.nodes)
		}
		if st.state == "launching" {
			if got.StartedAt != clk.Now().Unix() || got.ResourcesByType["cores"][0] != "parasilo-1.rennes.grid5000.fr/0" {
				t.Errorf("launching job %+v", got)
			}
		}
		if st.state == "terminated" && (got.StoppedAt != clk.Now().Unix() || len(got.Events) != 1 || got.Events[0].Type != "WALLTIME") {
			t.Errorf("stopped_at %d, want %d; events %+v", got.StoppedAt, clk.Now().Unix(), got.Events)
		}
		if st.state == "running" && got.Message != "FIFO scheduling OK" {
			t.Errorf("message %q", got.Message)
		}
	}
	c.wantText(c.do("GET", "/sites/rennes/jobs/99", nil), 404, "Couldn't find OAR::Job with 'job_id'=99")
	c.wantText(c.do("GET", "/sites/nancy/jobs/1", nil), 404, "Couldn't find OAR::Job with 'job_id'=1")
}

func TestSubmitChecks(t *testing.T) {
	oar := "Request to http://oar-api.internal/jobs failed with status 400: "
	tests := []struct {
		name   string
		cfg    Config
		site   string
		body   any
		status int
		text   string // exact error text, or a prefix ending in "..."
	}{
		{"no command", alice(), "rennes", map[string]any{"resources": "{cluster='parasilo'}/nodes=1"},
			400, "The job you are trying to submit is not valid: you must give a :command to execute on launch"},
		{"reservation not a string", alice(), "rennes", map[string]any{"resources": "{cluster='parasilo'}/nodes=1", "reservation": 1790000000},
			400, "The job you are trying to submit is not valid: reservation must be a date string..."},
		{"reservation not a date: dropped", alice(), "rennes", map[string]any{"resources": "{cluster='parasilo'}/nodes=1", "reservation": "now"},
			400, "The job you are trying to submit is not valid: you must give a :command to execute on launch"},
		{"now with a command: a submission", alice(), "rennes", map[string]any{"resources": "{cluster='parasilo'}/nodes=1", "reservation": "now", "command": "true"},
			201, ""},
		{"reservation in the past", alice(), "rennes", map[string]any{"resources": "{cluster='parasilo'}/nodes=1", "reservation": "2026-03-01 10:00:00"},
			400, oar + "Reservation too old..."},
		{"reservation without command", alice(), "rennes", map[string]any{"resources": "{cluster='parasilo'}/nodes=1", "reservation": "2026-03-03 10:00:00"},
			201, ""},
		{"bare node count", alice(), "rennes", req("nodes=2"), 400, oar + "Bad resource request..."},
		{"bad walltime", alice(), "rennes", req("{cluster='parasilo'}/nodes=1,walltime=two"), 400, oar + "Bad resource request..."},
		{"unknown cluster", alice(), "rennes", req("{cluster='nope'}/nodes=1"), 400, oar + notEnough},
		{"cluster of another site", alice(), "rennes", req("{cluster='gros'}/nodes=1"), 400, oar + notEnough},
		{"not enough nodes", alice(), "rennes", req("{cluster='paravance'}/nodes=9"), 400, oar + notEnough},
		{"unknown node", alice(), "rennes", req("{network_address in ('parasilo-99.rennes.grid5000.fr')}/nodes=1"), 400, oar + notEnough},
		{"exotic without the type", alice(), "nancy", req("{cluster='grouille'}/nodes=1"), 400, oar + notEnough},
		{"exotic with the type", alice(), "nancy", map[string]any{"resources": "{cluster='grouille'}/nodes=2", "command": "sleep 1", "types": []string{"deploy", "exotic"}}, 201, ""},
		{"long walltime", alice(), "rennes", req("{cluster='paravance'}/nodes=8,walltime=72:00:00"), 201, ""},
		{"host alias, spaces", alice(), "nancy", req("{network_address in ('gros-40.nancy.grid5000.fr', 'gros-7.nancy.grid5000.fr')}/host=2 + {cluster='gros'}/nodes=1,walltime=74:30:00"), 201, ""},
		{"anonymous", Config{}, "rennes", req("{cluster='parasilo'}/nodes=1"), 403, forbiddenText},
		{"unknown site", alice(), "lyon", req("{cluster='parasilo'}/nodes=1"), 404, "Cannot find resource /sites/lyon/jobs"},
		{"not JSON", alice(), "rennes", "resources=nodes%3D1", 400, "The job you are trying to submit is not valid: you must give a :command to execute on launch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, c := start(t, tt.cfg)
			r := c.do("POST", "/sites/"+tt.site+"/jobs", tt.body)
			if tt.name == "not JSON" { // the same body without the JSON content type
				req, _ := http.NewRequest("POST", s.URL+"/sites/rennes/jobs", strings.NewReader(`{"command":"x","resources":"{cluster='parasilo'}/nodes=1"}`))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := c.http.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				r = response{status: resp.StatusCode, header: resp.Header, body: string(body)}
			}
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status == 201 {
				if len(s.Jobs()) != 1 {
					t.Fatalf("jobs %+v", s.Jobs())
				}
				return
			}
			if prefix, ok := strings.CutSuffix(tt.text, "..."); ok {
				if !strings.HasPrefix(r.body, prefix) {
					t.Fatalf("body %q, want %q...", r.body, prefix)
				}
			} else if r.body != tt.text {
				t.Fatalf("body %q, want %q", r.body, tt.text)
			}
			if !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
				t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
			}
			if len(s.Jobs()) != 0 {
				t.Errorf("a refused submission made a job: %+v", s.Jobs())
			}
		})
	}
}

func TestReservation(t *testing.T) {
	s, clk, c := start(t, alice())
	j, _ := c.submit("rennes", map[string]any{"resources": "{cluster='parasilo'}/nodes=1,walltime=2:00:00", "reservation": "2026-03-02 12:00:00"})
	at := time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC) // noon in Paris, winter time
	if j.ScheduledAt != at.Unix() || j.State != "waiting" || s.Jobs()[0].Reservation != "2026-03-02 12:00:00" {
		t.Fatalf("job %+v", j)
	}
	clk.Add(at.Sub(clk.Now()) - time.Second)
	if got := c.job("rennes", j.UID); got.State != "waiting" {
		t.Fatalf("state %s before the reservation", got.State)
	}
	clk.Add(time.Second)
	if got := c.job("rennes", j.UID); got.State != "launching" || got.StartedAt != at.Unix() {
		t.Fatalf("at the reservation: %+v", got)
	}
}

// The API reads the reservation with Ruby's Time.parse in Paris time: a
// time of day is today; a string that is no date is dropped.
func TestReservationForms(t *testing.T) {
	for _, tt := range []struct {
		reservation string
		want        time.Time // zero: not a reservation
	}{
		{"2026-03-02 12:00:00", time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)},
		{"2026-03-02 12:30", time.Date(2026, 3, 2, 11, 30, 0, 0, time.UTC)},
		{"2026-03-02T12:30:00", time.Date(2026, 3, 2, 11, 30, 0, 0, time.UTC)},
		{"19:00", time.Date(2026, 3, 2, 18, 0, 0, 0, time.UTC)},
		{"19:00:30", time.Date(2026, 3, 2, 18, 0, 30, 0, time.UTC)},
		{"now", time.Time{}},
	} {
		t.Run(tt.reservation, func(t *testing.T) {
			s, clk, c := start(t, alice())
			j, _ := c.submit("rennes", map[string]any{"resources": "{cluster='parasilo'}/nodes=1", "reservation": tt.reservation, "command": "true"})
			if tt.want.IsZero() {
				if j.ScheduledAt != clk.Now().Add(200*time.Millisecond).Unix() || s.Jobs()[0].Reservation != "" {
					t.Errorf("a submission: %+v", s.Jobs()[0])
				}
				return
			}
			if j.ScheduledAt != tt.want.Unix() || s.Jobs()[0].Reservation != tt.want.In(time.FixedZone("CET", 3600)).Format(dateLayout) {
				t.Errorf("scheduled at %v (%s), want %v", time.Unix(j.ScheduledAt, 0).UTC(), s.Jobs()[0].Reservation, tt.want)
			}
		})
	}
	// 08:00 in Paris is past at 10:00 in Paris.
	_, _, c := start(t, alice())
	r := c.do("POST", "/sites/rennes/jobs", map[string]any{"resources": "{cluster='parasilo'}/nodes=1", "reservation": "08:00"})
	if r.status != 400 || !strings.Contains(r.body, "Reservation too old: 2026-03-02 08:00:00") {
		t.Errorf("past: %d %s", r.status, r.body)
	}
}

func TestAllocation(t *testing.T) {
	var nodes []string
	for _, i := range []int{10, 2, 1, 3, 4, 5} {
		nodes = append(nodes, fmt.Sprintf("parasilo-%d", i))
	}
	cfg := alice()
	cfg.Clusters = []Cluster{
		{Site: "rennes", Name: "parasilo", Nodes: nodes},
		{Site: "rennes", Name: "tiny", Nodes: []string{"tiny-1", "tiny-2", "tiny-3"}},
	}
	_, clk, c := start(t, cfg)
	f := func(n string) string { return n + ".rennes.grid5000.fr" }

	a, _ := c.submit("rennes", req("{network_address in ('parasilo-10.rennes.grid5000.fr')}/nodes=1+{cluster='parasilo'}/nodes=2"))
	b, _ := c.submit("rennes", req("{cluster='parasilo'}/nodes=2"))
	// Waiting jobs count: only one parasilo node is left.
	c.wantText(c.do("POST", "/sites/rennes/jobs", req("{cluster='parasilo'}/nodes=2")), 400,
		"Request to http://oar-api.internal/jobs failed with status 400: "+notEnough)
	// A waiting job's explicit node is not given to a cluster request.
	p1, _ := c.submit("rennes", req("{cluster='tiny'}/nodes=2"))
	p2, _ := c.submit("rennes", req("{network_address in ('tiny-1.rennes.grid5000.fr')}/nodes=1"))
	c.wantText(c.do("POST", "/sites/rennes/jobs", req("{cluster='tiny'}/nodes=1")), 400,
		"Request to http://oar-api.internal/jobs failed with status 400: "+notEnough)

	clk.Add(200 * time.Millisecond)
	for _, tt := range []struct {
		uid  int64
		want []string
	}{
		{a.UID, []string{f("parasilo-10"), f("parasilo-1"), f("parasilo-2")}},
		{b.UID, []string{f("parasilo-3"), f("parasilo-4")}},
		{p1.UID, []string{f("tiny-2"), f("tiny-3")}},
		{p2.UID, []string{f("tiny-1")}},
	} {
		if got := c.job("rennes", tt.uid); !slices.Equal(got.AssignedNodes, tt.want) {
			t.Errorf("job %d: %v, want %v", tt.uid, got.AssignedNodes, tt.want)
		}
	}
	// A node of a running job cannot be named.
	c.wantText(c.do("POST", "/sites/rennes/jobs", req("{network_address in ('parasilo-1.rennes.grid5000.fr')}/nodes=1")), 400,
		"Request to http://oar-api.internal/jobs failed with status 400: "+notEnough)
	// The walltime frees them, once the jobs finished.
	clk.Add(time.Hour + 50*time.Millisecond)
	c.submit("rennes", req("{network_address in ('parasilo-1.rennes.grid5000.fr')}/nodes=1"))
}

func TestListJobs(t *testing.T) {
	s, clk, c := start(t, alice())
	bob := s.AddJob(Job{Name: "e2c", User: "bob", Site: "rennes", Resources: "{cluster='parasilo'}/nodes=1"})
	clk.Add(time.Second)
	old := s.AddJob(Job{Name: "e2c", Site: "rennes", State: "terminated"})
	clk.Add(time.Second)
	mine, _ := c.submit("rennes", req("{cluster='parasilo'}/nodes=2"))
	clk.Add(time.Second)
	other, _ := c.submit("rennes", map[string]any{"name": "other", "resources": "{cluster='paravance'}/nodes=1", "command": "true", "project": "lab"})
	c.submit("nancy", req("{cluster='gros'}/nodes=1"))

	uids := func(items []Job) []int64 {
		var l []int64
		for _, j := range items {
			l = append(l, j.UID)
		}
		return l
	}
	tests := []struct {
		query  string
		want   []int64
		total  int
		offset int
	}{
		{"", []int64{other.UID, mine.UID, old, bob}, 4, 0},
		{"?name=e2c&user=alice&state=waiting,launching,running", []int64{mine.UID}, 1, 0},
		{"?name=e2c&state=waiting,%20running", []int64{mine.UID, bob}, 2, 0},
		{"?user=bob", []int64{bob}, 1, 0},
		{"?state=terminated", []int64{old}, 1, 0},
		{"?project=lab", []int64{other.UID}, 1, 0},
		{"?queue=besteffort", nil, 0, 0},
		{"?offset=1&limit=2", []int64{mine.UID, old}, 4, 1},
		{"?offset=9", nil, 4, 9},
	}
	for _, tt := range tests {
		var coll struct {
			Total, Offset int
			Items         []Job
			Links         []Link
		}
		r := c.want(c.do("GET", "/sites/rennes/jobs"+tt.query, nil), 200, &coll)
		if !slices.Equal(uids(coll.Items), tt.want) || coll.Total != tt.total || coll.Offset != min(tt.offset, tt.total) {
			t.Errorf("%s: %v total %d offset %d, want %v total %d", tt.query, uids(coll.Items), coll.Total, coll.Offset, tt.want, tt.total)
		}
		raw := keys(t, r.body)
		if string(raw["items"]) == "null" || raw["links"] == nil {
			t.Errorf("%s: collection %s", tt.query, r.body)
		}
		if strings.Contains(r.body, "assigned_nodes") || strings.Contains(r.body, "resources_by_type") {
			t.Errorf("%s: node keys without resources=yes: %s", tt.query, r.body)
		}
	}
	clk.Add(time.Second)
	var coll struct{ Items []Job }
	c.want(c.do("GET", "/sites/rennes/jobs?name=e2c&user=alice&state=running&resources=yes", nil), 200, &coll)
	if len(coll.Items) != 1 || len(coll.Items[0].AssignedNodes) != 2 || len(coll.Items[0].ResourcesByType["cores"]) != 2 {
		t.Errorf("resources=yes: %+v", coll.Items)
	}
}

func TestDelete(t *testing.T) {
	s, clk, c := start(t, alice())
	j, _ := c.submit("rennes", req("{cluster='paravance'}/nodes=8"))
	clk.Add(time.Second)
	r := c.do("DELETE", "/sites/rennes/jobs/1", nil)
	if r.status != 202 || r.body != "" || r.header.Get("Location") != s.URL+"/sites/rennes/jobs/1" ||
		!strings.HasPrefix(r.header.Get("X-Oar-Info"), "Deleting the job = 1 ...REGISTERED.") {
		t.Fatalf("delete: %d %q %v", r.status, r.body, r.header)
	}
	// A running job is finishing, holding its nodes, then in error.
	if got := c.job("rennes", j.UID); got.State != "finishing" || len(got.AssignedNodes) != 8 || len(got.Events) != 1 || got.Events[0].Type != "FRAG_JOB_REQUEST" {
		t.Errorf("deleted job %+v", got)
	}
	c.wantText(c.do("DELETE", "/sites/rennes/jobs/1", nil), 400,
		"Request to http://oar-api.internal/jobs/1 failed with status 400: This job was already killed")
	clk.Add(50 * time.Millisecond)
	if got := c.job("rennes", j.UID); got.State != "error" || got.StoppedAt != clk.Now().Unix() {
		t.Errorf("deleted job %+v", got)
	}
	c.wantText(c.do("DELETE", "/sites/rennes/jobs/1", nil), 400,
		"Request to http://oar-api.internal/jobs/1 failed with status 400: This job was already killed")
	// A waiting job ends at once.
	w, _ := c.submit("rennes", req("{cluster='parasilo'}/nodes=1"))
	c.want(c.do("DELETE", fmt.Sprintf("/sites/rennes/jobs/%d", w.UID), nil), 202, nil)
	if got := c.job("rennes", w.UID); got.State != "error" {
		t.Errorf("deleted waiting job %+v", got)
	}
	c.wantText(c.do("DELETE", "/sites/rennes/jobs/42", nil), 404, "Couldn't find OAR::Job with 'job_id'=42")
	bob := s.AddJob(Job{User: "bob", Site: "rennes"})
	c.wantText(c.do("DELETE", fmt.Sprintf("/sites/rennes/jobs/%d", bob), nil), 403, forbiddenText)
	// The nodes are free again.
	c.submit("rennes", req("{cluster='paravance'}/nodes=8"))

	_, _, anon := start(t, Config{})
	anon.wantText(anon.do("DELETE", "/sites/rennes/jobs/1", nil), 403, forbiddenText)
}

func TestErrorWhileWaiting(t *testing.T) {
	s, clk, c := start(t, alice())
	s.ErrorWhileWaiting("e2c")
	bad, _ := c.submit("rennes", req("{cluster='parasilo'}/nodes=1"))
	good, _ := c.submit("rennes", req("{cluster='parasilo'}/nodes=1"))
	clk.Add(time.Second)
	if got := c.job("rennes", bad.UID); got.State != "error" || len(got.AssignedNodes) != 0 {
		t.Errorf("first job %+v", got)
	}
	if got := c.job("rennes", good.UID); got.State != "running" || !slices.Equal(got.AssignedNodes, []string{"parasilo-1.rennes.grid5000.fr"}) {
		t.Errorf("second job %+v", got)
	}
}

func TestErrorWhileLaunching(t *testing.T) {
	s, clk, c := start(t, alice())
	s.ErrorWhileLaunching("e2c")
	j, _ := c.submit("rennes", req("{cluster='parasilo'}/nodes=1"))
	for _, step := range []struct {
		after time.Duration
		want  string
	}{{200 * time.Millisecond, "launching"}, {100 * time.Millisecond, "finishing"}, {50 * time.Millisecond, "error"}} {
		clk.Add(step.after)
		got, want := c.job("rennes", j.UID), step.want
		if got.State != want {
			t.Fatalf("%s, want %s: %+v", got.State, want, got)
		}
		if want == "error" && (got.Message != "FIFO scheduling OK" || len(got.Events) != 1 || got.Events[0].Type != "PROLOGUE_ERROR") {
			t.Errorf("error job %+v", got)
		}
	}
}

func TestHold(t *testing.T) {
	s, clk, c := start(t, alice())
	s.HoldNext("e2c")
	held, _ := c.submit("rennes", req("{cluster='parasilo'}/nodes=1"))
	if held.State != "hold" {
		t.Fatalf("submitted %s", held.State)
	}
	clk.Add(time.Hour)
	if got := c.job("rennes", held.UID); got.State != "hold" || len(got.AssignedNodes) != 0 {
		t.Fatalf("an hour later: %+v", got)
	}
	s.Resume(held.UID)
	clk.Add(200 * time.Millisecond)
	if got := c.job("rennes", held.UID); got.State != "launching" {
		t.Errorf("resumed: %s", got.State)
	}
	w, _ := c.submit("rennes", req("{cluster='parasilo'}/nodes=1"))
	s.Hold(w.UID)
	var coll struct{ Items []Job }
	c.want(c.do("GET", "/sites/rennes/jobs?state=hold", nil), 200, &coll)
	if len(coll.Items) != 1 || coll.Items[0].UID != w.UID {
		t.Errorf("held jobs %+v", coll.Items)
	}
	c.want(c.do("DELETE", fmt.Sprintf("/sites/rennes/jobs/%d", w.UID), nil), 202, nil)
	if got := c.job("rennes", w.UID); got.State != "error" {
		t.Errorf("a held job deleted: %s", got.State)
	}
	s.Kill(held.UID)
	if got := c.job("rennes", held.UID); got.State != "finishing" || got.Events[0].Description != "[oardel] Fragmentation request from user alice for job 1" {
		t.Errorf("killed: %+v", got)
	}
}

func TestAddJob(t *testing.T) {
	s, clk, c := start(t, alice())
	uid := s.AddJob(Job{Name: "e2c", Site: "rennes", Types: []string{"deploy"}, Resources: "{cluster='parasilo'}/nodes=2,walltime=3:00:00"})
	var coll struct{ Items []Job }
	c.want(c.do("GET", "/sites/rennes/jobs?name=e2c&user=alice&state=waiting,launching,running&resources=yes", nil), 200, &coll)
	if len(coll.Items) != 1 || coll.Items[0].UID != uid || coll.Items[0].State != "running" || coll.Items[0].Walltime != 3*3600 ||
		!slices.Equal(coll.Items[0].AssignedNodes, []string{"parasilo-1.rennes.grid5000.fr", "parasilo-2.rennes.grid5000.fr"}) {
		t.Fatalf("listed %+v", coll.Items)
	}
	j, _ := c.submit("rennes", req("{cluster='parasilo'}/nodes=1"))
	if j.UID != uid+1 {
		t.Errorf("uid %d after %d", j.UID, uid)
	}
	clk.Add(time.Second)
	if got := c.job("rennes", j.UID); !slices.Equal(got.AssignedNodes, []string{"parasilo-3.rennes.grid5000.fr"}) {
		t.Errorf("new job got %v", got.AssignedNodes)
	}
	explicit := s.AddJob(Job{UID: 500, Site: "nancy", AssignedNodes: []string{"gros-9.nancy.grid5000.fr"}})
	if got := c.job("nancy", explicit); got.ResourcesByType["cores"][0] != "gros-9.nancy.grid5000.fr/0" {
		t.Errorf("explicit job %+v", got)
	}
	// OAR's uids are per site.
	s.AddJob(Job{UID: 500, Site: "rennes", Name: "other"})
	if got, there := c.job("rennes", 500), c.job("nancy", 500); got.Name != "other" || there.Name != "" || there.AssignedNodes[0] != "gros-9.nancy.grid5000.fr" {
		t.Errorf("uid 500 on two sites: %+v, %+v", got, there)
	}
	clk.Add(3 * time.Hour)
	if got := c.job("rennes", uid); got.State != "terminated" {
		t.Errorf("after its walltime: %s", got.State)
	}
}

func TestDeployments(t *testing.T) {
	s, clk, c := start(t, alice())
	dj, _ := c.submit("rennes", req("{cluster='parasilo'}/nodes=3"))
	c.submit("rennes", map[string]any{"resources": "{cluster='paravance'}/nodes=1", "command": "sleep infinity"})
	clk.Add(time.Second)
	n := c.job("rennes", dj.UID).AssignedNodes
	plain := "paravance-1.rennes.grid5000.fr"
	key := "ssh-ed25519 AAAAC3Nz test@e2c\n"

	s.DeployKO(n[1], 1)
	var d Deployment
	r := c.want(c.do("POST", "/sites/rennes/deployments", map[string]any{"nodes": n[:2], "environment": "debian11-big", "key": key, "arch": "x86_64"}), 201, &d)
	if !regexp.MustCompile(`^D-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(d.UID) || d.Status != "processing" {
		t.Fatalf("deployment %+v", d)
	}
	if r.header.Get("Location") != s.URL+"/sites/rennes/deployments/"+d.UID {
		t.Errorf("Location %q", r.header.Get("Location"))
	}
	if _, ok := keys(t, r.body)["result"]; ok {
		t.Errorf("result while processing: %s", r.body)
	}
	if s.DeployedKey(n[0]) != key || !strings.HasPrefix(d.Key, s.URL+"/sites/rennes/files/alice-key-") {
		t.Errorf("key %q, shown as %q", s.DeployedKey(n[0]), d.Key)
	}
	poll := func(uid string) Deployment {
		var d Deployment
		r := c.want(c.do("GET", "/sites/rennes/deployments/"+uid, nil), 200, &d)
		if r.header.Get("Cache-Control") != "max-age=60, private" {
			t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
		}
		return d
	}
	clk.Add(299 * time.Millisecond)
	if got := poll(d.UID); got.Status != "processing" || got.Result != nil {
		t.Fatalf("before Deploying: %+v", got)
	}
	clk.Add(time.Millisecond)
	got := poll(d.UID)
	if got.Status != "terminated" || got.Result[n[0]].State != "OK" || got.Result[n[1]].State != "KO" || !strings.Contains(got.Result[n[1]].Error, "not reachable") {
		t.Fatalf("done: %+v", got)
	}
	// The KO was for one deployment only; a deployment of only KO nodes is
	// terminated all the same; a workflow that fails is an error.
	s.DeployKO(n[2], 1)
	c.want(c.do("POST", "/sites/rennes/deployments", map[string]any{"nodes": n[1:2], "environment": "debian11-x64-big@deploy", "key": key}), 201, &d)
	var e Deployment
	c.want(c.do("POST", "/sites/rennes/deployments", map[string]any{"nodes": n[2:], "environment": "https://example.com/env.yaml", "key": key}), 201, &e)
	clk.Add(time.Second)
	if got := poll(d.UID); got.Status != "terminated" || got.Result[n[1]].State != "OK" {
		t.Errorf("retry: %+v", got)
	}
	if got := poll(e.UID); got.Status != "terminated" || got.Result[n[2]].State != "KO" {
		t.Errorf("all KO: %+v", got)
	}
	s.DeployError("Kadeploy error #2: the environment cannot be fetched")
	var f Deployment
	c.want(c.do("POST", "/sites/rennes/deployments", map[string]any{"nodes": n[:1], "environment": "debian11-big", "key": key}), 201, &f)
	clk.Add(time.Second)
	if got := poll(f.UID); got.Status != "error" || got.Result != nil || got.Output != "Kadeploy error #2: the environment cannot be fetched" {
		t.Errorf("workflow error: %+v", got)
	}
	var list struct {
		Total int
		Items []Deployment
	}
	c.want(c.do("GET", "/sites/rennes/deployments?status=error", nil), 200, &list)
	if list.Total != 1 || list.Items[0].UID != f.UID {
		t.Errorf("list %+v", list)
	}

	invalid := "The deployment you are trying to submit is not valid: "
	for _, tt := range []struct {
		name string
		body map[string]any
		text string
	}{
		{"no nodes", map[string]any{"nodes": []string{}, "environment": "debian11-big", "key": key},
			invalid + "Nodes can't be blank; Nodes must be a non-empty list of node FQDN"},
		{"nodes not a list", map[string]any{"nodes": n[0], "environment": "debian11-big", "key": key},
			invalid + "Nodes can't be blank; Nodes must be a non-empty list of node FQDN"},
		{"no key", map[string]any{"nodes": n, "environment": "debian11-big"}, invalid + "Key can't be blank"},
		{"unknown environment", map[string]any{"nodes": n, "environment": "debian9-big", "key": key},
			"Cannot launch deployment: Invalid environment specification -- the environment debian9-big::: does not exist"},
		{"node of a job without deploy", map[string]any{"nodes": []string{plain}, "environment": "debian11-big", "key": key},
			"Cannot launch deployment: You do not have the rights to deploy on the node " + plain},
		{"node not reserved", map[string]any{"nodes": []string{"parasilo-9.rennes.grid5000.fr"}, "environment": "debian11-big", "key": key},
			"Cannot launch deployment: You do not have the rights to deploy on the node parasilo-9.rennes.grid5000.fr"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c.wantText(c.do("POST", "/sites/rennes/deployments", tt.body), 400, tt.text)
		})
	}
	c.wantText(c.do("GET", "/sites/rennes/deployments/D-nope", nil), 404, "Couldn't find Grid5000::Deployment with ID=D-nope")

	c.want(c.do("POST", "/sites/rennes/deployments", map[string]any{"nodes": n[:1], "environment": "debian11-big", "key": key}), 201, &d)
	r = c.do("DELETE", "/sites/rennes/deployments/"+d.UID, nil)
	if r.status != 202 || poll(d.UID).Status != "canceled" {
		t.Errorf("cancel: %d, %s", r.status, poll(d.UID).Status)
	}
	if len(s.Deployments()) != 5 {
		t.Errorf("%d deployments", len(s.Deployments()))
	}
}

func TestReference(t *testing.T) {
	_, _, c := start(t, alice())
	var sites struct {
		Total   int
		Items   []map[string]any
		Links   []Link
		Version string
	}
	r := c.want(c.do("GET", "/sites", nil), 200, &sites)
	if sites.Total != 2 || sites.Items[0]["uid"] != "nancy" || sites.Items[1]["uid"] != "rennes" || sites.Version == "" ||
		sites.Links[0] != (Link{Rel: "self", Href: "/stable/sites", Type: collectionType}) {
		t.Fatalf("sites %+v", sites)
	}
	if !strings.HasPrefix(r.header.Get("Cache-Control"), "max-age=60") {
		t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
	}
	var site struct {
		UID   string
		Links []Link
	}
	c.want(c.do("GET", "/sites/rennes", nil), 200, &site)
	if site.UID != "rennes" || !slices.Contains(site.Links, Link{Rel: "clusters", Href: "/stable/sites/rennes/clusters", Type: collectionType}) {
		t.Errorf("site %+v", site)
	}
	var clusters struct {
		Total int
		Items []struct {
			UID    string
			Exotic bool
		}
	}
	c.want(c.do("GET", "/sites/nancy/clusters", nil), 200, &clusters)
	if clusters.Total != 2 || clusters.Items[0].UID != "gros" || clusters.Items[0].Exotic || !clusters.Items[1].Exotic {
		t.Errorf("clusters %+v", clusters)
	}
	var cl struct{ UID string }
	c.want(c.do("GET", "/sites/nancy/clusters/grouille", nil), 200, &cl)
	var nodes struct {
		Total int
		Items []struct {
			UID          string
			Architecture struct {
				PlatformType string `json:"platform_type"`
			}
			MainMemory struct {
				RAMSize int64 `json:"ram_size"`
			} `json:"main_memory"`
		}
	}
	c.want(c.do("GET", "/sites/rennes/clusters/parasilo/nodes", nil), 200, &nodes)
	if nodes.Total != 12 || nodes.Items[1].UID != "parasilo-2" || nodes.Items[0].Architecture.PlatformType != "x86_64" || nodes.Items[0].MainMemory.RAMSize == 0 {
		t.Errorf("nodes %+v", nodes)
	}
	c.wantText(c.do("GET", "/sites/lyon", nil), 404, "Cannot find resource /sites/lyon")
	c.wantText(c.do("GET", "/sites/rennes/clusters/gros", nil), 404, "Cannot find resource /sites/rennes/clusters/gros")
}

func TestRoutes(t *testing.T) {
	s, _, c := start(t, alice())
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/nothing", 404},
		{"GET", "/sites/rennes/jobs/1/nothing", 404},
		{"PUT", "/sites/rennes/jobs", 405},
		{"POST", "/sites/rennes", 405},
	} {
		r := c.do(tt.method, tt.path, nil)
		if r.status != tt.status || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s %s: %d %q", tt.method, tt.path, r.status, r.header.Get("Content-Type"))
		}
	}
	if allow := c.do("PUT", "/sites/rennes/jobs", nil).header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("Allow %q", allow)
	}
	// Paths need the prefix.
	resp, err := c.http.Get(strings.TrimSuffix(s.URL, "/stable") + "/sites")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("without the prefix: %d", resp.StatusCode)
	}

	_, _, other := start(t, Config{User: "alice", Prefix: "3.0/"})
	if other.s.URL[len(other.s.URL)-4:] != "/3.0" {
		t.Errorf("URL %s", other.s.URL)
	}
	_, r := other.submit("rennes", req("{cluster='parasilo'}/nodes=1"))
	if !strings.HasSuffix(r.header.Get("Location"), "/3.0/sites/rennes/jobs/1") || !strings.Contains(r.body, `"href":"/3.0/sites/rennes/jobs/1"`) {
		t.Errorf("prefix 3.0: %v %s", r.header, r.body)
	}
}

func TestAuth(t *testing.T) {
	_, _, c := start(t, Config{User: "alice", Password: "secret"})
	for _, tt := range []struct {
		name, user, pass string
		status           int
	}{
		{"no credentials", "", "", 401},
		{"wrong password", "alice", "guess", 401},
		{"other user", "bob", "secret", 401},
		{"right", "alice", "secret", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c.user, c.pass = tt.user, tt.pass
			r := c.do("GET", "/sites", nil)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d", r.status, tt.status)
			}
			if tt.status == 401 && (r.header.Get("WWW-Authenticate") != `Basic realm="Grid'5000 API"` ||
				!strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(r.body, "<html>")) {
				t.Errorf("401: %v %q", r.header, r.body)
			}
		})
	}
	c.user, c.pass = "alice", "secret"
	if j, _ := c.submit("rennes", req("{cluster='parasilo'}/nodes=1")); j.User != "alice" {
		t.Errorf("owner %q", j.User)
	}

	// Inside Grid'5000, no credentials: reads are fine, writes are alice's.
	s, _, in := start(t, Config{User: "alice"})
	in.want(in.do("GET", "/sites", nil), 200, nil)
	in.submit("rennes", req("{cluster='parasilo'}/nodes=1"))
	if s.Jobs()[0].User != "alice" {
		t.Errorf("jobs %+v", s.Jobs())
	}
	_, _, anon := start(t, Config{})
	anon.want(anon.do("GET", "/sites/rennes/jobs", nil), 200, nil)
	anon.wantText(anon.do("POST", "/sites/rennes/deployments", map[string]any{}), 403, forbiddenText)
}

// A second user with a password of their own, inside (alice is anonymous)
// and outside: each owns their jobs.
func TestUsers(t *testing.T) {
	for _, cfg := range []Config{
		{User: "alice", Users: map[string]string{"bob": "b0b"}},
		{User: "alice", Password: "secret", Users: map[string]string{"bob": "b0b"}},
	} {
		s, _, alice := start(t, cfg)
		bob := &client{t: t, s: s, http: alice.http, user: "bob", pass: "b0b"}
		bj, _ := bob.submit("rennes", req("{cluster='parasilo'}/nodes=1"))
		aj, _ := alice.submit("rennes", req("{cluster='parasilo'}/nodes=1"))
		if bj.User != "bob" || aj.User != "alice" {
			t.Errorf("owners %s %s", bj.User, aj.User)
		}
		alice.wantText(alice.do("DELETE", fmt.Sprintf("/sites/rennes/jobs/%d", bj.UID), nil), 403, forbiddenText)
		bob.want(bob.do("DELETE", fmt.Sprintf("/sites/rennes/jobs/%d", bj.UID), nil), 202, nil)
		bob.pass = "guess"
		if r := bob.do("GET", "/sites", nil); r.status != 401 {
			t.Errorf("wrong password: %d", r.status)
		}
	}
}

func TestFailNext(t *testing.T) {
	s, clk, c := start(t, alice())
	s.FailNext("GET", "/sites/rennes/jobs", 503, "Server Unavailable", 2)
	s.FailNext("", "/stable/sites/nancy", 502, "Bad Gateway", 1)
	c.wantText(c.do("GET", "/sites/rennes/jobs?name=e2c", nil), 503, "Server Unavailable")
	clk.Add(time.Second)
	c.wantText(c.do("GET", "/sites/rennes/jobs/7", nil), 503, "Server Unavailable")
	c.want(c.do("GET", "/sites/rennes/jobs", nil), 200, nil)
	c.wantText(c.do("POST", "/sites/nancy/jobs", req("{cluster='gros'}/nodes=1")), 502, "Bad Gateway")
	if len(s.Jobs()) != 0 {
		t.Errorf("a failed POST made a job")
	}
	c.submit("nancy", req("{cluster='gros'}/nodes=1"))

	if n := s.Count("GET", "/sites/rennes/jobs"); n != 3 {
		t.Errorf("Count = %d", n)
	}
	if n := s.Count("POST", "/stable/sites/"); n != 2 {
		t.Errorf("Count POST = %d", n)
	}
	if n := s.Count("", "/sites"); n != 5 {
		t.Errorf("Count all = %d", n)
	}
	reqs := s.Requests()
	first := Request{Method: "GET", Path: "/stable/sites/rennes/jobs", Query: "name=e2c", UserAgent: "Go-http-client/1.1", Status: 503, At: reqs[0].At}
	if reqs[0] != first || !reqs[1].At.Equal(reqs[0].At.Add(time.Second)) || reqs[4].Status != 201 || !strings.Contains(reqs[4].Body, "gros") {
		t.Errorf("requests %+v", reqs)
	}
}

func TestSlowNext(t *testing.T) {
	s, _, c := start(t, alice())
	s.SlowNext("GET", "/sites", time.Second, 1)
	c.http.Timeout = 50 * time.Millisecond
	req, _ := http.NewRequest("GET", s.URL+"/sites", nil)
	if _, err := c.http.Do(req); err == nil {
		t.Fatal("a slow answer came in time")
	}
	c.http.Timeout = 0
	c.want(c.do("GET", "/sites", nil), 200, nil)
}

// Count counts a request once it is answered, not when it arrives: a test
// that waits for it can change the platform knowing what the answer said.
func TestCountAnswered(t *testing.T) {
	s, _, c := start(t, alice())
	s.SlowNext("GET", "/sites", 300*time.Millisecond, 1)
	answered := make(chan error, 1)
	go func() {
		resp, err := c.http.Get(s.URL + "/sites")
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	for end := time.Now().Add(10 * time.Second); len(s.Requests()) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the request never arrived")
		}
	}
	if n, r := s.Count("GET", "/sites"), s.Requests()[0]; n != 0 || r.Status != 0 {
		t.Errorf("before its answer: Count = %d, status %d", n, r.Status)
	}
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	if n, r := s.Count("GET", "/sites"), s.Requests()[0]; n != 1 || r.Status != 200 {
		t.Errorf("answered: Count = %d, status %d", n, r.Status)
	}
}

func TestLoseAnswer(t *testing.T) {
	s, _, c := start(t, alice())
	s.LoseAnswer("POST", "/sites/rennes/jobs", 504, "Gateway Time-out", 1)
	c.wantText(c.do("POST", "/sites/rennes/jobs", req("{cluster='parasilo'}/nodes=1")), 504, "Gateway Time-out")
	if j := s.Jobs(); len(j) != 1 || j[0].UID != 1 {
		t.Errorf("the submission whose answer was lost made %+v", j)
	}
	if j, _ := c.submit("rennes", req("{cluster='parasilo'}/nodes=1")); j.UID != 2 {
		t.Errorf("next submission: uid %d", j.UID)
	}
}

func TestRefuseSubmit(t *testing.T) {
	s, _, c := start(t, alice())
	s.RefuseSubmit("This reservation could run at 2026-12-03 10:00:00")
	c.wantText(c.do("POST", "/sites/rennes/jobs", req("{cluster='parasilo'}/nodes=1")), 400,
		"Request to http://oar-api.internal/jobs failed with status 400: This reservation could run at 2026-12-03 10:00:00")
	c.submit("rennes", req("{cluster='parasilo'}/nodes=1"))
}

func TestCAFile(t *testing.T) {
	s, _, _ := start(t, alice())
	data, err := os.ReadFile(s.CAFile(t))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatal("no certificate in the CA file")
	}
	for _, tt := range []struct {
		name string
		pool *x509.CertPool
		ok   bool
	}{
		{"CA file", pool, true},
		{"empty pool", x509.NewCertPool(), false},
	} {
		cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tt.pool}}}
		resp, err := cl.Get(s.URL + "/sites")
		if err == nil {
			resp.Body.Close()
		}
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
		cl.CloseIdleConnections()
	}
}

func TestConcurrent(t *testing.T) {
	s, clk, c := start(t, alice())
	var wg sync.WaitGroup
	uids := make([]int64, 20)
	for i := range uids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(req("{cluster='gros'}/nodes=3"))
			resp, err := c.http.Post(s.URL+"/sites/nancy/jobs", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var j Job
			json.NewDecoder(resp.Body).Decode(&j)
			uids[i] = j.UID
			clk.Add(10 * time.Millisecond)
			s.Jobs()
			s.Count("", "/sites")
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	clk.Add(time.Second)
	for _, j := range s.Jobs() {
		if len(j.AssignedNodes) != 3 {
			t.Errorf("job %d: %v", j.UID, j.AssignedNodes)
		}
		for _, n := range j.AssignedNodes {
			if seen[n] {
				t.Errorf("%s given twice", n)
			}
			seen[n] = true
		}
	}
	slices.Sort(uids)
	if uids[0] != 1 || slices.Compact(uids)[19] != 20 {
		t.Errorf("uids %v", uids)
	}
}

func TestCompareNodes(t *testing.T) {
	l := []string{"parasilo-10", "parasilo-2", "paravance-1", "parasilo-1", "gros-100.nancy.grid5000.fr", "gros-20.nancy.grid5000.fr"}
	slices.SortFunc(l, compareNodes)
	want := []string{"gros-20.nancy.grid5000.fr", "gros-100.nancy.grid5000.fr", "parasilo-1", "parasilo-2", "parasilo-10", "paravance-1"}
	if !slices.Equal(l, want) {
		t.Errorf("%v, want %v", l, want)
	}
}
