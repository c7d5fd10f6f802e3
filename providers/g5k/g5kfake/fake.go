// Package g5kfake is a fake of the Grid'5000 REST API, served over TLS by
// httptest, for the tests of the Grid'5000 provider: sites, clusters and
// nodes from a fixture, OAR jobs whose states follow an injectable clock,
// kadeploy deployments, a request log, and failure injection (failed,
// slow, or lost answers).
//
// State changes happen lazily: every request (and every inspection method)
// first applies the transitions that the clock says are due, in time order.
package g5kfake

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cluster is a cluster of a site with its nodes' short uids ("parasilo-1").
type Cluster struct {
	Site, Name string
	Nodes      []string // short uids; FQDN = uid + "." + site + ".grid5000.fr"
	Exotic     bool     // jobs need the "exotic" type to get its nodes
}

// Config describes the platform the server imitates. Zero fields take
// defaults.
type Config struct {
	Prefix string // version prefix of every path; default "/stable", "/" for none
	// User is the login. When Password != "" every request needs Basic auth
	// with User and Password, or with one of Users (401 otherwise, like the
	// front proxy). When Password == "" requests without credentials are
	// anonymous-inside-Grid'5000, identified as User (the proxy's ident
	// on a frontend): reads are allowed and writes are attributed to User,
	// or refused with 403 when User is "".
	User     string
	Password string
	// Users are more accounts, login to password, that authenticate with
	// Basic auth: another user of the platform, with jobs of their own.
	Users    map[string]string
	Clusters []Cluster // default DefaultClusters()
	// Environments are the kadeploy environment names accepted (default
	// DefaultEnvironments); "debian11-big" is accepted for "debian11-x64-big".
	Environments []string
	// Durations of the state machine, measured with Clock: waiting ->
	// launching after Waiting, launching -> running after Launching, a
	// job deleted or past its walltime stays finishing for Finishing
	// before error or terminated; deployments processing -> done after
	// Deploying. Defaults 200ms, 100ms, 50ms, 300ms; a negative value
	// means no delay.
	Waiting, Launching, Finishing, Deploying time.Duration
	Clock                                    func() time.Time // default time.Now
}

// DefaultEnvironments are the kadeploy images known when Config gives none.
var DefaultEnvironments = []string{
	"debian11-x64-min", "debian11-x64-base", "debian11-x64-nfs", "debian11-x64-big",
	"debian12-x64-min", "debian12-x64-base", "debian12-x64-nfs", "debian12-x64-big",
	"ubuntu2204-x64-min",
}

// DefaultClusters is the fixture used when Config gives no clusters: two
// sites, one exotic cluster.
func DefaultClusters() []Cluster {
	return []Cluster{
		{Site: "nancy", Name: "gros", Nodes: numbered("gros", 64)},
		{Site: "nancy", Name: "grouille", Nodes: numbered("grouille", 2), Exotic: true},
		{Site: "rennes", Name: "parasilo", Nodes: numbered("parasilo", 12)},
		{Site: "rennes", Name: "paravance", Nodes: numbered("paravance", 8)},
	}
}

func numbered(cluster string, n int) []string {
	var uids []string
	for i := 1; i <= n; i++ {
		uids = append(uids, cluster+"-"+itoa(int64(i)))
	}
	return uids
}

// Request is one request the server received.
type Request struct {
	Method, Path, Query string // Path without the host, with the prefix
	Body                string
	UserAgent           string
	Status              int       // 0 until answered, or when the client left first (SlowNext)
	At                  time.Time // Clock time of arrival
}

// Server is a running fake. All its methods are safe for concurrent use.
type Server struct {
	URL string // base URL including the prefix, e.g. https://127.0.0.1:port/stable

	cfg      Config
	ts       *httptest.Server
	mux      *http.ServeMux
	sites    []string              // sorted
	clusters map[string][]*Cluster // by site, sorted by name
	nodes    map[string]*Cluster   // by node FQDN

	mu         sync.Mutex
	log        []Request
	fails      []*rule
	slows      []*rule
	losts      []*rule
	refusals   []string
	failNames  map[string]int // job name -> submissions that end in error while waiting
	failLaunch map[string]int // job name -> submissions that end in error while launching
	holdNames  map[string]int // job name -> submissions that are held
	deployErr  []string       // outputs of the next deployments that end in error
	ko         map[string]int // node FQDN -> deployments that end KO
	keys       map[string]string
	jobs       []*job // by uid
	deps       []*deployment
	lastUID    int64
	lastEvent  int64
}

// rule is an injected failure or delay.
type rule struct {
	method, prefix string
	status         int
	body           string
	delay          time.Duration
	left           int
}

// New starts the fake; it stops when the test ends.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:        cfg,
		mux:        http.NewServeMux(),
		clusters:   map[string][]*Cluster{},
		nodes:      map[string]*Cluster{},
		failNames:  map[string]int{},
		failLaunch: map[string]int{},
		holdNames:  map[string]int{},
		ko:         map[string]int{},
		keys:       map[string]string{},
	}
	for _, c := range cfg.Clusters {
		if c.Site == "" || c.Name == "" {
			t.Fatalf("g5kfake: cluster %+v needs a site and a name", c)
		}
		c.Nodes = slices.Clone(c.Nodes)
		slices.SortFunc(c.Nodes, compareNodes)
		s.clusters[c.Site] = append(s.clusters[c.Site], &c)
		for _, uid := range c.Nodes {
			s.nodes[fqdn(uid, c.Site)] = &c
		}
	}
	for site, cs := range s.clusters {
		s.sites = append(s.sites, site)
		slices.SortFunc(cs, func(a, b *Cluster) int { return strings.Compare(a.Name, b.Name) })
	}
	slices.Sort(s.sites)
	s.routes()

	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	s.ts.Config.ErrorLog = log.New(io.Discard, "", 0) // clients refusing the certificate are tested on purpose
	s.ts.StartTLS()
	t.Cleanup(s.ts.Close)
	s.URL = s.ts.URL + cfg.Prefix
	return s
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = "/stable"
	}
	c.Prefix = strings.TrimRight("/"+strings.Trim(c.Prefix, "/"), "/")
	if c.Clusters == nil {
		c.Clusters = DefaultClusters()
	}
	if c.Environments == nil {
		c.Environments = DefaultEnvironments
	}
	c.Waiting = duration(c.Waiting, 200*time.Millisecond)
	c.Launching = duration(c.Launching, 100*time.Millisecond)
	c.Finishing = duration(c.Finishing, 50*time.Millisecond)
	c.Deploying = duration(c.Deploying, 300*time.Millisecond)
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

func duration(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// CertPool trusts the server's certificate.
func (s *Server) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.ts.Certificate())
	return pool
}

// CAFile writes the server's certificate as PEM to a temporary file and
// returns its path (for verify_ssl: <path>).
func (s *Server) CAFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "g5kfake-ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ts.Certificate().Raw})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Credentials writes a credentials file (~/.python-grid5000.yaml) that
// points at the server and trusts its certificate, with the account lines
// given ("" for none, as inside Grid'5000), and returns its path: give it
// to the provider (g5k.Provider.Credentials).
func (s *Server) Credentials(t testing.TB, account string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "python-grid5000.yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, "%suri: %s\nverify_ssl: %s\n", account, s.URL, s.CAFile(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Requests returns the requests received, in arrival order, those not
// answered yet included (Status 0).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// Count counts the requests answered with that method ("" for any) whose
// path starts with pathPrefix, given with or without the version prefix. A
// request counts from the moment its answer is decided, before the client
// reads it: a test that waits for one can change the platform knowing that
// the answer is not changed.
func (s *Server) Count(method, pathPrefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.log {
		if r.Status != 0 && s.matches(method, pathPrefix, r.Method, r.Path) {
			n++
		}
	}
	return n
}

// FailNext makes the next `times` requests matching method ("" for any) and
// pathPrefix (with or without the version prefix) answer status with the
// plain-text body, and do nothing else.
func (s *Server) FailNext(method, pathPrefix string, status int, body string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = append(s.fails, &rule{method: method, prefix: pathPrefix, status: status, body: body, left: times})
}

// LoseAnswer makes the next `times` requests matching method ("" for any)
// and pathPrefix be handled as usual, then answered status with the
// plain-text body instead, as the front proxy answers 504 when the API
// behind it is too slow: a submission whose answer is lost made its job.
func (s *Server) LoseAnswer(method, pathPrefix string, status int, body string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.losts = append(s.losts, &rule{method: method, prefix: pathPrefix, status: status, body: body, left: times})
}

// SlowNext delays the next `times` matching requests by d of real time (or
// until the client gives up) before handling them.
func (s *Server) SlowNext(method, pathPrefix string, d time.Duration, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slows = append(s.slows, &rule{method: method, prefix: pathPrefix, delay: d, left: times})
}

// RefuseSubmit makes the next job submission that passes the API's own
// checks (command, reservation format) fail like an OAR refusal: 400
// "Request to http://oar-api.internal/jobs failed with status 400: " + body,
// e.g. "There are not enough resources" or
// "This reservation could run at 2026-12-03 10:00:00".
func (s *Server) RefuseSubmit(body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusals = append(s.refusals, body)
}

// ErrorWhileWaiting makes the next job submitted with that name go from
// waiting to error instead of launching.
func (s *Server) ErrorWhileWaiting(jobName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNames[jobName]++
}

// ErrorWhileLaunching makes the next job submitted with that name fail in
// launching (its prologue fails on a node) and end in error without
// running.
func (s *Server) ErrorWhileLaunching(jobName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLaunch[jobName]++
}

// HoldNext makes the next job submitted with that name held (as oarsub
// --hold, or an administrator's oarhold): it stays in hold, holding no
// nodes, until Resume.
func (s *Server) HoldNext(jobName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holdNames[jobName]++
}

// Hold is oarhold on a waiting job, from the frontend (the API has no call
// for it). It panics on a uid unknown or on two sites, or a job not waiting.
func (s *Server) Hold(uid int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	j := s.mustJob(uid)
	if j.State != "waiting" {
		panic("g5kfake: Hold: job " + itoa(uid) + " is " + j.State)
	}
	j.State = "hold"
}

// Resume is oarresume from the frontend: a held job waits again and
// launches after Waiting. It panics on a uid unknown or on two sites, or a
// job not held.
func (s *Server) Resume(uid int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	j := s.mustJob(uid)
	if j.State != "hold" {
		panic("g5kfake: Resume: job " + itoa(uid) + " is " + j.State)
	}
	j.State = "waiting"
	j.start = s.now().Add(s.cfg.Waiting)
	j.ScheduledAt = j.start.Unix()
}

// Kill is oardel from the frontend by the job's owner, as DELETE does.
// It panics on a uid unknown or on two sites.
func (s *Server) Kill(uid int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	j := s.mustJob(uid)
	s.kill(j, j.User, s.now())
}

func (s *Server) mustJob(uid int64) *job {
	var found []*job
	for _, j := range s.jobs {
		if j.UID == uid {
			found = append(found, j)
		}
	}
	if len(found) != 1 {
		panic("g5kfake: " + itoa(int64(len(found))) + " jobs of uid " + itoa(uid))
	}
	return found[0]
}

// DeployError makes the next deployment end in error with that output, as
// when kadeploy itself fails (not one node: the workflow).
func (s *Server) DeployError(output string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deployErr = append(s.deployErr, output)
}

// DeployKO makes the node (FQDN) end KO in its next `times` deployments.
func (s *Server) DeployKO(fqdn string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ko[fqdn] += times
}

// DeployedKey is the key sent in the last deployment submitted for the node
// (FQDN), "" if none.
func (s *Server) DeployedKey(fqdn string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[fqdn]
}

func (s *Server) now() time.Time { return s.cfg.Clock() }

// matches says whether a request is selected by a method and path prefix.
func (s *Server) matches(method, prefix, reqMethod, path string) bool {
	if method != "" && !strings.EqualFold(method, reqMethod) {
		return false
	}
	return strings.HasPrefix(path, prefix) || strings.HasPrefix(strings.TrimPrefix(path, s.cfg.Prefix), prefix)
}

// take consumes the first rule of the list matching the request; the
// server is locked.
func (s *Server) take(rules []*rule, r *http.Request) *rule {
	for _, ru := range rules {
		if ru.left > 0 && s.matches(ru.method, ru.prefix, r.Method, r.URL.Path) {
			ru.left--
			return ru
		}
	}
	return nil
}

// serveHTTP logs the request, applies the injected failures and the proxy's
// authentication, then routes it. Its status is logged as it is written.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	i := len(s.log)
	s.log = append(s.log, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body),
		UserAgent: r.UserAgent(), At: s.now()})
	s.mu.Unlock()
	s.serve(&statusWriter{ResponseWriter: w, s: s, i: i}, r)
}

// serve answers the request, unless the client leaves first.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	slow := s.take(s.slows, r)
	s.mu.Unlock()
	if slow != nil {
		select {
		case <-time.After(slow.delay):
		case <-r.Context().Done():
			return
		}
	}
	s.mu.Lock()
	fail := s.take(s.fails, r)
	s.mu.Unlock()
	if fail != nil {
		textReply(fail.status, fail.body).write(w)
		return
	}
	if u, p, ok := r.BasicAuth(); ok || s.cfg.Password != "" {
		if !ok || p == "" || p != s.password(u) {
			unauthorized().write(w)
			return
		}
	}
	s.mu.Lock()
	lost := s.take(s.losts, r)
	s.mu.Unlock()
	if lost != nil {
		s.mux.ServeHTTP(httptest.NewRecorder(), r)
		textReply(lost.status, lost.body).write(w)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// password is the password of a login, "" for none.
func (s *Server) password(user string) string {
	if user == s.cfg.User && s.cfg.Password != "" {
		return s.cfg.Password
	}
	return s.cfg.Users[user]
}

// caller is who the front proxy says a request comes from: the Basic auth
// login, else (anonymous, inside Grid'5000) User; "" for nobody.
func (s *Server) caller(r *http.Request) string {
	if u, _, ok := r.BasicAuth(); ok {
		return u
	}
	if s.cfg.Password != "" {
		return ""
	}
	return s.cfg.User
}

// statusWriter logs the status of the request s.log[i] before the client
// can read any of the answer (every answer of the fake writes its header).
type statusWriter struct {
	http.ResponseWriter
	s *Server
	i int
}

func (w *statusWriter) WriteHeader(status int) {
	w.s.mu.Lock()
	w.s.log[w.i].Status = status
	w.s.mu.Unlock()
	w.ResponseWriter.WriteHeader(status)
}

// handler answers a routed request; it runs with the server locked, after
// the due state changes.
type handler func(r *http.Request) *reply

func (s *Server) handle(pattern string, h handler) {
	method, path, _ := strings.Cut(pattern, " ")
	s.mux.HandleFunc(method+" "+s.cfg.Prefix+path, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.advance()
		rep := h(r)
		s.mu.Unlock()
		rep.write(w)
	})
}

// routes registers every endpoint. Unknown paths get the mux's plain-text
// 404, known paths with another method its 405 with an Allow header.
func (s *Server) routes() {
	s.handle("GET /sites", s.getSites)
	s.handle("GET /sites/{site}", s.getSite)
	s.handle("GET /sites/{site}/clusters", s.getClusters)
	s.handle("GET /sites/{site}/clusters/{cluster}", s.getCluster)
	s.handle("GET /sites/{site}/clusters/{cluster}/nodes", s.getNodes)
	s.handle("GET /sites/{site}/clusters/{cluster}/nodes/{node}", s.getNode)
	s.handle("GET /sites/{site}/jobs", s.listJobs)
	s.handle("POST /sites/{site}/jobs", s.submitJob)
	s.handle("GET /sites/{site}/jobs/{uid}", s.getJob)
	s.handle("DELETE /sites/{site}/jobs/{uid}", s.deleteJob)
	s.handle("GET /sites/{site}/deployments", s.listDeployments)
	s.handle("POST /sites/{site}/deployments", s.submitDeployment)
	s.handle("GET /sites/{site}/deployments/{uid}", s.getDeployment)
	s.handle("DELETE /sites/{site}/deployments/{uid}", s.cancelDeployment)
}

// advance applies every due state change of jobs and deployments.
func (s *Server) advance() {
	now := s.now()
	s.advanceJobs(now)
	for _, d := range s.deps {
		d.advance(now)
	}
}

// path is an href: the version prefix and a path.
func (s *Server) path(p string) string { return s.cfg.Prefix + p }

// absolute is a Location: the server's scheme and host, then the href.
func (s *Server) absolute(r *http.Request, p string) string {
	return "https://" + r.Host + s.path(p)
}

// siteOK says whether the site exists.
func (s *Server) siteOK(site string) bool {
	_, ok := s.clusters[site]
	return ok
}

func fqdn(uid, site string) string { return uid + "." + site + ".grid5000.fr" }
