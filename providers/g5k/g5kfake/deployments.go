package g5kfake

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Deployment is a kadeploy deployment as the API shows it.
type Deployment struct {
	UID         string                `json:"uid"` // D-<uuid>
	SiteUID     string                `json:"site_uid"`
	UserUID     string                `json:"user_uid"`
	Environment string                `json:"environment"`
	Nodes       []string              `json:"nodes"`
	Key         string                `json:"key,omitempty"` // a URL: the API stores key contents as files
	Status      string                `json:"status"`        // processing, canceled, terminated, error
	Result      map[string]NodeResult `json:"result,omitempty"`
	Output      string                `json:"output,omitempty"`
	CreatedAt   int64                 `json:"created_at"`
	UpdatedAt   int64                 `json:"updated_at"`
	Links       []Link                `json:"links"`
}

// NodeResult is the outcome of a deployment on one node.
type NodeResult struct {
	Macro string `json:"macro,omitempty"`
	Micro string `json:"micro,omitempty"`
	State string `json:"state"` // OK or KO
	Error string `json:"error,omitempty"`
}

type deployment struct {
	Deployment
	done  time.Time       // when processing ends
	ko    map[string]bool // nodes that end KO
	error string          // DeployError: the output of a failed workflow
}

const (
	invalidDeployment = "The deployment you are trying to submit is not valid: "
	cannotLaunch      = "Cannot launch deployment: "
	unreachable       = "Node not reachable (check_nodes timed out after the reboot)"
)

func deploymentNotFound(uid string) *reply {
	return textReply(http.StatusNotFound, "Couldn't find Grid5000::Deployment with ID="+uid)
}

func (s *Server) submitDeployment(r *http.Request) *reply {
	site := r.PathValue("site")
	if !s.siteOK(site) {
		return notFoundRef(r)
	}
	user := s.caller(r)
	if user == "" {
		return forbidden()
	}
	var body struct {
		Nodes       json.RawMessage `json:"nodes"`
		Environment string          `json:"environment"`
		Key         string          `json:"key"`
	}
	if isJSON(r) {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			return textReply(http.StatusBadRequest, invalidDeployment+err.Error())
		}
	}
	var nodes []string
	json.Unmarshal(body.Nodes, &nodes) // anything but a list of strings is dropped, as the API's parameter filter does
	if msgs := deploymentErrors(body.Environment, nodes, body.Key); len(msgs) > 0 {
		return textReply(http.StatusBadRequest, invalidDeployment+strings.Join(msgs, "; "))
	}
	if !s.knownEnvironment(body.Environment) {
		return textReply(http.StatusBadRequest, cannotLaunch+"Invalid environment specification -- the environment "+body.Environment+"::: does not exist")
	}
	for _, n := range nodes {
		if !s.deployable(site, user, n) {
			return textReply(http.StatusBadRequest, cannotLaunch+"You do not have the rights to deploy on the node "+n)
		}
	}
	now := s.now()
	d := &deployment{done: now.Add(s.cfg.Deploying), ko: map[string]bool{}}
	d.Deployment = Deployment{
		UID:         newDeploymentUID(),
		SiteUID:     site,
		UserUID:     user,
		Environment: body.Environment,
		Nodes:       nodes,
		Key:         s.keyURL(r, site, user, body.Key),
		Status:      "processing",
		CreatedAt:   now.Unix(),
		UpdatedAt:   now.Unix(),
	}
	d.Links = []Link{
		{Rel: "self", Href: s.path(deploymentPath(site, d.UID)), Type: itemType},
		{Rel: "parent", Href: s.path("/sites/" + site), Type: itemType},
	}
	for _, n := range nodes {
		s.keys[n] = body.Key
		d.ko[n] = take(s.ko, n)
	}
	if len(s.deployErr) > 0 {
		d.error, s.deployErr = s.deployErr[0], s.deployErr[1:]
	}
	s.deps = append(s.deps, d)
	loc := s.absolute(r, deploymentPath(site, d.UID))
	return jsonReply(http.StatusCreated, d.view()).set("Location", loc)
}

// deploymentErrors are the API's validation messages, Rails style.
func deploymentErrors(env string, nodes []string, key string) []string {
	var msgs []string
	if env == "" {
		msgs = append(msgs, "Environment can't be blank")
	}
	if len(nodes) == 0 {
		msgs = append(msgs, "Nodes can't be blank", "Nodes must be a non-empty list of node FQDN")
	}
	if key == "" { // the real API takes none; e2c must always send one
		msgs = append(msgs, "Key can't be blank")
	}
	return msgs
}

// knownEnvironment accepts a name, an alias without "-x64", name@owner,
// or the URL of a description.
func (s *Server) knownEnvironment(env string) bool {
	if strings.HasPrefix(env, "http://") || strings.HasPrefix(env, "https://") {
		return true
	}
	name, _, _ := strings.Cut(env, "@")
	for _, e := range s.cfg.Environments {
		if name == e || name == strings.Replace(e, "-x64", "", 1) {
			return true
		}
	}
	return false
}

// deployable says whether the node is in a running deploy job of the user.
func (s *Server) deployable(site, user, node string) bool {
	for _, j := range s.jobs {
		if j.Site == site && j.User == user && j.State == "running" &&
			slices.Contains(j.Types, "deploy") && slices.Contains(j.AssignedNodes, node) {
			return true
		}
	}
	return false
}

// keyURL is what the API makes of a key's contents: a file it serves to
// kadeploy. URLs are kept as they are.
func (s *Server) keyURL(r *http.Request, site, user, key string) string {
	if strings.HasPrefix(key, "http://") || strings.HasPrefix(key, "https://") {
		return key
	}
	sum := sha1.Sum([]byte(key))
	return s.absolute(r, "/sites/"+site+"/files/"+user+"-key-"+hex.EncodeToString(sum[:]))
}

func newDeploymentUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("D-%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func deploymentPath(site, uid string) string { return "/sites/" + site + "/deployments/" + uid }

// advance ends the deployment once Deploying has elapsed: terminated with
// each node's result, even when every node is KO (kadeploy ran its
// workflow), or error with an output when kadeploy itself failed
// (DeployError).
func (d *deployment) advance(now time.Time) {
	if d.Status != "processing" || now.Before(d.done) {
		return
	}
	d.UpdatedAt = d.done.Unix()
	if d.error != "" {
		d.Status, d.Output = "error", d.error
		return
	}
	d.Result = map[string]NodeResult{}
	for _, n := range d.Nodes {
		if d.ko[n] {
			d.Result[n] = NodeResult{Macro: "SetDeploymentEnv", Micro: "check_nodes", State: "KO", Error: unreachable}
			continue
		}
		d.Result[n] = NodeResult{Macro: "BootNewEnv", Micro: "wait_reboot", State: "OK"}
	}
	d.Status = "terminated"
}

func (d *deployment) view() Deployment {
	v := d.Deployment
	v.Nodes = nonNil(slices.Clone(v.Nodes))
	v.Links = slices.Clone(v.Links)
	v.Result = maps.Clone(v.Result)
	return v
}

func (s *Server) findDeployment(site, uid string) *deployment {
	for _, d := range s.deps {
		if d.UID == uid && d.SiteUID == site {
			return d
		}
	}
	return nil
}

func (s *Server) getDeployment(r *http.Request) *reply {
	site := r.PathValue("site")
	if !s.siteOK(site) {
		return notFoundRef(r)
	}
	d := s.findDeployment(site, r.PathValue("uid"))
	if d == nil {
		return deploymentNotFound(r.PathValue("uid"))
	}
	return jsonReply(http.StatusOK, d.view()).set("Cache-Control", "max-age=60, private")
}

func (s *Server) listDeployments(r *http.Request) *reply {
	site := r.PathValue("site")
	if !s.siteOK(site) {
		return notFoundRef(r)
	}
	q := r.URL.Query()
	var found []Deployment
	for i := len(s.deps) - 1; i >= 0; i-- { // newest first
		d := s.deps[i]
		if d.SiteUID == site && (!q.Has("user") || q.Get("user") == d.UserUID) && (!q.Has("status") || q.Get("status") == d.Status) {
			found = append(found, d.view())
		}
	}
	shown, offset := page(found, r)
	return jsonReply(http.StatusOK, collection{Total: len(found), Offset: offset, Items: shown, Links: []Link{
		{Rel: "self", Href: s.path("/sites/" + site + "/deployments"), Type: collectionType},
		{Rel: "parent", Href: s.path("/sites/" + site), Type: itemType},
	}})
}

func (s *Server) cancelDeployment(r *http.Request) *reply {
	site := r.PathValue("site")
	if !s.siteOK(site) {
		return notFoundRef(r)
	}
	user := s.caller(r)
	if user == "" {
		return forbidden()
	}
	d := s.findDeployment(site, r.PathValue("uid"))
	switch {
	case d == nil:
		return deploymentNotFound(r.PathValue("uid"))
	case d.UserUID != user:
		return forbidden()
	}
	if d.Status == "processing" {
		d.Status = "canceled"
		d.UpdatedAt = s.now().Unix()
	}
	rep := textReply(http.StatusAccepted, "")
	return rep.set("Location", s.absolute(r, deploymentPath(site, d.UID)))
}

// Deployments returns a snapshot of every deployment, oldest first.
func (s *Server) Deployments() []Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	var out []Deployment
	for _, d := range s.deps {
		out = append(out, d.view())
	}
	return out
}
