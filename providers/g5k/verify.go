package g5k

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/e2c-dev/e2c/providers"
)

// VerifyMargin is the time a kept job must have left beyond what the runs
// need: the setup before them (services, prepare) and the finalize and
// fetching of the results after.
const VerifyMargin = 10 * time.Minute

// Verify tells whether the jobs kept by an earlier deploy can serve again:
// each is still the user's, running, holds its nodes, and has walltime left
// for need and VerifyMargin. Only the API's answers say they cannot
// (providers.ErrCannotServe); without such an answer, a question the API
// left unanswered keeps them.
func (p *Provider) Verify(ctx context.Context, r *providers.Reservation, need time.Duration) error {
	st, c, err := p.open(r)
	if err != nil {
		return err
	}
	var errs, failed []error // reasons it cannot serve; questions the API did not answer
	for _, js := range st.Jobs {
		var j job
		_, err := c.call(ctx, http.MethodGet, jobPath(js.Site, js.UID), nil, &j)
		var ae *APIError
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			errs = append(errs, fmt.Errorf("%s: job %d no longer exists", js.Site, js.UID))
			continue
		case err != nil:
			failed = append(failed, fmt.Errorf("%s: job %d: %w", js.Site, js.UID, err))
			continue
		case j.State != "running":
			errs = append(errs, fmt.Errorf("%s: job %d is %s, no longer running%s", js.Site, j.UID, j.State, events(j)))
			continue
		case st.Login != "" && j.User != st.Login: // a state saved before logins were recorded has none
			errs = append(errs, fmt.Errorf("%s: job %d is %s's, not %s's", js.Site, j.UID, j.User, st.Login))
			continue
		}
		end := time.Unix(j.StartedAt+j.Walltime, 0)
		if left := time.Until(end); left < need+VerifyMargin {
			errs = append(errs, fmt.Errorf("%s: job %d ends at %s, in %s: the runs need %s, and %s more for setup and results",
				js.Site, j.UID, end.Format(clockLayout), max(left, 0).Round(time.Second), need, VerifyMargin))
		}
		for _, n := range js.Nodes {
			if !slices.Contains(j.AssignedNodes, n) {
				errs = append(errs, fmt.Errorf("%s: job %d no longer holds %s", js.Site, j.UID, n))
			}
		}
	}
	if len(errs) == 0 && len(failed) > 0 {
		return fmt.Errorf("could not check the kept jobs (they are kept; try again): %w", errors.Join(failed...))
	}
	// One job that cannot serve is enough, whatever the API left
	// unanswered about the others.
	return providers.CannotServe(append(errs, failed...)...)
}
