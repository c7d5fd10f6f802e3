package g5kfake

import (
	"cmp"
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // reservation dates are Europe/Paris time on any host
)

// oarURL is where the API forwards submissions; it shows in OAR refusals.
const oarURL = "http://oar-api.internal/jobs"

// Job is an OAR job as the API shows it (reference 3.2). Null keys are
// omitted; types, events, assigned_nodes and resources_by_type are always
// there in an item.
type Job struct {
	UID             int64               `json:"uid"`
	UserUID         string              `json:"user_uid"`
	User            string              `json:"user"`
	Walltime        int64               `json:"walltime"` // seconds
	Queue           string              `json:"queue,omitempty"`
	State           string              `json:"state"`
	Project         string              `json:"project,omitempty"`
	Name            string              `json:"name,omitempty"`
	Types           []string            `json:"types"`
	Mode            string              `json:"mode,omitempty"`
	Command         string              `json:"command,omitempty"`
	SubmittedAt     int64               `json:"submitted_at"`
	ScheduledAt     int64               `json:"scheduled_at,omitempty"`
	StartedAt       int64               `json:"started_at"`
	StoppedAt       int64               `json:"stopped_at,omitempty"`
	Message         string              `json:"message,omitempty"`
	Properties      string              `json:"properties,omitempty"`
	Directory       string              `json:"directory,omitempty"`
	Events          []Event             `json:"events"`
	Links           []Link              `json:"links"`
	ResourcesByType map[string][]string `json:"resources_by_type"`
	AssignedNodes   []string            `json:"assigned_nodes"`

	Site        string `json:"-"` // the site the job lives on
	Resources   string `json:"-"` // the resources expression as submitted
	Reservation string `json:"-"` // the reservation date as submitted, if any
}

// Event is an OAR event of a job.
type Event struct {
	UID         int64  `json:"uid"`
	CreatedAt   int64  `json:"created_at"`
	Type        string `json:"type"`
	Description string `json:"description"`
}

// job is a Job with what drives its state machine.
type job struct {
	Job
	parts    []part
	wall     time.Duration
	start    time.Time // when it leaves waiting
	launched time.Time // when it entered launching; walltime counts from it
	finish   time.Time // when it entered finishing
	ending   string    // the state finishing ends in: error or terminated
	failWait bool      // ErrorWhileWaiting
	failRun  bool      // ErrorWhileLaunching
}

// listedJob is a list item without resources=yes: the node keys are left
// out (the outer, empty fields hide the embedded ones).
type listedJob struct {
	Job
	ResourcesByType map[string][]string `json:"resources_by_type,omitempty"`
	AssignedNodes   []string            `json:"assigned_nodes,omitempty"`
}

// submission is the body of POST jobs.
type submission struct {
	Resources   string          `json:"resources"`
	Command     string          `json:"command"`
	Types       []string        `json:"types"`
	Name        string          `json:"name"`
	Queue       string          `json:"queue"`
	Project     string          `json:"project"`
	Properties  string          `json:"properties"`
	Directory   string          `json:"directory"`
	Reservation json.RawMessage `json:"reservation"`
}

const (
	invalidJob  = "The job you are trying to submit is not valid: "
	notEnough   = "There are not enough resources for your request"
	alreadyDead = "This job was already killed"
	dateLayout  = "2006-01-02 15:04:05"
)

// dayRe is a time of day: a reservation today.
var dayRe = regexp.MustCompile(`^\d{1,2}:\d{2}(:\d{2})?$`)

// oarRefusal is how the API passes on a refusal of the OAR API.
func oarRefusal(url, text string) *reply {
	return textReply(http.StatusBadRequest, "Request to "+url+" failed with status 400: "+text)
}

func jobNotFound(uid string) *reply {
	return textReply(http.StatusNotFound, "Couldn't find OAR::Job with 'job_id'="+uid)
}

func (s *Server) submitJob(r *http.Request) *reply {
	site := r.PathValue("site")
	if !s.siteOK(site) {
		return notFoundRef(r)
	}
	user := s.caller(r)
	if user == "" {
		return forbidden()
	}
	var sub submission
	if isJSON(r) {
		if err := json.NewDecoder(r.Body).Decode(&sub); err != nil {
			return textReply(http.StatusBadRequest, invalidJob+"cannot read the JSON body: "+err.Error())
		}
	}
	now := s.now()
	reservation, rep := parseReservation(sub.Reservation, now)
	if rep != nil {
		return rep
	}
	if reservation.IsZero() && sub.Command == "" {
		return textReply(http.StatusBadRequest, invalidJob+"you must give a :command to execute on launch")
	}
	if len(s.refusals) > 0 {
		text := s.refusals[0]
		s.refusals = s.refusals[1:]
		return oarRefusal(oarURL, text)
	}
	parts, wall, err := parseResources(sub.Resources)
	if err != nil {
		return oarRefusal(oarURL, "Bad resource request: "+err.Error())
	}
	if !reservation.IsZero() && reservation.Before(now) {
		return oarRefusal(oarURL, "Reservation too old: "+reservation.Format(dateLayout))
	}
	j := s.newJob(site, user, sub, parts, wall, now, reservation)
	if !s.fits(j) {
		return oarRefusal(oarURL, notEnough)
	}
	s.lastUID++
	j.UID = s.lastUID
	j.Links = s.jobLinks(site, j.UID)
	j.failWait = take(s.failNames, j.Name)
	j.failRun = take(s.failLaunch, j.Name)
	if take(s.holdNames, j.Name) {
		j.State = "hold"
	}
	s.jobs = append(s.jobs, j)
	loc := s.absolute(r, jobPath(site, j.UID))
	return jsonReply(http.StatusCreated, j.view()).set("Location", loc)
}

// take consumes one of the injections counted for a job name.
func take(counts map[string]int, name string) bool {
	if counts[name] == 0 {
		return false
	}
	counts[name]--
	return true
}

func isJSON(r *http.Request) bool {
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	return strings.HasPrefix(ct, "application/") && strings.Contains(ct, "json")
}

// parseReservation reads the reservation date as the API does: a string
// Ruby's Time.parse reads, in the server's zone (Europe/Paris); the forms
// here are "YYYY-MM-DD hh:mm[:ss]" (a "T" also separates them) and
// "hh:mm[:ss]" (today). A string that is no date, such as "now", is
// dropped: the job is then a submission, which needs a command. A JSON
// value that is not a string is refused.
func parseReservation(raw json.RawMessage, now time.Time) (time.Time, *reply) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return time.Time{}, textReply(http.StatusBadRequest, invalidJob+"reservation must be a date string 'YYYY-MM-DD hh:mm:ss', not "+string(raw))
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		return time.Time{}, textReply(http.StatusInternalServerError, err.Error())
	}
	text = strings.TrimSpace(text)
	if dayRe.MatchString(text) {
		text = now.In(paris).Format(time.DateOnly) + " " + text
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, text, paris); err == nil {
			return t, nil
		}
	}
	return time.Time{}, nil
}

// newJob builds a waiting job from a submission; it gets its uid once
// accepted.
func (s *Server) newJob(site, user string, sub submission, parts []part, wall time.Duration, now, reservation time.Time) *job {
	start := now.Add(s.cfg.Waiting)
	if reservation.After(start) {
		start = reservation
	}
	j := &job{parts: parts, wall: wall, start: start}
	j.Job = Job{
		UserUID:     user,
		User:        user,
		Walltime:    int64(wall / time.Second),
		Queue:       cmp.Or(sub.Queue, "default"),
		State:       "waiting",
		Project:     sub.Project,
		Name:        sub.Name,
		Types:       slices.Clone(sub.Types),
		Mode:        "PASSIVE",
		Command:     sub.Command,
		SubmittedAt: now.Unix(),
		ScheduledAt: start.Unix(),
		Properties:  sub.Properties,
		Directory:   cmp.Or(sub.Directory, "/home/"+user),
		Site:        site,
		Resources:   sub.Resources,
	}
	if !reservation.IsZero() {
		j.Reservation = reservation.Format(dateLayout)
	}
	return j
}

func (s *Server) getJob(r *http.Request) *reply {
	site := r.PathValue("site")
	if !s.siteOK(site) {
		return notFoundRef(r)
	}
	j := s.findJob(site, r.PathValue("uid"))
	if j == nil {
		return jobNotFound(r.PathValue("uid"))
	}
	return jsonReply(http.StatusOK, j.view())
}

func (s *Server) findJob(site, uid string) *job {
	id, err := strconv.ParseInt(uid, 10, 64)
	if err != nil {
		return nil
	}
	for _, j := range s.jobs {
		if j.UID == id && j.Site == site {
			return j
		}
	}
	return nil
}

func (s *Server) listJobs(r *http.Request) *reply {
	site := r.PathValue("site")
	if !s.siteOK(site) {
		return notFoundRef(r)
	}
	q := r.URL.Query()
	var found []*job
	for _, j := range s.jobs {
		if j.Site == site && jobMatches(j, q) {
			found = append(found, j)
		}
	}
	// Newest first.
	slices.SortFunc(found, func(a, b *job) int {
		return cmp.Or(cmp.Compare(b.SubmittedAt, a.SubmittedAt), cmp.Compare(b.UID, a.UID))
	})
	shown, offset := page(found, r)
	var items []any
	for _, j := range shown {
		if q.Get("resources") == "yes" {
			items = append(items, j.view())
		} else {
			items = append(items, listedJob{Job: j.view()})
		}
	}
	coll := collection{Total: len(found), Offset: offset, Items: append([]any{}, items...), Links: []Link{
		{Rel: "self", Href: s.path("/sites/" + site + "/jobs"), Type: collectionType},
		{Rel: "parent", Href: s.path("/sites/" + site), Type: itemType},
	}}
	return jsonReply(http.StatusOK, coll)
}

// jobMatches applies the list filters; a state list is comma-separated.
func jobMatches(j *job, q map[string][]string) bool {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	for key, value := range map[string]string{"user": j.User, "name": j.Name, "project": j.Project, "queue": j.Queue} {
		if want := get(key); want != "" && want != value {
			return false
		}
	}
	if _, ok := q["state"]; ok {
		var states []string
		for _, st := range strings.Split(get("state"), ",") {
			states = append(states, strings.ToLower(strings.TrimSpace(st)))
		}
		return slices.Contains(states, j.State)
	}
	return true
}

func (s *Server) deleteJob(r *http.Request) *reply {
	site := r.PathValue("site")
	if !s.siteOK(site) {
		return notFoundRef(r)
	}
	user := s.caller(r)
	if user == "" {
		return forbidden()
	}
	uid := r.PathValue("uid")
	j := s.findJob(site, uid)
	switch {
	case j == nil:
		return jobNotFound(uid)
	case j.User != user:
		return forbidden()
	case !active(j.State) || j.State == "finishing":
		return oarRefusal(oarURL+"/"+uid, alreadyDead)
	}
	s.kill(j, user, s.now())
	info := "Deleting the job = " + uid + " ...REGISTERED. The job(s) [ " + uid + " ] will be deleted in the near future."
	rep := textReply(http.StatusAccepted, "")
	rep.set("Location", s.absolute(r, jobPath(site, j.UID)))
	return rep.set("X-Oar-Info", info)
}

// kill is oardel: a job that holds no nodes ends in error at once, one that
// launched is finishing first.
func (s *Server) kill(j *job, user string, now time.Time) {
	s.event(j, now, "FRAG_JOB_REQUEST", "[oardel] Fragmentation request from user "+user+" for job "+itoa(j.UID))
	switch j.State {
	case "launching", "running":
		j.finishing("error", now)
	case "waiting", "hold":
		j.stop("error", now)
	}
}

// event records an OAR event of the job.
func (s *Server) event(j *job, at time.Time, typ, description string) {
	s.lastEvent++
	j.Events = append(j.Events, Event{UID: s.lastEvent, CreatedAt: at.Unix(), Type: typ, Description: description})
}

// finishing starts the end of a job that holds nodes: it keeps them until
// it ends in state.
func (j *job) finishing(state string, at time.Time) {
	j.State, j.ending, j.finish = "finishing", state, at
}

// stop ends the job; an ended job holds no nodes.
func (j *job) stop(state string, at time.Time) {
	j.State = state
	j.StoppedAt = at.Unix()
}

// assign gives the job its nodes, one core line per node.
func (j *job) assign(nodes []string) {
	j.AssignedNodes = nodes
	j.ResourcesByType = map[string][]string{}
	for _, n := range nodes {
		j.ResourcesByType["cores"] = append(j.ResourcesByType["cores"], n+"/0")
	}
}

// view is a deep copy of the public job, with the keys the API always
// shows set to empty rather than null.
func (j *job) view() Job {
	v := j.Job
	v.Types = nonNil(slices.Clone(v.Types))
	v.Events = slices.Clone(v.Events)
	if v.Events == nil {
		v.Events = []Event{}
	}
	v.Links = slices.Clone(v.Links)
	v.AssignedNodes = nonNil(slices.Clone(v.AssignedNodes))
	v.ResourcesByType = maps.Clone(v.ResourcesByType)
	if v.ResourcesByType == nil {
		v.ResourcesByType = map[string][]string{}
	}
	for k, l := range v.ResourcesByType {
		v.ResourcesByType[k] = slices.Clone(l)
	}
	return v
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func jobPath(site string, uid int64) string { return "/sites/" + site + "/jobs/" + itoa(uid) }

func (s *Server) jobLinks(site string, uid int64) []Link {
	return []Link{
		{Rel: "self", Href: s.path(jobPath(site, uid)), Type: itemType},
		{Rel: "parent", Href: s.path("/sites/" + site), Type: itemType},
	}
}

// Jobs returns a snapshot of every job, by uid and site.
func (s *Server) Jobs() []Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	var out []Job
	for _, j := range s.jobs {
		out = append(out, j.view())
	}
	return out
}

// AddJob inserts an existing job, e.g. a running job of the same name to
// test reuse, and returns its uid (UID 0: the next one; OAR's uids are per
// site, so another site may have a job of that uid too). Empty fields
// default to: Site the first site, User the configured one, State
// "running", Queue "default", Walltime 3600 s, SubmittedAt and StartedAt
// now. Resources, when set, is the request (e.g. "{cluster='gros'}/nodes=2");
// a running or launching job without AssignedNodes gets nodes from it, or
// one node of the site's first cluster, taken from the free pool.
// AssignedNodes of a waiting job are ignored. It panics if the nodes are
// not there.
func (s *Server) AddJob(j Job) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	now := s.now()
	k := &job{Job: j}
	s.fillJob(k, now)
	switch k.State {
	case "running", "launching":
		if len(k.AssignedNodes) == 0 {
			held, _ := s.claims(k)
			nodes, ok := s.pick(k, held)
			if !ok {
				panic("g5kfake: AddJob: no free nodes for " + k.Resources)
			}
			k.AssignedNodes = nodes
		}
		if k.ResourcesByType == nil {
			k.assign(k.AssignedNodes)
		}
	case "waiting", "hold":
		k.AssignedNodes, k.ResourcesByType = nil, nil
	}
	if k.UID == 0 {
		k.UID = s.lastUID + 1
	}
	if slices.ContainsFunc(s.jobs, func(o *job) bool { return o.UID == k.UID && o.Site == k.Site }) {
		panic("g5kfake: AddJob: uid " + itoa(k.UID) + " is taken on " + k.Site)
	}
	s.lastUID = max(s.lastUID, k.UID)
	k.Links = s.jobLinks(k.Site, k.UID)
	s.jobs = append(s.jobs, k)
	slices.SortFunc(s.jobs, func(a, b *job) int { return cmp.Or(cmp.Compare(a.UID, b.UID), strings.Compare(a.Site, b.Site)) })
	return k.UID
}

// fillJob sets AddJob's defaults and the state machine's times.
func (s *Server) fillJob(k *job, now time.Time) {
	if k.Site == "" && len(k.AssignedNodes) > 0 && s.nodes[k.AssignedNodes[0]] != nil {
		k.Site = s.nodes[k.AssignedNodes[0]].Site
	}
	if k.Site == "" && len(s.sites) > 0 {
		k.Site = s.sites[0]
	}
	k.User = cmp.Or(k.User, s.cfg.User)
	k.UserUID = cmp.Or(k.UserUID, k.User)
	k.State = cmp.Or(k.State, "running")
	k.Queue = cmp.Or(k.Queue, "default")
	k.Mode = cmp.Or(k.Mode, "PASSIVE")
	k.wall = defaultWalltime
	if k.Resources != "" {
		parts, wall, err := parseResources(k.Resources)
		if err != nil {
			panic("g5kfake: AddJob: " + err.Error())
		}
		k.parts, k.wall = parts, wall
	} else if cs := s.clusters[k.Site]; len(cs) > 0 {
		k.parts = []part{{cluster: cs[0].Name, n: 1}}
	}
	if k.Walltime > 0 {
		k.wall = time.Duration(k.Walltime) * time.Second
	}
	k.Walltime = int64(k.wall / time.Second)
	if k.SubmittedAt == 0 {
		k.SubmittedAt = now.Unix()
	}
	switch k.State {
	case "running", "launching":
		if k.StartedAt == 0 {
			k.StartedAt = now.Unix()
		}
		k.launched = time.Unix(k.StartedAt, 0)
		if k.State == "launching" {
			k.launched = now // so it runs Launching from now
		}
	case "waiting":
		k.start = now.Add(s.cfg.Waiting)
		if k.ScheduledAt > 0 {
			k.start = time.Unix(k.ScheduledAt, 0)
		}
	case "terminated", "error":
		k.StoppedAt = cmp.Or(k.StoppedAt, now.Unix())
	}
	if k.ScheduledAt == 0 && k.State == "waiting" {
		k.ScheduledAt = k.start.Unix()
	}
	if k.ScheduledAt == 0 {
		k.ScheduledAt = k.StartedAt
	}
}
