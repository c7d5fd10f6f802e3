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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/providers"
)

// listed are the states of the jobs e2c may reuse by name: the OAR states
// the API's state filter knows that are not ending.
const listed = "waiting,hold,launching,running"

// clockSkew bounds how far this machine's clock and the API's may differ
// when a job e2c submitted is looked for by its submission time.
const clockSkew = 5 * time.Minute

func jobPath(site string, uid int64) string {
	return fmt.Sprintf("/sites/%s/jobs/%d", url.PathEscape(site), uid)
}

// reuseOrSubmit reuses the user's job of the experiment's name on the site,
// or submits one; either is added to st and journaled with save. A
// submission is journaled before it is sent, then with its uid as soon as
// the API answers.
func (p *Provider) reuseOrSubmit(ctx context.Context, c *client, cfg config, st *state, d *demand, save func() error, out io.Writer) error {
	q := url.Values{"name": {cfg.JobName}, "user": {st.Login}, "state": {listed}, "resources": {"yes"}}
	var jobs collection[job]
	base := "/sites/" + url.PathEscape(d.site) + "/jobs"
	if _, err := c.call(ctx, http.MethodGet, base+"?"+q.Encode(), nil, &jobs); err != nil {
		return fmt.Errorf("%s: listing jobs: %w", d.site, err)
	}
	var mine []job
	for _, j := range jobs.Items {
		if j.User != st.Login {
			fmt.Fprintf(out, "g5k: %s: job %d named %s is %s's, not yours (%s): not reused\n", d.site, j.UID, cfg.JobName, j.User, st.Login)
			continue
		}
		mine = append(mine, j)
	}
	switch len(mine) {
	case 0:
	case 1:
		j := mine[0]
		fmt.Fprintf(out, "g5k: %s: reusing job %d (%s, state %s)\n", d.site, j.UID, cfg.JobName, j.State)
		if cfg.EnvName != "" && !slices.Contains(j.Types, "deploy") {
			return fmt.Errorf("%s: job %d named %s has no deploy type, which env_name needs: delete it (oardel %d) or rename job_name", d.site, j.UID, cfg.JobName, j.UID)
		}
		st.Jobs = append(st.Jobs, jobState{Site: d.site, UID: j.UID, Name: cfg.JobName})
		return save()
	default:
		var ids []string
		for _, j := range mine {
			ids = append(ids, strconv.FormatInt(j.UID, 10))
		}
		return fmt.Errorf("%s: %d jobs named %s (%s): delete the extra ones or rename job_name", d.site, len(mine), cfg.JobName, strings.Join(ids, ", "))
	}

	body := jobRequest{Name: cfg.JobName, Resources: resources(d, cfg.Walltime), Types: cfg.Types, Queue: cfg.Queue,
		Project: cfg.Project, Reservation: cfg.Reservation}
	if body.Reservation == "" {
		body.Command = "sleep infinity"
	}
	i := len(st.Jobs)
	st.Jobs = append(st.Jobs, jobState{Site: d.site, Name: cfg.JobName, Since: time.Now().Unix(), Created: true})
	if err := save(); err != nil {
		st.Jobs = st.Jobs[:i]
		return err
	}
	var j job
	if _, err := c.call(ctx, http.MethodPost, base, body, &j); err != nil {
		err = fmt.Errorf("%s: submitting %s: %w", d.site, body.Resources, err)
		var ae *APIError
		if errors.As(err, &ae) && ae.Status < 500 { // refused: nothing was created
			st.Jobs = st.Jobs[:i]
			return errors.Join(err, save())
		}
		// The answer was lost (a timeout, Ctrl-C, a proxy's 502 or 504):
		// the job may exist all the same. Find it so that it is deleted
		// with the others; if it cannot be told now, the journaled intent
		// lets Release look again.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if found, lerr := findSubmitted(lctx, c, st, st.Jobs[i]); lerr == nil && len(found) == 1 {
			st.Jobs[i].UID = found[0]
			err = errors.Join(err, save())
		}
		return err
	}
	st.Jobs[i].UID = j.UID
	fmt.Fprintf(out, "g5k: %s: submitted job %d: %s\n", d.site, j.UID, body.Resources)
	if err := save(); err != nil {
		return err
	}
	if j.User != "" && j.User != st.Login {
		return fmt.Errorf("%s: the API took you for %s, not %s: write \"username: %s\" in %s", d.site, j.User, st.Login, j.User, p.credentialsFile())
	}
	return nil
}

// findSubmitted finds the jobs a journaled submission (js, UID 0) may have
// made: the user's pending or running jobs of its name, but for the jobs st
// reused, submitted while the API could accept it: from its journaling to
// the end of the client's wait for the answer, give or take the clocks'
// skew. A job of that name submitted later is another scenario's.
func findSubmitted(ctx context.Context, c *client, st *state, js jobState) ([]int64, error) {
	if st.Login == "" || js.Name == "" {
		return nil, fmt.Errorf("%s: a submission was journaled without its job name or login: look for it with oarstat", js.Site)
	}
	q := url.Values{"name": {js.Name}, "user": {st.Login}, "state": {listed}}
	var jobs collection[job]
	if _, err := c.call(ctx, http.MethodGet, "/sites/"+url.PathEscape(js.Site)+"/jobs?"+q.Encode(), nil, &jobs); err != nil {
		return nil, fmt.Errorf("%s: looking for the job e2c was submitting: %w", js.Site, err)
	}
	skew := int64(clockSkew / time.Second)
	from, to := js.Since-skew, js.Since+skew+int64(c.http.Timeout/time.Second)
	var uids []int64
	for _, j := range jobs.Items {
		reused := slices.ContainsFunc(st.Jobs, func(o jobState) bool { return !o.Created && o.Site == js.Site && o.UID == j.UID })
		if j.User == st.Login && j.SubmittedAt >= from && j.SubmittedAt <= to && !reused {
			uids = append(uids, j.UID)
		}
	}
	return uids, nil
}

// waitRunning polls the jobs, backing off, until all run; it says what
// they wait for. A job that ends, or is ending, is an error that shows
// OAR's events of it.
func (p *Provider) waitRunning(ctx context.Context, c *client, cfg config, st *state, out io.Writer) error {
	first, most, _, _ := p.durations()
	wait := first
	last := make([]string, len(st.Jobs)) // the state printed of each job (uids are per site)
	var down time.Time                   // since when the API has not answered
	for {
		pending := 0
		var soonest int64
		for i := range st.Jobs {
			js := &st.Jobs[i]
			var j job
			if _, err := c.call(ctx, http.MethodGet, jobPath(js.Site, js.UID), nil, &j); err != nil {
				if !unanswered(err) || ctx.Err() != nil {
					return fmt.Errorf("%s: job %d: %w", js.Site, js.UID, err)
				}
				if down.IsZero() {
					down = time.Now()
					fmt.Fprintf(out, "g5k: %s: the API does not answer (%v); still waiting for job %d\n", js.Site, err, js.UID)
				}
				if time.Since(down) > cmp.Or(p.Outage, 15*time.Minute) {
					return fmt.Errorf("%s: job %d: the API has not answered for %s: %w", js.Site, js.UID, time.Since(down).Round(time.Second), err)
				}
				pending++
				continue
			}
			if !down.IsZero() {
				fmt.Fprintf(out, "g5k: the API answers again after %s\n", time.Since(down).Round(time.Second))
				down = time.Time{}
			}
			if j.State != last[i] {
				line := fmt.Sprintf("g5k: %s: job %d %s", js.Site, j.UID, j.State)
				switch {
				case j.State == "waiting" && j.ScheduledAt > 0:
					line += ", scheduled to start at " + cfg.clock(j.ScheduledAt)
				case j.State == "hold":
					line += fmt.Sprintf(": held, it will not start until resumed (oarresume %d on the %s frontend; oardel %d gives it up); waiting for it", j.UID, js.Site, j.UID)
				}
				fmt.Fprintln(out, line)
				last[i] = j.State
			}
			switch j.State {
			case "running":
				js.Nodes = j.AssignedNodes
				continue
			case "error", "terminated":
				return fmt.Errorf("%s: job %d ended in state %s before running%s", js.Site, j.UID, j.State, events(j))
			case "finishing", "toerror":
				return fmt.Errorf("%s: job %d is ending (%s) before running%s", js.Site, j.UID, j.State, events(j))
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
			// Far ahead: sleep toward the predicted start, but look again
			// every few minutes: OAR's prediction moves, and a job may be
			// deleted meanwhile.
			until := time.Until(time.Unix(soonest, 0)) - 5*time.Second
			sleep = max(sleep, min(until, 5*most))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(sleep):
		}
		wait = min(most, wait*3/2)
	}
}

// unanswered tells an API that did not answer (a server error, the
// network) from one that answered no.
func unanswered(err error) bool {
	var ae *APIError
	return !errors.As(err, &ae) || ae.Status >= 500
}

// events shows OAR's events of a job, which say why it ended (its message
// is the scheduler's, such as "FIFO scheduling OK").
func events(j job) string {
	if len(j.Events) == 0 {
		return " (OAR recorded no event)"
	}
	var l []string
	for _, e := range j.Events {
		l = append(l, e.Type+": "+e.Description)
	}
	return "; OAR's events: " + strings.Join(l, "; ")
}

// open reads a saved reservation's state and makes a client of its API.
func (p *Provider) open(r *providers.Reservation) (*state, *client, error) {
	var st state
	if err := json.Unmarshal(r.State, &st); err != nil {
		return nil, nil, fmt.Errorf("the reservation's state: %w", err)
	}
	creds, err := p.credentials()
	if err != nil {
		return nil, nil, err
	}
	if st.API != "" {
		creds.URI = st.API
	}
	c, err := newClient(creds, p.RetryWait)
	return &st, c, err
}

func (p *Provider) Release(ctx context.Context, r *providers.Reservation, out io.Writer) error {
	if out == nil {
		out = io.Discard
	}
	if len(r.State) == 0 {
		return nil // nothing was journaled: nothing was created
	}
	st, c, err := p.open(r)
	if err != nil {
		return err
	}
	if err := p.release(ctx, c, st, out); err != nil {
		return err
	}
	return p.unclaim(st)
}

// release deletes the jobs e2c created, including one whose submission was
// journaled but never answered; a job already finished or gone is released
// already. Reused jobs are their owner's to end: it says so.
func (p *Provider) release(ctx context.Context, c *client, st *state, out io.Writer) error {
	var errs []error
	for _, js := range st.Jobs {
		if !js.Created {
			fmt.Fprintf(out, "g5k: %s: job %d was reused by name, not submitted by e2c: left running (oardel %d on the %s frontend ends it)\n", js.Site, js.UID, js.UID, js.Site)
			continue
		}
		uids := []int64{js.UID}
		if js.UID == 0 {
			found, err := findSubmitted(ctx, c, st, js)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if len(found) == 0 {
				fmt.Fprintf(out, "g5k: %s: e2c was submitting a job named %s; none was made\n", js.Site, js.Name)
			}
			uids = found
		}
		for _, uid := range uids {
			_, err := c.call(ctx, http.MethodDelete, jobPath(js.Site, uid), nil, nil)
			var ae *APIError
			if errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusBadRequest && strings.Contains(ae.Body, "already killed")) {
				err = nil
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: deleting job %d: %w", js.Site, uid, err))
				continue
			}
			fmt.Fprintf(out, "g5k: %s: job %d deleted\n", js.Site, uid)
		}
	}
	return errors.Join(errs...)
}
