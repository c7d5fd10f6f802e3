package g5kfake

import (
	"cmp"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// part is one "+"-joined request of a resources expression.
type part struct {
	cluster string   // {cluster='x'}/nodes=N
	hosts   []string // {network_address in ('a', ...)}/nodes=N: FQDNs
	n       int
}

var (
	partRe    = regexp.MustCompile(`^\{(.+)\}\s*/\s*(?:nodes|host)\s*=\s*(\d+)$`)
	clusterRe = regexp.MustCompile(`^cluster\s*=\s*'([^']+)'$`)
	inRe      = regexp.MustCompile(`^network_address\s+in\s*\((.+)\)$`)
	eqRe      = regexp.MustCompile(`^network_address\s*=\s*'([^']+)'$`)
	quotedRe  = regexp.MustCompile(`^'([^']+)'$`)
)

// defaultWalltime is Grid'5000's when the expression gives none.
const defaultWalltime = time.Hour

// parseResources reads the OAR expressions e2c and EnOSlib generate:
// parts joined with "+", then ",walltime=H:MM:SS" once.
func parseResources(expr string) ([]part, time.Duration, error) {
	expr = strings.TrimSpace(expr)
	wall := defaultWalltime
	if i := strings.LastIndex(expr, ",walltime="); i >= 0 {
		var err error
		if wall, err = parseWalltime(expr[i+len(",walltime="):]); err != nil {
			return nil, 0, err
		}
		expr = expr[:i]
	}
	var parts []part
	for _, text := range strings.Split(expr, "+") {
		p, err := parsePart(strings.TrimSpace(text))
		if err != nil {
			return nil, 0, err
		}
		parts = append(parts, p)
	}
	return parts, wall, nil
}

func parsePart(text string) (part, error) {
	m := partRe.FindStringSubmatch(text)
	if m == nil {
		return part{}, errors.New("cannot parse " + strconv.Quote(text))
	}
	n, err := strconv.Atoi(m[2])
	if err != nil || n < 1 {
		return part{}, errors.New("bad node count in " + strconv.Quote(text))
	}
	prop := strings.TrimSpace(m[1])
	if c := clusterRe.FindStringSubmatch(prop); c != nil {
		return part{cluster: c[1], n: n}, nil
	}
	if h := eqRe.FindStringSubmatch(prop); h != nil {
		return part{hosts: []string{h[1]}, n: n}, nil
	}
	if l := inRe.FindStringSubmatch(prop); l != nil {
		p := part{n: n}
		for _, item := range strings.Split(l[1], ",") {
			q := quotedRe.FindStringSubmatch(strings.TrimSpace(item))
			if q == nil {
				return part{}, errors.New("bad network address list in " + strconv.Quote(text))
			}
			p.hosts = append(p.hosts, q[1])
		}
		return p, nil
	}
	return part{}, errors.New("unsupported property " + strconv.Quote(prop))
}

// parseWalltime reads H[:MM[:SS]]; hours may exceed 24.
func parseWalltime(text string) (time.Duration, error) {
	fields := strings.Split(strings.TrimSpace(text), ":")
	units := []time.Duration{time.Hour, time.Minute, time.Second}
	if len(fields) > len(units) {
		return 0, errors.New("bad walltime " + strconv.Quote(text))
	}
	var d time.Duration
	for i, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return 0, errors.New("bad walltime " + strconv.Quote(text))
		}
		d += time.Duration(n) * units[i]
	}
	if d <= 0 {
		return 0, errors.New("bad walltime " + strconv.Quote(text))
	}
	return d, nil
}

// compareNodes orders node names numerically: parasilo-2 before parasilo-10.
func compareNodes(a, b string) int {
	pa, na := splitNumber(a)
	pb, nb := splitNumber(b)
	return cmp.Or(strings.Compare(pa, pb), cmp.Compare(na, nb), strings.Compare(a, b))
}

// splitNumber splits "parasilo-12[.rennes...]" into "parasilo-" and 12.
func splitNumber(name string) (string, int) {
	short, _, _ := strings.Cut(name, ".")
	i := len(short)
	for i > 0 && short[i-1] >= '0' && short[i-1] <= '9' {
		i--
	}
	n, _ := strconv.Atoi(short[i:])
	return short[:i], n
}

// usable says whether the job may get that node: it is on the job's site,
// and on an exotic cluster only for jobs of type exotic (Grid'5000's
// admission rules hide exotic nodes from other jobs).
func (s *Server) usable(j *job, node string) bool {
	c := s.nodes[node]
	return c != nil && c.Site == j.Site && (!c.Exotic || slices.Contains(j.Types, "exotic"))
}

// claims returns the nodes held by active jobs other than j: assigned ones,
// and the ones waiting jobs name explicitly; and how many nodes the waiting
// jobs still need from each cluster.
func (s *Server) claims(j *job) (map[string]bool, map[*Cluster]int) {
	held := map[string]bool{}
	pending := map[*Cluster]int{}
	for _, k := range s.jobs {
		if k == j || !active(k.State) {
			continue
		}
		if k.State != "waiting" && k.State != "hold" {
			for _, n := range k.AssignedNodes {
				held[n] = true
			}
			continue
		}
		for _, p := range k.parts {
			for _, h := range p.hosts {
				held[h] = true
			}
			if c := s.cluster(k.Site, p.cluster); c != nil {
				pending[c] += p.n
			}
		}
	}
	return held, pending
}

// fits says whether the job could get its nodes now without taking what
// other jobs hold or wait for.
func (s *Server) fits(j *job) bool {
	held, pending := s.claims(j)
	named := map[string]bool{}
	for _, p := range j.parts {
		for _, h := range p.hosts {
			named[h] = true
		}
	}
	// Set aside the nodes waiting jobs will need, from the highest-numbered
	// ones down, leaving alone those this job names.
	for c, n := range pending {
		for i := len(c.Nodes) - 1; i >= 0 && n > 0; i-- {
			if f := fqdn(c.Nodes[i], c.Site); !held[f] && !named[f] {
				held[f] = true
				n--
			}
		}
	}
	_, ok := s.pick(j, held)
	return ok
}

// pick chooses the job's nodes among those not held: explicitly named ones
// first, then the lowest-numbered free nodes of each requested cluster.
func (s *Server) pick(j *job, held map[string]bool) ([]string, bool) {
	var got []string
	take := func(candidates []string, n int) bool {
		for _, f := range candidates {
			if n == 0 {
				break
			}
			if !held[f] && s.usable(j, f) {
				held[f] = true
				got = append(got, f)
				n--
			}
		}
		return n == 0
	}
	for _, p := range j.parts {
		if len(p.hosts) > 0 && !take(p.hosts, p.n) {
			return nil, false
		}
	}
	for _, p := range j.parts {
		if len(p.hosts) > 0 {
			continue
		}
		c := s.cluster(j.Site, p.cluster)
		if c == nil {
			return nil, false
		}
		var all []string
		for _, uid := range c.Nodes {
			all = append(all, fqdn(uid, c.Site))
		}
		if !take(all, p.n) {
			return nil, false
		}
	}
	return got, true
}

func active(state string) bool { return state != "terminated" && state != "error" }

// due is when the job's next state change happens, if it has one.
func (j *job) due(cfg Config) (time.Time, bool) {
	switch j.State {
	case "waiting":
		return j.start, true
	case "launching":
		return j.launched.Add(cfg.Launching), true
	case "running":
		return j.launched.Add(j.wall), true
	case "finishing":
		return j.finish.Add(cfg.Finishing), true
	}
	return time.Time{}, false
}

// advanceJobs applies the due changes one at a time, earliest first, so
// nodes freed by a job are free for the jobs that launch after.
func (s *Server) advanceJobs(now time.Time) {
	for {
		var next *job
		var at time.Time
		for _, j := range s.jobs {
			if t, ok := j.due(s.cfg); ok && !t.After(now) && (next == nil || t.Before(at)) {
				next, at = j, t
			}
		}
		if next == nil {
			return
		}
		s.step(next, at)
	}
}

// step moves the job to its next state at time at. The scheduler's
// message stays what it said when it scheduled the job, whatever happens
// after: what went wrong is in the events.
func (s *Server) step(j *job, at time.Time) {
	switch j.State {
	case "waiting":
		j.Message = "FIFO scheduling OK"
		if j.failWait {
			s.event(j, at, "SWITCH_INTO_ERROR_STATE", "[Leon] the job could not be started: its resources are no longer available")
			j.stop("error", at)
			return
		}
		held, _ := s.claims(j)
		nodes, ok := s.pick(j, held)
		if !ok { // only when AddJob took nodes a waiting job counted on
			s.event(j, at, "SWITCH_INTO_ERROR_STATE", "[Leon] cannot find the resources of the job")
			j.stop("error", at)
			return
		}
		j.State = "launching"
		j.launched = at
		j.StartedAt = at.Unix()
		j.assign(nodes)
	case "launching":
		if j.failRun {
			s.event(j, at, "PROLOGUE_ERROR", "[bipbip "+itoa(j.UID)+"] error of oarexec prologue on "+j.AssignedNodes[0])
			j.finishing("error", at)
			return
		}
		j.State = "running"
	case "running":
		at = maxTime(at, j.launched.Add(s.cfg.Launching))
		s.event(j, at, "WALLTIME", "[sarko] job "+itoa(j.UID)+" reached its walltime")
		j.finishing("terminated", at)
	case "finishing":
		j.stop(j.ending, at)
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
